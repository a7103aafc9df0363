from unittest import mock

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.skills.config import LibraryConfig
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import KitchenTaskEnv


def make_library(progress_bias: float | None = None, max_skill_steps: int = 10, **kwargs) -> SkillLibrary:
    library = SkillLibrary.build(LibraryConfig(num_skills=4, max_skill_steps=max_skill_steps, **kwargs), seed=0)
    if progress_bias is not None:  # pin the progress head: ~1 at once, or ~0 forever
        with torch.no_grad():
            library.decoder.head.weight[-1].zero_()
            library.decoder.head.bias[-1] = progress_bias
    return library


def make_env(progress_bias: float | None = None, max_episode_steps: int = 280, **kwargs) -> SkillSpaceEnv:
    low = KitchenTaskEnv(max_episode_steps=max_episode_steps)
    return SkillSpaceEnv(low, make_library(progress_bias), **kwargs)


def act(skill: int = 1) -> dict:
    return {"skill": skill, "arg": np.zeros(5, np.float32)}


def test_spaces_and_checker():
    env = make_env()
    assert env.action_space["skill"].n == 4
    assert env.action_space["arg"].shape == (5,) and env.observation_space.shape == (59,)
    check_env(env, skip_render_check=True)


def test_progress_stop_and_cap():
    early = make_env(progress_bias=20.0)
    early.reset(seed=0)
    *_, info = early.step(act())
    assert info["skill_steps"] == 1

    never = make_env(progress_bias=-20.0)
    never.reset(seed=0)
    *_, info = never.step(act())
    assert info["skill_steps"] == 10  # the library's cap
    capped = make_env(progress_bias=-20.0, max_skill_steps=4)
    capped.reset(seed=0)
    assert capped.step(act())[-1]["skill_steps"] == 4


def test_rewards_are_the_low_level_sums():
    """Replay the decoded actions on a raw env with the same seed: same rewards, same state."""
    env = make_env(progress_bias=-20.0)
    raw = KitchenTaskEnv()
    env.reset(seed=4)
    raw.reset(seed=4)
    # Put the microwave door on the verge of its goal so the skill's first steps score.
    state = raw.get_sim_state()
    state[22] = -0.9
    for e in (env.unwrapped, raw):
        e.set_sim_state(state)
    _, reward, _, _, info = env.step(act(2))
    actions, _ = env.library.decode(np.array([2]), np.zeros((1, 5), np.float32))
    rewards = [raw.step(a)[1] for a in actions[0, : info["skill_steps"]]]
    assert reward == pytest.approx(sum(rewards)) and reward >= 1.0
    assert info["skill_rewards"].dtype == np.float64
    np.testing.assert_array_equal(info["skill_rewards"][: info["skill_steps"]], rewards)
    assert info["skill_rewards"].shape == (env.max_skill_steps,) and not info["skill_rewards"][info["skill_steps"]:].any()
    np.testing.assert_allclose(env.unwrapped.get_sim_state(), raw.get_sim_state())


def test_time_limit_is_truncation_not_termination():
    env = make_env(progress_bias=-20.0, max_episode_steps=25)
    env.reset(seed=0)
    results = [env.step(act()) for _ in range(3)]
    assert [r[-1]["skill_steps"] for r in results] == [10, 10, 5]
    _, _, terminated, truncated, _ = results[-1]
    assert truncated and not terminated


@pytest.mark.parametrize(
    "action, message",
    [
        ([1, 0, 0], "dict"),
        ({"skill": 1}, "keys"),
        ({"skill": 1, "arg": np.zeros(5, np.float32), "extra": 0}, "keys"),
        ({"skill": 9, "arg": np.zeros(5, np.float32)}, "outside"),
        ({"skill": 4, "arg": np.zeros(5, np.float32)}, r"outside \[0, 4\)"),  # one past the last skill
        ({"skill": -1, "arg": np.zeros(5, np.float32)}, "outside"),
        ({"skill": 1.5, "arg": np.zeros(5, np.float32)}, "integer"),
        ({"skill": 1, "arg": np.zeros(3, np.float32)}, "shape"),
        ({"skill": 1, "arg": np.zeros(5, np.int64)}, "float"),
        ({"skill": 1, "arg": np.array([0, 0, np.nan, 0, 0], np.float32)}, "NaN"),
        ({"skill": 1, "arg": np.array([0, 0, np.inf, 0, 0], np.float32)}, "NaN or inf"),
    ],
)
def test_bad_actions_raise_and_leave_the_simulator_untouched(action, message):
    env = make_env()
    env.reset(seed=0)
    before = env.unwrapped.get_sim_state()
    with pytest.raises(ValueError, match=message):
        env.step(action)
    np.testing.assert_array_equal(env.unwrapped.get_sim_state(), before)
    env.step(act())  # still steps normally afterwards


def test_out_of_box_arguments_are_clipped():
    env = make_env()
    env.reset(seed=0)
    *_, info = env.step({"skill": np.int64(1), "arg": np.full(5, 100.0, np.float32)})
    assert np.all(info["arg"] == env.action_space["arg"].high)


def test_seeding_reproduces_episodes():
    def episode(seed):
        env = make_env()
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for _ in range(3):
            obs, *_ = env.step(env.action_space.sample())
            trace.append(obs)
        return np.array(trace)

    np.testing.assert_array_equal(episode(7), episode(7))
    assert not np.array_equal(episode(7), episode(8))


def test_observation_mismatch_is_explained():
    pixels = make_library(obs_kind="pixels", image_size=64, frame_stack=4)
    with pytest.raises(ValueError, match="priors expect"):
        SkillSpaceEnv(KitchenTaskEnv(), pixels)


def test_pixel_library_gets_stacked_frames():
    pixels = make_library(obs_kind="pixels", image_size=64, frame_stack=4, progress_bias=-20.0)
    env = SkillSpaceEnv(KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4), pixels, max_skill_steps=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 64, 64, 3) and obs.dtype == np.uint8
    obs, *_ = env.step(act())
    logits, mean, log_std = env.library.prior(obs[None])
    assert logits.shape == (1, 4) and mean.shape == (1, 4, 5)


def test_pixel_library_with_state_decoder_feeds_the_decoder_the_state():
    library = make_library(obs_kind="pixels", image_size=64, frame_stack=4, decoder="closed_loop",
                           decoder_obs="state", progress_bias=-20.0)
    seen = []
    step = library.step
    library.step = lambda state, obs: (seen.append(obs.shape), step(state, obs))[1]
    env = SkillSpaceEnv(KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4), library, max_skill_steps=3)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(act())
    assert obs.shape == (4, 64, 64, 3)  # the agent sees frames
    assert seen == [(1, 59)] * 3  # the decoder sees the state, every step


def test_record_frames_without_a_rendering_env_is_refused():
    with pytest.raises(ValueError, match="record_frames needs a low-level env that renders frames"):
        SkillSpaceEnv(KitchenTaskEnv(), make_library(), record_frames=True)


def test_record_frames_returns_every_low_level_frame():
    low = KitchenTaskEnv(render_mode="rgb_array", image_size=32)
    env = SkillSpaceEnv(low, make_library(progress_bias=-20.0), record_frames=True, max_skill_steps=6)
    env.reset(seed=0)
    *_, info = env.step(act())
    assert len(info["frames"]) == 6 and info["frames"][0].shape == (32, 32, 3)


def test_pixels_rendered_at_skill_ends_equal_pixels_rendered_every_step():
    """The bundled pixel library (closed-loop decoder on the state): only the final stacks are rendered."""
    if not BUNDLED_LIBRARIES["pixels"].is_dir():
        pytest.skip("no bundled pixel library in this checkout")
    library = SkillLibrary.load(BUNDLED_LIBRARIES["pixels"])

    def low() -> KitchenTaskEnv:
        return KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4)

    # A plain wrapper hides step_without_pixels: that env renders every low-level step.
    every = SkillSpaceEnv(gym.Wrapper(low()), library, max_skill_steps=6)
    fast = SkillSpaceEnv(low(), library, max_skill_steps=6)
    def integration_state(env: SkillSpaceEnv) -> np.ndarray:
        model, data = env.unwrapped.model, env.unwrapped.data
        state = np.empty(mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION))
        mujoco.mj_getState(model, data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        return state

    rng = np.random.default_rng(0)
    low_steps = 0
    renderer = fast.unwrapped._renderer
    with (mock.patch.object(renderer, "render", wraps=renderer.render) as render,
          mock.patch.object(renderer, "render_snapshot", wraps=renderer.render_snapshot) as render_snapshot):
        for seed, skills in ((0, 3), (1, 2)):  # the second reset refills the stack
            expected, _ = every.reset(seed=seed)
            obs, _ = fast.reset(seed=seed)
            np.testing.assert_array_equal(obs, expected)
            for _ in range(skills):
                action = {"skill": int(rng.integers(8)), "arg": rng.normal(size=5).astype(np.float32)}
                expected, *expected_rest, expected_info = every.step(action)
                obs, *rest, info = fast.step(action)
                np.testing.assert_array_equal(obs, expected)
                assert rest == expected_rest and info.keys() == expected_info.keys()
                for key in ("skill_steps", "skill_rewards", "completed_tasks"):
                    np.testing.assert_array_equal(info[key], expected_info[key])
                low_steps += info["skill_steps"]
                np.testing.assert_array_equal(integration_state(fast), integration_state(every))
    assert render.call_count == 2  # the resets
    assert render_snapshot.call_count <= 4 * 5 < low_steps


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"progress_threshold": 0.0}, "progress_threshold"),
    ({"progress_threshold": -0.5}, "progress_threshold"),
    ({"progress_threshold": 1.01}, "progress_threshold"),
    ({"progress_threshold": float("nan")}, "progress_threshold"),
    ({"progress_threshold": "0.9"}, "progress_threshold"),
    ({"progress_threshold": True}, "progress_threshold"),
    ({"max_skill_steps": 0}, "max_skill_steps"),
    ({"max_skill_steps": -3}, "max_skill_steps"),
    ({"max_skill_steps": 2.5}, "max_skill_steps"),
])
def test_out_of_range_skill_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SkillSpaceEnv(KitchenTaskEnv(), make_library(), **kwargs)


def test_progress_threshold_none_ignores_progress():
    """None: fixed-length skills, even from a progress head that says "done" at once."""
    env = make_env(progress_bias=20.0, progress_threshold=None)
    env.reset(seed=0)
    assert env.step(act())[-1]["skill_steps"] == 10
    capped = make_env(progress_bias=20.0, progress_threshold=None, max_skill_steps=np.int64(4))
    capped.reset(seed=0)
    assert capped.step(act())[-1]["skill_steps"] == 4 and capped.max_skill_steps == 4


def test_toy_env_refuses_an_obs_dim_below_its_states():
    from skillgym.envs.toy import ToySkillEnv

    assert ToySkillEnv(n_states=3).observation_space.shape == (3,)
    assert ToySkillEnv(n_states=3, obs_dim=5).observation_space.shape == (5,)
    with pytest.raises(ValueError, match=r"obs_dim must be >= n_states = 3.*got 0"):
        ToySkillEnv(n_states=3, obs_dim=0)


def _own_skills_example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "own_skills.py"
    found = importlib.util.spec_from_file_location("own_skills", path)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def test_skills_of_ones_own_run_in_the_skill_space_and_train_a_stock_agent():
    from stable_baselines3 import SAC

    from skillgym.envs import FlattenSkillAction
    from skillgym.rl import SkillSAC

    example = _own_skills_example()
    env = SkillSpaceEnv(KitchenTaskEnv(), example.JointSkills())
    check_env(env, skip_render_check=True)
    assert env.action_space["skill"].n == 14 and env.action_space["arg"].high.tolist() == [1.0]
    start, _ = env.reset(seed=0)
    obs, _, _, _, info = env.step({"skill": 0, "arg": np.ones(1, np.float32)})
    assert info["skill_steps"] == 10 and obs[0] < start[0]  # skill 0 moved joint 0 down for its 10 steps
    flat = FlattenSkillAction(env)
    SAC("MlpPolicy", flat, learning_starts=5, batch_size=8, seed=0).learn(12)
    with pytest.raises(ValueError, match="skills have no priors, which SkillSAC starts from; act in their space with "
                                         "FlattenSkillAction"):
        SkillSAC("SkillPolicy", env)
    env.close()


def test_an_object_that_is_no_skill_set_is_refused_naming_what_it_lacks():
    class Half:
        num_skills, z_dim = 3, 2

    with pytest.raises(TypeError, match="Half has no max_skill_steps, observation_space, start, step"):
        SkillSpaceEnv(KitchenTaskEnv(), Half())
