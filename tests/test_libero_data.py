"""skillgym data libero: LIBERO's HDF5 demonstrations (robomimic layout, written here) converted with their instructions."""

import json

import h5py
import numpy as np
import pytest

from skillgym.cli import main
from skillgym.data.dataset import DatasetError, open_dataset
from skillgym.data.libero import IMAGE_SIZE, LiberoReport, read_libero_demos

RNG = np.random.default_rng(0)


def demo_images(n: int, size: int = 16) -> np.ndarray:
    """Frames whose brightness grows with the row index: in OpenGL's convention the bright rows are the top."""
    rows = np.linspace(0, 250, size, dtype=np.uint8)[None, :, None, None]
    return np.broadcast_to(rows, (n, size, size, 3)).copy()


def write_demo_file(path, lengths, instruction=None, convention=None, next_obs=False):
    """A file in LIBERO's layout: data/demo_<i>/{actions, obs/..., rewards, dones}, the instruction in problem_info."""
    demos = []
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        if instruction is not None:
            data.attrs["problem_info"] = json.dumps({"problem_name": "libero_kitchen_tabletop_manipulation",
                                                     "language_instruction": instruction})
        if convention is not None:
            data.attrs["macros_image_convention"] = convention
        for i, n in enumerate(lengths):
            demo = {"actions": RNG.uniform(-1, 1, (n, 7)).astype(np.float32),
                    "joint_states": RNG.normal(size=(n, 7)), "ee_pos": RNG.normal(size=(n, 3)),
                    "ee_ori": RNG.normal(size=(n, 3)), "gripper_states": RNG.normal(size=(n, 2))}
            g = data.create_group(f"demo_{i}")
            g.create_dataset("actions", data=demo["actions"])
            rewards, dones = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
            rewards[-1] = dones[-1] = 1
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=dones)
            for group in ("obs", "next_obs") if next_obs else ("obs",):
                obs = g.create_group(group)
                obs.create_dataset("agentview_rgb", data=demo_images(n))
                obs.create_dataset("eye_in_hand_rgb", data=demo_images(n))
                for key in ("joint_states", "ee_pos", "ee_ori", "gripper_states"):
                    obs.create_dataset(key, data=demo[key] + (1.0 if group == "next_obs" else 0.0))
            demos.append(demo)
    return demos


def test_libero_files_convert_with_their_instructions(tmp_path, capsys):
    libero = tmp_path / "pick_up_the_black_bowl_demo.hdf5"
    robomimic = tmp_path / "KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5"
    libero_demos = write_demo_file(libero, [6, 5], instruction="pick up the  black bowl", convention="opengl")
    robomimic_demos = write_demo_file(robomimic, [4], convention="opencv", next_obs=True)
    out = tmp_path / "data"
    assert main(["data", "libero", "--demos", str(libero), str(robomimic), "--out", str(out)]) == 0
    assert "3 episodes (13 steps) from 2 tasks" in capsys.readouterr().out

    ds = open_dataset(out)
    assert len(ds) == 3 and ds.state_dim == 15 and ds.action_dim == 7 and ds.frame_size == IMAGE_SIZE
    assert ds.instructions() == ["pick up the black bowl", "pick up the black bowl", "turn on the stove"]
    # LIBERO's files record the observation after each action: observation j precedes action j + 1.
    first = ds.episode(0)
    demo = libero_demos[0]
    assert first.num_steps == 5 and first.instruction == "pick up the black bowl"
    np.testing.assert_allclose(first.actions, demo["actions"][1:])
    np.testing.assert_allclose(first.states, np.concatenate(
        [demo["joint_states"], demo["ee_pos"], demo["ee_ori"], demo["gripper_states"]], axis=1))
    assert first.terminations[-1] and not first.truncations.any() and first.rewards[-1] == 1
    assert first.frames.shape == (6, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert first.frames[0, 0].mean() > first.frames[0, -1].mean()  # turned upright: the bright rows on top
    # robomimic's next_obs: observation j precedes action j, the last next_obs ends the episode.
    last = ds.episode(2)
    demo = robomimic_demos[0]
    assert last.num_steps == 4 and len(last.states) == 5
    np.testing.assert_allclose(last.actions, demo["actions"])
    np.testing.assert_allclose(last.states[-1, :7], demo["joint_states"][-1] + 1.0)
    assert last.frames[0, 0].mean() < last.frames[0, -1].mean()  # OpenCV's convention is already upright
    report = json.loads((out / "libero.json").read_text())
    assert report["episodes"] == 3 and report["instructions"]["KITCHEN_SCENE3_turn_on_the_stove"] == "turn on the stove"


def test_conversion_refuses_what_is_not_a_libero_file(tmp_path, capsys):
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f.create_dataset("observations", data=np.zeros((3, 4)))
    with pytest.raises(DatasetError, match="no 'data' group"):
        list(read_libero_demos(tmp_path / "other.hdf5"))
    incomplete = tmp_path / "incomplete_demo.hdf5"
    write_demo_file(incomplete, [3], instruction="x")
    with h5py.File(incomplete, "a") as f:
        del f["data/demo_0/obs/ee_pos"], f["data/demo_0/obs/ee_ori"]
    with pytest.raises(DatasetError, match="ee_pos/ee_ori or ee_states"):
        list(read_libero_demos(incomplete))
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "libero", "--demos", str(tmp_path / "missing.hdf5"), "--out", str(tmp_path / "d")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("skillgym data libero: error: no LIBERO demonstration file at")
    with pytest.raises(SystemExit):
        main(["data", "libero", "--tasks", "10", "--out", str(tmp_path / "d")])
    assert "tasks must be distinct libero_spatial task indices" in capsys.readouterr().err


def test_the_report_gives_every_tasks_success():
    report = LiberoReport(episodes=9, steps=900, attempted={"a": 10, "b": 10}, succeeded={"a": 10, "b": 9},
                          instructions={"a": "do a", "b": "do b"})
    assert report.success_rate() == {"a": 1.0, "b": 0.9}
    assert "b: 9/10 succeeded (90%)" in report.summary()
