"""SkillSAC on N envs at once: skills of different lengths end at different times in different envs, and the
low-level step count, the per-env episode lengths and the replay buffer must still add up."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import skillgym  # noqa: F401
from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import SkillSAC, StopAtLowLevelSteps


class SkillLog(gym.Wrapper):
    """Records, inside the env, what every skill reported: its length, its low-level rewards and the
    low-level length of every finished episode. ``reward_at_end`` moves each skill's reward to its last
    low-level step, so that discounting within the skill changes it."""

    def __init__(self, env: gym.Env, reward_at_end: bool = False):
        super().__init__(env)
        self.reward_at_end = reward_at_end
        self.skill_steps: list[int] = []
        self.skill_rewards: list[np.ndarray] = []
        self.episode_low_level_lengths: list[int] = []
        self._episode_steps = 0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        n = int(info["skill_steps"])
        if self.reward_at_end:
            rewards = np.zeros_like(info["skill_rewards"])
            rewards[n - 1] = reward
            info = {**info, "skill_rewards": rewards}
        self.skill_steps.append(n)
        self.skill_rewards.append(np.asarray(info["skill_rewards"][:n], np.float64))
        self._episode_steps += n
        if terminated or truncated:
            self.episode_low_level_lengths.append(self._episode_steps)
            self._episode_steps = 0
        return obs, reward, terminated, truncated, info


def toy(max_decisions: int) -> gym.Env:
    return SkillLog(ToySkillEnv(max_decisions=max_decisions), reward_at_end=True)


def test_bookkeeping_per_env_with_skills_and_episodes_of_different_lengths() -> None:
    # Episodes of 7 and 10 decisions: the two envs reset at different vector steps. Skill d runs d + 1
    # low-level steps, so the two skills of one vector step usually differ in length too.
    venv = DummyVecEnv([lambda: toy(7), lambda: toy(10)])
    gamma = 0.9
    model = SkillSAC("SkillPolicy", venv, learning_starts=20, batch_size=8, gamma=gamma, gamma_per_step=True,
                     gradient_steps=2, policy_kwargs={"net_arch": [32, 32]}, seed=0)
    model.learn(80)  # 40 vector steps, every transition stored

    logs = venv.envs
    assert model.num_timesteps == 80
    assert model.num_low_level_steps == sum(sum(log.skill_steps) for log in logs)
    assert model.num_low_level_steps > 80  # skills ran more than one step each
    assert sorted(model._ep_low_level_len_buffer) == sorted(
        float(n) for log in logs for n in log.episode_low_level_lengths
    )
    assert model._ep_low_level_len.tolist() == [float(sum(log.skill_steps) - sum(log.episode_low_level_lengths))
                                                for log in logs]
    buffer = model.replay_buffer
    assert buffer.n_envs == 2 and buffer.pos == 40
    for i, log in enumerate(logs):
        np.testing.assert_array_equal(buffer.skill_steps[:40, i], log.skill_steps)
        discounted = [float(np.sum(r * gamma ** np.arange(len(r)))) for r in log.skill_rewards]
        np.testing.assert_allclose(buffer.rewards[:40, i], discounted, rtol=1e-6)
    assert any(r > 0 for log in logs for r in np.concatenate(log.skill_rewards))
    assert model._n_updates == 2 * 30  # after decision 20: an update of 2 steps per vector step


def test_stop_at_low_level_steps_with_several_envs() -> None:
    venv = DummyVecEnv([lambda: toy(7), lambda: toy(10), lambda: toy(5)])
    model = SkillSAC("SkillPolicy", venv, learning_starts=10, batch_size=8, policy_kwargs={"net_arch": [32, 32]},
                     seed=0)
    model.learn(10**6, callback=StopAtLowLevelSteps(200))
    # The budget is checked after every vector step: it ends at most one skill per env past it.
    assert 200 <= model.num_low_level_steps < 200 + 3 * 4


def make_kitchen() -> gym.Env:
    # "skillgym:" makes gymnasium import skillgym (which registers the env) in the subprocess too.
    return SkillLog(gym.make("skillgym:SkillKitchen-v0"))


def test_two_kitchens_in_subprocesses() -> None:
    venv = make_vec_env(make_kitchen, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        model = SkillSAC("SkillPolicy", venv, learning_starts=10, batch_size=8, gradient_steps=2,
                         gamma_per_step=True, seed=0)
        model.learn(30)  # 15 vector steps: a few hundred low-level steps
        skill_steps = venv.get_attr("skill_steps")
        assert model.num_low_level_steps == sum(sum(steps) for steps in skill_steps) >= 150
        assert len(set(skill_steps[0]) | set(skill_steps[1])) > 1  # skills of different lengths
        for i in range(2):
            np.testing.assert_array_equal(model.replay_buffer.skill_steps[:15, i], skill_steps[i])
        assert model._n_updates > 0
    finally:
        venv.close()
