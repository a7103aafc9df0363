"""Wall time per low-level step of SkillKitchenPixels-v0 divided by that of the raw state kitchen env.

The pixel skill env (the bundled pixel library on ``KitchenTaskEnv(pixels=True, image_size=64,
frame_stack=4)``, as ``gym.make("SkillKitchenPixels-v0")`` builds it) executes random skills in
280-step episodes; the raw state env then replays exactly the low-level actions and resets it ran.
The pixel env renders only the frames of each skill's final observation; for comparison the same
skills run once more on a low-level env that renders every step (a plain wrapper hides
``step_without_pixels`` from ``SkillSpaceEnv``). The three runs alternate within each repeat;
medians are reported. Only ``step`` calls are timed, as in ``skill_env_overhead.py``. The cost of
one frame (``render_frame``) is printed too: every skill's final observation renders up to
``frame_stack`` of them, which bounds the ratio from below.

    python benchmarks/pixel_env.py [--decisions 50] [--repeats 5] [--no-every-step]
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
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import KitchenTaskEnv

RESET = None  # marks a reset in the action log


class ActionLog(gym.Wrapper):
    """Remembers the low-level actions and resets a skill env executed, for the raw env to replay.

    Its cost, one list append, is charged to the skill env. It offers only ``step``, so the skill
    env renders every low-level step."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.actions: list[np.ndarray | None] = []

    def reset(self, **kwargs):
        self.actions.append(RESET)
        return self.env.reset(**kwargs)

    def step(self, action):
        self.actions.append(action)
        return self.env.step(action)


class DeferredActionLog(ActionLog):
    """``ActionLog`` that passes deferred rendering through: frames only at a skill's end."""

    def step_without_pixels(self, action):
        self.actions.append(action)
        return self.env.step_without_pixels(action)

    def current_observation(self):
        return self.env.current_observation()


def pixel_low_level_env() -> KitchenTaskEnv:
    return KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4)


def run_skill_env(env: SkillSpaceEnv, decisions: int, seed: int) -> tuple[float, list]:
    rng = np.random.default_rng(seed)
    log = env.env
    log.actions = []
    env.reset(seed=seed)
    elapsed = 0.0
    for _ in range(decisions):
        action = {"skill": int(rng.integers(env.library.num_skills)),
                  "arg": rng.normal(size=env.library.z_dim).astype(np.float32)}
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset(seed=seed)
    return elapsed, log.actions


def run_raw_env(env: KitchenTaskEnv, actions: list, seed: int) -> float:
    elapsed = 0.0
    for action in actions:
        if action is RESET:
            env.reset(seed=seed)
            continue
        start = time.perf_counter()
        env.step(action)
        elapsed += time.perf_counter() - start
    return elapsed


def frame_us(env: KitchenTaskEnv, frames: int = 10) -> float:
    start = time.perf_counter()
    for _ in range(frames):
        env.render_frame()
    return 1e6 * (time.perf_counter() - start) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=50, help="skills per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-every-step", action="store_true",
                        help="skip the comparison env that renders every low-level step (the slow one)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    library = SkillLibrary.load(BUNDLED_LIBRARIES["pixels"])
    deferred = SkillSpaceEnv(DeferredActionLog(pixel_low_level_env()), library)
    every_step = SkillSpaceEnv(ActionLog(pixel_low_level_env()), library)
    raw = KitchenTaskEnv()
    raw_us, deferred_us, every_us, frames_us, lengths = [], [], [], [], []
    for r in range(args.repeats):
        t_deferred, actions = run_skill_env(deferred, args.decisions, seed=r)
        t_raw = run_raw_env(raw, actions, seed=r)
        n = sum(a is not RESET for a in actions)
        raw_us.append(1e6 * t_raw / n)
        deferred_us.append(1e6 * t_deferred / n)
        lengths.append(n / args.decisions)
        frames_us.append(frame_us(deferred.unwrapped))
        if not args.no_every_step:
            t_every, every_actions = run_skill_env(every_step, args.decisions, seed=r)
            assert len(every_actions) == len(actions), "both pixel envs run the same skills"
            every_us.append(1e6 * t_every / n)
    for env in (deferred, every_step, raw):
        env.close()

    def ratios(us: list[float]) -> str:
        values = [a / b for a, b in zip(us, raw_us, strict=True)]
        return f"{np.median(values):.2f}  (all: " + ", ".join(f"{v:.2f}" for v in values) + ")"

    print(f"decisions/repeat: {args.decisions}  repeats: {args.repeats}  "
          f"mean skill length: {np.mean(lengths):.1f} low-level steps")
    print(f"raw state KitchenTaskEnv            : {np.median(raw_us):8.0f} us per low-level step")
    print(f"one 64x64 frame                     : {np.median(frames_us):8.0f} us"
          f" = {np.median(frames_us) / np.median(raw_us):.1f} raw steps")
    print(f"SkillKitchenPixels-v0               : {np.median(deferred_us):8.0f} us per low-level step"
          f"   ratio to raw, median of {args.repeats}: {ratios(deferred_us)}")
    if every_us:
        print(f"  rendering every low-level step    : {np.median(every_us):8.0f} us per low-level step"
              f"   ratio to raw, median of {args.repeats}: {ratios(every_us)}")


if __name__ == "__main__":
    main()
