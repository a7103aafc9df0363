"""`skillgym run kitchen` end to end at a tiny scale: real demos, real extraction, real training."""

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from skillgym.pipeline import PipelineArgs, add_pipeline_options, pipeline_args
from skillgym.skills.evaluate import (
    data_ceiling,
    posterior_replay,
    subtask_replay,
    window_errors,
    z_statistics,
)
from skillgym.skills.library import SkillLibrary


def test_run_kitchen_tiny(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "skillgym.cli", "run", "kitchen", "--out", str(out), "--episodes", "2",
           "--image-size", "32", "--workers", "1", "--encoder", "state", "--k", "3", "--skill-steps", "20",
           "--eval-episodes", "1", "--beta", "0.02"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["attempted"] == 2
    assert summary["extraction"]["k"] == 3
    library = SkillLibrary.load(out / "library")
    assert library.num_skills == 3
    # The CLI's skill-training options reach the training run.
    assert json.loads((out / "library" / "checkpoint" / "state.json").read_text())["args"]["beta"] == 0.02
    # The built-in evaluation: prior rollouts and a posterior replay of the first episode.
    evaluation = json.loads((out / "library" / "eval.json").read_text())
    assert evaluation["rollouts"]["episodes"] == 1 and evaluation["replay"]["episodes"] == 1
    # The library knows its data, so evaluation can report what that data would score replayed.
    assert data_ceiling(library) == summary["dataset"]["eval_task_ceiling"]
    # ... and can replay it with the decoder alone (z from the encoder), closed loop, in the env.
    replay = posterior_replay(library, episodes=5)
    assert replay["episodes"] == 2 and len(replay["replay_subtasks"]) == 2
    completed = json.loads((out / "data" / "recording.json").read_text())["episodes"][0]["completed"]
    assert set(completed) <= set(replay["data_subtasks"][0])  # the recorded final state has them done
    # ... and decode each window from the data's own state, measuring where it ends.
    errors = window_errors(library, episodes=1)
    assert errors["windows"] == sum(errors["windows_by_subtask"].values()) > 0
    assert set(errors["windows_by_subtask"]) <= set(completed) | {"unknown"}
    assert 0.0 <= errors["median_cm"] < 100.0
    # ... and decode one subtask from the data's state where it starts, next to the demonstration.
    sub = subtask_replay(library, completed[0], episodes=2)
    assert 0 <= sub["decoded_done"] <= sub["instances"] == len(sub["data_distance"]) == len(sub["decoded_distance"])
    assert sub["data_done"] == sub["instances"]  # the demonstrations completed it
    with pytest.raises(ValueError, match="unknown subtask"):
        subtask_replay(library, "toaster")
    # ... and compare q(z|a,d) with p(z|s,d) dim by dim on the same windows (also from the CLI).
    stats = z_statistics(library, episodes=1)
    assert stats["windows"] == errors["windows"]
    for key in ("posterior_mean_spread", "posterior_std", "prior_std", "prior_mean_error"):
        assert len(stats[key]) == library.config.z_dim and min(stats[key]) >= 0.0
    cli = subprocess.run([sys.executable, "-m", "skillgym.skills.evaluate", str(out / "library"), "--episodes", "0",
                          "--z-stats", "1"], capture_output=True, text=True)
    assert cli.returncode == 0 and json.loads(cli.stdout)["z_statistics"] == stats, cli.stderr[-2000:]
    # A second run finds every artifact and redoes nothing.
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and "recording demos" not in again.stderr
    # An artifact made with other options is refused, not silently reused.
    for flag, value, message in (("--action-noise", "0.3", "dataset made with other options (action_noise=0.1"),
                                 ("--beta", "0.5", "skill library made with other options (beta=0.02")):
        other = subprocess.run(cmd + [flag, value], capture_output=True, text=True)
        assert other.returncode != 0 and message in other.stderr, other.stderr[-2000:]


def test_pipeline_options_cover_every_field():
    """`skillgym run` and training/bundled_library.py share one option per PipelineArgs field."""
    parser = argparse.ArgumentParser()
    add_pipeline_options(parser, out_flag="--work")
    assert pipeline_args(parser.parse_args([])) == PipelineArgs()
    flipped = not PipelineArgs().clean_labels
    ns = parser.parse_args(["--work", "w", "--threads", "1", "--clean-labels" if flipped else "--no-clean-labels"])
    assert pipeline_args(ns) == replace(PipelineArgs(), out=Path("w"), threads=1, clean_labels=flipped)
    with pytest.raises(ValueError, match="--skill-steps must be >= 1"):
        pipeline_args(parser.parse_args(["--skill-steps", "0"]))


def test_run_kitchen_on_a_mixed_training_set(tmp_path):
    """A set merged with `skillgym data merge --mixed-recipes` placed at --out/data is used as it is."""
    from skillgym.data.merge import merge_recordings
    from skillgym.data.record import RecordArgs, record_dataset

    parts = [tmp_path / "prefix", tmp_path / "windows"]
    record_dataset(RecordArgs(out=parts[0], episodes=1, seed=3, image_size=32, workers=1))
    record_dataset(RecordArgs(out=parts[1], episodes=1, seed=3, image_size=32, workers=1, eval_windows=True))
    out = tmp_path / "run"
    merge_recordings(parts, out / "data", mixed_recipes=True)
    cmd = [sys.executable, "-m", "skillgym.cli", "run", "kitchen", "--out", str(out), "--encoder", "state",
           "--k", "2", "--skill-steps", "5", "--eval-episodes", "1", "--episodes", "7"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using the mixed training set" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["attempted"] == 2 and summary["extraction"]["num_episodes"] == summary["dataset"]["kept"]
