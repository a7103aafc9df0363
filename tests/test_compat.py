"""The skill env from stock agents and gymnasium tools, as docs/guides/agents.md and videos.md claim.

Gymnasium's SyncVectorEnv / AsyncVectorEnv of flattened kitchens (skills of different lengths in one
vector step) are tested in tests/test_flatten_skill_action.py::test_gymnasium_vector_envs, SB3's
SubprocVecEnv in ::test_sb3_subproc_vec_env.
"""

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import TQC
from stable_baselines3 import PPO, SAC, TD3

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.envs import FlattenSkillAction, RecordSkillVideo
from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import SkillSAC

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cleanrl_sac_skill.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def short_skill_kitchen() -> FlattenSkillAction:
    """SkillKitchen-v0 with 2-step skills and 40-step episodes: the same spaces, a fast test."""
    return FlattenSkillAction(gym.make("SkillKitchen-v0", max_skill_steps=2, low_level_steps=40))


@pytest.mark.parametrize(
    ("algo", "kwargs"),
    [
        (SAC, {"learning_starts": 50, "batch_size": 32}),
        (TD3, {"learning_starts": 50, "batch_size": 32}),
        (TQC, {"learning_starts": 50, "batch_size": 32}),
        (PPO, {"n_steps": 100, "batch_size": 50, "n_epochs": 2}),
    ],
    ids=["SAC", "TD3", "TQC", "PPO"],
)
def test_stock_sb3_agents_learn_on_the_flat_view(algo, kwargs):
    env = short_skill_kitchen()
    model = algo("MlpPolicy", env, seed=0, policy_kwargs={"net_arch": [64, 64]}, **kwargs).learn(200)
    assert model.num_timesteps == 200
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    _, _, _, _, info = env.step(action)
    assert info["skill"] == int(np.argmax(action[:8])) and info["skill_steps"] >= 1


def test_record_skill_video_writes_every_low_level_frame(tmp_path):
    import imageio_ffmpeg  # moviepy's ffmpeg (the `test` extra installs moviepy)
    env = gym.make("SkillKitchen-v0", record_frames=True, render_mode="rgb_array", low_level_steps=30)
    env = RecordSkillVideo(env, str(tmp_path), episode_trigger=lambda episode: episode == 0)
    env.reset(seed=0)
    env.action_space.seed(0)
    frames, done = 1, False  # the reset frame
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        frames += info["skill_steps"]
        done = terminated or truncated
    assert not list(tmp_path.glob("*.mp4"))  # written by the next reset or by close
    env.reset()
    env.close()
    (video,) = tmp_path.glob("*.mp4")
    assert video.name == "rl-video-episode-0.mp4"
    n_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert n_frames == frames > 2
    assert seconds == pytest.approx(frames / env.metadata["render_fps"], abs=0.1)


def load_example():
    found = importlib.util.spec_from_file_location("cleanrl_sac_skill", EXAMPLE)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def test_cleanrl_style_sac_example_on_the_kitchen(capsys):
    example = load_example()
    args = example.Args(total_timesteps=200, learning_starts=50, batch_size=32, num_envs=2, seed=0)
    result = example.main(args)
    assert result["env_steps"] == 200 and result["low_level_steps"] >= 200
    assert result["episodic_returns"] and all(np.isfinite(result["episodic_returns"]))
    assert f"low_level_steps={result['low_level_steps']}" in capsys.readouterr().out


def test_cleanrl_style_sac_example_acts_in_the_library_it_is_given():
    env = load_example().make_env("SkillKitchen-v0", 0, "agnostic")()
    assert env.get_wrapper_attr("library_path").endswith("kitchen-agnostic")
    env.close()


def test_cleanrl_style_sac_example_stores_no_transition_across_episodes(monkeypatch):
    """A toy skill env whose state counts up by one per decision and restarts at random on reset."""
    n_states = 50
    gym.register("test/CountingSkills-v0",
                 entry_point=lambda: ToySkillEnv(n_states=n_states, max_decisions=5, terminate_skill=3))
    example = load_example()
    stored = []

    class RecordingBuffer(example.ReplayBuffer):
        def add(self, obs, next_obs, action, reward, done, infos):
            stored.append((int(np.argmax(obs)), int(np.argmax(next_obs))))
            super().add(obs, next_obs, action, reward, done, infos)

    monkeypatch.setattr(example, "ReplayBuffer", RecordingBuffer)
    args = example.Args(env_id="test/CountingSkills-v0", total_timesteps=120, learning_starts=40,
                        batch_size=16, num_envs=2, seed=3)
    try:
        first = example.main(args)
        assert len(first["episodic_returns"]) > 10  # episodes truncated and terminated
        assert all(after == (before + 1) % n_states for before, after in stored)
        assert 0 < 120 - len(stored) <= len(first["episodic_returns"])  # the reset steps were skipped
        assert example.main(args)["episodic_returns"] == first["episodic_returns"]  # seeded
    finally:
        del gym.registry["test/CountingSkills-v0"]


@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP])
def test_gymnasium_vector_autoreset_has_no_final_observation_info(mode):
    """CleanRL's scripts read infos["final_observation"] (gymnasium 0.29); gymnasium >= 1.0 has none."""
    envs = gym.vector.SyncVectorEnv([lambda: FlattenSkillAction(ToySkillEnv(max_decisions=3))],
                                    autoreset_mode=mode)
    obs, _ = envs.reset(seed=0)
    action = np.zeros((1, 6), np.float32)
    for _ in range(3):
        last_obs = obs
        obs, _, _, truncations, infos = envs.step(action)
    assert truncations[0] and "final_observation" not in infos
    if mode == gym.vector.AutoresetMode.NEXT_STEP:  # the episode's last obs; the next step resets
        assert "final_obs" not in infos
        np.testing.assert_array_equal(obs[0], np.roll(last_obs[0], 1))
        obs, rewards, terminations, truncations, infos = envs.step(action)
        assert rewards[0] == 0 and not terminations[0] and not truncations[0] and "skill_steps" not in infos
    else:  # the reset obs; the last one in infos["final_obs"]
        np.testing.assert_array_equal(infos["final_obs"][0], np.roll(last_obs[0], 1))
    envs.close()


def test_gymnasium_vector_env_takes_skill_sac_batched_dict_actions():
    envs = gym.vector.SyncVectorEnv([ToySkillEnv, ToySkillEnv])
    model = SkillSAC("SkillPolicy", ToySkillEnv(), seed=0)
    obs, _ = envs.reset(seed=0)
    actions, _ = model.predict(obs)
    assert actions.to_dict()["skill"].shape == (2,) and actions.to_dict()["arg"].shape == (2, 2)
    _, rewards, _, _, infos = envs.step(actions.to_dict())
    np.testing.assert_array_equal(infos["skill_steps"], actions["skill"] + 1)  # toy skill d runs d + 1 steps
    assert rewards.shape == (2,)
    envs.close()
