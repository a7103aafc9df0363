"""Offline robot datasets on disk: any Minari dataset, and D4RL v0 Franka Kitchen HDF5 files.

Every stage reads episodes through :func:`open_dataset`, whatever the file came from:

- a Minari dataset folder (``DIR`` or ``DIR/data`` holding ``main_data.hdf5`` + ``metadata.json``),
  written by :func:`write_minari_dataset` or by anything else that writes Minari datasets. Its
  observations are either a flat array ``(T + 1, D)``, or a Dict with a state entry (``state`` or
  ``observation``, ``(T + 1, D)``) and optional frames (``pixels``, ``(T + 1, H, W, 3) uint8``);
  its actions are vectors ``(T, A)``;
- a D4RL v0 kitchen HDF5 file (``observations (N, 60)``, ``actions (N, 9)``, ``terminals``,
  ``timeouts``).

Shapes come from the data: ``dataset.state_dim``, ``dataset.action_dim``, ``dataset.frame_size``.

Franka Kitchen data (D4RL v0 files and Minari datasets whose id names the kitchen) is the one
case with more: frames it does not store are re-rendered from its simulator states on request,
with the renderer of the kitchen pixel env, and its per-step subtasks have names. Only that case
loads the kitchen simulator.

Example:
    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> episodes = [Episode(states=rng.normal(size=(21, 4)), actions=rng.uniform(-1, 1, (20, 2)))
    ...             for _ in range(3)]
    >>> path = write_minari_dataset(Path(tempfile.mkdtemp()) / "tiny", [episodes])
    >>> ds = open_dataset(path)
    >>> len(ds), ds.state_dim, ds.action_dim, ds.has_frames
    (3, 4, 2, False)
    >>> ep = ds.episode(0)
    >>> ep.states.shape, ep.actions.shape
    ((21, 4), (20, 2))
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from skillgym import outputs

DEFAULT_DATASET_ID = "skillgym/offline-v0"
KITCHEN_DATASET_ID = "skillgym/kitchen-scripted-v0"
# Observation entries that hold the state vector, in the order they are looked for:
# skillgym and gymnasium's AddRenderObservation write "state", D4RL's Minari datasets "observation".
STATE_KEYS = ("state", "observation")
PIXELS_KEY = "pixels"
EPISODE_PREFIX = "episode_"
NUMERIC_KINDS = "biuf"  # numpy dtype kinds of bool, int, unsigned and float arrays


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or has the wrong layout."""


@dataclass
class Episode:
    """One trajectory: ``T`` actions and ``T + 1`` observations.

    ``rewards``, ``terminations`` and ``truncations`` default to zero rewards and an episode
    truncated after its last action.
    """

    states: np.ndarray  # (T+1, D) float64, as the env observed them
    actions: np.ndarray  # (T, A) float32
    rewards: np.ndarray | None = None  # (T,) float32
    terminations: np.ndarray | None = None  # (T,) bool
    truncations: np.ndarray | None = None  # (T,) bool
    frames: np.ndarray | None = None  # (T+1, H, W, 3) uint8
    subtasks: np.ndarray | None = None  # (T,) int16 index into the dataset's subtask_names(), -1 = unknown
    sim_states: np.ndarray | None = None  # (T+1, S) exact simulator states, for re-rendering
    instruction: str | None = None  # the language instruction the episode carries out (LIBERO)

    def __post_init__(self) -> None:
        t = len(self.actions)
        if self.rewards is None:
            self.rewards = np.zeros(t, np.float32)
        if self.terminations is None:
            self.terminations = np.zeros(t, bool)
        if self.truncations is None:
            self.truncations = np.arange(t) == t - 1

    @property
    def num_steps(self) -> int:
        """Number of actions ``T`` (the episode has ``T + 1`` observations)."""
        return len(self.actions)

    def validate(self) -> None:
        """Raise :class:`DatasetError` unless the arrays fit together: ``T >= 1`` actions,
        ``T + 1`` observations (and frames, simulator states), one reward/flag per action, and
        finite states and actions."""
        t = self.num_steps
        states, actions = np.asarray(self.states), np.asarray(self.actions)
        checks = [
            (states.ndim == 2 and len(states) == t + 1, f"states {states.shape} != ({t + 1}, D)"),
            (actions.ndim == 2, f"actions {actions.shape} != ({t}, A)"),
            (np.shape(self.rewards) == (t,), f"rewards {np.shape(self.rewards)} != ({t},)"),
            (np.shape(self.terminations) == (t,), f"terminations {np.shape(self.terminations)} != ({t},)"),
            (np.shape(self.truncations) == (t,), f"truncations {np.shape(self.truncations)} != ({t},)"),
        ]
        if self.frames is not None:
            ok = self.frames.ndim == 4 and self.frames.shape[0] == t + 1 and self.frames.shape[-1] == 3
            checks.append((ok and self.frames.dtype == np.uint8,
                           f"frames {self.frames.shape} {self.frames.dtype} != ({t + 1}, H, W, 3) uint8"))
        if self.subtasks is not None:
            checks.append((np.shape(self.subtasks) == (t,), f"subtasks {np.shape(self.subtasks)} != ({t},)"))
        if self.sim_states is not None:
            checks.append((self.sim_states.ndim == 2 and len(self.sim_states) == t + 1,
                           f"sim_states {self.sim_states.shape} != ({t + 1}, S)"))
        if self.instruction is not None:
            checks.append((isinstance(self.instruction, str), f"instruction {self.instruction!r} is not a string"))
        errors = [msg for ok, msg in checks if not ok]
        if t < 1:
            errors.append("an episode needs at least one action")
        if errors:
            raise DatasetError("episode has the wrong shape: " + "; ".join(errors))
        for name, x in (("states", states), ("actions", actions)):
            if not np.all(np.isfinite(x)):
                raise DatasetError(f"episode {name} hold NaN or infinite values")


class OfflineDataset:
    """Read-only access to a dataset on disk, one episode at a time (see the module docstring).

    Episodes are read lazily, so datasets larger than memory stream through. ``image_size``
    only matters for kitchen datasets without stored frames, which are re-rendered at that size.

    Attributes:
        state_dim, action_dim: sizes of the state and action vectors.
        frame_size: side of the frames :meth:`episode` returns (None: no frames).
        has_frames: frames are stored (not re-rendered).
        has_subtasks, has_sim_states: per-step subtask ids / simulator states are stored.
        has_instructions: episodes carry a language instruction (``Episode.instruction``).
        is_kitchen: Franka Kitchen data (re-renderable, named subtasks).
        dataset_id: the Minari dataset id ("" for D4RL v0 files).
        action_low, action_high: ``(A,)`` bounds of the action space the dataset declares
            (None if it declares no finite box).
    """

    def __init__(self, path: str | os.PathLike, image_size: int | None = None):
        self.path = Path(path)
        self._renderers: dict[int, Any] = {}
        self._file = _find_hdf5(self.path)
        metadata = _read_metadata(self._file)
        self.dataset_id = str(metadata.get("dataset_id", ""))
        try:
            with h5py.File(self._file, "r") as f:
                self._kind = "d4rl-v0" if "observations" in f and "actions" in f else "minari"
                if self._kind == "minari":
                    self._load_minari_index(f)
                else:
                    self._load_d4rl_index(f)
        except OSError as e:
            raise DatasetError(f"cannot read {self._file}: {e}. Is the file complete?") from e
        self.is_kitchen = self._kind == "d4rl-v0" or "kitchen" in self.dataset_id.lower()
        if self._kind == "d4rl-v0":
            self.action_low, self.action_high = -np.ones(self.action_dim), np.ones(self.action_dim)
        else:
            self.action_low, self.action_high = _box_bounds(metadata.get("action_space"), self.action_dim)
        if self.has_frames:
            self.frame_size: int | None = self._stored_frame_size
        else:
            self.frame_size = image_size if self.is_kitchen else None
        self._fingerprint: str | None = None

    # -- indexing -----------------------------------------------------------------------------
    def _load_minari_index(self, f: h5py.File) -> None:
        names = [k for k in f.keys() if k.startswith(EPISODE_PREFIX)]
        unnumbered = [k for k in names if not k.removeprefix(EPISODE_PREFIX).isdecimal()]
        if unnumbered:
            raise DatasetError(f"{self._file}: groups {unnumbered} are not named '{EPISODE_PREFIX}<number>'; "
                               f"rename them ({EPISODE_PREFIX}0, {EPISODE_PREFIX}1, ...) or remove them")
        names.sort(key=lambda k: int(k.removeprefix(EPISODE_PREFIX)))
        if not names:
            raise DatasetError(f"{self._file} holds no episodes (expected groups 'episode_<i>')")
        self._episode_names = names
        lengths = []
        for name in names:
            group = f[name]
            if not isinstance(group, h5py.Group) or "actions" not in group or "observations" not in group:
                raise DatasetError(f"{self._file}:{name} lacks 'actions' or 'observations'")
            if not isinstance(group["actions"], h5py.Dataset) or group["actions"].ndim != 2:
                raise DatasetError(f"{self._file}:{name}/actions must be a (T, A) array")
            lengths.append(group["actions"].shape[0])
        self.episode_lengths = np.asarray(lengths, dtype=np.int64)
        first = f[names[0]]
        obs = first["observations"]
        if isinstance(obs, h5py.Dataset):  # a flat observation array
            self._state_key, states = None, obs
        else:
            self._state_key = next((k for k in STATE_KEYS if k in obs), None)
            if self._state_key is None or not isinstance(obs[self._state_key], h5py.Dataset):
                raise DatasetError(
                    f"{self._file}: observations have entries {list(obs.keys())}; expected a flat array "
                    f"or a Dict with a state vector under one of {STATE_KEYS}"
                )
            states = obs[self._state_key]
        actions = first["actions"]
        if states.ndim != 2 or not isinstance(actions, h5py.Dataset) or actions.ndim != 2:
            raise DatasetError(
                f"{self._file}: need state vectors (T+1, D) and action vectors (T, A), got observations "
                f"{states.shape} and actions {getattr(actions, 'shape', type(actions).__name__)}"
            )
        self.state_dim, self.action_dim = int(states.shape[1]), int(actions.shape[1])
        self.has_frames = isinstance(obs, h5py.Group) and PIXELS_KEY in obs
        self._stored_frame_size = int(_read_pixels(obs[PIXELS_KEY], 1).shape[1]) if self.has_frames else None
        infos = first.get("infos")
        infos = infos if isinstance(infos, h5py.Group) else {}
        self.has_subtasks = "subtask" in infos
        self.has_sim_states = "sim_state" in infos
        self.has_instructions = any(INSTRUCTION_ATTR in f[name].attrs for name in names)
        self._check_episode_layouts(f, names)

    def _check_episode_layouts(self, f: h5py.File, names: list[str]) -> None:
        """Every episode has the first one's state, action and frame sizes, ``T + 1`` observations and
        numeric arrays (checked on the HDF5 shapes and types, without reading the data)."""
        for name in names:
            g = f[name]
            obs = g["observations"]
            if isinstance(obs, h5py.Dataset) != (self._state_key is None):
                raise DatasetError(f"{self._file}:{name} stores its observations differently from the first episode")
            states = obs if self._state_key is None else obs.get(self._state_key)
            t = g["actions"].shape[0]
            problems = []
            if not isinstance(states, h5py.Dataset) or states.shape != (t + 1, self.state_dim):
                problems.append(f"states {_describe(states)} != ({t + 1}, {self.state_dim})")
            if g["actions"].shape[1] != self.action_dim:
                problems.append(f"actions {g['actions'].shape} != ({t}, {self.action_dim})")
            if self.has_frames:
                pixels = obs.get(PIXELS_KEY) if isinstance(obs, h5py.Group) else None
                if not isinstance(pixels, h5py.Dataset) or pixels.ndim < 1 or len(pixels) != t + 1:
                    problems.append(f"frames {_describe(pixels)} != {t + 1} frames")
                elif problem := _pixels_problem(pixels):
                    problems.append(f"frames {problem}")
                elif pixels.ndim == 4 and pixels.shape[1:] != (self._stored_frame_size, self._stored_frame_size, 3):
                    problems.append(f"frames {pixels.shape[1:]} != the first episode's "
                                    f"({self._stored_frame_size}, {self._stored_frame_size}, 3)")
            for key in ("rewards", "terminations", "truncations"):
                if not isinstance(g.get(key), h5py.Dataset) or g[key].shape != (t,):
                    problems.append(f"{key} {_describe(g.get(key))} != ({t},)")
            infos = g.get("infos")
            infos = infos if isinstance(infos, h5py.Group) else {}
            arrays = {"states": states, **{key: g.get(key) for key in ("actions", "rewards", "terminations",
                                                                      "truncations")}}
            for key, stored in (("subtask", self.has_subtasks), ("sim_state", self.has_sim_states)):
                if not stored:
                    continue
                arrays[f"infos/{key}"] = entry = infos.get(key)
                if not isinstance(entry, h5py.Dataset) or entry.ndim < 1 or len(entry) != t + 1:
                    problems.append(f"infos/{key} {_describe(entry)} != {t + 1} entries")
            for key, array in arrays.items():
                if isinstance(array, h5py.Dataset) and array.dtype.kind not in NUMERIC_KINDS:
                    problems.append(f"{key} hold {array.dtype} values, not numbers")
            if t < 1:
                problems.append("no actions (an episode needs at least one)")
            if problems:
                raise DatasetError(f"{self._file}:{name} does not fit the dataset: " + "; ".join(problems)
                                   + ". Re-record or re-export the dataset")

    def _load_d4rl_index(self, f: h5py.File) -> None:
        obs, actions = f["observations"], f["actions"]
        arrays = isinstance(obs, h5py.Dataset) and isinstance(actions, h5py.Dataset)
        if not arrays or obs.ndim != 2 or obs.shape[1] != 60 or actions.shape != (obs.shape[0], 9):
            raise DatasetError(
                f"{self._file}: D4RL v0 kitchen needs observations (N, 60) and actions (N, 9), "
                f"got {_describe(obs)} and {_describe(actions)}"
            )
        missing = [k for k in ("terminals", "timeouts") if not isinstance(f.get(k), h5py.Dataset)]
        if missing:
            raise DatasetError(f"{self._file}: a D4RL v0 kitchen file needs the arrays observations, actions, "
                               f"terminals and timeouts; {missing} are missing or not arrays. Download the "
                               "complete file")
        if f["terminals"].shape != (obs.shape[0],) or f["timeouts"].shape != (obs.shape[0],):
            raise DatasetError(f"{self._file}: terminals {f['terminals'].shape} and timeouts {f['timeouts'].shape} "
                               f"must have one entry per step ({obs.shape[0]},)")
        if "rewards" in f and (not isinstance(f["rewards"], h5py.Dataset) or f["rewards"].shape != (obs.shape[0],)):
            raise DatasetError(f"{self._file}: rewards {_describe(f['rewards'])} != ({obs.shape[0]},)")
        not_numeric = [k for k in ("observations", "actions", "terminals", "timeouts", "rewards")
                       if k in f and f[k].dtype.kind not in NUMERIC_KINDS]
        if not_numeric:
            raise DatasetError(f"{self._file}: {not_numeric} hold values that are not numbers "
                               f"({[str(f[k].dtype) for k in not_numeric]})")
        ends = np.flatnonzero(np.asarray(f["terminals"][:], bool) | np.asarray(f["timeouts"][:], bool))
        if len(ends) == 0 or ends[-1] != obs.shape[0] - 1:
            ends = np.append(ends, obs.shape[0] - 1)
        starts = np.concatenate([[0], ends[:-1] + 1])
        keep = ends - starts >= 1  # an episode needs one action and a next observation
        if not keep.any():
            raise DatasetError(f"{self._file} holds no episode with at least one action: each episode needs two "
                               "steps (an action and the observation after it) between terminals/timeouts")
        self._d4rl_bounds = np.stack([starts[keep], ends[keep]], axis=1)
        # v0 stores no final observation: the last stored step becomes the final observation.
        self.episode_lengths = self._d4rl_bounds[:, 1] - self._d4rl_bounds[:, 0]
        self.state_dim, self.action_dim = KITCHEN_STATE_DIM, 9
        self.has_frames, self.has_subtasks, self.has_sim_states = False, False, False
        self.has_instructions = False

    def __len__(self) -> int:
        return len(self.episode_lengths)

    @property
    def total_steps(self) -> int:
        """Number of actions over all episodes."""
        return int(self.episode_lengths.sum())

    @property
    def fingerprint(self) -> str:
        """Content hash of everything an artifact depends on: every episode's observations (states and
        stored frames), actions, rewards and end flags, streamed from the file on first use (a few
        seconds per GB, far less than embedding the frames). Caches and labels are keyed by it."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{self._kind}:{self.state_dim}:{self.action_dim}".encode())
            h.update(self.episode_lengths.tobytes())
            with h5py.File(self._file, "r") as f:
                for dataset in self._content(f):
                    h.update(f"{dataset.name}:{dataset.dtype.str}:{dataset.shape}".encode())
                    _hash_dataset(h, dataset)
            if self.has_instructions:  # language-conditioned artifacts depend on them
                h.update(json.dumps(self.instructions()).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def _content(self, f: h5py.File) -> Iterator[h5py.Dataset]:
        if self._kind == "d4rl-v0":
            yield from (f[k] for k in ("observations", "actions", "terminals", "timeouts", "rewards") if k in f)
            return
        for name in self._episode_names:
            g = f[name]
            obs = g["observations"]
            if isinstance(obs, h5py.Dataset):
                yield obs
            else:
                yield obs[self._state_key]
                if self.has_frames:
                    yield obs[PIXELS_KEY]
            yield from (g[k] for k in ("actions", "rewards", "terminations", "truncations"))

    def matches_fingerprint(self, fingerprint: str) -> bool:
        """Whether ``fingerprint`` (stored in labels or a library) names this dataset's content. Accepts the
        16-character fingerprints of earlier skillgym versions, which hashed the episode lengths and the
        actions of the first and last episode only."""
        if len(fingerprint) == 16:
            h = hashlib.sha1(self.episode_lengths.tobytes())
            for i in {0, len(self) - 1}:
                h.update(self.episode(i, frames=False).actions.tobytes())
            return h.hexdigest()[:16] == fingerprint
        return fingerprint == self.fingerprint

    # -- reading ------------------------------------------------------------------------------
    def episode(self, index: int, frames: bool = True) -> Episode:
        """Episode ``index``; ``frames=False`` skips the (large) images.

        Frames are the stored ones; a kitchen dataset without stored frames re-renders them at
        ``frame_size`` (so it must be opened with ``image_size``), and any other dataset without
        frames returns ``frames=None``.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"episode {index} out of range [0, {len(self)})")
        try:
            with h5py.File(self._file, "r") as f:
                ep = self._read_minari(f, index, frames) if self._kind == "minari" else self._read_d4rl(f, index)
        except OSError as e:
            raise DatasetError(f"cannot read episode {index} from {self._file}: {e}. Is the file complete?") from e
        if frames and ep.frames is None and self.is_kitchen:
            ep.frames = self.render_frames(ep)
        try:
            ep.validate()
        except DatasetError as e:
            raise DatasetError(f"{self._file}: episode {index}: {e}. Re-record or re-export the dataset") from None
        return ep

    def _read_minari(self, f: h5py.File, index: int, frames: bool) -> Episode:
        g = f[self._episode_names[index]]
        obs = g["observations"]
        states = obs[()] if self._state_key is None else obs[self._state_key][()]
        infos = g["infos"] if "infos" in g else {}
        return Episode(
            states=np.asarray(states, np.float64),
            actions=np.asarray(g["actions"][()], np.float32),
            rewards=np.asarray(g["rewards"][()], np.float32),
            terminations=np.asarray(g["terminations"][()], bool),
            truncations=np.asarray(g["truncations"][()], bool),
            frames=_read_pixels(obs[PIXELS_KEY]) if frames and self.has_frames else None,
            subtasks=infos["subtask"][:-1].astype(np.int16) if self.has_subtasks else None,
            sim_states=np.asarray(infos["sim_state"][()], np.float64) if self.has_sim_states else None,
            instruction=_instruction(g) if self.has_instructions else None,
        )

    def _read_d4rl(self, f: h5py.File, index: int) -> Episode:
        start, end = self._d4rl_bounds[index]
        obs60 = np.asarray(f["observations"][start : end + 1], np.float64)
        t = end - start
        # D4RL v0: 9 robot qpos + 21 object qpos + 30 goal dims; no velocities were stored.
        states = np.zeros((t + 1, KITCHEN_STATE_DIM))
        states[:, 0:9], states[:, 18:39] = obs60[:, 0:9], obs60[:, 9:30]
        terminals = np.asarray(f["terminals"][start:end], bool)
        return Episode(
            states=states,
            actions=np.asarray(f["actions"][start:end], np.float32),
            rewards=np.asarray(f["rewards"][start:end], np.float32) if "rewards" in f else np.zeros(t, np.float32),
            terminations=terminals,
            truncations=np.zeros(t, bool) | (np.arange(t) == t - 1) & ~terminals[-1],
        )

    def instructions(self) -> list[str | None]:
        """Every episode's language instruction (None where an episode has none), without reading its data."""
        if not self.has_instructions:
            return [None] * len(self)
        with h5py.File(self._file, "r") as f:
            return [_instruction(f[name]) for name in self._episode_names]

    def __iter__(self) -> Iterator[Episode]:
        return (self.episode(i) for i in range(len(self)))

    def iter_episodes(self, frames: bool = True) -> Iterator[Episode]:
        """Every episode in order; ``frames=False`` skips the (large) images."""
        return (self.episode(i, frames=frames) for i in range(len(self)))

    # -- re-rendering (kitchen) ---------------------------------------------------------------
    def render_frames(self, episode: Episode, image_size: int | None = None) -> np.ndarray:
        """Frames of ``episode`` at ``image_size`` (default ``frame_size``), re-rendered from its
        simulator states: the stored ones, else (kitchen) those recovered from its observations."""
        if not self.is_kitchen:
            stored = f"stores {self.frame_size}x{self.frame_size} frames" if self.has_frames else "stores no frames"
            raise DatasetError(
                f"{self.path} {stored}, and only Franka Kitchen datasets can be re-rendered from their "
                "states: use the stored frame size, or record the dataset with frames (a 'pixels' entry)"
            )
        sim_states = episode.sim_states
        if sim_states is None:
            sim_states = sim_state_from_observation(episode.states)
        return self.render_states(sim_states, image_size)

    def render_states(self, sim_states: np.ndarray, image_size: int | None = None) -> np.ndarray:
        """Render ``(N, 59)`` exact kitchen simulator states with the kitchen pixel env's renderer,
        at ``image_size`` (default ``frame_size``)."""
        size = image_size or self.frame_size
        if size is None:
            raise DatasetError(f"{self.path} stores no frames; open it with image_size=64 or 128 to re-render them")
        if not self.is_kitchen:
            raise DatasetError(f"{self.path} is not a Franka Kitchen dataset; only kitchen states can be rendered")
        if size not in self._renderers:
            from skillgym.tasks.kitchen import KitchenTaskEnv

            env = KitchenTaskEnv(pixels=False, image_size=size)
            env.reset(seed=0)
            self._renderers[size] = env
        env = self._renderers[size]
        out = np.empty((len(sim_states), size, size, 3), np.uint8)
        for i, s in enumerate(sim_states):
            env.set_sim_state(s)
            out[i] = env.render_frame()
        return out

    def close(self) -> None:
        """Release the renderers of re-rendered frames (the file itself is never kept open)."""
        for env in self._renderers.values():
            env.close()
        self._renderers.clear()

    def subtask_names(self) -> tuple[str, ...]:
        """Names of the subtask ids in ``Episode.subtasks``: the kitchen's subtasks, or
        ``"subtask <i>"`` for other datasets."""
        if self.is_kitchen:
            from skillgym.tasks.kitchen import ALL_TASKS

            return ALL_TASKS
        if not self.has_subtasks:
            return ()
        top = max(int(self.episode(i, frames=False).subtasks.max(initial=-1)) for i in range(len(self)))
        return tuple(f"subtask {i}" for i in range(top + 1))


# -- the kitchen case -------------------------------------------------------------------------
# Kitchen observations: 9 robot qpos, 9 robot qvel, 21 object qpos, 20 object qvel.
KITCHEN_STATE_DIM = 59


# The HDF5 attribute of an episode group that holds its instruction (Minari keeps no per-episode text).
INSTRUCTION_ATTR = "skillgym_instruction"


def _instruction(group: h5py.Group) -> str | None:
    value = group.attrs.get(INSTRUCTION_ATTR)
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def sim_state_from_observation(states: np.ndarray) -> np.ndarray:
    """qpos ‖ qvel from 59-d kitchen observations (exact only for noise-free observations)."""
    if states.ndim != 2 or states.shape[1] != KITCHEN_STATE_DIM:
        raise DatasetError(f"kitchen observations are (T, {KITCHEN_STATE_DIM}), got {states.shape}")
    qpos = np.concatenate([states[:, 0:9], states[:, 18:39]], axis=1)
    qvel = np.concatenate([states[:, 9:18], states[:, 39:59]], axis=1)
    return np.concatenate([qpos, qvel], axis=1)


def _hash_dataset(h: Any, dataset: h5py.Dataset, rows_per_read: int = 256) -> None:
    """Feed an HDF5 array to ``h`` in row blocks, so memory stays bounded for frame arrays."""
    if dataset.shape == () or len(dataset) == 0:
        h.update(np.asarray(dataset[()]).tobytes())
        return
    for start in range(0, len(dataset), rows_per_read):
        block = dataset[start : start + rows_per_read]
        if block.dtype == object:  # JPEG-encoded frames: variable-length byte strings
            for item in block:
                h.update(bytes(item))
        else:
            h.update(np.ascontiguousarray(block).tobytes())


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


def _describe(entry: Any) -> str:
    """An HDF5 entry's shape for error messages, or what it is instead of an array."""
    if isinstance(entry, h5py.Dataset):
        return str(entry.shape)
    return "missing" if entry is None else f"(a {type(entry).__name__.lower()}, not an array)"


def _pixels_problem(pixels: Any) -> str | None:
    """Why ``pixels`` holds neither ``(N, H, W, 3) uint8`` frames nor one encoded image per frame
    (None if it holds either)."""
    if not isinstance(pixels, h5py.Dataset):
        return _describe(pixels)
    if pixels.ndim == 4 and pixels.dtype == np.uint8 and pixels.shape[-1] == 3:
        return None
    # Minari's JPEGs: a (N, bytes) uint8 array when all have one length, else variable-length rows.
    if (pixels.ndim == 2 and pixels.dtype == np.uint8) or (pixels.ndim == 1 and (
            h5py.check_vlen_dtype(pixels.dtype) is not None or pixels.dtype.kind in "OSV")):
        return None
    return (f"{pixels.shape} {pixels.dtype} are neither (N, H, W, 3) uint8 frames nor one encoded image "
            "per frame")


def _read_pixels(pixels: h5py.Dataset, count: int | None = None) -> np.ndarray:
    """The first ``count`` (default all) frames as ``(N, H, W, 3) uint8``: stored as arrays, or
    as one JPEG per frame (Minari's default ``jpeg_encoding=True``)."""
    where = f"{pixels.file.filename}:{pixels.name.lstrip('/')}"
    problem = _pixels_problem(pixels)
    if problem:
        raise DatasetError(f"{where}: frames {problem}. Re-record or re-export the dataset")
    if pixels.ndim == 4:
        return pixels[()] if count is None else pixels[:count]
    from PIL import Image

    encoded = pixels[()] if count is None else pixels[:count]
    if len(encoded) == 0:
        return np.empty((0, 0, 0, 3), np.uint8)
    try:
        return np.stack([np.asarray(Image.open(io.BytesIO(bytes(b))).convert("RGB"), np.uint8) for b in encoded])
    except (OSError, ValueError) as e:
        raise DatasetError(f"{where}: a stored frame is not a readable image ({e}). Re-record or re-export "
                           "the dataset") from None


def _read_metadata(hdf5: Path) -> dict[str, Any]:
    """Minari's ``metadata.json`` next to ``main_data.hdf5`` ({} if there is none)."""
    meta = hdf5.parent / "metadata.json"
    try:
        payload = json.loads(meta.read_text()) if meta.is_file() else {}
    except (ValueError, OSError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _box_bounds(space: Any, dim: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Finite ``(low, high)`` of a serialised Minari ``Box`` of ``dim`` entries, else ``(None, None)``."""
    try:
        space = json.loads(space) if isinstance(space, str) else space
        if space.get("type") != "Box":
            return None, None
        low, high = np.asarray(space["low"], np.float64), np.asarray(space["high"], np.float64)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, None
    if low.shape != (dim,) or high.shape != (dim,) or not (np.isfinite(low).all() and np.isfinite(high).all()):
        return None, None
    return low, high


def open_dataset(path: str | os.PathLike, image_size: int | None = None) -> OfflineDataset:
    """Open a Minari dataset folder or a D4RL v0 kitchen HDF5 file (see the module docstring)."""
    return OfflineDataset(path, image_size=image_size)


def write_minari_dataset(
    out: str | os.PathLike,
    episode_chunks: Iterable[list[Episode]],
    image_size: int | None = None,
    description: str = "",
    dataset_id: str = DEFAULT_DATASET_ID,
    observation_space: Any = None,
    action_space: Any = None,
    env: Any = None,
    algorithm_name: str = "skillgym",
    overwrite: bool = False,
    finalize: Callable[[Path], None] | None = None,
) -> Path:
    """Write episodes as a Minari dataset at ``out`` (opened by ``minari.MinariDataset(out/data)``).

    Args:
        episode_chunks: yields lists of episodes; each chunk is appended and then dropped, so
            memory stays bounded by one chunk.
        image_size: store the episodes' frames (a ``pixels`` entry) if set; ignored when
            ``observation_space`` is given.
        dataset_id: Minari's ``namespace/name``; kitchen recordings use :data:`KITCHEN_DATASET_ID`,
            which is what marks a dataset as Franka Kitchen data (re-renderable states).
        observation_space: ``Box`` -> flat state arrays; ``Dict`` with ``state`` (and ``pixels``).
            Default: ``Dict(state=Box(D,))``, plus ``pixels`` if ``image_size``, D from the episodes.
        action_space: default ``Box(-1, 1, (A,), float32)``, A from the episodes.
        env: the env (id, ``EnvSpec`` or env) the data came from, stored in Minari's metadata.
        overwrite: replace an existing dataset at ``out``; only a folder skillgym wrote (its Minari
            metadata names skillgym as author, or it holds a ``recording.json``) is ever replaced.
        finalize: called with the finished dataset folder before it is moved to ``out`` (to add files
            such as ``recording.json`` that must exist whenever the dataset does).

    Episodes are written to a ``.minari-*`` folder next to ``out`` and moved into place at the end;
    an interrupted write leaves ``out`` as it was (and removes the temporary folder).

    Frames are stored losslessly (no JPEG), because re-rendered states must match them.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    out = Path(out)
    check_replaceable(out, overwrite)
    chunks = iter(episode_chunks)
    first = next((chunk for chunk in chunks if chunk), None)
    if first is None:
        raise DatasetError("no episodes to write")
    sample = first[0]
    if observation_space is None:
        obs_spaces = {"state": gym.spaces.Box(-np.inf, np.inf, (sample.states.shape[1],), np.float64)}
        if image_size:
            shape = sample.frames.shape[1:] if sample.frames is not None else (image_size, image_size, 3)
            obs_spaces[PIXELS_KEY] = gym.spaces.Box(0, 255, shape, np.uint8)
        observation_space = gym.spaces.Dict(obs_spaces)
    if isinstance(observation_space, gym.spaces.Dict) and set(observation_space.keys()) - {"state", PIXELS_KEY}:
        raise DatasetError(f"observation_space entries must be 'state' and optionally '{PIXELS_KEY}', "
                           f"got {list(observation_space.keys())}")
    flat = isinstance(observation_space, gym.spaces.Box)
    with_frames = not flat and PIXELS_KEY in observation_space.spaces
    if action_space is None:
        action_space = gym.spaces.Box(-1.0, 1.0, (sample.actions.shape[1],), np.float32)

    def to_buffer(i: int, ep: Episode) -> EpisodeBuffer:
        ep.validate()
        if isinstance(action_space, gym.spaces.Box) and not (
            np.all(ep.actions >= action_space.low) and np.all(ep.actions <= action_space.high)
        ):
            raise DatasetError(f"episode {i} has actions outside the action space {action_space}; "
                               "pass action_space=... with the bounds the actions live in")
        if with_frames and ep.frames is None:
            raise DatasetError(f"episode {i} has no frames but the dataset stores them")
        obs: Any = ep.states if flat else {"state": ep.states}
        if with_frames:
            obs[PIXELS_KEY] = ep.frames
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
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out.parent)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out.parent)).resolve()
    old_path = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(staging)
    try:
        dataset, count = None, 0
        instructions: list[str | None] = []
        for chunk in itertools.chain([first], chunks):
            buffers = [to_buffer(count + j, ep) for j, ep in enumerate(chunk)]
            instructions += [ep.instruction for ep in chunk]
            count += len(buffers)
            if not buffers:
                continue
            if dataset is None:
                dataset = minari.create_dataset_from_buffers(
                    dataset_id, buffers, env=env, observation_space=observation_space,
                    action_space=action_space, algorithm_name=algorithm_name,
                    author="skillgym", description=description or "skillgym dataset",
                    code_permalink="https://github.com/skillgym/skillgym", jpeg_encoding=False,
                    data_format="hdf5",
                )
            else:
                dataset.update_dataset_from_buffer(buffers)
        namespace, name = dataset_id.rsplit("/", 1)
        finished = staging / namespace / name
        if any(text is not None for text in instructions):
            _write_instructions(_find_hdf5(finished), instructions)
        if finalize is not None:
            finalize(finished)
        check_replaceable(out, overwrite)  # again: something may have appeared at out meanwhile
        if out.exists():
            # Move the old dataset aside inside the staging folder (deleted below), then the new one in.
            os.replace(out, staging / "replaced")
        os.replace(finished, out)
    finally:
        if old_path is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old_path
        shutil.rmtree(staging, ignore_errors=True)
    return out


STAGING_PREFIX = ".minari-"


def _write_instructions(hdf5: Path, instructions: list[str | None]) -> None:
    """Store each episode's instruction as an attribute of its group, in the order the episodes were written."""
    with h5py.File(hdf5, "r+") as f:
        names = sorted((k for k in f.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if len(names) != len(instructions):
            raise DatasetError(f"{hdf5} holds {len(names)} episodes, {len(instructions)} were written")
        for name, text in zip(names, instructions, strict=True):
            if text is not None:
                f[name].attrs[INSTRUCTION_ATTR] = text


def _remove_stale_staging(folder: Path) -> None:
    """Delete staging folders (``.minari-<pid>-*``) left by writers that were killed without cleanup
    (SIGKILL, power loss): their process no longer exists."""
    for staging in folder.glob(f"{STAGING_PREFIX}*-*"):
        pid = staging.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or not staging.is_dir() or staging.is_symlink():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def is_skillgym_dataset(path: Path) -> bool:
    """Whether ``path`` is a dataset folder skillgym wrote (a recording, or Minari metadata with skillgym
    as author)."""
    if outputs.is_marker(path / "recording.json", ("args", "report")):
        return True
    for meta in (path / "data" / "metadata.json", path / "metadata.json"):
        try:
            payload = json.loads(meta.read_text()) if meta.is_file() else None
        except (ValueError, OSError, RecursionError):
            payload = None
        if isinstance(payload, dict):
            author = payload.get("author")
            if author == "skillgym" or (isinstance(author, list) and "skillgym" in author):
                return True
    return False


# What a dataset folder skillgym writes holds: the Minari dataset and the recording's report.
DATASET_LAYOUT = ("data/main_data.hdf5", "data/metadata.json", "recording.json", "libero.json")


def check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse to write a dataset at ``out`` unless nothing is there (or an empty folder), or ``overwrite``
    and it is a dataset skillgym wrote."""
    if not out.exists():
        outputs.check_creatable(out)
        outputs.check_writable(out)  # the dataset is staged beside it
        return
    outputs.check_writable(out)
    if holds_nothing(out):
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists; pick another output folder, or replace a dataset skillgym wrote there "
                              "(skillgym data kitchen / libero --overwrite)")
    if out.is_symlink() or not out.is_dir() or not is_skillgym_dataset(out):
        raise FileExistsError(f"{out} exists and is not a dataset skillgym wrote; it is never replaced, "
                              "pick another output folder")
    outputs.check_whole_folder(out, DATASET_LAYOUT)


def may_record_into(out: Path) -> bool:
    """Whether a recording may be written at ``out`` without replacing anything but skillgym's own: nothing
    is there, an empty folder, or a dataset skillgym wrote."""
    return holds_nothing(out) or is_skillgym_dataset(out)


def holds_nothing(out: Path) -> bool:
    """Whether a dataset written at ``out`` replaces nothing: nothing is there, or an empty folder (not a link
    to one, which would itself be replaced)."""
    return not out.exists() or (outputs.is_empty_folder(out) and not out.is_symlink())


def write_json(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` to ``path`` as indented JSON with sorted keys."""
    Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
