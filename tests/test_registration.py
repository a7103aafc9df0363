"""gym.make("SkillKitchen-v0") with the bundled library, the checkers, and stock tooling."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import skillgym  # noqa: F401
from skillgym.envs.flatten import FlattenSkillAction
from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES, NAMED_LIBRARIES, resolve_library
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.skills.library import SkillLibrary


def test_bundled_library_loads_and_is_small():
    library = SkillLibrary.load(BUNDLED_LIBRARIES["state"])
    size = sum(f.stat().st_size for f in BUNDLED_LIBRARIES["state"].iterdir())
    assert size < 10 * 2**20
    assert library.num_skills == 8 and library.config.obs_kind == "state"


def skill_env(env: gym.Env) -> SkillSpaceEnv:
    while not isinstance(env, SkillSpaceEnv):
        env = env.env
    return env


def test_skill_kitchen_passes_the_checkers():
    check_env(skill_env(gym.make("SkillKitchen-v0")), skip_render_check=True)
    flat = FlattenSkillAction(gym.make("SkillKitchen-v0"))
    check_env(flat, skip_render_check=True)
    sb3_check_env(flat)


def test_skill_kitchen_steps_and_swaps():
    env = gym.make("SkillKitchen-v0", tasks=["kettle", "microwave"])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (59,)
    obs, reward, terminated, truncated, info = env.step({"skill": 3, "arg": np.zeros(5, np.float32)})
    assert 1 <= info["skill_steps"] <= 30 and env.unwrapped.tasks == ("kettle", "microwave")
    with pytest.raises(ValueError, match="outside"):
        env.step({"skill": 8, "arg": np.zeros(5, np.float32)})
    other = gym.make("SkillKitchen-v0", library=str(BUNDLED_LIBRARIES["state"]))
    assert skill_env(other).library.num_skills == 8
    with pytest.raises(Exception, match="config.json|not a skill library|no such|missing"):
        gym.make("SkillKitchen-v0", library="/nonexistent/library")


def test_bundled_pixel_library():
    if not BUNDLED_LIBRARIES["pixels"].is_dir():
        with pytest.raises(FileNotFoundError, match="train-skills"):
            gym.make("SkillKitchenPixels-v0")
        pytest.skip("no bundled pixel library in this checkout")
    size = sum(f.stat().st_size for f in BUNDLED_LIBRARIES["pixels"].iterdir())
    assert size < 10 * 2**20
    env = gym.make("SkillKitchenPixels-v0")
    assert env.observation_space.shape == (4, 64, 64, 3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8
    obs, _, _, _, info = env.step({"skill": 2, "arg": np.zeros(5, np.float32)})
    assert env.observation_space.contains(obs) and 1 <= info["skill_steps"] <= 30
    check_env(skill_env(env), skip_render_check=True)


def test_libraries_by_name():
    assert resolve_library(None) == resolve_library("default") == BUNDLED_LIBRARIES["state"]
    assert resolve_library("default", observation="pixels") == BUNDLED_LIBRARIES["pixels"]
    assert resolve_library(BUNDLED_LIBRARIES["state"]) == BUNDLED_LIBRARIES["state"]
    assert skill_env(gym.make("SkillKitchen-v0", library="default")).library_path == str(BUNDLED_LIBRARIES["state"])


@pytest.mark.parametrize("library", ["/nonexistent/library", "agnostc"])
def test_a_missing_library_error_names_the_choices(library):
    with pytest.raises(FileNotFoundError, match=r"missing.*'default'.*'agnostic'.*library folder"):
        resolve_library(library)
    with pytest.raises(FileNotFoundError, match="'agnostic'"):
        gym.make("SkillKitchen-v0", library=library)


def test_bundled_agnostic_library():
    size = sum(f.stat().st_size for f in NAMED_LIBRARIES["agnostic"].iterdir())
    assert size < 10 * 2**20
    assert sorted(f.name for f in NAMED_LIBRARIES["agnostic"].iterdir()) == [
        "config.json", "eval.json", "eval.png", "model.safetensors"]
    env = gym.make("SkillKitchen-v0", library="agnostic", tasks=["hinge cabinet", "top burner"])
    assert skill_env(env).library_path == str(NAMED_LIBRARIES["agnostic"])
    obs, _ = env.reset(seed=0)
    obs, _, _, _, info = env.step({"skill": 0, "arg": np.zeros(skill_env(env).library.config.z_dim, np.float32)})
    assert env.observation_space.contains(obs) and 1 <= info["skill_steps"] <= 30
    check_env(skill_env(env), skip_render_check=True)


def test_low_level_steps_errors_name_low_level_steps():
    with pytest.raises(ValueError, match=r"low_level_steps must be an int >= 1.*got 0"):
        gym.make("SkillKitchen-v0", low_level_steps=0)
    with pytest.raises(ValueError, match="low_level_steps"):
        gym.make("SkillKitchen-v0", low_level_steps=2.5)


def test_tasks_as_a_string_names_a_task_order():
    from skillgym.tasks.kitchen import TASK_SUITE

    env = gym.make("SkillKitchen-v0", tasks="kettle-cabinets", low_level_steps=20)
    assert env.unwrapped.tasks == TASK_SUITE["kettle-cabinets"]
    assert gym.make("SkillKitchen-v0", tasks="kettle+microwave").unwrapped.tasks == ("kettle", "microwave")
    with pytest.raises(ValueError, match=r"tasks='kettle-cabinetz'.*'kettle-cabinets'.*list of subtask names"):
        gym.make("SkillKitchen-v0", tasks="kettle-cabinetz")


@pytest.mark.parametrize("env_id", ["SkillKitchen-v0", "SkillLibero-Spatial-v0"])
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"progress_threshold": 0.0}, r"progress_threshold must be a number in \(0, 1\].*got 0.0"),
    ({"progress_threshold": 1.5}, "progress_threshold"),
    ({"max_skill_steps": 0}, r"max_skill_steps must be an int >= 1.*got 0"),
])
def test_skill_options_out_of_range_are_refused_not_defaulted(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message):  # before any simulator (LIBERO need not be installed)
        gym.make(env_id, **kwargs)


def test_progress_threshold_none_runs_fixed_length_skills():
    assert skill_env(gym.make("SkillKitchen-v0")).progress_threshold == 0.95
    env = gym.make("SkillKitchen-v0", progress_threshold=None, max_skill_steps=3, low_level_steps=20)
    assert skill_env(env).progress_threshold is None
    env.reset(seed=0)
    for skill in range(4):
        assert env.step({"skill": skill, "arg": np.zeros(5, np.float32)})[-1]["skill_steps"] == 3


def test_skill_kitchen_takes_a_library_made_in_python():
    from skillgym.skills.config import LibraryConfig

    library = SkillLibrary.build(LibraryConfig(num_skills=3, max_skill_steps=5))
    env = gym.make("SkillKitchen-v0", library=library)
    try:
        assert env.action_space["skill"].n == 3 and env.get_wrapper_attr("library") is library
        env.reset(seed=0)
        _, _, _, _, info = env.step({"skill": 1, "arg": np.zeros(library.z_dim, np.float32)})
        assert 1 <= info["skill_steps"] <= 5
    finally:
        env.close()
