"""Prior-only rollouts of a LIBERO skill library, per task: the success rate of its priors alone.

For each task of the suite, the priors act alone (sampled, then greedy: argmax skill and mean
argument) in ``SkillLibero-*-v0`` with ``task=i`` for ``--episodes`` episodes (episode j resets
with seed ``--seed + j``, which picks one of LIBERO's initial states). Success is LIBERO's own
check (every goal predicate at once, ``info["success"]``). Prints a table and writes it as JSON:

    python training/libero_prior_rollouts.py --episodes 10 --out docs/guides/libero-spatial-prior-rollouts.json

(the bundled libero_spatial library; ``--library DIR`` for another, ``--suite`` for another suite).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import torch

import skillgym  # noqa: F401  (registers the SkillLibero envs)
from skillgym.envs.prior_rollouts import skill_env_rollouts
from skillgym.tasks.libero import suite_tasks

ENV_IDS = {"libero_spatial": "SkillLibero-Spatial-v0", "libero_object": "SkillLibero-Object-v0",
           "libero_goal": "SkillLibero-Goal-v0", "libero_10": "SkillLibero-10-v0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", default=None, help="library folder (default: the suite's bundled one)")
    parser.add_argument("--suite", default="libero_spatial", choices=sorted(ENV_IDS))
    parser.add_argument("--tasks", type=int, nargs="+", default=None, help="task indices (default: all)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per task and mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write the table to")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = suite_tasks(args.suite)
    tasks = args.tasks if args.tasks is not None else list(range(len(names)))
    rows = []
    print(f"{'task':>4} {'sampled':>8} {'greedy':>7}  name", flush=True)
    for task in tasks:
        env = gym.make(ENV_IDS[args.suite], library=args.library, task=task)
        start = time.perf_counter()
        try:
            sampled, greedy = (skill_env_rollouts(env, args.episodes, args.seed, greedy=g) for g in (False, True))
        finally:
            env.close()
        rows.append({"task": task, "name": names[task], "sampled": sampled, "greedy": greedy,
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{task:>4} {sampled['success_rate']:>8.2f} {greedy['success_rate']:>7.2f}  {names[task]}", flush=True)
    mean = {mode: sum(r[mode]["success_rate"] for r in rows) / len(rows) for mode in ("sampled", "greedy")}
    print(f"mean {mean['sampled']:>8.2f} {mean['greedy']:>7.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"library": args.library or "bundled", "suite": args.suite, "episodes": args.episodes,
                  "seed": args.seed, "mean_success": mean, "tasks": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
