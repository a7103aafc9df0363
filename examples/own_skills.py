"""Skills of your own in the kitchen's skill space: a skill set that skillgym did not train.

``SkillSpaceEnv`` runs any object with ``num_skills``, ``z_dim``, ``max_skill_steps``,
``observation_space``, ``start`` and ``step``. Here each skill drives one arm joint forwards or
backwards, at a speed its one-dimensional argument sets, for a fixed number of steps; swap in your
own controllers, a learned decoder, or motion primitives. Without priors, stock agents act in the
space through ``FlattenSkillAction``.

    python examples/own_skills.py --steps 2000 --seed 0
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import SAC

from skillgym.envs import FlattenSkillAction, SkillSpaceEnv
from skillgym.tasks.kitchen import KitchenTaskEnv

ARM_JOINTS = 7  # the kitchen's 9-d action: 7 arm joints, then the 2 gripper fingers


class JointSkills:
    """Skill ``2j`` moves arm joint ``j`` one way, ``2j + 1`` the other; the argument sets the speed."""

    num_skills, z_dim, max_skill_steps = 2 * ARM_JOINTS, 1, 10
    arg_bound = 1.0
    observation_space = gym.spaces.Box(-np.inf, np.inf, (59,), np.float64)  # the skills read the kitchen's state

    def start(self, skills: np.ndarray, args: np.ndarray) -> dict[str, Any]:
        """Begin ``skills`` (shape (1,)) with arguments ``args`` (shape (1, z_dim))."""
        return {"skill": int(skills[0]), "speed": 0.5 + 0.5 * float(abs(args[0, 0])), "t": 0}

    def step(self, state: dict[str, Any], obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """One low-level action (shape (1, 9)), the skill's progress in [0, 1] (shape (1,)), the next state."""
        action = np.zeros((1, 9), np.float32)
        joint, sign = divmod(state["skill"], 2)
        action[0, joint] = (1.0 if sign else -1.0) * state["speed"]
        t = state["t"] + 1
        return action, np.array([t / self.max_skill_steps]), {**state, "t": t}


def main(steps: int, seed: int) -> None:
    """Train SB3 SAC for ``steps`` skill decisions in the space of :class:`JointSkills`, then run one skill."""
    env = FlattenSkillAction(SkillSpaceEnv(KitchenTaskEnv(), JointSkills()))
    model = SAC("MlpPolicy", env, learning_starts=100, seed=seed).learn(steps)
    obs, _ = env.reset(seed=seed)
    action, _ = model.predict(obs, deterministic=True)
    _, reward, _, _, info = env.step(action)
    print(f"skill {info['skill']} ran {info['skill_steps']} low-level steps, reward {reward}")
    env.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="skill decisions of SB3 SAC in the skill space")
    parser.add_argument("--seed", type=int, default=0)
    main(**vars(parser.parse_args()))
