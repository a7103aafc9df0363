"""The bundled libero_spatial library: SkillLibero-Spatial-v0 works without library=, on the real simulation."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from libero_support import require_libero

import skillgym  # noqa: F401
from skillgym.envs.prior_rollouts import prior_action
from skillgym.envs.skill_libero import BUNDLED_LIBERO_LIBRARIES
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.language import INSTRUCTION_KEY
from skillgym.tasks.libero import STATE_DIM


def skill_env(env: gym.Env) -> SkillSpaceEnv:
    while not isinstance(env, SkillSpaceEnv):
        env = env.env
    return env


def test_skill_libero_spatial_runs_the_bundled_library():
    require_libero()
    env = gym.make("SkillLibero-Spatial-v0", task=2)
    library = env.get_wrapper_attr("library")
    assert env.get_wrapper_attr("library_path") == str(BUNDLED_LIBERO_LIBRARIES["libero_spatial"])
    assert library.config.language_conditioned and library.config.obs_kind == "state"
    obs, info = env.reset(seed=0)
    # the bundled library sees the objects' positions (5 objects x 3) after the proprioception
    assert obs["state"].shape == (STATE_DIM + 15,) and obs[INSTRUCTION_KEY].shape == (library.config.instruction_dim,)
    assert "pixels" not in env.unwrapped.observation_space.spaces  # a state library renders no frames
    action = prior_action(library, obs, np.random.default_rng(0), greedy=True)
    obs, reward, terminated, truncated, info = env.step(action)
    assert 1 <= info["skill_steps"] <= library.max_skill_steps and "success" in info
    assert env.observation_space.contains(obs)
    check_env(skill_env(env), skip_render_check=True)
    env.close()


def test_the_other_suites_still_need_a_library():
    with pytest.raises(ValueError, match=r"no skill library is bundled for libero_object.*library=DIR"):
        gym.make("SkillLibero-Object-v0")
