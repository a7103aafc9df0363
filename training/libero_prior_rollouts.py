"""Prior-only rollouts of a LIBERO skill library, per task: the success rate of its priors alone.

For each task of the suite, the priors act alone (sampled, then greedy: argmax skill and mean
argument) in ``SkillLibero-*-v0`` with ``task=i`` for ``--episodes`` episodes (episode j resets
with seed ``--seed + j``, which picks one of LIBERO's initial states). Success is LIBERO's own
check (every goal predicate at once, ``info["success"]``). Prints a table and writes it as JSON:

    python training/libero_prior_rollouts.py --episodes 10 --workers 2 --out docs/guides/libero-spatial-prior-rollouts.json

Each task is seeded on its own, so ``--workers`` (tasks in parallel processes) changes nothing but the time.
The JSON is rewritten after every task; running the same command again skips the tasks it holds.

(the bundled libero_spatial library; ``--library DIR`` for another, ``--suite`` for another suite).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import gymnasium as gym
import torch

import skillgym  # noqa: F401  (registers the SkillLibero envs)
from skillgym.envs.prior_rollouts import skill_env_rollouts
from skillgym.tasks.libero import suite_tasks

ENV_IDS = {"libero_spatial": "SkillLibero-Spatial-v0", "libero_object": "SkillLibero-Object-v0",
           "libero_goal": "SkillLibero-Goal-v0", "libero_10": "SkillLibero-10-v0"}


def task_rollouts(env_id: str, library: str | None, task: int, episodes: int, seed: int) -> dict:
    """Sampled and greedy prior-only rollouts of one task, with the time they took."""
    torch.set_num_threads(1)
    env = gym.make(env_id, library=library, task=task)
    start = time.perf_counter()
    try:
        sampled, greedy = (skill_env_rollouts(env, episodes, seed, greedy=g) for g in (False, True))
    finally:
        env.close()
    return {"task": task, "sampled": sampled, "greedy": greedy, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", default=None, help="library folder (default: the suite's bundled one)")
    parser.add_argument("--suite", default="libero_spatial", choices=sorted(ENV_IDS))
    parser.add_argument("--tasks", type=int, nargs="+", default=None, help="task indices (default: all)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task and mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="tasks run in this many processes at once")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write the table to")
    args = parser.parse_args()
    names = suite_tasks(args.suite)
    tasks = args.tasks if args.tasks is not None else list(range(len(names)))
    if not all(0 <= task < len(names) for task in tasks):
        parser.error(f"--tasks must be indices in [0, {len(names)}) of {args.suite}'s tasks, got {tasks}")
    for name in ("episodes", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    run = {"library": args.library or "bundled", "suite": args.suite, "episodes": args.episodes, "seed": args.seed}
    rows = {}
    if args.out and args.out.is_file():
        saved = json.loads(args.out.read_text())
        if {key: saved.get(key) for key in run} == run:  # the same rollouts: keep every task they finished
            rows = {row["task"]: row for row in saved["tasks"]}
    print(f"{'task':>4} {'sampled':>8} {'greedy':>7}  name (episodes {args.episodes}, seeds {args.seed} "
          f"to {args.seed + args.episodes - 1})", flush=True)
    for task in tasks:
        if task in rows:
            print_row(rows[task])
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [pool.submit(task_rollouts, ENV_IDS[args.suite], args.library, task, args.episodes, args.seed)
                for task in tasks if task not in rows]
        for job in as_completed(jobs):
            row = job.result()
            rows[row["task"]] = {"name": names[row["task"]], **row}
            print_row(rows[row["task"]])
            if args.out:  # complete: every task of the suite is in the file
                write(args.out, run, [rows[t] for t in sorted(rows)], complete=len(rows) == len(names))
    mean = mean_success([rows[t] for t in tasks])
    print(f"mean {mean['sampled']:>8.2f} {mean['greedy']:>7.2f}")


def print_row(row: dict) -> None:
    print(f"{row['task']:>4} {row['sampled']['success_rate']:>8.2f} {row['greedy']['success_rate']:>7.2f}  "
          f"{row['name']}", flush=True)


def mean_success(rows: list[dict]) -> dict[str, float]:
    """The success rate of each mode, averaged over the tasks in ``rows``."""
    return {mode: sum(r[mode]["success_rate"] for r in rows) / len(rows) for mode in ("sampled", "greedy")}


def write(path: Path, run: dict, rows: list[dict], complete: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {**run, "complete": complete, "mean_success": mean_success(rows), "tasks": rows}
    path.write_text(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__":
    main()
