"""Datasets in and out: our Minari writer, any Minari layout (flat array, Dict with a state entry),
D4RL/kitchen Minari v2 layout, D4RL v0 HDF5 layout."""

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest

from skillgym.data.dataset import (
    KITCHEN_DATASET_ID,
    DatasetError,
    Episode,
    open_dataset,
    write_minari_dataset,
)
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
    out = write_minari_dataset(tmp_path / "kitchen", [episodes[:1], episodes[1:]], image_size=32,
                               dataset_id=KITCHEN_DATASET_ID)
    m = minari.MinariDataset(out / "data")
    assert m.total_episodes == 2 and m.total_steps == 15
    assert m[1].observations["pixels"].shape == (10, 32, 32, 3)

    ds = open_dataset(out)
    assert len(ds) == 2 and ds.frame_size == 32 and list(ds.episode_lengths) == [6, 9]
    assert (ds.state_dim, ds.action_dim, ds.is_kitchen) == (59, 9, True)
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
    assert ds.is_kitchen and ds.dataset_id == "D4RL/kitchen/mixed-v2"
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
    with pytest.raises(DatasetError, match="rewards"):
        Episode(states=np.zeros((4, 5)), actions=np.zeros((3, 2)), rewards=np.zeros(2)).validate()
    with pytest.raises(DatasetError, match="NaN"):
        Episode(states=np.full((4, 5), np.nan), actions=np.zeros((3, 2))).validate()
    with pytest.raises(DatasetError, match="at least one action"):
        Episode(states=np.zeros((1, 5)), actions=np.zeros((0, 2))).validate()
    Episode(states=np.zeros((4, 5)), actions=np.zeros((3, 2))).validate()  # any sizes that fit together


def small_episodes(state_dim: int, action_dim: int, image_size: int | None = None, n: int = 2) -> list[Episode]:
    rng = np.random.default_rng(state_dim)
    return [Episode(states=rng.normal(size=(8 + i, state_dim)),
                    actions=rng.uniform(-1, 1, (7 + i, action_dim)).astype(np.float32),
                    frames=None if image_size is None else
                    rng.integers(0, 256, (8 + i, image_size, image_size, 3), dtype=np.uint8))
            for i in range(n)]


def minari_buffers(episodes: list[Episode], observations) -> list:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    return [EpisodeBuffer(id=i, observations=observations(ep), actions=ep.actions, rewards=list(ep.rewards),
                          terminations=list(ep.terminations), truncations=list(ep.truncations), infos={})
            for i, ep in enumerate(episodes)]


def test_flat_observation_minari_dataset_loads(tmp_path, monkeypatch):
    """The most common Minari layout: observations are one (T+1, D) array."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    eps = small_episodes(11, 3)
    minari.create_dataset_from_buffers(
        "other/flat-v0", minari_buffers(eps, lambda ep: ep.states),
        observation_space=gym.spaces.Box(-np.inf, np.inf, (11,), np.float64),
        action_space=gym.spaces.Box(-1, 1, (3,), np.float32))
    ds = open_dataset(tmp_path / "other" / "flat-v0", image_size=32)
    assert (len(ds), ds.state_dim, ds.action_dim) == (2, 11, 3)
    assert not ds.is_kitchen and not ds.has_frames and ds.frame_size is None  # image_size: kitchen only
    assert ds.action_low.tolist() == [-1] * 3 and ds.action_high.tolist() == [1] * 3
    ep = ds.episode(1)
    np.testing.assert_array_equal(ep.states, eps[1].states)
    np.testing.assert_array_equal(ep.actions, eps[1].actions)
    assert ep.frames is None
    with pytest.raises(DatasetError, match="only Franka Kitchen"):
        ds.render_frames(ep, 32)


def test_dict_observation_with_observation_key_and_pixels(tmp_path, monkeypatch):
    """Dict layouts with the state under "observation" and frames under "pixels", any sizes."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    eps = small_episodes(7, 4, image_size=40)
    space = gym.spaces.Dict(observation=gym.spaces.Box(-np.inf, np.inf, (7,), np.float64),
                            pixels=gym.spaces.Box(0, 255, (40, 40, 3), np.uint8))
    minari.create_dataset_from_buffers(
        "other/dict-v0", minari_buffers(eps, lambda ep: {"observation": ep.states, "pixels": ep.frames}),
        observation_space=space, action_space=gym.spaces.Box(-1, 1, (4,), np.float32))
    ds = open_dataset(tmp_path / "other" / "dict-v0")
    assert (ds.state_dim, ds.action_dim, ds.frame_size, ds.has_frames) == (7, 4, 40, True)
    # Minari stores images as JPEGs by default: decoded frames are close, not equal.
    reference = minari.MinariDataset(tmp_path / "other" / "dict-v0" / "data")[0].observations["pixels"]
    np.testing.assert_array_equal(ds.episode(0).frames, reference)


def test_writer_derives_spaces_and_writes_flat_layout(tmp_path):
    eps = small_episodes(5, 2, image_size=32)
    ds = open_dataset(write_minari_dataset(tmp_path / "dict", [eps], image_size=32))
    assert (ds.state_dim, ds.action_dim, ds.frame_size, ds.is_kitchen) == (5, 2, 32, False)
    np.testing.assert_array_equal(ds.episode(1).frames, eps[1].frames)
    flat = write_minari_dataset(tmp_path / "flat", [eps], dataset_id="other/flat-v1",
                                observation_space=gym.spaces.Box(-np.inf, np.inf, (5,), np.float64))
    with h5py.File(flat / "data" / "main_data.hdf5") as f:
        assert isinstance(f["episode_0/observations"], h5py.Dataset)
    ds = open_dataset(flat)
    assert (ds.state_dim, ds.dataset_id, ds.has_frames) == (5, "other/flat-v1", False)
    np.testing.assert_array_equal(ds.episode(0).states, eps[0].states)
    wide = [Episode(states=np.zeros((3, 5)), actions=np.full((2, 2), 3.0, np.float32))]
    with pytest.raises(DatasetError, match="outside the action space"):
        write_minari_dataset(tmp_path / "wide", [wide])
    ds = open_dataset(write_minari_dataset(tmp_path / "wide", [wide],
                                           action_space=gym.spaces.Box(-5, 5, (2,), np.float32)))
    assert ds.action_low.tolist() == [-5, -5] and ds.action_high.tolist() == [5, 5]
    with pytest.raises(DatasetError, match="no episodes"):
        write_minari_dataset(tmp_path / "none", [[]])


def test_reading_other_datasets_loads_no_simulator(tmp_path):
    import subprocess
    import sys

    path = write_minari_dataset(tmp_path / "d", [small_episodes(3, 2)])
    code = (f"import sys; from skillgym.data.dataset import open_dataset; ds = open_dataset({str(path)!r}); "
            "[ds.episode(i) for i in range(len(ds))]; ds.subtask_names(); "
            "assert 'mujoco' not in sys.modules and 'skillgym.tasks.kitchen' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
