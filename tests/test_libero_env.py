"""The LIBERO task env on the real simulation: observations, seeding, the predicate reward, the checkers, skill envs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from libero_support import require_libero

import skillgym  # noqa: F401
from skillgym.skills.library import LibraryConfig, SkillLibrary
from skillgym.tasks.libero import STATE_DIM, LiberoTaskEnv


@pytest.fixture(scope="module")
def env():
    require_libero()
    env = LiberoTaskEnv("libero_spatial", task=0)
    yield env
    env.close()


def test_observations_and_seeded_resets(env):
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["pixels"].shape == (2, 84, 84, 3) and obs["state"].shape == (STATE_DIM,)
    assert np.array_equal(obs["pixels"][0], obs["pixels"][1])  # the stack starts full of the first frame
    assert info["instruction"].startswith("pick the akita black bowl") and info["num_predicates"] == 1
    again, info_again = env.reset(seed=0)
    assert info_again["init_state"] == info["init_state"]
    assert all(np.array_equal(obs[k], again[k]) for k in obs)
    other = {env.reset(seed=s)[1]["init_state"] for s in range(1, 6)}
    assert len(other) > 1
    chosen, chosen_info = env.reset(seed=0, options={"init_state": 7})
    assert chosen_info["init_state"] == 7 and not np.array_equal(chosen["state"], obs["state"])
    # the upright frame: the table (bright, wood) fills the bottom rows, the robot and the wall the top
    frame = obs["pixels"][-1].astype(float)
    assert frame[-10:].mean() > frame[:10].mean()


@pytest.mark.parametrize("options, message", [({"tsak": 5}, r"unknown reset options \['tsak'\]"),
                                              ({"init_state": 1.5}, "init_state must be an integer index"),
                                              ({"init_state": True}, "init_state must be an integer index"),
                                              ({"init_state": 10**6}, "init_state must be in")])
def test_reset_options_are_checked(env, options, message):
    with pytest.raises(ValueError, match=message):
        env.reset(seed=0, options=options)


def test_steps_move_the_arm_and_truncate_at_the_limit(env):
    obs, _ = env.reset(seed=1)
    limit, env.max_episode_steps = env.max_episode_steps, 4
    try:
        for t in range(4):
            after, reward, terminated, truncated, info = env.step(np.array([0, 0, 1, 0, 0, 0, -1], np.float32))
            assert reward == 0.0 and not terminated and truncated == (t == 3)
    finally:
        env.max_episode_steps = limit
    assert after["state"][9] > obs["state"][9] + 0.01  # the end effector rose (ee_pos z)
    assert not np.array_equal(after["pixels"][0], after["pixels"][1])
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))


def test_a_goal_predicate_pays_once_and_success_terminates(env):
    env.reset(seed=2)
    (predicate,) = env.goal_predicates()
    assert predicate[0] == "on"
    robosuite_env = env.robosuite_env
    bowl, plate = robosuite_env.get_object(predicate[1]), predicate[2]
    sim = robosuite_env.sim
    target = sim.data.body_xpos[robosuite_env.obj_body_id[plate]] + np.array([0.0, 0.0, 0.03])
    quat = sim.data.get_joint_qpos(bowl.joints[-1])[3:]
    sim.data.set_joint_qpos(bowl.joints[-1], np.concatenate([target, quat]))
    sim.forward()
    rewards, terminated = [], False
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(np.zeros(7, np.float32))
        rewards.append(reward)
        if terminated:
            break
    assert terminated and info["success"] and info["satisfied"] == 1
    assert sum(rewards) == 1.0 and rewards[-1] == 1.0


def test_the_env_passes_gymnasiums_checker(env):
    check_env(env, skip_render_check=True)


def test_skill_libero_without_a_library_says_how_to_make_one():
    with pytest.raises(ValueError, match=r"library=DIR.*skillgym data libero"):
        gym.make("SkillLibero-Goal-v0")


def test_skill_libero_with_a_state_library_renders_no_frames(tmp_path):
    require_libero()
    library = SkillLibrary.build(LibraryConfig(num_skills=3, state_dim=STATE_DIM, action_dim=7, max_skill_steps=5))
    library.save(tmp_path / "library")
    env = gym.make("SkillLibero-Spatial-v0", library=str(tmp_path / "library"), task=0, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (STATE_DIM,) and "pixels" not in env.unwrapped.observation_space.spaces
    obs, reward, terminated, truncated, info = env.step({"skill": 1, "arg": np.zeros(5, np.float32)})
    assert 1 <= info["skill_steps"] <= 5 and "success" in info and env.observation_space.contains(obs)
    assert env.render().shape == (84, 84, 3)  # drawn on demand
    env.close()


def test_a_scripted_episode_puts_the_bowl_on_the_plate(env):
    from skillgym.data.libero import record_libero_episode
    from skillgym.data.libero_scripted import PHASES

    episode, success = record_libero_episode(env, task=0, index=0, seed=0)
    assert success and episode.instruction == env.instruction
    episode.validate()
    t = episode.num_steps
    assert 60 < t < 300 and episode.frames.shape == (t + 1, 84, 84, 3) and episode.states.shape == (t + 1, 15)
    assert episode.rewards.sum() == 1.0 and episode.terminations[-1]
    phases = [PHASES[i] for i in episode.subtasks]
    assert phases[0] == "reach" and "grasp" in phases and phases[-1] in ("lower", "release")
    assert np.all(np.diff(episode.subtasks) >= 0)  # the phases follow one another in order

    # --no-frames records the same episode without drawing a frame
    lean = LiberoTaskEnv("libero_spatial", task=0, frame_stack=1, pixels=False, embed_instruction=False)
    unframed, success = record_libero_episode(lean, task=0, index=0, seed=0)
    assert success and unframed.frames is None
    assert np.array_equal(unframed.states, episode.states) and np.array_equal(unframed.actions, episode.actions)
    lean.close()


def test_without_pixels_the_states_and_the_drawn_frame_match_the_rendering_env(env):
    lean = LiberoTaskEnv("libero_spatial", task=0, pixels=False)
    rendered, _ = env.reset(seed=3)
    state, _ = lean.reset(seed=3)
    assert "pixels" not in state and np.array_equal(state["state"], rendered["state"])
    assert lean.robosuite_env.sim._render_context_offscreen is None  # no renderer until a frame is asked for
    action = np.array([0.3, -0.2, 0.1, 0, 0, 0, -1.0])
    for _ in range(5):
        rendered, *_ = env.step(action)
        state, *_ = lean.step(action)
    assert np.array_equal(state["state"], rendered["state"])
    assert np.abs(lean.render_frame().astype(int) - rendered["pixels"][-1].astype(int)).mean() < 1.0
    # two renderers in one process: each env draws with its own (robosuite draws with the current one)
    rendered, *_ = env.step(action)
    lean.step(action)
    assert np.abs(lean.render_frame().astype(int) - rendered["pixels"][-1].astype(int)).mean() < 1.0
    lean.close()


def test_live_tasks_bounds_the_kept_simulations_and_a_rebuilt_task_replays_exactly():
    require_libero()
    env = LiberoTaskEnv("libero_spatial", task=None, pixels=False, embed_instruction=False, live_tasks=1)
    first, info = env.reset(seed=0, options={"task": 0})
    action = np.array([0.2, 0.1, -0.1, 0, 0, 0, 1.0])
    after = env.step(action)[0]
    np.random.seed(7)
    untouched = np.random.random()
    np.random.seed(7)
    env.reset(seed=0, options={"task": 1})
    assert list(env._envs) == [1]  # task 0's simulation was closed
    assert np.random.random() == untouched  # building task 1 left numpy's global generator as it was
    again, info_again = env.reset(seed=0, options={"task": 0})
    assert list(env._envs) == [0] and info_again["init_state"] == info["init_state"]
    assert np.array_equal(again["state"], first["state"]) and np.array_equal(env.step(action)[0]["state"], after["state"])
    with pytest.raises(ValueError, match="live_tasks"):
        LiberoTaskEnv("libero_spatial", live_tasks=0)
    env.close()


def test_object_positions_in_the_state_the_recording_and_a_state_library(tmp_path):
    require_libero()
    from skillgym.data.libero import LiberoDataArgs, record_libero_episode

    env = LiberoTaskEnv("libero_spatial", task=None, pixels=False, embed_instruction=False, object_positions=True,
                        live_tasks=1)
    assert env.objects == ("akita_black_bowl_1", "akita_black_bowl_2", "cookies_1", "glazed_rim_porcelain_ramekin_1",
                           "plate_1")
    obs, _ = env.reset(seed=0, options={"task": 0, "init_state": 0})
    assert obs["state"].shape == (STATE_DIM + 15,) and env.observation_space.contains(obs)
    raw = env.robosuite_env._get_observations(force_update=True)
    assert np.array_equal(obs["state"][STATE_DIM:STATE_DIM + 3], raw["akita_black_bowl_1_pos"])
    assert np.array_equal(obs["state"][-3:], raw["plate_1_pos"])
    moved, _ = env.reset(seed=0, options={"task": 0, "init_state": 1})
    assert not np.allclose(moved["state"][STATE_DIM:], obs["state"][STATE_DIM:])  # initial states move the objects
    env.close()
    recorder = LiberoTaskEnv("libero_spatial", task=0, frame_stack=1, embed_instruction=False, object_positions=True)
    episode, success = record_libero_episode(recorder, task=0, index=0, seed=0)
    assert success and episode.states.shape == (episode.num_steps + 1, STATE_DIM + 15)
    assert np.linalg.norm(episode.states[-1, -3:] - episode.states[0, -3:]) < 0.01  # the plate stays put
    recorder.close()

    with pytest.raises(ValueError, match="differ: fix one with task="):
        LiberoTaskEnv("libero_object", task=None, object_positions=True)
    fixed = LiberoTaskEnv("libero_object", task=0, object_positions=True)
    with pytest.raises(ValueError, match="other objects"):
        fixed.set_task(1)
    with pytest.raises(ValueError, match="scripted recordings"):
        LiberoDataArgs(out=tmp_path / "data", demos=(__file__,), object_positions=True)
    with pytest.raises(ValueError, match="scripted recordings"):
        LiberoDataArgs(out=tmp_path / "data", demos=(__file__,), frames=False)
    with pytest.raises(ValueError, match="--episodes, --seed apply to scripted recordings"):
        LiberoDataArgs(out=tmp_path / "data", demos=(__file__,), episodes=3, seed=1)

    library = SkillLibrary.build(LibraryConfig(num_skills=3, state_dim=STATE_DIM + 15, action_dim=7, max_skill_steps=5))
    library.save(tmp_path / "library")
    skill_env = gym.make("SkillLibero-Spatial-v0", library=str(tmp_path / "library"), task=0)
    obs, _ = skill_env.reset(seed=0)
    assert obs.shape == (STATE_DIM + 15,)
    check_env(skill_env.unwrapped, skip_render_check=True)
    skill_env.close()
    SkillLibrary.build(LibraryConfig(num_skills=3, state_dim=STATE_DIM + 4, action_dim=7)).save(tmp_path / "odd")
    with pytest.raises(ValueError, match=r"observes a 19-d state.*observes 30"):
        gym.make("SkillLibero-Spatial-v0", library=str(tmp_path / "odd"), task=0)


def test_train_rl_on_libero_continues_to_the_numbers_of_an_uninterrupted_run(tmp_path):
    require_libero()
    import json
    import os
    import subprocess
    import sys

    from skillgym.rl import SkillSAC
    from skillgym.rl.checkpoint import policy_digest

    def train_rl(out: str, steps: int) -> tuple[dict, str]:
        # Each run in a process of its own: a process builds LIBERO's tasks afresh, as one continuing a cut run does.
        subprocess.run([sys.executable, "-m", "skillgym.cli", "train-rl", "SkillLibero-Spatial-v0", "--steps",
                        str(steps), "--learning-starts", "10", "--eval-every", "300", "--eval-episodes", "1", "--out",
                        str(tmp_path / out)], env={**os.environ, "MUJOCO_GL": "egl"}, check=True,
                       capture_output=True)
        curve = json.loads((tmp_path / out / "result.json").read_text())["curve"]
        return [{k: v for k, v in p.items() if k != "wall_seconds"} for p in curve], \
            policy_digest(SkillSAC.load(tmp_path / out / "skillsac"))

    # Episodes of 300 low-level steps: the cut run's checkpoint is at the end of the first one.
    straight = train_rl("straight", 400)
    train_rl("cut", 320)
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["extra"]["low_level_steps"] == 300
    assert train_rl("cut", 400) == straight


def test_a_recording_where_no_attempt_succeeds_says_so_and_writes_nothing(tmp_path, capsys):
    require_libero()
    from skillgym.cli import main

    out = tmp_path / "data"
    with pytest.raises(SystemExit) as exit_info:  # the one attempt at task 5 with seed 13 fails
        main(["data", "libero", "--out", str(out), "--tasks", "5", "--episodes", "1", "--seed", "13", "--no-frames"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no attempt succeeded (" in err and " 0/1), so there is no dataset" in err
    assert not out.exists()
