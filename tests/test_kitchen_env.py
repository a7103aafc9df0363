import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from skillgym.tasks.kitchen import DEFAULT_TASKS, TASK_SUITE, KitchenTaskEnv


@pytest.fixture(scope="module")
def pixel_env():
    env = KitchenTaskEnv(pixels=True, image_size=64, frame_stack=4)
    yield env
    env.close()


def test_state_env_is_seeded_and_truncates_at_limit():
    env = KitchenTaskEnv(max_episode_steps=5)
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (59,)
    for _t in range(5):
        obs, reward, terminated, truncated, info = env.step(np.zeros(9, np.float32))
    assert truncated and not terminated  # a time limit is truncation
    assert info["completed_tasks"] == [] and reward == 0.0


def test_pixel_observation_stacks_frames(pixel_env):
    obs, _ = pixel_env.reset(seed=0)
    assert obs["pixels"].shape == (4, 64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert obs["pixels"].std() > 10  # a real rendered scene, not a black image
    np.testing.assert_array_equal(obs["pixels"][0], obs["pixels"][3])  # reset fills the stack
    obs2, *_ = pixel_env.step(np.ones(9, np.float32))
    np.testing.assert_array_equal(obs2["pixels"][2], obs["pixels"][3])
    assert np.abs(obs2["pixels"][3].astype(int) - obs2["pixels"][2]).max() > 0


def test_restoring_a_sim_state_reproduces_its_frame(pixel_env):
    pixel_env.reset(seed=1)
    for _ in range(5):
        obs, *_ = pixel_env.step(pixel_env.action_space.sample())
    saved, frame = pixel_env.get_sim_state(), obs["pixels"][-1]
    for _ in range(5):
        pixel_env.step(pixel_env.action_space.sample())
    pixel_env.set_sim_state(saved)
    assert np.abs(pixel_env.render_frame().astype(int) - frame).max() <= 2


def test_ordered_reward_counts_only_the_next_subtask():
    env = KitchenTaskEnv(tasks=("kettle", "microwave"), ordered=True)
    env.reset(seed=0)
    microwave_joint = 22  # qpos index of the microwave door hinge
    state = env.get_sim_state()
    state[microwave_joint] = -0.7  # open the microwave first: out of order, no reward
    env.set_sim_state(state)
    _, reward, terminated, _, info = env.step(np.zeros(9, np.float32))
    assert env.task_done("microwave")
    assert reward == 0.0 and info["completed_tasks"] == [] and not terminated

    unordered = KitchenTaskEnv(tasks=("kettle", "microwave"), ordered=False)
    unordered.reset(seed=0)
    unordered.set_sim_state(state)
    _, reward, *_ = unordered.step(np.zeros(9, np.float32))
    assert reward == 1.0


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="tasks must be distinct"):
        KitchenTaskEnv(tasks=("microwave", "toaster"))
    env = KitchenTaskEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(7))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(9, np.nan))
    assert DEFAULT_TASKS == ("microwave", "kettle", "bottom burner", "light switch")


def test_tasks_as_a_string_is_a_task_order_not_its_characters():
    env = KitchenTaskEnv(tasks="kettle-cabinets")
    assert env.tasks == TASK_SUITE["kettle-cabinets"]
    env.set_tasks("default")
    assert env.tasks == DEFAULT_TASKS
    env.set_tasks("microwave + kettle")
    assert env.tasks == ("microwave", "kettle")
    with pytest.raises(ValueError, match=r"tasks='kettle-cabinetz': unknown task.*list of subtask names"):
        env.set_tasks("kettle-cabinetz")
    with pytest.raises(ValueError, match=r"tasks='kettle\+toaster'"):
        env.set_tasks("kettle+toaster")
    assert env.tasks == ("microwave", "kettle")  # a refused change leaves the tasks alone
    with pytest.raises(ValueError, match="in order"):
        env.set_tasks({"kettle", "microwave"})  # a set has no order


def test_new_tasks_wait_for_the_next_reset():
    env = KitchenTaskEnv(tasks=("microwave", "kettle"))
    env.reset(seed=0)
    state = env.get_sim_state()
    state[22] = -0.7  # the microwave door open: the first subtask done
    env.set_sim_state(state)
    env.step(np.zeros(9, np.float32))
    env.set_tasks(("light switch",))
    _, reward, terminated, _, info = env.step(np.zeros(9, np.float32))
    assert env.tasks == ("microwave", "kettle") and not terminated and info["completed_tasks"] == ["microwave"]
    env.reset(seed=0)
    assert env.tasks == ("light switch",)


def test_a_subtask_done_early_scores_once_those_before_it_are_done():
    env = KitchenTaskEnv(tasks=("kettle", "microwave"))  # imports gymnasium_robotics without its notice
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    env.reset(seed=0)
    state = env.get_sim_state()
    state[22] = -0.7  # microwave first: no reward yet
    env.set_sim_state(state)
    assert env.step(np.zeros(9, np.float32))[1] == 0.0
    state = env.get_sim_state()
    state[OBS_ELEMENT_INDICES["kettle"]] = OBS_ELEMENT_GOALS["kettle"]  # then the kettle: both score, as in D4RL
    env.set_sim_state(state)
    _, reward, terminated, _, info = env.step(np.zeros(9, np.float32))
    assert reward == 2.0 and terminated and info["completed_tasks"] == ["kettle", "microwave"]


def test_the_last_subtask_done_on_the_last_step_ends_the_episode_as_terminated_not_truncated():
    env = KitchenTaskEnv(tasks=("microwave",), max_episode_steps=1)
    env.reset(seed=0)
    state = env.get_sim_state()
    state[22] = -0.7  # the microwave door open
    env.set_sim_state(state)
    _, reward, terminated, truncated, _ = env.step(np.zeros(9, np.float32))
    assert (reward, terminated, truncated) == (1.0, True, False)


def integration_state(env: KitchenTaskEnv) -> np.ndarray:
    """Everything MuJoCo's next step reads, not just qpos and qvel."""
    saved_fields = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(env.model, saved_fields))
    mujoco.mj_getState(env.model, env.data, state, saved_fields)
    return state


def test_deferred_frames_equal_frames_rendered_every_step():
    every, deferred = (KitchenTaskEnv(pixels=True, image_size=32, frame_stack=3) for _ in range(2))
    for seed in (0, 1):  # the second reset refills a stack that holds deferred frames
        every.reset(seed=seed)
        deferred.reset(seed=seed)
        actions = np.random.default_rng(seed).uniform(-1, 1, (7, 9)).astype(np.float32)
        for t, action in enumerate(actions):
            expected, *rest = every.step(action)
            obs, *deferred_rest = deferred.step_without_pixels(action)
            assert sorted(obs) == ["state"] and deferred_rest == rest
            np.testing.assert_array_equal(obs["state"], expected["state"])
            if t in (1, 2, 6):  # stacks of: the reset frame + new ones, cached + a new one, all new
                np.testing.assert_array_equal(deferred.current_observation()["pixels"], expected["pixels"])
            np.testing.assert_array_equal(integration_state(deferred), integration_state(every))
    every.close()
    deferred.close()


def test_a_script_that_never_closes_its_rendering_envs_exits_quietly_and_prints_no_notice():
    script = ("import gymnasium as gym, skillgym\n"
              "gym.make('SkillKitchenPixels-v0').reset(seed=0)\n"
              "env = gym.make('SkillKitchen-v0', render_mode='rgb_array')\n"
              "env.reset(seed=0)\n"
              "print(env.render().shape)\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], env={**os.environ, "MUJOCO_GL": "egl"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "(64, 64, 3)", done.stderr[-2000:]
    assert "Exception ignored" not in done.stderr and "Error" not in done.stderr, done.stderr[-2000:]
    assert "AdroitHand" not in done.stderr  # gymnasium-robotics' notice about envs skillgym never makes
