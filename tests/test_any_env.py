"""Offline data in from an env other than the kitchen: Reacher-v5 demonstrations as Minari datasets
-> skill extraction -> a skill library -> SkillSpaceEnv on Reacher -> SkillSAC.

Two datasets of the same scripted rollouts: the common flat layout (observations one (T+1, 10)
array, written by Minari itself), and Dict(state, pixels) with rendered frames for an image encoder.
"""

from __future__ import annotations

import os

import gymnasium as gym
import minari
import numpy as np
import pytest
from minari.data_collector.episode_buffer import EpisodeBuffer
from stable_baselines3.common.env_checker import check_env

from skillgym.data.dataset import Episode, open_dataset, write_minari_dataset
from skillgym.extract import extract_skills
from skillgym.extract.labels import SkillLabels

ENV_ID = "Reacher-v5"
IMAGE_SIZE = 64
EPISODES = 12
# Three behaviours: each phase holds one torque pattern (plus noise) for a third of the episode.
PHASE_ACTIONS = np.array([[0.8, 0.0], [0.0, -0.8], [-0.6, 0.6]], np.float32)


def scripted_rollouts(episodes: int, seed: int) -> list[Episode]:
    """Reacher episodes (50 steps) made of the three phases in a random order, with frames."""
    env = gym.make(ENV_ID, render_mode="rgb_array", width=IMAGE_SIZE, height=IMAGE_SIZE)
    rng = np.random.default_rng(seed)
    out = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        states, frames, actions, rewards = [obs], [env.render()], [], []
        terminated = truncated = False
        phases = np.repeat(rng.permutation(3), [17, 17, 16])
        for p in phases:
            action = np.clip(PHASE_ACTIONS[p] + rng.normal(0, 0.05, 2), -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            states.append(obs)
            frames.append(env.render())
            actions.append(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        t = len(actions)
        out.append(Episode(
            states=np.array(states), actions=np.array(actions), rewards=np.array(rewards, np.float32),
            terminations=np.arange(t) == t - 1 if terminated else np.zeros(t, bool),
            truncations=np.arange(t) == t - 1 if not terminated else np.zeros(t, bool),
            frames=np.array(frames), subtasks=phases[:t].astype(np.int16),
        ))
    env.close()
    return out


@pytest.fixture(scope="module")
def rollouts() -> list[Episode]:
    return scripted_rollouts(EPISODES, seed=0)


@pytest.fixture(scope="module")
def flat_dataset(rollouts, tmp_path_factory):
    """Written by Minari itself, as any Minari dataset of a Box-observation env is."""
    root = tmp_path_factory.mktemp("minari")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        env = gym.make(ENV_ID)
        buffers = [EpisodeBuffer(id=i, observations=ep.states, actions=ep.actions, rewards=list(ep.rewards),
                                 terminations=list(ep.terminations), truncations=list(ep.truncations), infos={})
                   for i, ep in enumerate(rollouts)]
        minari.create_dataset_from_buffers("reacher/scripted-v0", buffers, env=env, algorithm_name="scripted phases",
                                           author="skillgym tests", author_email="tests@skillgym",
                                           description="Reacher-v5, three torque phases per episode",
                                           eval_env=ENV_ID)
        env.close()
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH")
        else:
            os.environ["MINARI_DATASETS_PATH"] = old
    return open_dataset(root / "reacher" / "scripted-v0")


def test_flat_minari_dataset_reads_with_shapes_from_the_data(flat_dataset, rollouts):
    ds = flat_dataset
    assert (len(ds), ds.state_dim, ds.action_dim) == (EPISODES, 10, 2)
    assert not ds.is_kitchen and not ds.has_frames and ds.frame_size is None
    assert ds.action_low.tolist() == [-1, -1] and ds.action_high.tolist() == [1, 1]  # Reacher's action box
    ep = ds.episode(3)
    np.testing.assert_array_equal(ep.states, rollouts[3].states)
    np.testing.assert_array_equal(ep.actions, rollouts[3].actions)
    assert ep.frames is None


def test_extract_train_and_skill_sac_on_reacher(flat_dataset, tmp_path):
    from skillgym.envs.skill_space import SkillSpaceEnv
    from skillgym.rl import SkillSAC
    from skillgym.skills.library import SkillLibrary
    from skillgym.skills.train import TrainSkillsArgs, train_skills

    labels = extract_skills(flat_dataset, tmp_path / "labels", encoder="state", k=3, seed=0, progress=False)
    assert labels.num_episodes == EPISODES and len(labels.segments) >= EPISODES
    assert SkillLabels.load(tmp_path / "labels").metadata["embedding_dim"] == 10
    assert (tmp_path / "labels" / "report" / "summary.json").is_file()

    train_skills(TrainSkillsArgs(labels=str(tmp_path / "labels"), out=str(tmp_path / "library"), steps=200,
                                 batch_size=32, window=20, z_dim=3, hidden_dim=32, threads=1, progress=False))
    library = SkillLibrary.load(tmp_path / "library")
    assert (library.config.state_dim, library.config.action_dim, library.num_skills) == (10, 2, 3)

    env = SkillSpaceEnv(gym.make(ENV_ID), tmp_path / "library")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step({"skill": 1, "arg": np.zeros(3, np.float32)})
    assert obs.shape == (10,) and 1 <= info["skill_steps"] <= 20 and np.isfinite(reward)

    model = SkillSAC("SkillPolicy", env, learning_starts=50, batch_size=32, seed=0,
                     policy_kwargs=dict(net_arch=[32, 32])).learn(300)
    assert model.num_timesteps == 300 and model.num_low_level_steps >= 300
    env.close()


def test_image_encoder_on_stored_frames(rollouts, tmp_path):
    """Dict(state, pixels) written by skillgym: an image encoder labels the rendered frames."""
    ds = open_dataset(write_minari_dataset(tmp_path / "pixels", [rollouts], image_size=IMAGE_SIZE,
                                           dataset_id="reacher/scripted-pixels-v0", env=ENV_ID))
    assert (ds.state_dim, ds.action_dim, ds.frame_size, ds.has_frames) == (10, 2, IMAGE_SIZE, True)
    np.testing.assert_array_equal(ds.episode(0).frames, rollouts[0].frames)  # lossless
    labels = extract_skills(ds, tmp_path / "labels", encoder="efficientnet-lite0", k=3, seed=0, progress=False)
    assert labels.metadata["embedding_dim"] == 1280 and len(labels.segments) >= EPISODES
    summary = (tmp_path / "labels" / "report" / "summary.json").read_text()
    assert '"subtask 2"' in summary  # the scripted phases, as ground truth for the report
