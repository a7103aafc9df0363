"""Offline kitchen datasets on disk: skillgym/Minari datasets and D4RL v0 HDF5 files.

Every stage reads episodes through :func:`open_dataset`, whatever the file came from:

- a Minari dataset folder (``DIR`` or ``DIR/data`` holding ``main_data.hdf5`` + ``metadata.json``),
  written by :func:`write_minari_dataset` or downloaded elsewhere (``D4RL/kitchen/*-v2``);
- a D4RL v0 kitchen HDF5 file (``observations (N, 60)``, ``actions (N, 9)``, ``terminals``,
  ``timeouts``).

Datasets without frames (the public ones) are re-rendered from their states on request, with the
same renderer the pixel env uses.

Example:
    >>> ds = open_dataset("data/kitchen")
    >>> ep = ds.episode(0)
    >>> ep.states.shape, ep.actions.shape, ep.frames.shape
    ((241, 59), (240, 9), (241, 128, 128, 3))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from skillgym.tasks.kitchen import ACTION_DIM, ALL_TASKS, NQ, NV, STATE_DIM

DATASET_ID = "skillgym/kitchen-scripted-v0"


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or has the wrong layout."""


@dataclass
class Episode:
    """One trajectory: ``T`` actions and ``T + 1`` observations."""

    states: np.ndarray  # (T+1, 59) float64, as the env observes them (with its noise)
    actions: np.ndarray  # (T, 9) float32
    rewards: np.ndarray  # (T,) float32
    terminations: np.ndarray  # (T,) bool
    truncations: np.ndarray  # (T,) bool
    frames: np.ndarray | None = None  # (T+1, H, W, 3) uint8
    subtasks: np.ndarray | None = None  # (T,) int16 index into ALL_TASKS, -1 = unknown
    sim_states: np.ndarray | None = None  # (T+1, 59) exact qpos ‖ qvel, for re-rendering

    @property
    def num_steps(self) -> int:
        return len(self.actions)

    def validate(self) -> None:
        t = self.num_steps
        checks = [
            (self.states.shape == (t + 1, STATE_DIM), f"states {self.states.shape} != ({t + 1}, {STATE_DIM})"),
            (self.actions.shape == (t, ACTION_DIM), f"actions {self.actions.shape} != ({t}, {ACTION_DIM})"),
            (self.rewards.shape == (t,), f"rewards {self.rewards.shape} != ({t},)"),
            (self.terminations.shape == (t,), f"terminations {self.terminations.shape} != ({t},)"),
            (self.truncations.shape == (t,), f"truncations {self.truncations.shape} != ({t},)"),
        ]
        if self.frames is not None:
            ok = self.frames.ndim == 4 and self.frames.shape[0] == t + 1 and self.frames.shape[-1] == 3
            checks.append((ok and self.frames.dtype == np.uint8,
                           f"frames {self.frames.shape} {self.frames.dtype} != ({t + 1}, H, W, 3) uint8"))
        if self.subtasks is not None:
            checks.append((self.subtasks.shape == (t,), f"subtasks {self.subtasks.shape} != ({t},)"))
        if self.sim_states is not None:
            checks.append((self.sim_states.shape == (t + 1, NQ + NV),
                           f"sim_states {self.sim_states.shape} != ({t + 1}, {NQ + NV})"))
        errors = [msg for ok, msg in checks if not ok]
        if t < 1:
            errors.append("an episode needs at least one action")
        if errors:
            raise DatasetError("episode has the wrong shape: " + "; ".join(errors))


def sim_state_from_observation(states: np.ndarray) -> np.ndarray:
    """qpos ‖ qvel from 59-d kitchen observations (exact only for noise-free observations)."""
    qpos = np.concatenate([states[:, 0:9], states[:, 18:39]], axis=1)
    qvel = np.concatenate([states[:, 9:18], states[:, 39:59]], axis=1)
    return np.concatenate([qpos, qvel], axis=1)


class OfflineDataset:
    """Read-only access to a kitchen dataset on disk, one episode at a time.

    Episodes are read lazily, so datasets larger than memory stream through. ``image_size``
    only matters for datasets without stored frames, which are re-rendered from their states.
    """

    def __init__(self, path: str | os.PathLike, image_size: int | None = None):
        self.path = Path(path)
        self._rerender_size = image_size
        self._renderer_env = None
        self._file = _find_hdf5(self.path)
        try:
            with h5py.File(self._file, "r") as f:
                self._kind = "d4rl-v0" if "observations" in f and "actions" in f else "minari"
                if self._kind == "minari":
                    self._load_minari_index(f)
                else:
                    self._load_d4rl_index(f)
        except OSError as e:
            raise DatasetError(f"cannot read {self._file}: {e}. Is the file complete?") from e
        self.fingerprint = self._compute_fingerprint()

    # -- indexing -----------------------------------------------------------------------------
    def _load_minari_index(self, f: h5py.File) -> None:
        names = sorted((k for k in f.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if not names:
            raise DatasetError(f"{self._file} holds no episodes (expected groups 'episode_<i>')")
        self._episode_names = names
        lengths = []
        for name in names:
            group = f[name]
            if "actions" not in group or "observations" not in group:
                raise DatasetError(f"{self._file}:{name} lacks 'actions' or 'observations'")
            lengths.append(group["actions"].shape[0])
        self.episode_lengths = np.asarray(lengths, dtype=np.int64)
        obs = f[names[0]]["observations"]
        self._state_key = "state" if "state" in obs else "observation" if "observation" in obs else None
        if isinstance(obs, h5py.Dataset):
            self._state_key = ""
        if self._state_key is None:
            raise DatasetError(
                f"{self._file}: observations have keys {list(obs.keys())}; expected 'state' "
                "(skillgym) or 'observation' (D4RL/kitchen Minari datasets)"
            )
        self.has_frames = isinstance(obs, h5py.Group) and "pixels" in obs
        self.frame_size = int(obs["pixels"].shape[1]) if self.has_frames else self._rerender_size
        self.has_subtasks = "infos" in f[names[0]] and "subtask" in f[names[0]]["infos"]
        self.has_sim_states = "infos" in f[names[0]] and "sim_state" in f[names[0]]["infos"]

    def _load_d4rl_index(self, f: h5py.File) -> None:
        obs, actions = f["observations"], f["actions"]
        if obs.ndim != 2 or obs.shape[1] != 60 or actions.shape != (obs.shape[0], ACTION_DIM):
            raise DatasetError(
                f"{self._file}: D4RL v0 kitchen needs observations (N, 60) and actions (N, 9), "
                f"got {obs.shape} and {actions.shape}"
            )
        ends = np.flatnonzero(np.asarray(f["terminals"][:], bool) | np.asarray(f["timeouts"][:], bool))
        if len(ends) == 0 or ends[-1] != obs.shape[0] - 1:
            ends = np.append(ends, obs.shape[0] - 1)
        starts = np.concatenate([[0], ends[:-1] + 1])
        keep = ends - starts >= 1  # an episode needs one action and a next observation
        self._d4rl_bounds = np.stack([starts[keep], ends[keep]], axis=1)
        # v0 stores no final observation: the last stored step becomes the final observation.
        self.episode_lengths = self._d4rl_bounds[:, 1] - self._d4rl_bounds[:, 0]
        self.has_frames, self.has_subtasks, self.has_sim_states = False, False, False
        self.frame_size = self._rerender_size

    def __len__(self) -> int:
        return len(self.episode_lengths)

    @property
    def total_steps(self) -> int:
        return int(self.episode_lengths.sum())

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha1(self.episode_lengths.tobytes())
        for i in {0, len(self) - 1}:
            h.update(self.episode(i, frames=False).actions.tobytes())
        return h.hexdigest()[:16]

    # -- reading ------------------------------------------------------------------------------
    def episode(self, index: int, frames: bool = True) -> Episode:
        """Episode ``index``; ``frames=False`` skips the (large) images."""
        if not 0 <= index < len(self):
            raise IndexError(f"episode {index} out of range [0, {len(self)})")
        with h5py.File(self._file, "r") as f:
            ep = self._read_minari(f, index, frames) if self._kind == "minari" else self._read_d4rl(f, index)
        if frames and ep.frames is None:
            ep.frames = self.render_states(ep.sim_states if ep.sim_states is not None else sim_state_from_observation(ep.states))
        ep.validate()
        return ep

    def _read_minari(self, f: h5py.File, index: int, frames: bool) -> Episode:
        g = f[self._episode_names[index]]
        obs = g["observations"]
        states = obs[()] if self._state_key == "" else obs[self._state_key][()]
        infos = g["infos"] if "infos" in g else {}
        subtasks = infos["subtask"][:-1].astype(np.int16) if self.has_subtasks else None
        return Episode(
            states=np.asarray(states, np.float64),
            actions=np.asarray(g["actions"][()], np.float32),
            rewards=np.asarray(g["rewards"][()], np.float32),
            terminations=np.asarray(g["terminations"][()], bool),
            truncations=np.asarray(g["truncations"][()], bool),
            frames=obs["pixels"][()] if frames and self.has_frames else None,
            subtasks=subtasks,
            sim_states=np.asarray(infos["sim_state"][()], np.float64) if self.has_sim_states else None,
        )

    def _read_d4rl(self, f: h5py.File, index: int) -> Episode:
        start, end = self._d4rl_bounds[index]
        obs60 = np.asarray(f["observations"][start : end + 1], np.float64)
        t = end - start
        # D4RL v0: 9 robot qpos + 21 object qpos + 30 goal dims; no velocities were stored.
        states = np.zeros((t + 1, STATE_DIM))
        states[:, 0:9], states[:, 18:39] = obs60[:, 0:9], obs60[:, 9:30]
        terminals = np.asarray(f["terminals"][start:end], bool)
        return Episode(
            states=states,
            actions=np.asarray(f["actions"][start:end], np.float32),
            rewards=np.asarray(f["rewards"][start:end], np.float32) if "rewards" in f else np.zeros(t, np.float32),
            terminations=terminals,
            truncations=np.zeros(t, bool) | (np.arange(t) == t - 1) & ~terminals[-1],
        )

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(i) for i in range(len(self)))

    def iter_episodes(self, frames: bool = True) -> Iterator[Episode]:
        return (self.episode(i, frames=frames) for i in range(len(self)))

    def render_states(self, sim_states: np.ndarray) -> np.ndarray:
        """Render ``(N, 59)`` exact sim states with the pixel env's renderer."""
        if self.frame_size is None:
            raise DatasetError(
                f"{self.path} stores no frames; open it with image_size=64 or 128 to re-render them"
            )
        if self._renderer_env is None:
            from skillgym.tasks.kitchen import KitchenTaskEnv

            self._renderer_env = KitchenTaskEnv(pixels=False, image_size=self.frame_size)
            self._renderer_env.reset(seed=0)
        env = self._renderer_env
        out = np.empty((len(sim_states), self.frame_size, self.frame_size, 3), np.uint8)
        for i, s in enumerate(sim_states):
            env.set_sim_state(s)
            out[i] = env.render_frame()
        return out

    def subtask_names(self) -> tuple[str, ...]:
        return ALL_TASKS


def _find_hdf5(path: Path) -> Path:
    if path.is_file():
        return path
    for candidate in (path / "data" / "main_data.hdf5", path / "main_data.hdf5"):
        if candidate.is_file():
            return candidate
    if not path.exists():
        raise DatasetError(
            f"no dataset at {path}. Make one with `skillgym data kitchen --out {path}`"
        )
    raise DatasetError(
        f"{path} is not a dataset: expected a Minari folder (data/main_data.hdf5) or a D4RL .hdf5 file"
    )


def open_dataset(path: str | os.PathLike, image_size: int | None = None) -> OfflineDataset:
    """Open a skillgym/Minari dataset folder or a D4RL v0 kitchen HDF5 file."""
    return OfflineDataset(path, image_size=image_size)


def write_minari_dataset(
    out: str | os.PathLike,
    episode_chunks: Iterable[list[Episode]],
    image_size: int | None,
    description: str = "",
    dataset_id: str = DATASET_ID,
) -> Path:
    """Write episodes as a Minari dataset at ``out`` (opened by ``minari.MinariDataset(out/data)``).

    ``episode_chunks`` yields lists of episodes; each chunk is appended and then dropped, so
    memory stays bounded by one chunk. Frames are stored losslessly (no JPEG), because re-rendered
    states must match them.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    out = Path(out)
    obs_spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float64)}
    if image_size:
        obs_spaces["pixels"] = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
    observation_space = gym.spaces.Dict(obs_spaces)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)

    def to_buffer(i: int, ep: Episode) -> EpisodeBuffer:
        ep.validate()
        obs = {"state": ep.states}
        if image_size:
            obs["pixels"] = ep.frames
        infos = {}
        if ep.subtasks is not None:
            infos["subtask"] = np.append(ep.subtasks, ep.subtasks[-1]).astype(np.int16)
        if ep.sim_states is not None:
            infos["sim_state"] = ep.sim_states
        return EpisodeBuffer(
            id=i, observations=obs, actions=ep.actions, rewards=list(ep.rewards),
            terminations=list(ep.terminations), truncations=list(ep.truncations), infos=infos,
        )

    # Absolute: Minari joins MINARI_DATASETS_PATH with itself when it is relative (a relative --out failed).
    staging = Path(tempfile.mkdtemp(prefix=".minari-", dir=out.parent if out.parent.exists() else None)).resolve()
    old_path = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(staging)
    try:
        dataset, count = None, 0
        for chunk in episode_chunks:
            buffers = [to_buffer(count + j, ep) for j, ep in enumerate(chunk)]
            count += len(buffers)
            if not buffers:
                continue
            if dataset is None:
                dataset = minari.create_dataset_from_buffers(
                    dataset_id, buffers, observation_space=observation_space,
                    action_space=action_space, algorithm_name="skillgym scripted controller",
                    author="skillgym", description=description or "skillgym kitchen dataset",
                    code_permalink="https://github.com/skillgym/skillgym", jpeg_encoding=False,
                    data_format="hdf5",
                )
            else:
                dataset.update_dataset_from_buffer(buffers)
        if dataset is None:
            raise DatasetError("no episodes to write")
        namespace, name = dataset_id.split("/", 1)
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging / namespace / name), str(out))
    finally:
        if old_path is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old_path
        shutil.rmtree(staging, ignore_errors=True)
    return out


def write_json(path: str | os.PathLike, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
