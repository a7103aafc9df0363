"""Labelled segments in memory, and training windows sampled from them.

All episodes that own a segment are read once into flat arrays (a 100-episode dataset of 250-step
episodes is ~25k steps: a few MB of states, ~300 MB of 64x64 frames). A batch is then pure numpy
indexing.

Window convention (paper App. B.1.2): a segment of ``N`` actions longer than ``window`` gives a
random contiguous window of ``window`` actions starting at offset ``o``. Its progress targets
keep their position in the *whole* segment, ``(o + t) / N`` for its t-th action (t = 1..W), so
the last action of a segment always has target 1; its prior observation is the window's first
observation ``states[start + o]``. Every window starts from the zero start token
(``a_0 = 0, l_0 = 0``) used at inference, whatever its offset: at inference a skill that hit the
step cap is re-planned from the state it reached and decoded from the start token again, so a
mid-segment window is exactly that situation (z, inferred from the window, carries where it is).
Inside the window the decoder is teacher-forced with the true previous action and progress
target. The label is always the segment's own label; padding is never a target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from skillgym.data.dataset import OfflineDataset
from skillgym.extract.labels import SkillLabels
from skillgym.skills.model import SkillBatch


@dataclass
class SegmentData:
    """Actions/observations of some episodes, flat, plus the segments that index them."""

    actions: np.ndarray  # (sum T_i, A) float32
    states: np.ndarray  # (sum (T_i + 1), D) float32
    frames: np.ndarray | None  # (sum (T_i + 1), H, W, 3) uint8, pixels only
    act_offset: np.ndarray  # (E,) where episode e's actions start in ``actions``
    obs_offset: np.ndarray  # (E,) where episode e's observations start in ``states``/``frames``
    segments: np.ndarray  # (S, 4) int64 (local episode index, start, end, skill)
    episodes: np.ndarray  # (E,) dataset episode ids of the local episodes
    instructions: np.ndarray | None = None  # (E, instruction_dim) float32 embeddings, language-conditioned only

    @property
    def num_segments(self) -> int:
        """Number of segments ``S``."""
        return len(self.segments)


def split_episodes(labels: SkillLabels, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the episodes that own segments into (train, validation) ids."""
    owners = np.unique(labels.segments[:, 0])
    if len(owners) == 0:
        raise ValueError("the labels hold no segments: nothing to train on")
    perm = np.random.default_rng(seed).permutation(owners)
    n_val = int(round(val_fraction * len(owners))) if len(owners) >= 2 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(owners) >= 2 else 0), len(owners) - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def load_segments(labels: SkillLabels, dataset: OfflineDataset, episodes: np.ndarray, obs_kind: str = "state",
                  image_size: int = 64, instructions: np.ndarray | None = None) -> SegmentData:
    """Read ``episodes`` (dataset ids) and their segments into memory.

    ``obs_kind="pixels"`` reads the dataset's frames: the stored ones when they are
    ``image_size`` pixels, else the dataset's re-rendering of its states at that size.
    ``instructions``: one instruction embedding per dataset episode ``(len(dataset), D)``, for a
    language-conditioned library; the rows of ``episodes`` are kept.
    """
    episodes = np.asarray(episodes, np.int64)
    actions, states, frames = [], [], []
    act_off, obs_off = [], []
    n_act = n_obs = 0
    want_frames = obs_kind == "pixels"
    use_stored = want_frames and dataset.has_frames and dataset.frame_size == image_size
    # Re-rendering takes minutes for a 100-episode dataset: show it.
    rerender = want_frames and not use_stored
    for e in tqdm(episodes, desc=f"rendering {image_size}x{image_size} frames", unit="ep", disable=not rerender):
        ep = dataset.episode(int(e), frames=use_stored)
        if len(ep.actions) != labels.episode_offsets[e + 1] - labels.episode_offsets[e]:
            raise ValueError(
                f"episode {e} has {len(ep.actions)} actions but the labels give it "
                f"{labels.episode_offsets[e + 1] - labels.episode_offsets[e]}: labels of another dataset?"
            )
        act_off.append(n_act)
        obs_off.append(n_obs)
        actions.append(ep.actions.astype(np.float32))
        states.append(ep.states.astype(np.float32))
        if want_frames:
            frames.append(ep.frames if use_stored else dataset.render_frames(ep, image_size))
        n_act += len(ep.actions)
        n_obs += len(ep.states)
    local = {int(e): i for i, e in enumerate(episodes)}
    seg = labels.segments[np.isin(labels.segments[:, 0], episodes)].copy()
    seg[:, 0] = [local[int(e)] for e in seg[:, 0]]
    return SegmentData(
        actions=np.concatenate(actions) if actions else np.zeros((0, dataset.action_dim), np.float32),
        states=np.concatenate(states) if states else np.zeros((0, dataset.state_dim), np.float32),
        frames=np.concatenate(frames) if frames else None,
        act_offset=np.asarray(act_off, np.int64),
        obs_offset=np.asarray(obs_off, np.int64),
        segments=seg,
        episodes=episodes,
        instructions=None if instructions is None else np.asarray(instructions, np.float32)[episodes],
    )


def _observations(data: SegmentData, episode: np.ndarray, local_index: np.ndarray, obs_kind: str,
                  frame_stack: int) -> np.ndarray:
    """Observations at ``local_index`` (position within the episode), any shape of indices."""
    if obs_kind == "state":
        return data.states[data.obs_offset[episode] + local_index]
    # The env's frame stack: the last `frame_stack` frames, oldest first, the first frame repeated.
    k = np.arange(frame_stack - 1, -1, -1)
    idx = np.maximum(local_index[..., None] - k, 0) + data.obs_offset[episode][..., None]
    return data.frames[idx]


WINDOW_STARTS = ("inside", "anywhere")


def window_offsets(data: SegmentData, seg_index: np.ndarray, window: int, rng: np.random.Generator,
                   window_starts: str = "inside") -> np.ndarray:
    """Random start offsets of windows of the segments ``seg_index`` (see :func:`make_batch`)."""
    if window_starts not in WINDOW_STARTS:
        raise ValueError(f"window_starts must be one of {WINDOW_STARTS}, got {window_starts!r}")
    n = data.segments[seg_index, 2] - data.segments[seg_index, 1]
    if window_starts == "anywhere":
        return rng.integers(0, n)
    return rng.integers(0, n - np.minimum(n, window) + 1)


def make_batch(data: SegmentData, seg_index: np.ndarray, window: int, offsets: np.ndarray | None = None,
               rng: np.random.Generator | None = None, obs_kind: str = "state", frame_stack: int = 4,
               closed_loop: bool = False, step_obs_kind: str | None = None,
               window_starts: str = "inside") -> SkillBatch:
    """Windows of the segments ``seg_index``; random offsets from ``rng``, or the given ``offsets``.

    ``step_obs_kind`` is what a closed-loop decoder observes (default: ``obs_kind``).

    With neither, every window starts at its segment's first action (used for validation).
    ``window_starts`` says where random windows may start: ``"inside"`` -- a full ``window``
    (or the whole segment) fits, so a 45-step segment starts windows at 0..15 only; ``"anywhere"``
    -- at any action of the segment, the window running to ``window`` actions or the segment's
    end. Only "anywhere" covers the states the env re-plans from: after a skill is capped at
    ``window`` steps, 30 steps into a 45-step segment, and after a skill stopped early or late.
    """
    if window_starts not in WINDOW_STARTS:
        raise ValueError(f"window_starts must be one of {WINDOW_STARTS}, got {window_starts!r}")
    seg = data.segments[seg_index]
    ep, start, end, skill = seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3]
    n = end - start
    if offsets is None:
        offsets = np.zeros_like(n) if rng is None else window_offsets(data, seg_index, window, rng, window_starts)
    o = np.asarray(offsets, np.int64)
    w = np.minimum(n - o, window)
    if np.any(o < 0) or np.any(w < 1):
        raise ValueError("window offsets must lie inside their segments")
    t = np.arange(window)
    valid = t[None] < w[:, None]
    pos = o[:, None] + t[None]  # position of each action within its segment
    local = np.where(valid, start[:, None] + pos, start[:, None])  # padding reads a real index
    act_idx = data.act_offset[ep][:, None] + local
    actions = data.actions[act_idx] * valid[..., None]
    # Every window starts from the zero start token, like every skill at inference: a window cut
    # from the middle of a long segment is what a re-planned skill continues from, and z (not the
    # token) must tell the decoder where in the segment it is.
    has_prev = valid & (t[None] > 0)
    prev_actions = data.actions[np.where(has_prev, act_idx - 1, act_idx)] * has_prev[..., None]
    progress = np.where(valid, (pos + 1) / n[:, None], 0.0).astype(np.float32)
    prev_progress = np.where(has_prev, pos / n[:, None], 0.0).astype(np.float32)
    prior_obs = _observations(data, ep, start + o, obs_kind, frame_stack)
    step_obs = None
    if closed_loop:
        step_obs = _observations(data, ep[:, None].repeat(window, 1), local, step_obs_kind or obs_kind,
                                 frame_stack)
    return SkillBatch(
        actions=torch.from_numpy(actions.astype(np.float32)),
        prev_actions=torch.from_numpy(prev_actions.astype(np.float32)),
        prev_progress=torch.from_numpy(prev_progress),
        progress=torch.from_numpy(progress),
        mask=torch.from_numpy(valid),
        lengths=torch.from_numpy(w.astype(np.int64)),
        skill=torch.from_numpy(skill.astype(np.int64)),
        prior_obs=torch.from_numpy(np.ascontiguousarray(prior_obs)),
        step_obs=None if step_obs is None else torch.from_numpy(np.ascontiguousarray(step_obs)),
        instruction=None if data.instructions is None else torch.from_numpy(data.instructions[ep]),
    )


def state_statistics(data: SegmentData) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every observation of the training episodes (for input normalisation)."""
    states = data.states.astype(np.float64)
    return states.mean(0).astype(np.float32), states.std(0).astype(np.float32)
