"""End-to-end check of SkillSAC on SkillKitchen-v0 at full size, with SkillSAC's default hyper-parameters.

    python training/skillsac_acceptance.py --steps 5000 --seed 0 --out runs/skillsac_acceptance

1. ``SkillSAC("SkillPolicy", gym.make("SkillKitchen-v0")).learn(steps)`` (steps = skill decisions,
   SB3's ``total_timesteps``; the first 1k are prior warm-up, then one gradient step each);
2. ``save`` / ``load`` and ``predict`` on 50 observations, deterministic and seeded-stochastic:
   the actions must be identical;
3. a ``SubprocVecEnv`` with 2 kitchens learns a few hundred decisions.

Prints and writes ``result.json`` (timings, low-level steps, evaluation return). Too slow for
the test suite (~10 min on 2 cores); tests/test_rl_kitchen.py runs the same path at a tiny budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import SubprocVecEnv

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.rl import SkillSAC


def make_kitchen() -> gym.Env:
    return gym.make("skillgym:SkillKitchen-v0")


def same_predictions(model: SkillSAC, loaded: SkillSAC, env: gym.Env, n: int, seed: int) -> bool:
    obs, _ = env.reset(seed=seed)
    for i in range(n):
        for deterministic in (True, False):
            torch.manual_seed(seed + i)
            a, _ = model.predict(obs, deterministic=deterministic)
            torch.manual_seed(seed + i)
            b, _ = loaded.predict(obs, deterministic=deterministic)
            if a["skill"] != b["skill"] or not np.array_equal(a["arg"], b["arg"]):
                return False
        obs, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            obs, _ = env.reset()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="skill decisions (SB3 total_timesteps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subproc-steps", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("runs/skillsac_acceptance"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"steps": args.steps, "seed": args.seed}

    env = gym.make("SkillKitchen-v0")
    start = time.perf_counter()
    model = SkillSAC("SkillPolicy", env, seed=args.seed).learn(args.steps, progress_bar=True)
    result["learn_seconds"] = round(time.perf_counter() - start, 1)
    result["low_level_steps"] = int(model.num_low_level_steps)
    model.save(args.out / "model")
    loaded = SkillSAC.load(args.out / "model")
    result["save_load_predict_identical"] = same_predictions(model, loaded, gym.make("SkillKitchen-v0"),
                                                             n=50, seed=args.seed + 1)
    mean, std = evaluate_policy(loaded, env, n_eval_episodes=10, deterministic=True)
    result["eval_return_mean"], result["eval_return_std"] = float(mean), float(std)

    start = time.perf_counter()
    envs = SubprocVecEnv([make_kitchen, make_kitchen])
    vec_model = SkillSAC("SkillPolicy", envs, learning_starts=100, seed=args.seed).learn(args.subproc_steps)
    envs.close()
    result["subproc_2_envs"] = {"steps": args.subproc_steps, "seconds": round(time.perf_counter() - start, 1),
                                "low_level_steps": int(vec_model.num_low_level_steps)}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not result["save_load_predict_identical"]:
        raise SystemExit("save/load changed predict()")


if __name__ == "__main__":
    main()
