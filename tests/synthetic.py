"""Tiny synthetic labelled datasets for tests and benchmarks (no simulator needed).

Each episode is a sequence of segments; a segment of skill ``k`` and length ``N`` emits a smooth
action pattern of that skill (so the VAE has something to learn), and its first state encodes
``k`` in a few state dims (so the skill prior has something to predict).

With ``instructions``, episode ``e`` carries instruction ``e % len(instructions)`` and runs only the skill
of that number (mod K), which the states do not show: only the instruction tells the prior the skill.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from skillgym.data.dataset import Episode, open_dataset, write_minari_dataset
from skillgym.extract.labels import SkillLabels


def synthetic_episodes(num_episodes: int, num_skills: int = 4, seed: int = 0, image_size: int | None = None,
                       min_len: int = 8, max_len: int = 45, segments_per_episode: int = 3,
                       instructions: Sequence[str] | None = None) -> tuple[list[Episode], np.ndarray]:
    """Episodes and their segments ``(episode, start, end, skill)``."""
    rng = np.random.default_rng(seed)
    episodes, segments = [], []
    phase = rng.uniform(0, 2 * np.pi, (num_skills, 9))
    for e in range(num_episodes):
        actions, skills = [], []
        start = 0
        for _ in range(segments_per_episode):
            k = int(rng.integers(num_skills))
            if instructions:
                k = e % len(instructions) % num_skills
            n = int(rng.integers(min_len, max_len + 1))
            t = np.arange(1, n + 1)[:, None] / n
            amp = rng.uniform(0.5, 0.9)
            actions.append(amp * np.sin(2 * np.pi * t + phase[k]) + 0.02 * rng.standard_normal((n, 9)))
            skills += [k] * n
            segments.append((e, start, start + n, k))
            start += n
        a = np.clip(np.concatenate(actions), -1, 1).astype(np.float32)
        steps = len(a)
        states = 0.1 * rng.standard_normal((steps + 1, 59))
        states[1:, :9] += np.cumsum(a, 0) * 0.05
        lab = np.array(skills + [skills[-1]])
        if not instructions:
            states[np.arange(steps + 1), 20 + lab] += 1.0  # the current skill, visible to the prior
        frames = None
        if image_size:
            frames = rng.integers(0, 30, (steps + 1, image_size, image_size, 3), dtype=np.uint8)
            frames[np.arange(steps + 1), : image_size // 4, :, lab % 3] = 200  # skill as a colour band
        episodes.append(Episode(
            states=states, actions=a, rewards=np.zeros(steps, np.float32),
            terminations=np.zeros(steps, bool), truncations=np.arange(steps) == steps - 1, frames=frames,
            instruction=instructions[e % len(instructions)] if instructions else None,
        ))
    return episodes, np.asarray(segments, np.int64)


def write_synthetic_labels(root: str | os.PathLike, num_episodes: int = 12, num_skills: int = 4, seed: int = 0,
                           image_size: int | None = None, **kwargs) -> tuple[Path, Path]:
    """Write ``root/data`` (a Minari dataset) and ``root/labels``; returns both paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    episodes, segments = synthetic_episodes(num_episodes, num_skills, seed, image_size, **kwargs)
    data_dir = write_minari_dataset(root / "data", [episodes], image_size=image_size)
    ds = open_dataset(data_dir)
    lengths = [len(ep.actions) for ep in episodes]
    frame_labels = np.zeros(sum(lengths), np.int16)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for e, s, t, k in segments:
        frame_labels[offsets[e] + s: offsets[e] + t] = k
    labels = SkillLabels(frame_labels=frame_labels, episode_offsets=offsets, segments=segments,
                         num_skills=num_skills, dataset_path=str(data_dir), dataset_fingerprint=ds.fingerprint,
                         metadata={"encoder": "synthetic", "k": num_skills})
    labels_dir = labels.save(root / "labels")
    return data_dir, labels_dir


def tiny_training_args(labels: str | os.PathLike, out: str | os.PathLike, **kw):
    """TrainSkillsArgs of a few-step skill training on small networks (``kw`` replaces any option)."""
    from skillgym.skills.train import TrainSkillsArgs

    defaults = dict(steps=6, batch_size=8, hidden_dim=16, window=10, progress=False, threads=1)
    return TrainSkillsArgs(labels=str(labels), out=str(out), **{**defaults, **kw})


def synthetic_embedding(texts: Sequence[str], dim: int = 16) -> np.ndarray:
    """A fixed unit vector per text (seeded by its hash): instruction embeddings without a sentence model."""
    vectors = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little"))
               .standard_normal(dim) for t in texts]
    return np.asarray([v / np.linalg.norm(v) for v in vectors], np.float32).reshape(len(texts), dim)


class InstructedReachEnv(gym.Env):
    """A low-level env observing ``{"state": (59,), "instruction": (dim,)}`` like a LIBERO task env, with the
    9-d actions of the synthetic data: the first 9 state dims move by ``0.05 * action`` and the reward is the
    negative distance to a goal that the episode's instruction names (one of ``instructions``, drawn at reset
    or chosen with ``options={"task": i}``)."""

    def __init__(self, instructions: Sequence[str] = ("go left", "go right"), dim: int = 16, max_steps: int = 60):
        self.instructions = list(instructions)
        self.vectors = synthetic_embedding(self.instructions, dim)
        self.goals = np.sign(self.vectors[:, :9])
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Dict({
            "state": gym.spaces.Box(-np.inf, np.inf, (59,), np.float64),
            "instruction": gym.spaces.Box(-1.0, 1.0, (dim,), np.float32),
        })
        self.action_space = gym.spaces.Box(-1.0, 1.0, (9,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"state": self.state.copy(), "instruction": self.vectors[self.task].copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.task = int(self.np_random.integers(len(self.instructions)))
        if options and "task" in options:
            self.task = int(options["task"])
        self.state = 0.1 * self.np_random.standard_normal(59)
        self.steps = 0
        return self._obs(), {"instruction": self.instructions[self.task]}

    def step(self, action):
        self.state[:9] += 0.05 * np.clip(action, -1, 1)
        self.steps += 1
        reward = -float(np.linalg.norm(self.state[:9] - self.goals[self.task]))
        return self._obs(), reward, False, self.steps >= self.max_steps, {}
