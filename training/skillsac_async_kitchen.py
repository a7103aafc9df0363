"""SkillSAC on SkillKitchen-v0 with N kitchens in an AsyncSkillVecEnv against one kitchen, at the same budget of
low-level steps: does it learn as well, and how much sooner?

Each run trains with ``skillgym train-rl``'s settings (``TrainRLArgs``: KL weights, discount, the warm-up a short
budget gets) for ``--steps`` low-level steps of all envs together, then evaluates the policy deterministically
(most likely skill, mean argument) on ``--eval-episodes`` episodes of an env seeded apart from training. The
runs go one after the other, so each has the machine's cores to itself. Writes ``--out/result.json``.

    python training/skillsac_async_kitchen.py --steps 100000 --seeds 0 1 --envs 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.rl import AsyncSkillVecEnv, SkillSAC, StopAtLowLevelSteps
from skillgym.rl.train import TrainRLArgs, short_warm_up


def make_kitchen() -> gym.Env:
    torch.set_num_threads(1)  # one core per env process
    return gym.make("skillgym:SkillKitchen-v0")


def run(n_envs: int, seed: int, steps: int, eval_episodes: int) -> dict[str, Any]:
    """Train one SkillSAC and evaluate it; the numbers of one row of the result."""
    env: gym.Env | AsyncSkillVecEnv = make_kitchen() if n_envs == 1 else AsyncSkillVecEnv([make_kitchen] * n_envs)
    if isinstance(env, AsyncSkillVecEnv):
        env.seed(seed)
    settings = TrainRLArgs(steps=steps, seed=seed)
    settings.learning_starts = short_warm_up(steps, 30)  # as train-rl does for the bundled library's 30-step cap
    start = time.perf_counter()
    try:
        model = SkillSAC("SkillPolicy", env, **settings.skillsac_kwargs(), seed=seed)
        model.learn(10**9, callback=StopAtLowLevelSteps(steps))
    finally:
        env.close()
    seconds = time.perf_counter() - start
    eval_env = make_kitchen()
    eval_env.reset(seed=10_000 + seed)  # evaluation episodes never share seeds with training
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True,
                                 return_episode_rewards=True)
    eval_env.close()
    return {"envs": n_envs, "seed": seed, "low_level_steps": int(model.num_low_level_steps),
            "skill_decisions": int(model.num_timesteps), "gradient_steps": int(model._n_updates),
            "wall_seconds": seconds, "low_level_steps_per_second": model.num_low_level_steps / seconds,
            "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000, help="low-level steps of all envs together")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2], help="kitchens per run (1: no vector env)")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("runs/skillsac_async_kitchen"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        for n_envs in args.envs:
            rows.append(run(n_envs, seed, args.steps, args.eval_episodes))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for n_envs in args.envs:
        mine = [row for row in rows if row["envs"] == n_envs]
        summary[str(n_envs)] = {
            "return_mean": float(np.mean([row["return_mean"] for row in mine])),
            "return_std_over_seeds": float(np.std([row["return_mean"] for row in mine])),
            "wall_seconds_mean": float(np.mean([row["wall_seconds"] for row in mine])),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"args": {**vars(args), "out": str(args.out)}, "load_average": os.getloadavg(), "runs": rows,
              "summary": summary}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
