"""Datasets in and out: our Minari writer, D4RL/kitchen Minari v2 layout, D4RL v0 HDF5 layout."""

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from skillgym.data.dataset import DatasetError, Episode, open_dataset, write_minari_dataset
from skillgym.tasks.kitchen import KitchenTaskEnv


def rollout(steps: int, seed: int, image_size: int = 32, noise: bool = True) -> Episode:
    ratios = {} if noise else {"robot_noise_ratio": 0.0, "object_noise_ratio": 0.0}
    env = KitchenTaskEnv(pixels=True, image_size=image_size, **ratios)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    states, frames, sims, actions = [obs["state"]], [obs["pixels"]], [env.get_sim_state()], []
    for _ in range(steps):
        action = rng.uniform(-1, 1, 9).astype(np.float32)
        obs, *_ = env.step(action)
        actions.append(action)
        states.append(obs["state"])
        frames.append(obs["pixels"])
        sims.append(env.get_sim_state())
    env.close()
    return Episode(
        states=np.array(states), actions=np.array(actions), rewards=np.zeros(steps, np.float32),
        terminations=np.zeros(steps, bool), truncations=np.arange(steps) == steps - 1,
        frames=np.array(frames), subtasks=np.full(steps, 5, np.int16), sim_states=np.array(sims),
    )


@pytest.fixture(scope="module")
def episodes():
    return [rollout(6, seed=0), rollout(9, seed=1)]


def test_written_dataset_opens_with_minari_and_skillgym(tmp_path, episodes):
    out = write_minari_dataset(tmp_path / "kitchen", [episodes[:1], episodes[1:]], image_size=32)
    m = minari.MinariDataset(out / "data")
    assert m.total_episodes == 2 and m.total_steps == 15
    assert m[1].observations["pixels"].shape == (10, 32, 32, 3)

    ds = open_dataset(out)
    assert len(ds) == 2 and ds.frame_size == 32 and list(ds.episode_lengths) == [6, 9]
    ep = ds.episode(1)
    np.testing.assert_array_equal(ep.frames, episodes[1].frames)  # lossless frames
    np.testing.assert_array_equal(ep.actions, episodes[1].actions)
    np.testing.assert_array_equal(ep.subtasks, episodes[1].subtasks)
    # Re-rendering the stored exact states reproduces the stored frames.
    assert np.abs(ds.render_states(ep.sim_states).astype(int) - ep.frames).max() <= 2
    assert ds.episode(0, frames=False).frames is None
    assert open_dataset(out).fingerprint == ds.fingerprint


def test_d4rl_minari_v2_layout_loads_and_rerenders(tmp_path, episodes, monkeypatch):
    """D4RL/kitchen/*-v2 stores Dict(observation (59), achieved_goal, desired_goal), no frames."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    goal = gym.spaces.Dict({"microwave": gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)})
    space = gym.spaces.Dict(observation=gym.spaces.Box(-np.inf, np.inf, (59,), np.float64),
                            achieved_goal=goal, desired_goal=goal)
    buffers = []
    for i, ep in enumerate(episodes):
        n = ep.num_steps + 1
        obs = {"observation": ep.states, "achieved_goal": {"microwave": np.zeros((n, 1))},
               "desired_goal": {"microwave": np.full((n, 1), -0.75)}}
        buffers.append(EpisodeBuffer(id=i, observations=obs, actions=ep.actions, rewards=list(ep.rewards),
                                     terminations=list(ep.terminations), truncations=list(ep.truncations),
                                     infos={}))
    minari.create_dataset_from_buffers("D4RL/kitchen/mixed-v2", buffers, observation_space=space,
                                       action_space=gym.spaces.Box(-1, 1, (9,), np.float32))
    path = tmp_path / "D4RL" / "kitchen" / "mixed-v2"
    with pytest.raises(DatasetError, match="image_size"):
        open_dataset(path).episode(0)
    ds = open_dataset(path, image_size=32)
    ep = ds.episode(1)
    np.testing.assert_allclose(ep.states, episodes[1].states)
    assert ep.frames.shape == (10, 32, 32, 3) and ep.frames.std() > 10


def test_d4rl_v0_hdf5_layout_loads_and_rerenders(tmp_path):
    """D4RL v0: flat observations (N, 60) = qpos 30 + goal 30, terminals/timeouts mark episode ends."""
    eps = [rollout(5, seed=2, noise=False), rollout(7, seed=3, noise=False)]
    obs = np.concatenate([np.concatenate([e.sim_states[:-1, :30], np.zeros((e.num_steps, 30))], 1) for e in eps])
    # v0 keeps one row per step; the episode's final row plays its final observation.
    timeouts = np.zeros(len(obs), bool)
    timeouts[[4, 11]] = True
    path = tmp_path / "kitchen_mixed-v0.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = np.concatenate([e.actions for e in eps])
        f["rewards"] = np.zeros(len(obs), np.float32)
        f["terminals"] = np.zeros(len(obs), bool)
        f["timeouts"] = timeouts
    ds = open_dataset(path, image_size=32)
    assert len(ds) == 2 and list(ds.episode_lengths) == [4, 6]
    ep = ds.episode(1)
    # Noise-free rollout: re-rendered frames match what the pixel env showed at those states.
    assert np.abs(ep.frames.astype(int) - eps[1].frames[:7]).max() <= 2


def test_bad_datasets_raise_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="no dataset at"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset"):
        open_dataset(tmp_path / "empty")
    corrupt = tmp_path / "corrupt.hdf5"
    corrupt.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DatasetError, match="cannot read"):
        open_dataset(corrupt)
    wrong = tmp_path / "wrong.hdf5"
    with h5py.File(wrong, "w") as f:
        f["observations"] = np.zeros((10, 59))
        f["actions"] = np.zeros((10, 9))
    with pytest.raises(DatasetError, match=r"\(N, 60\)"):
        open_dataset(wrong)
    bad = Episode(states=np.zeros((3, 59)), actions=np.zeros((3, 9), np.float32), rewards=np.zeros(3),
                  terminations=np.zeros(3, bool), truncations=np.zeros(3, bool))
    with pytest.raises(DatasetError, match="states"):
        bad.validate()
