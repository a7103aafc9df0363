"""Benchmark of the scripted Franka Kitchen controller.

    python benchmarks/scripted_kitchen.py --seeds 50 --chains 50 [--workers 2] [--json out.json]

Prints per-subtask success in isolation (one subtask from reset, seeded) with mean / median steps
to completion, then random 4-subtask chains (``sample_subtask_order``, all seven subtasks):
full-chain success, success within 280 low-level steps, episode length mean / median / p90 and
per-subtask success in chains. Action noise is the controller's default (0.05).

Measured on a 2-core CPU, one worker, ``--seeds 30 --chains 50``: every subtask 100 % in
isolation, mean steps bottom burner 31.9, top burner 30.9, light switch 32.9, slide cabinet
34.4, hinge cabinet 63.2, microwave 43.7, kettle 40.3; chains 100 % complete, 94 % within 280
steps, length mean / median / p90 199 / 192 / 249, every subtask 100 % of its attempts in chains.
Setting the kettle down and backing out of its handle before the next subtask takes ≈ 15 of
those steps in a chain with the kettle.

Recordings use action noise 0.1; their per-subtask success (attempts that succeeded) is printed
by the recorder and stored in recording.json:

    skillgym data kitchen --out /tmp/rec50 --episodes 50 --seed 0 --workers 1 --eval-prefix-fraction 0 \
        --subtasks microwave kettle "light switch" "slide cabinet" "hinge cabinet" "bottom burner" "top burner"

random orders over all seven: every subtask 100 % of its attempts (bottom burner 26/26, hinge
cabinet 27/27, kettle 27/27, light switch 25/25, microwave 34/34, slide cabinet 28/28, top
burner 33/33); 50/50 episodes complete (48 within 280 steps). With ``--eval-prefix-fraction 1.0``
(evaluation-order prefixes): every subtask 100 % (bottom burner 33/33, hinge cabinet 23/23,
kettle 41/41, light switch 26/26, microwave 38/38, slide cabinet 22/22, top burner 17/17); 50/50
complete (41 within 280 steps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from skillgym.data.scripted import ScriptedKitchenController, sample_subtask_order  # noqa: E402
from skillgym.tasks.kitchen import ALL_TASKS  # noqa: E402

STEP_LIMIT = 600  # hard cap per episode; the controller's own budgets end episodes far earlier
PACE = 280  # D4RL's episode length, the bar for four subtasks


@dataclass
class Rollout:
    tasks: list[str]
    completed: list[str]
    failed: list[str]
    steps: int  # low-level steps until the controller finished (or the cap)
    done_at: int | None  # step at which the last subtask completed, None if not all did


def rollout(tasks: list[str], seed: int) -> Rollout:
    from skillgym.tasks.kitchen import KitchenTaskEnv

    env = KitchenTaskEnv(tasks=tasks, max_episode_steps=STEP_LIMIT)
    env.reset(seed=seed)
    controller = ScriptedKitchenController(env, tasks, np.random.default_rng(seed))
    info: dict = {"completed_tasks": []}
    steps, done_at = 0, None
    while not controller.finished and steps < STEP_LIMIT:
        _, _, terminated, truncated, info = env.step(controller.act())
        steps += 1
        if terminated:
            done_at = steps
            break
        if truncated:
            break
    env.close()
    return Rollout(tasks, list(info["completed_tasks"]), controller.failed_subtasks, steps,
                   done_at)


def _run(job: tuple[list[str], int]) -> Rollout:
    return rollout(*job)


def run_jobs(jobs: list[tuple[list[str], int]], workers: int, desc: str) -> list[Rollout]:
    if workers <= 1:
        return [_run(j) for j in tqdm(jobs, desc=desc)]
    with ProcessPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(_run, jobs), total=len(jobs), desc=desc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="isolated runs per subtask")
    parser.add_argument("--chains", type=int, default=50, help="random 4-subtask chains")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=str, default=None, help="write the results here")
    args = parser.parse_args()

    results: dict = {"isolation": {}, "chains": {}}
    iso_jobs = [([task], seed) for task in ALL_TASKS for seed in range(args.seeds)]
    iso = run_jobs(iso_jobs, args.workers, "isolation") if args.seeds else []
    print(f"\nSubtasks in isolation ({args.seeds} seeds each)")
    print(f"{'subtask':<15} {'success':>8} {'mean':>6} {'median':>6}")
    for task in ALL_TASKS:
        runs = [r for r in iso if r.tasks == [task]]
        steps = [r.done_at for r in runs if r.done_at is not None]
        rate = len(steps) / max(len(runs), 1)
        mean = float(np.mean(steps)) if steps else float("nan")
        median = float(np.median(steps)) if steps else float("nan")
        results["isolation"][task] = dict(success=rate, mean_steps=mean, median_steps=median)
        print(f"{task:<15} {rate:>8.0%} {mean:>6.1f} {median:>6.1f}")

    if args.chains:
        order_rng = np.random.default_rng(12345)
        chain_jobs = [(sample_subtask_order(order_rng), 1000 + i) for i in range(args.chains)]
        chains = run_jobs(chain_jobs, args.workers, "chains")
        ok = [r for r in chains if r.done_at is not None]
        lengths = np.array([r.done_at if r.done_at is not None else r.steps for r in chains])
        fails: dict[str, int] = {t: 0 for t in ALL_TASKS}
        attempts: dict[str, int] = {t: 0 for t in ALL_TASKS}
        for r in chains:
            for t in r.tasks:
                attempts[t] += 1
                if t not in r.completed:
                    fails[t] += 1
        summary = dict(
            n=len(chains),
            success=len(ok) / len(chains),
            success_within_280=sum(r.done_at <= PACE for r in ok) / len(chains),
            length_mean=float(lengths.mean()),
            length_median=float(np.median(lengths)),
            length_p90=float(np.percentile(lengths, 90)),
            successful_length_median=float(np.median([r.done_at for r in ok])) if ok else None,
            failures_per_subtask=fails,
            attempts_per_subtask=attempts,
        )
        results["chains"] = summary
        results["chain_rollouts"] = [asdict(r) for r in chains]
        print(f"\nRandom 4-subtask chains ({len(chains)})")
        print(f"full-chain success      {summary['success']:.0%}")
        print(f"success within {PACE} steps {summary['success_within_280']:.0%}")
        print(f"episode length mean / median / p90: {summary['length_mean']:.0f} / "
              f"{summary['length_median']:.0f} / {summary['length_p90']:.0f}")
        print("subtask success in chains: " + ", ".join(
            f"{t} {attempts[t] - fails[t]}/{attempts[t]}" for t in ALL_TASKS if attempts[t]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
