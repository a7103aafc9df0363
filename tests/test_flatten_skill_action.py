import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from skillgym.envs.flatten import FlattenSkillAction
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.skills.config import LibraryConfig
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import KitchenTaskEnv


def make_flat_env() -> FlattenSkillAction:
    library = SkillLibrary.build(LibraryConfig(num_skills=4, max_skill_steps=5), seed=0)
    return FlattenSkillAction(SkillSpaceEnv(KitchenTaskEnv(max_episode_steps=40), library))


def test_box_maps_to_the_dict_action():
    env = make_flat_env()
    assert env.action_space.shape == (4 + 5,)
    np.testing.assert_array_equal(env.action_space.low[:4], -1.0)
    np.testing.assert_array_equal(env.action_space.high[4:], 3.0)  # the library's arg_bound
    flat = np.array([0.1, 0.9, -0.5, 0.9, 1, 2, 3, 4, 5], np.float32)
    action = env.action(flat)
    assert action["skill"] == 1  # argmax, ties to the lowest index
    np.testing.assert_array_equal(action["arg"], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="shape"):
        env.action(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="Dict"):
        FlattenSkillAction(KitchenTaskEnv())


def test_checkers_pass():
    check_env(make_flat_env(), skip_render_check=True)
    sb3_check_env(make_flat_env(), warn=True)


def test_stock_sb3_sac_runs_on_the_skill_space():
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", make_flat_env(), learning_starts=8, batch_size=8, seed=0)
    model.learn(24)
    assert model.num_timesteps == 24


@pytest.mark.parametrize("vectorizer", ["sync", "async"])
def test_gymnasium_vector_envs(vectorizer):
    """Skills of different lengths in the two envs: the infos still stack."""
    cls = gym.vector.SyncVectorEnv if vectorizer == "sync" else gym.vector.AsyncVectorEnv
    envs = cls([make_bundled_flat_env, make_bundled_flat_env])
    envs.reset(seed=0)
    envs.action_space.seed(0)
    lengths = set()
    for _ in range(6):
        _, rewards, _, _, infos = envs.step(envs.action_space.sample())
        assert rewards.shape == (2,) and np.all(infos["skill_steps"] >= 1)
        lengths.update(infos["skill_steps"].tolist())
    assert len(lengths) > 1
    envs.close()


def make_bundled_flat_env() -> FlattenSkillAction:
    return FlattenSkillAction(gym.make("skillgym:SkillKitchen-v0"))


def test_sb3_subproc_vec_env():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    envs = SubprocVecEnv([make_flat_env, make_flat_env])
    envs.reset()
    _, rewards, _, infos = envs.step(np.stack([envs.action_space.sample() for _ in range(2)]))
    assert rewards.shape == (2,) and all(info["skill_steps"] >= 1 for info in infos)
    envs.close()
