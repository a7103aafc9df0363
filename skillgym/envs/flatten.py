"""FlattenSkillAction: a Box view of a skill action space, for stock SB3/CleanRL agents."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FlattenSkillAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Act in ``Dict(skill=Discrete(K), arg=Box(nz))`` with one ``Box(K + nz)``.

    The first ``K`` entries are skill scores in ``[-1, 1]``; the highest score picks the skill
    (ties go to the lowest index). The remaining ``nz`` entries are the argument, in the
    argument box's own bounds. Stock SAC, TD3, PPO or TQC then run on the skill space unchanged.

    Example:
        >>> env = FlattenSkillAction(gym.make("SkillKitchen-v0"))
        >>> env.action_space
        Box(-3.0, 3.0, (13,), float32)
        >>> from stable_baselines3 import SAC
        >>> SAC("MlpPolicy", env).learn(1000)
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        space = env.action_space
        if not (
            isinstance(space, spaces.Dict)
            and set(space.spaces) == {"skill", "arg"}
            and isinstance(space["skill"], spaces.Discrete)
            and isinstance(space["arg"], spaces.Box)
        ):
            raise ValueError(f"FlattenSkillAction needs a Dict(skill=Discrete, arg=Box) action space, got {space}")
        self.num_skills = int(space["skill"].n)
        arg = space["arg"]
        low = np.concatenate([-np.ones(self.num_skills), arg.low]).astype(np.float32)
        high = np.concatenate([np.ones(self.num_skills), arg.high]).astype(np.float32)
        self.action_space = spaces.Box(low, high, dtype=np.float32)

    def action(self, action: np.ndarray) -> dict:
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
