"""FlattenSkillAction: a Box view of a skill action space, for stock SB3/CleanRL agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from skillgym.spaces import check_skill_action_space


class FlattenSkillAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Act in ``Dict(skill=Discrete(K), arg=Box(nz))`` with one ``Box(K + nz)``.

    The first ``K`` entries are skill scores in ``[-1, 1]``; the highest score picks the skill
    (ties go to the lowest index). The remaining ``nz`` entries are the argument, in the
    argument box's own bounds. Stock SAC, TD3, PPO or TQC then run on the skill space unchanged.

    Example (a toy skill space with K=4 skills and nz=2 arguments in [-2, 2]):
        >>> from skillgym.envs.toy import ToySkillEnv
        >>> env = FlattenSkillAction(ToySkillEnv())
        >>> env.action_space
        Box([-1. -1. -1. -1. -2. -2.], [1. 1. 1. 1. 2. 2.], (6,), float32)
        >>> env.action(np.array([0.1, 0.9, -1.0, 0.3, 0.5, -0.5], np.float32))
        {'skill': 1, 'arg': array([ 0.5, -0.5], dtype=float32)}
        >>> from stable_baselines3 import SAC
        >>> model = SAC("MlpPolicy", env, learning_starts=20, batch_size=16, seed=0).learn(40)

    ``gym.make("SkillKitchen-v0")`` in place of the toy env gives ``Box(13)``: 8 skill scores and
    the 5 argument dimensions of the bundled kitchen library.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        space = env.action_space
        try:
            self.num_skills, _ = check_skill_action_space(space)
        except ValueError as e:
            raise ValueError(f"FlattenSkillAction wraps envs with a skill action space: {e}") from e
        arg = space["arg"]
        low = np.concatenate([-np.ones(self.num_skills), arg.low]).astype(np.float32)
        high = np.concatenate([np.ones(self.num_skills), arg.high]).astype(np.float32)
        self.action_space = spaces.Box(low, high, dtype=np.float32)

    def action(self, action: np.ndarray) -> dict:
        """The skill action of a flat one: ``skill`` = argmax of the K scores, ``arg`` = the rest."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"flat skill action must have shape {self.action_space.shape} "
                f"({self.num_skills} skill scores + argument), got {action.shape}"
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"flat skill action contains NaN or inf: {action}")
        return {
            "skill": int(np.argmax(action[: self.num_skills])),
            "arg": action[self.num_skills :].copy(),
        }
