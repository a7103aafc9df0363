"""Corrupt datasets, recordings and options: a clear error that names the file (and episode), nothing
written, and no traceback from the command line."""

import json
import shutil
from dataclasses import asdict

import h5py
import numpy as np
import pytest

from skillgym.cli import main
from skillgym.data.dataset import DatasetError, Episode, open_dataset, write_json, write_minari_dataset
from skillgym.data.libero import LiberoDataArgs, read_libero_demos
from skillgym.data.merge import merge_recordings
from skillgym.data.record import RecordArgs

IMAGE_SIZE = 8


def tiny_episodes(n: int = 2, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [Episode(states=rng.normal(size=(6 + i, 4)), actions=rng.uniform(-1, 1, (5 + i, 2)).astype(np.float32),
                    frames=rng.integers(0, 256, (6 + i, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
                    subtasks=np.zeros(5 + i, np.int16))
            for i in range(n)]


@pytest.fixture(scope="module")
def clean_dataset(tmp_path_factory):
    return write_minari_dataset(tmp_path_factory.mktemp("clean") / "tiny", [tiny_episodes()], image_size=IMAGE_SIZE)


def replace(f: h5py.File, name: str, data=None) -> None:
    """Put ``data`` (None: an empty group) where the entry ``name`` was."""
    del f[name]
    if data is None:
        f.create_group(name)
    else:
        f[name] = data


def nan_state(f: h5py.File) -> None:
    f["episode_1/observations/state"][2, 0] = np.nan


def inf_action(f: h5py.File) -> None:
    f["episode_1/actions"][0, 1] = np.inf


def assert_cli_error(argv: list[str], capsys, *fragments: str) -> None:
    """The command exits with code 2 and one error line holding every fragment (progress bars may precede it)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err, err
    line = err.splitlines()[-1]
    assert line.startswith(f"skillgym {argv[0]}") and ": error: " in line, err
    for fragment in fragments:
        assert fragment in line, err


@pytest.mark.parametrize("corrupt, message", [
    (lambda f: replace(f, "episode_1/rewards"), "episode_1 does not fit the dataset: rewards (a group"),
    (lambda f: replace(f, "episode_0/infos/subtask"), "episode_0 does not fit the dataset: infos/subtask (a group"),
    (lambda f: replace(f, "episode_0/actions", np.full((5, 2), b"x")), "actions hold |S1 values, not numbers"),
    (lambda f: f.move("episode_1", "episode_x"), "groups ['episode_x'] are not named 'episode_<number>'"),
    (lambda f: replace(f, "episode_0/observations/pixels", np.zeros((6, IMAGE_SIZE, IMAGE_SIZE), np.uint8)),
     "episode_0/observations/pixels: frames (6, 8, 8) uint8 are neither (N, H, W, 3) uint8 frames"),
    (nan_state, "episode 1: episode states hold NaN or infinite values"),
    (inf_action, "episode 1: episode actions hold NaN or infinite values"),
], ids=["rewards-group", "subtask-group", "string-actions", "unnumbered-episode", "pixels-3d", "nan-state",
        "inf-action"])
def test_corrupt_minari_datasets_name_the_file_and_what_is_wrong(clean_dataset, tmp_path, capsys, corrupt, message):
    path = tmp_path / "bad"
    shutil.copytree(clean_dataset, path)
    hdf5 = path / "data" / "main_data.hdf5"
    with h5py.File(hdf5, "r+") as f:
        corrupt(f)
    with pytest.raises(DatasetError) as error:
        dataset = open_dataset(path)
        for i in range(len(dataset)):
            dataset.episode(i)
    assert f"{hdf5}" in str(error.value) and message in str(error.value)
    assert_cli_error(["data", "show", str(path), "--episode", "1", "--out", str(tmp_path / "sheet.png")],
                     capsys, str(hdf5), message)
    assert not (tmp_path / "sheet.png").exists()


def write_d4rl(path, observations=None, steps: int = 6, timeouts=(2,)) -> None:
    ends = np.zeros(steps, bool)
    ends[list(timeouts)] = True
    with h5py.File(path, "w") as f:
        if observations is None:
            f.create_group("observations")
        else:
            f["observations"] = observations
        f["actions"] = np.zeros((steps, 9), np.float32)
        f["terminals"] = np.zeros(steps, bool)
        f["timeouts"] = ends


@pytest.mark.parametrize("observations, steps, timeouts, message", [
    (None, 6, (2,), "needs observations (N, 60) and actions (N, 9), got (a group, not an array)"),
    (np.zeros((1, 60)), 1, (0,), "holds no episode with at least one action"),
    (np.full((6, 60), np.nan), 6, (2,), "episode 0: episode states hold NaN or infinite values"),
], ids=["observations-group", "single-step", "nan"])
def test_corrupt_d4rl_files_name_the_file(tmp_path, capsys, observations, steps, timeouts, message):
    path = tmp_path / "kitchen-v0.hdf5"
    write_d4rl(path, observations, steps, timeouts)
    with pytest.raises(DatasetError, match="kitchen-v0.hdf5") as error:
        open_dataset(path).episode(0, frames=False)
    assert message in str(error.value)
    assert_cli_error(["extract", str(path), "--out", str(tmp_path / "labels"), "--k", "3", "--encoder", "state"],
                     capsys, str(path), message)


def test_a_libero_file_that_is_not_hdf5_is_named(tmp_path, capsys):
    text = tmp_path / "notes_demo.hdf5"
    text.write_text("not an HDF5 file\n")
    with pytest.raises(DatasetError, match="notes_demo.hdf5"):
        list(read_libero_demos(text))
    out = tmp_path / "libero"
    assert_cli_error(["data", "libero", "--out", str(out), "--demos", str(text)], capsys,
                     f"cannot read {text} as a LIBERO demonstration file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes_demo.hdf5"]  # no dataset, no staging folder


def write_part(path, first_episode: int, episodes: list[Episode]) -> None:
    """A recording as `skillgym data kitchen` writes one: the dataset and its recording.json."""
    write_minari_dataset(path, [episodes], image_size=IMAGE_SIZE)
    args = RecordArgs(out=path, episodes=len(episodes), first_episode=first_episode, image_size=IMAGE_SIZE)
    outcomes = [{"index": first_episode + i, "order": ["microwave"], "completed": ["microwave"], "failed": [],
                 "raw_steps": ep.num_steps, "kept_steps": ep.num_steps} for i, ep in enumerate(episodes)]
    write_json(path / "recording.json", {"args": {**asdict(args), "out": str(path)}, "report": {},
                                         "subtask_names": ["microwave"], "episodes": outcomes})


@pytest.fixture
def parts(tmp_path):
    paths = [tmp_path / "part0", tmp_path / "part1"]
    write_part(paths[0], 0, tiny_episodes(2, seed=0))
    write_part(paths[1], 2, tiny_episodes(1, seed=1))
    return paths


def test_recordings_merge_with_their_recording(parts, tmp_path):
    (tmp_path / "merged").mkdir()  # an empty folder is merged into
    report = merge_recordings(parts, tmp_path / "merged")
    recording = json.loads((tmp_path / "merged" / "recording.json").read_text())
    assert report.attempted == 3 and recording["args"]["episodes"] == 3 and len(recording["episodes"]) == 3
    assert len(open_dataset(tmp_path / "merged")) == 3
    with pytest.raises(FileExistsError, match="merging never overwrites"):
        merge_recordings(parts, tmp_path / "merged")


def drop(key: str):
    def edit(recording: dict) -> str:
        del recording[key]
        return json.dumps(recording)
    return edit


@pytest.mark.parametrize("rewrite, message", [
    (lambda recording: "{}", "'args' (dict), 'episodes' (list), 'subtask_names' (list) missing"),
    (drop("episodes"), "'episodes' (list) missing"),
    (lambda recording: "{not json", "is not readable JSON"),
    (lambda recording: "[]", "it holds a list, not an object"),
    (lambda recording: json.dumps({**recording, "args": {**recording["args"], "episodes": "1"}}),
     "args.episodes is '1', not a number of episodes"),
    (lambda recording: json.dumps({**recording, "episodes": [{}]}), "episodes[0] is not an episode outcome"),
    (lambda recording: json.dumps({**recording, "args": {**recording["args"], "image_size": "big"}}),
     "its args are not options of `skillgym data kitchen`"),
], ids=["empty", "no-episodes", "not-json", "list", "episodes-string", "bad-outcome", "bad-option"])
def test_a_bad_recording_json_stops_the_merge_before_anything_is_written(parts, tmp_path, capsys, rewrite, message):
    for part in parts:  # the first part's options are the merged recording's: break them in both
        file = part / "recording.json"
        file.write_text(rewrite(json.loads(file.read_text())))
    with pytest.raises(DatasetError, match="recording.json") as error:
        merge_recordings(parts, tmp_path / "merged", mixed_recipes=True)
    assert message in str(error.value)
    assert_cli_error(["data", "merge", *map(str, parts), "--out", str(tmp_path / "merged")], capsys,
                     str(parts[0] / "recording.json"), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part0", "part1"]


def test_a_part_with_nan_states_stops_the_merge_and_leaves_nothing(parts, tmp_path, capsys):
    hdf5 = parts[1] / "data" / "main_data.hdf5"
    with h5py.File(hdf5, "r+") as f:
        f["episode_0/observations/state"][0, 0] = np.nan
    assert_cli_error(["data", "merge", *map(str, parts), "--out", str(tmp_path / "merged"), "--mixed-recipes"],
                     capsys, f"{hdf5}: episode 0: episode states hold NaN")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part0", "part1"]


@pytest.mark.parametrize("make_args, options, message", [
    (RecordArgs, {"seed": -1}, "seed must be >= 0"),
    (RecordArgs, {"action_noise": float("nan")}, "action_noise must be a finite number >= 0, got nan"),
    (RecordArgs, {"action_noise": float("inf")}, "action_noise must be a finite number >= 0, got inf"),
    (RecordArgs, {"eval_prefix_fraction": float("nan")}, "eval_prefix_fraction must be in [0, 1]"),
    (RecordArgs, {"eval_windows_fraction": float("nan")}, "eval_windows_fraction must be in [0, 1]"),
    (LiberoDataArgs, {"seed": -1}, "seed must be >= 0"),
])
def test_recording_options_out_of_range_are_refused_up_front(tmp_path, make_args, options, message):
    with pytest.raises(ValueError) as error:
        make_args(out=tmp_path / "x", **options)
    assert message in str(error.value)


@pytest.mark.parametrize("argv, message", [
    (["data", "kitchen", "--seed", "-1", "--workers", "2"], "seed must be >= 0, got -1"),
    (["data", "kitchen", "--action-noise", "nan"], "action_noise must be a finite number >= 0, got nan"),
    (["data", "libero", "--seed", "-1"], "seed must be >= 0, got -1"),
])
def test_recording_commands_refuse_bad_options_in_one_line(tmp_path, capsys, argv, message):
    assert_cli_error([*argv, "--out", str(tmp_path / "x")], capsys, message)
    assert not (tmp_path / "x").exists()


def test_a_missing_part_is_named_as_missing(parts, tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'} does not exist"):
        merge_recordings([parts[0], tmp_path / "nope"], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
