"""``skillgym data libero``: LIBERO datasets, recorded by a scripted controller or converted from LIBERO's files.

Both write skillgym's dataset format (a Minari dataset, see :mod:`skillgym.data.dataset`): the
observation is ``state`` (the 15-d proprioception of :class:`~skillgym.tasks.libero.LiberoTaskEnv`)
and ``pixels`` (the agentview camera, upright, 84x84), the action LIBERO's 7-d OSC_POSE command,
and every episode carries its task's language instruction (``Episode.instruction``).

- **Scripted** (the default): pick-and-place on the ``libero_spatial`` tasks (pick the black bowl,
  place it on the plate; :mod:`skillgym.data.libero_scripted`), ``episodes`` per task, only
  successful episodes kept; ``libero.json`` reports the success rate of every task. Needs the
  LIBERO environment (docs/guides/libero.md).
- **Converted** (``demos=``): LIBERO's demonstration files (``<task>_demo.hdf5``, robomimic's layout:
  ``data/demo_<i>/{actions, obs/{agentview_rgb, joint_states, ee_pos, ee_ori, gripper_states}}``,
  the instruction in ``data.attrs["problem_info"]``). Needs only h5py.

Example:
    >>> record_libero(LiberoDataArgs(out="data/libero-spatial", episodes=10))  # doctest: +SKIP
    >>> convert_libero_demos(["libero_90/KITCHEN_SCENE1_open_the_bottom_drawer_of_the_cabinet_demo.hdf5"],
    ...                      "data/libero-90")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from skillgym.data.dataset import DatasetError, Episode, write_json, write_minari_dataset

LIBERO_DATASET_ID = "skillgym/libero-v0"
LIBERO_SCRIPTED_DATASET_ID = "skillgym/libero-scripted-v0"
IMAGE_SIZE = 84  # the paper's LIBERO frames
SCRIPTED_SUITE = "libero_spatial"
ACTION_NOISE = 0.05  # std of the noise on the executed arm actions; the stored labels are noise-free
REPORT_FILE = "libero.json"


@dataclass
class LiberoDataArgs:
    """Options of ``skillgym data libero``: the defaults record scripted demonstrations of every libero_spatial task."""

    out: Path
    """dataset folder to write (a Minari dataset plus libero.json)"""
    demos: tuple[str, ...] | None = None
    """convert these LIBERO demonstration files (robomimic-layout HDF5) instead of recording scripted episodes"""
    tasks: tuple[int, ...] | None = None
    """libero_spatial tasks to record, by index (default: all ten)"""
    episodes: int = 10
    """scripted episodes per task"""
    seed: int = 0
    """scripted episode i of task t depends only on (seed, t, i)"""
    object_positions: bool = False
    """record the state with the objects' positions appended (LiberoTaskEnv's object_positions), for a state
    library that sees where things are; scripted recordings only"""
    frames: bool = True
    """store the agentview frames; --no-frames records without rendering (about 2 s an episode instead of
    a minute) for state libraries with skills from the state encoder; scripted recordings only"""
    overwrite: bool = False
    """replace an existing dataset at --out (only a folder skillgym wrote)"""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.tasks is not None:
            self.tasks = tuple(int(t) for t in self.tasks)
            if not self.tasks or len(set(self.tasks)) != len(self.tasks) or not all(0 <= t < 10 for t in self.tasks):
                raise ValueError(f"tasks must be distinct libero_spatial task indices in [0, 10), got {self.tasks}")
        if self.demos is not None:
            self.demos = tuple(str(d) for d in self.demos)
            missing = [d for d in self.demos if not Path(d).is_file()]
            if missing:
                raise FileNotFoundError(f"no LIBERO demonstration file at {', '.join(missing)}")
            if self.object_positions:
                raise ValueError("object_positions applies to scripted recordings: LIBERO's files store the "
                                 "proprioception per step, not the objects' positions")
            if not self.frames:
                raise ValueError("--no-frames applies to scripted recordings; LIBERO's files are converted with "
                                 "their frames")
            scripted = [f"--{name}" for name in ("tasks", "episodes", "seed")
                        if getattr(self, name) != getattr(LiberoDataArgs, name)]
            if scripted:
                raise ValueError(f"{', '.join(scripted)} apply to scripted recordings; --demos converts every "
                                 "demonstration in its files")


@dataclass
class LiberoReport:
    """What a LIBERO dataset holds: episodes kept, and for a scripted recording the success of every task."""

    episodes: int = 0
    steps: int = 0
    attempted: dict[str, int] = field(default_factory=dict)
    succeeded: dict[str, int] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)

    def success_rate(self) -> dict[str, float]:
        """Fraction of the attempts at each task that succeeded."""
        return {task: self.succeeded.get(task, 0) / n for task, n in self.attempted.items()}

    def summary(self) -> str:
        """One line per task (succeeded/attempted) under a line with the totals."""
        lines = [f"{self.episodes} episodes ({self.steps} steps) from {len(self.instructions)} tasks"]
        for task, n in self.attempted.items():
            lines.append(f"  {task}: {self.succeeded.get(task, 0)}/{n} succeeded "
                         f"({self.succeeded.get(task, 0) / n:.0%})")
        return "\n".join(lines)


# -- converting LIBERO's demonstration files ------------------------------------------------------
def instruction_of(path: str | os.PathLike, f: h5py.File) -> str:
    """A LIBERO file's instruction: ``problem_info``'s ``language_instruction``, else the words of its name."""
    data = f["data"]
    info = data.attrs.get("problem_info")
    if info is not None:
        try:
            text = json.loads(info.decode() if isinstance(info, bytes) else str(info)).get("language_instruction")
        except (ValueError, AttributeError):
            text = None
        if isinstance(text, str) and text.strip():
            return " ".join(text.split())
    stem = re.sub(r"_demo$", "", Path(path).stem)
    stem = re.sub(r"^.*SCENE\d+_", "", stem)  # LIBERO-90/10 names start with the scene
    return " ".join(stem.split("_"))


def _proprio(obs: h5py.Group, where: str) -> np.ndarray:
    """``joint_states ‖ ee_pos ‖ ee_ori ‖ gripper_states`` (N, 15), as the LIBERO task env observes."""
    if "ee_pos" in obs and "ee_ori" in obs:
        ee = [obs["ee_pos"][()], obs["ee_ori"][()]]
    elif "ee_states" in obs:
        ee = [obs["ee_states"][()]]
    else:
        raise DatasetError(f"{where}/obs has no ee_pos/ee_ori or ee_states (keys: {sorted(obs)})")
    missing = [k for k in ("joint_states", "gripper_states") if k not in obs]
    if missing:
        raise DatasetError(f"{where}/obs lacks {missing} (keys: {sorted(obs)})")
    state = np.concatenate([obs["joint_states"][()], *ee, obs["gripper_states"][()]], axis=1).astype(np.float64)
    if state.shape[1] != 15:
        raise DatasetError(f"{where}/obs: proprioception has {state.shape[1]} dims, expected 15 "
                           "(7 joints, 3 + 3 end effector, 2 gripper)")
    return state


def _frames(images: np.ndarray, opengl: bool) -> np.ndarray:
    from PIL import Image

    images = np.asarray(images, np.uint8)
    if opengl:
        images = images[:, ::-1]
    if images.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        images = np.stack([np.asarray(Image.fromarray(im).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))
                           for im in images])
    return np.ascontiguousarray(images)


def read_libero_demos(path: str | os.PathLike) -> Iterator[Episode]:
    """The episodes of one LIBERO demonstration file, each with the file's instruction.

    LIBERO's files store, at index j, the action j and the observation *after* it (their
    ``create_dataset.py`` steps the env and then records): observation j is what action j+1 was
    taken on, so an episode of N stored steps has N observations and the N-1 actions 1..N-1. A file
    with robomimic's ``next_obs`` group stores the observation before each action instead; its
    final observation is the last ``next_obs``. Frames are turned upright unless the file says its
    images follow OpenCV's convention, and resized to 84x84.
    """
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"cannot read {path} as a LIBERO demonstration file (HDF5): {e}") from None
    with f:
        if "data" not in f:
            raise DatasetError(f"{path} is not a LIBERO demonstration file (no 'data' group)")
        instruction = instruction_of(path, f)
        convention = f["data"].attrs.get("macros_image_convention", "opengl")
        opengl = (convention.decode() if isinstance(convention, bytes) else str(convention)) != "opencv"
        names = sorted((k for k in f["data"] if re.fullmatch(r"demo_\d+", k)), key=lambda k: int(k[5:]))
        if not names:
            raise DatasetError(f"{path} holds no demonstrations (no data/demo_<i> groups)")
        for name in names:
            demo, where = f["data"][name], f"{path}:data/{name}"
            if "actions" not in demo or "obs" not in demo or "agentview_rgb" not in demo["obs"]:
                raise DatasetError(f"{where} lacks actions, obs or obs/agentview_rgb")
            actions = np.asarray(demo["actions"][()], np.float32)
            states, frames = _proprio(demo["obs"], where), demo["obs"]["agentview_rgb"][()]
            n = len(actions)
            rewards = np.asarray(demo["rewards"][()], np.float32) if "rewards" in demo else np.zeros(n, np.float32)
            dones = np.asarray(demo["dones"][()], bool) if "dones" in demo else np.zeros(n, bool)
            if "next_obs" in demo:
                after = demo["next_obs"]
                states = np.concatenate([states, _proprio(after, where + "/next_obs")[-1:]])
                frames = np.concatenate([frames, after["agentview_rgb"][-1:]])
            else:
                actions, rewards, dones = actions[1:], rewards[1:], dones[1:]
            if len(states) != len(actions) + 1 or len(frames) != len(states) or len(actions) < 1:
                raise DatasetError(f"{where}: {len(actions)} actions do not fit {len(states)} observations")
            terminations = dones.copy()
            terminations[-1] |= rewards[-1] > 0  # LIBERO marks success with the last step's reward
            yield Episode(states=states, actions=np.clip(actions, -1.0, 1.0), rewards=rewards,
                          terminations=terminations, truncations=(np.arange(len(actions)) == len(actions) - 1)
                          & ~terminations, frames=_frames(frames, opengl), instruction=instruction)


def convert_libero_demos(files: Sequence[str | os.PathLike], out: str | os.PathLike,
                         overwrite: bool = False) -> LiberoReport:
    """Write the episodes of LIBERO demonstration files (in order) as one dataset at ``out``."""
    out = Path(out)
    report = LiberoReport()

    def chunks() -> Iterator[list[Episode]]:
        for path in files:
            episodes = list(read_libero_demos(path))
            task = re.sub(r"_demo$", "", Path(path).stem)
            report.instructions[task] = episodes[0].instruction
            report.episodes += len(episodes)
            report.steps += sum(ep.num_steps for ep in episodes)
            yield episodes

    def finalize(folder: Path) -> None:
        write_json(folder / REPORT_FILE, {"source": [str(Path(p).resolve()) for p in files], **asdict(report)})

    write_minari_dataset(out, chunks(), IMAGE_SIZE, description=f"LIBERO demonstrations from {len(files)} files, "
                         "84x84 upright agentview frames, 15-d proprioception, one instruction per episode.",
                         dataset_id=LIBERO_DATASET_ID, overwrite=overwrite, finalize=finalize)
    return report


# -- recording scripted demonstrations ------------------------------------------------------------
def record_libero_episode(env: Any, task: int, index: int, seed: int) -> tuple[Episode | None, bool]:
    """One scripted episode of ``task`` in ``env`` (a ``LiberoTaskEnv`` of libero_spatial); the episode
    (None if it failed) and whether it succeeded. Everything random comes from ``(seed, task, index)``."""
    from skillgym.data.libero_scripted import PHASES, ScriptedLiberoController

    rng = np.random.default_rng(np.random.SeedSequence([seed, task, index]))
    env.set_task(task)
    obs, info = env.reset(seed=int(rng.integers(2**31)))
    controller = ScriptedLiberoController(env, rng, action_noise=ACTION_NOISE)

    def frame(obs: dict[str, np.ndarray]) -> np.ndarray | None:
        if not env.pixels:
            return None
        return obs["pixels"][-1] if env.frame_stack > 1 else obs["pixels"]

    states, frames, sims = [obs["state"]], [frame(obs)], [env.get_sim_state()]
    actions, rewards, phases = [], [], []
    terminated = truncated = False
    while not (terminated or truncated or controller.finished):
        action = controller.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(controller.clean_action.astype(np.float32))
        rewards.append(reward)
        phases.append(PHASES.index(controller.phase))
        states.append(obs["state"])
        frames.append(frame(obs))
        sims.append(env.get_sim_state())
    if not info["success"]:
        return None, False
    t = len(actions)
    return Episode(
        states=np.asarray(states, np.float64), actions=np.clip(np.asarray(actions), -1.0, 1.0),
        rewards=np.asarray(rewards, np.float32), terminations=np.arange(t) == t - 1, truncations=np.zeros(t, bool),
        frames=np.asarray(frames, np.uint8) if env.pixels else None, subtasks=np.asarray(phases, np.int16),
        sim_states=np.asarray(sims),
        instruction=info["instruction"],
    ), True


def record_libero(args: LiberoDataArgs) -> LiberoReport:
    """Record ``args.episodes`` scripted episodes of each libero_spatial task in ``args.tasks`` to ``args.out``."""
    from tqdm import tqdm

    from skillgym.data.libero_scripted import PHASES
    from skillgym.tasks.libero import LiberoTaskEnv, setup_libero

    setup_libero()  # a missing LIBERO or missing assets are reported before anything starts
    tasks = args.tasks if args.tasks is not None else tuple(range(10))
    report = LiberoReport()
    progress = tqdm(total=len(tasks) * args.episodes, desc="recording LIBERO demos", unit="ep")

    def chunks() -> Iterator[list[Episode]]:
        for task in tasks:
            # One simulation per task, closed before the next: ten kept at once would hold ten scenes.
            env = LiberoTaskEnv(SCRIPTED_SUITE, task=task, image_size=IMAGE_SIZE, frame_stack=1, pixels=args.frames,
                                embed_instruction=False, object_positions=args.object_positions)
            name = env.tasks[task]
            kept = []
            for index in range(args.episodes):
                episode, success = record_libero_episode(env, task, index, args.seed)
                report.attempted[name] = report.attempted.get(name, 0) + 1
                report.succeeded[name] = report.succeeded.get(name, 0) + int(success)
                if episode is not None:
                    kept.append(episode)
                    report.instructions[name] = episode.instruction
                    report.episodes += 1
                    report.steps += episode.num_steps
                progress.update(1)
                progress.set_postfix(task=task, succeeded=report.succeeded[name])
            env.close()
            yield kept

    def finalize(folder: Path) -> None:
        write_json(folder / REPORT_FILE, {"args": {k: str(v) if isinstance(v, Path) else v for k, v in
                                                   asdict(args).items()},
                                          "suite": SCRIPTED_SUITE, "subtask_names": list(PHASES),
                                          "success_rate": report.success_rate(), **asdict(report)})

    try:
        write_minari_dataset(args.out, chunks(), IMAGE_SIZE if args.frames else None, description=(
            f"skillgym scripted LIBERO demonstrations: pick the black bowl and place it on the plate in the "
            f"{SCRIPTED_SUITE} tasks {list(tasks)}, {args.episodes} attempts per task, seed {args.seed}, successful "
            f"episodes only; infos/subtask = index into {list(PHASES)}"
            + ("; state = proprioception followed by the objects' positions" if args.object_positions else "")
            + ("" if args.frames else "; no frames") + "."),
            dataset_id=LIBERO_SCRIPTED_DATASET_ID, overwrite=args.overwrite, finalize=finalize)
    except DatasetError:
        if report.episodes or not report.attempted:
            raise
        tried = ", ".join(f"{task} 0/{n}" for task, n in report.attempted.items())
        raise DatasetError(f"no attempt succeeded ({tried}), so there is no dataset to write; try more --episodes "
                           "or another --seed") from None
    finally:
        progress.close()
    return report
