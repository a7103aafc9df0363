"""Record scripted kitchen demonstrations into a Minari dataset.

Each episode chains 4 subtasks in a random order (never the evaluation order), with per-episode
waypoint jitter and action noise (recorded as executed, or with ``clean_labels`` the controller's
action without the noise: DART). Every step stores the noisy 59-d state the env observes, the
action, the reward, the frame rendered exactly as ``KitchenTaskEnv(pixels=True)`` renders it,
the exact simulator state (for re-rendering) and the subtask being performed (ground truth for
judging skill extraction). Failed subtasks are never kept silently: the episode is cut after the
last completed subtask, and an episode with none is dropped. The yield is reported.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from queue import Empty, Full
from typing import Literal

import numpy as np
from tqdm import tqdm

from skillgym.data.dataset import (
    KITCHEN_DATASET_ID,
    Episode,
    check_replaceable,
    write_json,
    write_minari_dataset,
)
from skillgym.tasks.kitchen import ALL_TASKS, DEFAULT_TASKS

MAX_DEMO_STEPS = 600  # safety cap; scripted chains take ~200-350 steps


Subtask = Literal["bottom burner", "top burner", "light switch", "slide cabinet", "hinge cabinet", "microwave",
                  "kettle"]
CHUNK_SIZE = 10  # episodes written per Minari append; bounds memory
WAYPOINT_JITTER = 0.01  # per-episode jitter of the scripted waypoints
BUNDLED_SUBTASKS = tuple(task for task in ALL_TASKS if task != "hinge cabinet")


@dataclass
class RecordArgs:
    """Options of ``skillgym data kitchen``; the defaults are the recipe of the bundled state library."""

    out: Path
    """dataset folder to write (a Minari dataset plus recording.json)"""
    episodes: int = 200
    """scripted episodes to record"""
    seed: int = 0
    """episode i depends only on (seed, i)"""
    first_episode: int = 0
    """index of the first episode: recordings of consecutive ranges join with `skillgym data merge`"""
    image_size: int = 128
    """side of the stored RGB frames"""
    workers: int = 2
    """recording processes"""
    action_noise: float = 0.1
    """std of the Gaussian noise added to every executed arm action"""
    clean_labels: bool = True
    """DART-style labels: execute the noisy action, store the controller's action without the noise"""
    eval_prefix_fraction: float = 1.0
    """fraction of episodes that start with 1-3 subtasks of the evaluation order (never all four)"""
    eval_windows_fraction: float = 0.5
    """fraction of those runs that may start anywhere in the evaluation order, not only at its beginning"""
    subtasks: tuple[Subtask, ...] = BUNDLED_SUBTASKS
    """draw each episode's 4 subtasks from these (default: the six of the bundled library's data, all but
    the hinge cabinet; name all seven for data that covers every subtask)"""
    overwrite: bool = False
    """replace an existing recording at --out (only a folder skillgym recorded)"""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 8 <= self.image_size <= 512:
            raise ValueError(f"image_size must be in [8, 512], got {self.image_size}")
        for name in ("seed", "first_episode"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("eval_prefix_fraction", "eval_windows_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.action_noise < math.inf:  # written this way round, NaN fails it too
            raise ValueError(f"action_noise must be a finite number >= 0, got {self.action_noise}")
        self.subtasks = tuple(self.subtasks)
        unknown = [t for t in self.subtasks if t not in ALL_TASKS]
        if unknown or len(set(self.subtasks)) != len(self.subtasks) or len(self.subtasks) < 4:
            raise ValueError(f"subtasks must name at least 4 distinct subtasks of {', '.join(ALL_TASKS)}; "
                             f"got {list(self.subtasks)}")
        if self.eval_prefix_fraction > 0:
            # Episodes then start with runs of the evaluation order: its first three subtasks, or all four
            # when runs may start anywhere in it.
            needed = DEFAULT_TASKS if self.eval_windows_fraction > 0 else DEFAULT_TASKS[:3]
            missing = [t for t in needed if t not in self.subtasks]
            if missing:
                raise ValueError(f"subtasks lack {', '.join(missing)}, which episodes starting with a run of the "
                                 f"evaluation order ({' -> '.join(DEFAULT_TASKS)}) need; add them, or pass "
                                 "--eval-prefix-fraction 0 to draw every chain from --subtasks alone")
            if set(self.subtasks) == set(DEFAULT_TASKS):
                raise ValueError("subtasks are the evaluation order's four alone: a chain that starts with three of "
                                 "them in order could only be the evaluation order itself, which the data never "
                                 "holds; add a subtask, or pass --eval-prefix-fraction 0")


def is_window_episode(index: int, fraction: float) -> bool:
    """Whether episode ``index`` draws an evaluation-order window rather than a prefix.

    Deterministic in the index (no randomness drawn), so that a fraction of 0 or 1 records exactly
    the episodes of a prefix-only or window-only recording, and any fraction spreads evenly.
    """
    return int((index + 1) * fraction) > int(index * fraction)


@dataclass
class EpisodeOutcome:
    """What became of one scripted episode: its subtask order, what it completed, the steps kept."""

    index: int
    order: list[str]
    completed: list[str]
    failed: list[str]
    raw_steps: int  # steps the controller ran
    kept_steps: int  # steps stored (0 = dropped)


@dataclass
class RecordReport:
    """The yield of a recording (``recording.json``): episodes kept, complete, dropped, trimmed, per-subtask success."""

    attempted: int = 0
    kept: int = 0
    complete: int = 0  # all four subtasks done
    complete_within_280: int = 0
    dropped: int = 0
    trimmed: int = 0
    total_steps: int = 0
    subtask_failures: dict[str, int] = field(default_factory=dict)
    subtask_attempts: dict[str, int] = field(default_factory=dict)

    @property
    def subtask_success(self) -> dict[str, float]:
        """Fraction of the attempts at each subtask that succeeded."""
        return {task: 1.0 - self.subtask_failures.get(task, 0) / n for task, n in self.subtask_attempts.items()}

    def count(self, outcome: dict) -> None:
        """Add one episode's outcome (an ``EpisodeOutcome`` as a dict) to the report."""
        self.attempted += 1
        if outcome["kept_steps"] == 0:
            self.dropped += 1
        else:
            self.kept += 1
            self.total_steps += outcome["kept_steps"]
            if outcome["failed"]:
                self.trimmed += 1
            else:
                self.complete += 1
                self.complete_within_280 += int(outcome["raw_steps"] <= 280)
        for task in outcome["order"]:  # the controller attempts every subtask of the order
            self.subtask_attempts[task] = self.subtask_attempts.get(task, 0) + 1
            if task in outcome["failed"]:
                self.subtask_failures[task] = self.subtask_failures.get(task, 0) + 1

    def summary(self) -> str:
        """One line for the terminal: episodes kept, complete and per-subtask success (succeeded/attempted)."""
        rates = self.subtask_success
        success = ", ".join(f"{task} {n - self.subtask_failures.get(task, 0)}/{n} ({rates[task]:.0%})"
                            for task, n in sorted(self.subtask_attempts.items()))
        return (
            f"recorded {self.kept}/{self.attempted} episodes ({self.total_steps} steps): "
            f"{self.complete} complete all 4 subtasks ({self.complete_within_280} within 280 steps), "
            f"{self.trimmed} trimmed after a failed subtask, {self.dropped} dropped; "
            f"success per attempted subtask: {success or 'none'}"
        )


def recorded_args(args: dict) -> dict:
    """A recording.json's ``args`` in today's options: those it predates at the defaults that
    reproduce it, options that no longer exist left out."""
    args = {**PREDATED, **{k: v for k, v in args.items() if v is not None or k != "subtasks"}}
    if "eval_windows" in args:  # windows were all or none of the episodes then
        args["eval_windows_fraction"] = 1.0 if args.pop("eval_windows") else 0.0
    known = {f.name for f in fields(RecordArgs)}
    return {**{f.name: f.default for f in fields(RecordArgs) if f.default is not MISSING},
            **{k: v for k, v in args.items() if k in known}}


# What a recording made before an option existed did: the option's value that reproduces it.
PREDATED = {"first_episode": 0, "clean_labels": False, "eval_prefix_fraction": 0.0, "eval_windows_fraction": 0.0,
            "subtasks": BUNDLED_SUBTASKS}


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """Independent, reproducible randomness per episode, whatever worker records it."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def record_episode(env, index: int, args: RecordArgs) -> tuple[Episode | None, EpisodeOutcome]:
    """Run the scripted controller for one episode in ``env`` (a pixel ``KitchenTaskEnv``)."""
    from skillgym.data.scripted import ScriptedKitchenController, eval_prefix, sample_subtask_order

    rng = episode_rng(args.seed, index)
    windows = is_window_episode(index, args.eval_windows_fraction)
    prefix = eval_prefix(rng, args.eval_prefix_fraction, windows=windows)
    order = sample_subtask_order(rng, pool=args.subtasks, prefix=prefix)
    env.set_tasks(order)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    controller = ScriptedKitchenController(
        env, order, rng, action_noise=args.action_noise, waypoint_jitter=WAYPOINT_JITTER,
    )
    states, frames, sims = [obs["state"]], [obs["pixels"]], [env.get_sim_state()]
    actions, rewards, labels = [], [], []
    done_at: dict[str, int] = {}  # subtask -> number of actions when it completed
    while not controller.finished and len(actions) < MAX_DEMO_STEPS:
        current = controller.current_subtask
        action = controller.act()
        obs, reward, _, _, info = env.step(action)
        actions.append(controller.clean_action if args.clean_labels else action)
        rewards.append(reward)
        labels.append(ALL_TASKS.index(current) if current is not None else -1)
        states.append(obs["state"])
        frames.append(obs["pixels"])
        sims.append(env.get_sim_state())
        for task in info["completed_tasks"]:
            done_at.setdefault(task, len(actions))
    completed = [t for t in order if t in done_at]
    failed = [t for t in order if t not in done_at]
    # Keep the prefix of subtasks completed in order; cut right after the last of them.
    prefix = []
    for task in order:
        if task not in done_at:
            break
        prefix.append(task)
    keep = done_at[prefix[-1]] if prefix else 0
    if len(prefix) == len(order):
        keep = len(actions)  # a full chain keeps its short retreat after the last subtask
    outcome = EpisodeOutcome(index, order, completed, failed, len(actions), keep)
    if keep == 0:
        return None, outcome
    terminations = np.zeros(keep, bool)
    truncations = np.zeros(keep, bool)
    if len(prefix) == len(order):
        terminations[-1] = True
    else:
        truncations[-1] = True
    episode = Episode(
        states=np.asarray(states[: keep + 1], np.float64),
        actions=np.asarray(actions[:keep], np.float32),
        rewards=np.asarray(rewards[:keep], np.float32),
        terminations=terminations,
        truncations=truncations,
        frames=np.asarray(frames[: keep + 1], np.uint8),
        subtasks=np.asarray(labels[:keep], np.int16),
        sim_states=np.asarray(sims[: keep + 1], np.float64),
    )
    return episode, outcome


def _exit_with_parent(parent, poll_seconds: float = 1.0) -> None:
    """Watchdog thread of a worker: end the process as soon as the parent is gone (killed, even with
    SIGKILL, which runs no cleanup in the parent), instead of recording the rest of its shard."""
    while parent.is_alive():
        time.sleep(poll_seconds)
    os._exit(1)


def _worker(args: RecordArgs, indices: list[int], queue) -> None:
    import torch

    torch.set_num_threads(1)
    from skillgym.tasks.kitchen import KitchenTaskEnv

    parent = mp.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    env = KitchenTaskEnv(pixels=True, image_size=args.image_size, max_episode_steps=10**6)
    for index in indices:
        item = record_episode(env, index, args)
        while True:  # a killed parent never drains the queue: notice it instead of blocking forever
            try:
                queue.put(item, timeout=5)
                break
            except Full:
                if parent is not None and not parent.is_alive():
                    return
    env.close()


def _episodes_in_order(args: RecordArgs) -> Iterator[tuple[Episode | None, EpisodeOutcome]]:
    """Yield episodes in index order, recorded by ``args.workers`` processes."""
    if args.workers <= 1:
        from skillgym.tasks.kitchen import KitchenTaskEnv

        env = KitchenTaskEnv(pixels=True, image_size=args.image_size, max_episode_steps=10**6)
        for index in range(args.first_episode, args.first_episode + args.episodes):
            yield record_episode(env, index, args)
        env.close()
        return
    ctx = mp.get_context("spawn")  # each process owns its own EGL context
    queue = ctx.Queue(maxsize=4 * args.workers)
    first, end = args.first_episode, args.first_episode + args.episodes
    shards = [list(range(first + w, end, args.workers)) for w in range(args.workers)]
    procs = [ctx.Process(target=_worker, args=(args, s, queue), daemon=True) for s in shards if s]
    for p in procs:
        p.start()
    pending: dict[int, tuple] = {}
    finished = False
    try:
        for next_index in range(first, end):
            while next_index not in pending:
                try:
                    item = queue.get(timeout=10)
                except Empty:
                    # No time limit on an episode (a loaded machine may take long): only a dead worker stops us.
                    dead = [p for p in procs if p.exitcode not in (None, 0)]
                    if dead or all(p.exitcode == 0 for p in procs):
                        raise RuntimeError(f"a recording process stopped before episode {next_index} arrived "
                                           f"(exit codes {[p.exitcode for p in procs]}); --out is left as it was") from None
                    continue
                pending[item[1].index] = item
            yield pending.pop(next_index)
        finished = True
    finally:
        for p in procs:
            if finished:
                p.join(timeout=5)
            if p.is_alive():  # interrupted (or a worker hangs): stop the workers now
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()


def record_dataset(args: RecordArgs) -> RecordReport:
    """Record ``args.episodes`` demonstrations to ``args.out``; returns the yield report."""
    check_replaceable(args.out, args.overwrite)  # before minutes of recording, not only when writing
    report = RecordReport()
    outcomes: list[dict] = []
    progress = tqdm(total=args.episodes, desc="recording demos", unit="ep")

    def chunks() -> Iterator[list[Episode]]:
        chunk: list[Episode] = []
        for episode, outcome in _episodes_in_order(args):
            progress.update(1)
            outcomes.append(asdict(outcome))
            report.count(outcomes[-1])
            if episode is not None:
                chunk.append(episode)
            progress.set_postfix(kept=report.kept, complete=report.complete)
            if len(chunk) >= CHUNK_SIZE:
                yield chunk
                chunk = []
        yield chunk

    description = (
        f"skillgym scripted Franka Kitchen demonstrations: {args.episodes} episodes of 4 subtasks "
        f"in random orders (never microwave-kettle-bottom burner-light switch), seed {args.seed}, "
        f"{args.image_size}x{args.image_size} frames. infos/subtask = index into {list(ALL_TASKS)}."
    )
    def write_recording(folder: Path) -> None:
        write_json(folder / "recording.json", {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
            "report": asdict(report),
            "subtask_names": list(ALL_TASKS),
            "episodes": outcomes,
        })

    # SIGTERM (kill, a job scheduler) runs the same cleanup as Ctrl-C: workers stopped, staging removed.
    with _sigterm_as_interrupt():
        write_minari_dataset(args.out, chunks(), args.image_size, description=description,
                             dataset_id=KITCHEN_DATASET_ID, overwrite=args.overwrite, finalize=write_recording)
    progress.close()
    return report


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
