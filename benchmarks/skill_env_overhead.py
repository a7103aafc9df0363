"""Wall time per low-level step of SkillKitchen-v0 divided by that of the raw kitchen env.

Both step the *same* low-level actions in the same run: the skill env decodes and executes random
skills; the raw env then replays exactly the actions those skills produced. Repeated in
alternation; medians are reported.

    python benchmarks/skill_env_overhead.py [--decisions 300] [--repeats 5] [--library PATH]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch

from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.tasks.kitchen import KitchenTaskEnv


class ActionLog(gym.Wrapper):
    """Remembers the low-level actions a skill env executed (closed-loop decoders can't be replayed
    from (skill, z) alone). Its cost, one list append, is charged to the skill env."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(action)
        return self.env.step(action)


def run_skill_env(env, decisions: int, seed: int) -> tuple[float, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    log = env.env
    log.actions = []
    elapsed = 0.0
    for _ in range(decisions):
        action = {"skill": int(rng.integers(env.library.num_skills)),
                  "arg": rng.normal(size=env.library.z_dim).astype(np.float32)}
        start = time.perf_counter()
        _, _, terminated, truncated, info = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset(seed=seed)
    return elapsed, log.actions


def run_raw_env(env, actions: list[np.ndarray], seed: int, episode_steps: int) -> float:
    env.reset(seed=seed)
    elapsed = 0.0
    for i, action in enumerate(actions):
        start = time.perf_counter()
        env.step(action)
        elapsed += time.perf_counter() - start
        if (i + 1) % episode_steps == 0:
            env.reset(seed=seed)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--library", default=None, help="skill library (default: the bundled one)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    library = args.library or BUNDLED_LIBRARIES["state"]
    skill_env = SkillSpaceEnv(ActionLog(KitchenTaskEnv(max_episode_steps=10**9)), library)
    raw_env = KitchenTaskEnv(max_episode_steps=10**9)
    ratios, skill_us, raw_us, lengths = [], [], [], []
    for r in range(args.repeats):
        t_skill, actions = run_skill_env(skill_env, args.decisions, seed=r)
        t_raw = run_raw_env(raw_env, actions, seed=r, episode_steps=10**9)
        n = len(actions)
        skill_us.append(1e6 * t_skill / n)
        raw_us.append(1e6 * t_raw / n)
        ratios.append(t_skill / t_raw)
        lengths.append(n / args.decisions)
    print(f"library: {library} ({skill_env.library.config.decoder})  decisions/repeat: {args.decisions}  repeats: {args.repeats}")
    print(f"mean skill length: {np.mean(lengths):.1f} low-level steps")
    print(f"raw kitchen env : {np.median(raw_us):8.1f} us per low-level step")
    print(f"SkillKitchen-v0 : {np.median(skill_us):8.1f} us per low-level step")
    print(f"ratio (skill / raw), median of {args.repeats}: {np.median(ratios):.3f}  (all: "
          + ", ".join(f"{x:.3f}" for x in ratios) + ")")


if __name__ == "__main__":
    main()
