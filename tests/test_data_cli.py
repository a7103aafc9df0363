"""`skillgym data ...`: a real (tiny) recording, the contact sheet, one-line argument errors, and a recording process that dies."""

import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import threading
import time

import minari
import numpy as np
import pytest

from skillgym.data.dataset import open_dataset
from skillgym.data.record import RecordArgs, is_window_episode, record_dataset


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skillgym.cli", *args], capture_output=True, text=True, cwd=cwd)


# Executed and recorded actions equal, random subtask orders: the recipe the tests below compare against.
NOISY = dict(episodes=2, seed=3, image_size=32, workers=1, clean_labels=False, action_noise=0.05,
             eval_prefix_fraction=0.0, eval_windows_fraction=0.0)
NOISY_FLAGS = ["--seed", "3", "--image-size", "32", "--workers", "1", "--no-clean-labels", "--action-noise", "0.05",
               "--eval-prefix-fraction", "0", "--eval-windows-fraction", "0"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "kitchen"
    report = record_dataset(RecordArgs(out=out, **NOISY))
    return out, report


def test_a_dead_recording_process_stops_the_recording_with_a_clear_error(tmp_path):
    def kill_a_worker():
        deadline = time.monotonic() + 120
        while not mp.active_children() and time.monotonic() < deadline:
            time.sleep(0.1)
        for child in mp.active_children()[:1]:
            child.kill()

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    with pytest.raises(RuntimeError, match="a recording process stopped"):
        record_dataset(RecordArgs(out=tmp_path / "kitchen", **{**NOISY, "episodes": 4, "workers": 2}))
    killer.join()
    assert sorted(tmp_path.iterdir()) == []  # no dataset, no staging folder


def test_recording_is_a_minari_dataset_with_labels(recorded):
    out, report = recorded
    assert report.attempted == 2 and report.kept + report.dropped == 2
    assert minari.MinariDataset(out / "data").total_episodes == report.kept
    ds = open_dataset(out)
    ep = ds.episode(0)
    assert ep.frames.shape[1:] == (32, 32, 3)
    assert np.all(ep.subtasks >= 0)  # the controller always knows its subtask
    assert ep.rewards.sum() >= 1  # a kept episode completed at least one subtask
    assert ep.terminations[-1] or ep.truncations[-1]
    saved = json.loads((out / "recording.json").read_text())
    assert saved["report"]["attempted"] == 2 and len(saved["episodes"]) == 2
    for e in saved["episodes"]:  # never the evaluation order
        assert e["order"] != ["microwave", "kettle", "bottom burner", "light switch"]


def test_evaluation_windows_are_spread_evenly_over_the_episodes():
    assert [is_window_episode(i, 0.5) for i in range(4)] == [False, True, False, True]
    assert sum(is_window_episode(i, 0.25) for i in range(8)) == 2
    assert not any(is_window_episode(i, 0.0) for i in range(8)) and all(is_window_episode(i, 1.0) for i in range(8))


def test_same_seed_same_demonstrations(recorded, tmp_path):
    out, _ = recorded
    again = tmp_path / "again"
    record_dataset(RecordArgs(out=again, **{**NOISY, "episodes": 1}))
    np.testing.assert_array_equal(open_dataset(again).episode(0).actions, open_dataset(out).episode(0).actions)
    record_dataset(RecordArgs(out=tmp_path / "other", **{**NOISY, "episodes": 1, "seed": 4}))
    assert not np.array_equal(open_dataset(tmp_path / "other").episode(0).actions, open_dataset(out).episode(0).actions)


def test_recordings_of_consecutive_ranges_merge_into_the_long_recording(recorded, tmp_path):
    """Episode i depends only on (seed, i): episodes 0 and 1 recorded apart, then merged, are the
    2-episode recording (same episodes, fingerprint and report)."""
    out, report = recorded
    parts = [tmp_path / "part0", tmp_path / "part1"]
    for first, part in enumerate(parts):
        result = run_cli("data", "kitchen", "--out", str(part), "--episodes", "1", "--first-episode", str(first),
                         *NOISY_FLAGS)
        assert result.returncode == 0, result.stderr[-2000:]
    # A part recorded before an option existed lacks it in its args: it had the default, and still merges.
    old_part = json.loads((parts[1] / "recording.json").read_text())
    del old_part["args"]["eval_windows_fraction"]
    (parts[1] / "recording.json").write_text(json.dumps(old_part))
    wrong_order = run_cli("data", "merge", str(parts[1]), str(parts[0]), "--out", str(tmp_path / "bad"))
    assert wrong_order.returncode == 2 and "starts at episode 0, expected 2" in wrong_order.stderr
    result = run_cli("data", "merge", *map(str, parts), "--out", str(tmp_path / "merged"))
    assert result.returncode == 0, result.stderr[-2000:]
    merged, whole = open_dataset(tmp_path / "merged"), open_dataset(out)
    assert merged.fingerprint == whole.fingerprint and len(merged) == len(whole)
    for i in range(len(whole)):
        a, b = merged.episode(i), whole.episode(i)
        for field in ("states", "actions", "frames", "subtasks", "sim_states"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    recording = json.loads((tmp_path / "merged" / "recording.json").read_text())
    assert recording["report"] == json.loads((out / "recording.json").read_text())["report"]
    assert recording["args"]["episodes"] == 2 and recording["args"]["first_episode"] == 0
    # Parts of different recipes cannot be merged.
    other = tmp_path / "other"
    record_dataset(RecordArgs(out=other, **{**NOISY, "episodes": 1, "first_episode": 1, "action_noise": 0.2}))
    mixed = run_cli("data", "merge", str(parts[0]), str(other), "--out", str(tmp_path / "mixed"))
    assert mixed.returncode == 2 and "different options (action_noise)" in mixed.stderr
    # ... unless asked to: a mixed training set that records each part's recipe (relative --out, as typed).
    mixed = run_cli("data", "merge", "part0", "other", "--out", "mixed", "--mixed-recipes", cwd=tmp_path)
    assert mixed.returncode == 0, mixed.stderr[-2000:]
    recording = json.loads((tmp_path / "mixed" / "recording.json").read_text())
    noise = [json.loads((part / "recording.json").read_text())["args"]["action_noise"] for part in (parts[0], other)]
    assert recording["mixed_recipes"] and recording["args"]["action_noise"] == noise and noise[1] == 0.2
    assert [part["action_noise"] for part in recording["parts"]] == noise
    np.testing.assert_array_equal(open_dataset(tmp_path / "mixed").episode(1).actions, open_dataset(other).episode(0).actions)
    # A mixed set never holds an episode twice: not a part given twice, nor a part of a mixed part again.
    for again in (["part0", "part0"], ["mixed", "other"]):
        twice = run_cli("data", "merge", *again, "--out", "twice", "--mixed-recipes", cwd=tmp_path)
        assert twice.returncode == 2 and "would hold them twice" in twice.stderr, twice.stderr[-2000:]
        assert not (tmp_path / "twice").exists()
    shutil.copytree(tmp_path / "mixed", tmp_path / "tampered")
    tampered = json.loads((tmp_path / "tampered" / "recording.json").read_text())
    tampered["parts"][1]["episodes"] = "many"
    (tmp_path / "tampered" / "recording.json").write_text(json.dumps(tampered))
    bad = run_cli("data", "merge", "tampered", "part1", "--out", "bad", "--mixed-recipes", cwd=tmp_path)
    assert bad.returncode == 2 and "parts[1] of a mixed recording.json" in bad.stderr, bad.stderr[-2000:]


def test_clean_labels_change_the_labels_not_the_demonstration(recorded, tmp_path):
    out, _ = recorded
    dart = tmp_path / "dart"
    record_dataset(RecordArgs(out=dart, **{**NOISY, "episodes": 1, "clean_labels": True}))
    noisy, clean = open_dataset(out).episode(0, frames=False), open_dataset(dart).episode(0, frames=False)
    np.testing.assert_array_equal(clean.states, noisy.states)  # the same noisy actions were executed
    gap = noisy.actions[:, :7] - clean.actions[:, :7]
    assert 0.03 < gap.std() < 0.06  # the default action noise, 0.05 (less where actions clip at ±1)


def test_contact_sheet(recorded, tmp_path):
    out, _ = recorded
    sheet = tmp_path / "sheet.png"
    result = run_cli("data", "show", str(out), "--episode", "0", "--out", str(sheet))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    assert Image.open(sheet).size[0] > 500


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "kitchen", "--out", "{tmp}/x", "--image-size", "0"], "image_size must be in [8, 512]"),
        (["data", "kitchen", "--out", "{tmp}/x", "--episodes", "-1"], "episodes must be >= 1"),
        (["data", "kitchen", "--out", "{tmp}"], "exists; pick another output folder, or replace a dataset skillgym wrote"),
        (["data", "kitchen", "--out", "{tmp}", "--overwrite"], "is not a dataset skillgym wrote"),
        (["data", "kitchen", "--out", "{tmp}/x", "--subtasks", "microwave", "toaster"], "invalid choice: 'toaster'"),
        (["data", "kitchen", "--out", "{tmp}/x", "--subtasks", "microwave", "kettle"], "at least 4 distinct"),
        (["data", "kitchen", "--out", "{tmp}/x", "--subtasks", "microwave", "microwave", "kettle", "light switch",
          "slide cabinet"], "at least 4 distinct"),
        # Chains that start with a run of the evaluation order need its subtasks, and one more for the rest.
        (["data", "kitchen", "--out", "{tmp}/x", "--subtasks", "kettle", "light switch", "slide cabinet",
          "hinge cabinet"], "subtasks lack microwave, bottom burner"),
        (["data", "kitchen", "--out", "{tmp}/x", "--subtasks", "microwave", "kettle", "bottom burner",
          "light switch"], "the evaluation order's four alone"),
        (["data", "show", "{tmp}/missing", "--out", "{tmp}/a.png"], "no dataset at"),
        # Nothing can be made in /proc, whoever runs the tests: refused before any episode is recorded.
        (["data", "kitchen", "--out", "/proc/skillgym/data"], "cannot be written: nothing can be made in /proc"),
    ],
)
def test_bad_arguments_give_one_line_errors(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("the user's")  # {tmp} is not empty
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
