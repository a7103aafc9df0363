"""Low-level env steps per second of SkillSAC *learning* on SkillKitchen-v0 with one env and with N envs in
subprocesses, as ratios to one env measured in the same run.

Configurations: one env in the learner's process; SB3's ``SubprocVecEnv`` with ``gradient_steps=N`` (one
gradient step per skill decision, as with one env); skillgym's ``AsyncSkillVecEnv`` (one gradient step per
decision by default). Each round builds a fresh model (seed 0), fills its replay buffer with ``--warmup``
decisions from the prior (no gradient steps), then times ``--decisions`` decisions of learning: collection and
gradient steps together, which is what a training run spends. Rounds alternate between configurations; the
best round of each is reported. torch runs on one thread in the learner and in every env process.

    python benchmarks/skillsac_vec_envs.py                 # N = 2, 300 decisions per round, 2 rounds

The speed-up a machine can give is bounded by its free cores: report ``uptime`` with the numbers.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import SubprocVecEnv

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.rl import AsyncSkillVecEnv, SkillSAC


def make_kitchen() -> gym.Env:
    torch.set_num_threads(1)  # one core per env process
    return gym.make("skillgym:SkillKitchen-v0")


class Stopwatch(BaseCallback):
    """Notes the time and the low-level step count when learning starts (after the warm-up) and at the end."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup = warmup
        self.start: tuple[float, int, int] | None = None

    def _on_step(self) -> bool:
        if self.start is None and self.model.num_timesteps >= self.warmup:
            self.start = (time.perf_counter(), self.model.num_low_level_steps, self.model._n_updates)
        return True

    def rates(self) -> tuple[float, float]:
        """(low-level steps/s, gradient steps/s) since learning started."""
        assert self.start is not None
        seconds = time.perf_counter() - self.start[0]
        return ((self.model.num_low_level_steps - self.start[1]) / seconds,
                (self.model._n_updates - self.start[2]) / seconds)


def learn(make_env: Callable[[], gym.Env | SubprocVecEnv | AsyncSkillVecEnv], gradient_steps: int, warmup: int,
          decisions: int) -> tuple[float, float]:
    env = make_env()
    try:
        model = SkillSAC("SkillPolicy", env, learning_starts=warmup, gradient_steps=gradient_steps, seed=0)
        stopwatch = Stopwatch(warmup)
        model.learn(warmup + decisions, callback=stopwatch)
        return stopwatch.rates()
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, default=2, help="envs of the vector envs")
    parser.add_argument("--decisions", type=int, default=300, help="skill decisions timed per round")
    parser.add_argument("--warmup", type=int, default=256, help="decisions from the prior before learning")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.n_envs

    def vec(kind: type) -> Callable[[], SubprocVecEnv | AsyncSkillVecEnv]:
        def make() -> SubprocVecEnv | AsyncSkillVecEnv:
            venv = kind([make_kitchen] * n)
            venv.seed(0)
            return venv

        return make

    configs = {
        "one env": (make_kitchen, 1),
        f"SubprocVecEnv N={n}": (vec(SubprocVecEnv), n),
        f"AsyncSkillVecEnv N={n}": (vec(AsyncSkillVecEnv), 1),
    }
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (make_env, gradient_steps) in configs.items():
            rates[name].append(learn(make_env, gradient_steps, args.warmup, args.decisions))

    best = {name: max(steps for steps, _ in rows) for name, rows in rates.items()}
    print(f"SkillSAC on SkillKitchen-v0: {args.decisions} decisions of learning after {args.warmup} from the prior, "
          f"one gradient step per decision, {args.rounds} rounds; {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'':22s} {'low-level steps/s':>18s} {'to one env':>11s} {'gradient steps/s':>17s}")
    for name, rows in rates.items():
        gradient = np.median([g for _, g in rows])
        print(f"{name:22s} {best[name]:18.1f} {best[name] / best['one env']:10.2f}x {gradient:17.1f}   rounds: "
              + ", ".join(f"{steps:.1f}" for steps, _ in rows))


if __name__ == "__main__":
    main()
