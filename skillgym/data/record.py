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

import multiprocessing as mp
from collections import Counter
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from queue import Full

import numpy as np
from tqdm import tqdm

from skillgym.data.dataset import Episode, write_json, write_minari_dataset
from skillgym.tasks.kitchen import ALL_TASKS

MAX_DEMO_STEPS = 600  # safety cap; scripted chains take ~200-350 steps


@dataclass
class RecordArgs:
    out: Path
    episodes: int = 600
    seed: int = 0
    # Index of the first episode. Episode i depends only on (seed, i), so recordings of
    # consecutive index ranges, merged with `skillgym data merge`, equal one long recording.
    first_episode: int = 0
    image_size: int = 128
    workers: int = 2
    chunk_size: int = 10  # episodes written per Minari append; bounds memory
    action_noise: float = 0.05
    # DART-style labels: execute the noisy action, store the controller's action without the noise,
    # so the data shows how to return to the plan from where the noise pushed the arm.
    clean_labels: bool = False
    waypoint_jitter: float = 0.01
    # End each subtask this far (joint units) inside the env's success threshold, not the moment
    # it counts (ScriptedKitchenController.follow_through); 0 keeps the older recordings' behaviour.
    follow_through: float = 0.0
    subtasks: tuple[str, ...] | None = None  # pool to draw the 4 subtasks from (default: all but hinge)
    include_hinge: bool = False
    # Fraction of episodes that start with 1-3 subtasks of the evaluation order (D4RL
    # kitchen-mixed-like structure; the full evaluation order is never recorded). 0 = uniform.
    eval_prefix_fraction: float = 0.0
    eval_windows: bool = False  # those runs may start anywhere in the evaluation order (eval_prefix)


@dataclass
class EpisodeOutcome:
    index: int
    order: list[str]
    completed: list[str]
    failed: list[str]
    raw_steps: int  # steps the controller ran
    kept_steps: int  # steps stored (0 = dropped)


@dataclass
class RecordReport:
    attempted: int = 0
    kept: int = 0
    complete: int = 0  # all four subtasks done
    complete_within_280: int = 0
    dropped: int = 0
    trimmed: int = 0
    total_steps: int = 0
    subtask_failures: dict[str, int] = field(default_factory=dict)
    eval_task_ceiling: float = 0.0  # see eval_task_ceiling()
    eval_transitions: dict[str, int] = field(default_factory=dict)  # see eval_transitions()

    def summary(self) -> str:
        return (
            f"recorded {self.kept}/{self.attempted} episodes ({self.total_steps} steps): "
            f"{self.complete} complete all 4 subtasks ({self.complete_within_280} within 280 steps), "
            f"{self.trimmed} trimmed after a failed subtask, {self.dropped} dropped; "
            f"failures by subtask: {self.subtask_failures or 'none'}; replayed, the kept episodes would "
            f"score {self.eval_task_ceiling:.2f} subtasks of the evaluation task; episodes showing its "
            f"transitions: {self.eval_transitions or 'none'}"
        )


def eval_task_ceiling(outcomes: list[dict]) -> float:
    """Mean evaluation-task score of the kept episodes if they were replayed perfectly.

    An ordered kitchen task counts subtask i once subtasks 0..i are all done, whenever each was
    done, so an episode scores the longest prefix of the evaluation order inside the subtasks it
    kept. This bounds what priors trained on the data can score without RL.
    """
    from skillgym.tasks.kitchen import DEFAULT_TASKS

    scores = []
    for outcome in outcomes:
        kept = set(_kept_subtasks(outcome))
        if not kept:
            continue  # dropped episode
        score = 0
        while score < len(DEFAULT_TASKS) and DEFAULT_TASKS[score] in kept:
            score += 1
        scores.append(score)
    return float(np.mean(scores)) if scores else 0.0


def _kept_subtasks(outcome: dict) -> list[str]:
    """The subtasks an episode's stored data show, in order: recording stops at the first failure."""
    kept = []
    for task in outcome["order"]:
        if task not in outcome["completed"]:
            break
        kept.append(task)
    return kept


def recorded_args(args: dict) -> dict:
    """A recording.json's ``args`` with the options it predates filled in at their defaults (the
    behaviour it was recorded with)."""
    defaults = {f.name: f.default for f in fields(RecordArgs) if f.default is not MISSING}
    return {**defaults, **args}


def eval_transitions(outcomes: list[dict]) -> dict[str, int]:
    """How many kept episodes show each step of the evaluation order (``"kettle -> bottom burner"``)
    as consecutive subtasks: a policy over skills learnt from them has seen those hand-overs."""
    from skillgym.tasks.kitchen import DEFAULT_TASKS

    pairs = list(zip(DEFAULT_TASKS[:-1], DEFAULT_TASKS[1:], strict=True))
    counts = dict.fromkeys((f"{a} -> {b}" for a, b in pairs), 0)
    for outcome in outcomes:
        kept = _kept_subtasks(outcome)
        shown = set(zip(kept[:-1], kept[1:], strict=True))
        for a, b in pairs:
            counts[f"{a} -> {b}"] += (a, b) in shown
    return counts


def episode_rng(seed: int, index: int) -> np.random.Generator:
    """Independent, reproducible randomness per episode, whatever worker records it."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def record_episode(env, index: int, args: RecordArgs) -> tuple[Episode | None, EpisodeOutcome]:
    """Run the scripted controller for one episode in ``env`` (a pixel ``KitchenTaskEnv``)."""
    from skillgym.data.scripted import ScriptedKitchenController, eval_prefix, sample_subtask_order

    rng = episode_rng(args.seed, index)
    prefix = eval_prefix(rng, args.eval_prefix_fraction, windows=args.eval_windows)
    order = sample_subtask_order(rng, include_hinge=args.include_hinge, pool=args.subtasks, prefix=prefix)
    env.set_tasks(order)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    controller = ScriptedKitchenController(
        env, order, rng, action_noise=args.action_noise, waypoint_jitter=args.waypoint_jitter,
        follow_through=args.follow_through,
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


def _worker(args: RecordArgs, indices: list[int], queue) -> None:
    import torch

    torch.set_num_threads(1)
    from skillgym.tasks.kitchen import KitchenTaskEnv

    env = KitchenTaskEnv(pixels=True, image_size=args.image_size, max_episode_steps=10**6)
    parent = mp.parent_process()
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
    try:
        for next_index in range(first, end):
            while next_index not in pending:
                item = queue.get(timeout=1800)
                pending[item[1].index] = item
            yield pending.pop(next_index)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


def record_dataset(args: RecordArgs) -> RecordReport:
    """Record ``args.episodes`` demonstrations to ``args.out``; returns the yield report."""
    if not 0.0 <= args.eval_prefix_fraction <= 1.0:
        raise ValueError(f"eval_prefix_fraction must be in [0, 1], got {args.eval_prefix_fraction}")
    report = RecordReport()
    failures: Counter[str] = Counter()
    outcomes: list[dict] = []
    progress = tqdm(total=args.episodes, desc="recording demos", unit="ep")

    def chunks() -> Iterator[list[Episode]]:
        chunk: list[Episode] = []
        for episode, outcome in _episodes_in_order(args):
            progress.update(1)
            report.attempted += 1
            outcomes.append(asdict(outcome))
            failures.update(outcome.failed)
            if episode is None:
                report.dropped += 1
            else:
                report.kept += 1
                report.total_steps += episode.num_steps
                if outcome.failed:
                    report.trimmed += 1
                else:
                    report.complete += 1
                    report.complete_within_280 += int(outcome.raw_steps <= 280)
                chunk.append(episode)
            progress.set_postfix(kept=report.kept, complete=report.complete)
            if len(chunk) >= args.chunk_size:
                yield chunk
                chunk = []
        yield chunk

    description = (
        f"skillgym scripted Franka Kitchen demonstrations: {args.episodes} episodes of 4 subtasks "
        f"in random orders (never microwave-kettle-bottom burner-light switch), seed {args.seed}, "
        f"{args.image_size}x{args.image_size} frames. infos/subtask = index into {list(ALL_TASKS)}."
    )
    write_minari_dataset(args.out, chunks(), args.image_size, description=description)
    progress.close()
    report.subtask_failures = dict(failures)
    report.eval_task_ceiling = eval_task_ceiling(outcomes)
    report.eval_transitions = eval_transitions(outcomes)
    write_json(Path(args.out) / "recording.json", {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "report": asdict(report),
        "subtask_names": list(ALL_TASKS),
        "episodes": outcomes,
    })
    return report
