"""`skillgym run kitchen` end to end at a tiny scale: real demos, real extraction, real training."""

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import tiny_pipeline as tiny

import skillgym.rl.train
from skillgym.data.merge import merge_recordings
from skillgym.data.record import RecordArgs, record_dataset
from skillgym.pipeline import run_pipeline
from skillgym.skills.library import SkillLibrary

ROOT = Path(__file__).resolve().parents[1]


def diagnostics():
    found = importlib.util.spec_from_file_location("diagnostics", ROOT / "training" / "diagnostics.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def test_run_kitchen_tiny(tiny_run, capsys):
    out, summary = tiny_run
    assert summary["dataset"]["attempted"] == 2
    assert summary["extraction"]["k"] == 3
    library = SkillLibrary.load(out / "library")
    assert library.num_skills == 3
    # The stage's options reach the training run.
    assert json.loads((out / "library" / "checkpoint" / "state.json").read_text())["args"]["beta"] == 0.02
    evaluation = json.loads((out / "library" / "eval.json").read_text())
    assert evaluation["rollouts"]["episodes"] == 2 and evaluation["rollouts_greedy"]["greedy"]
    assert summary["rl"]["final"]["low_level_steps"] >= 300 and (out / "rl" / "skillsac" / "model.json").is_file()
    assert "heldout" in evaluation
    # A second run finds every artifact and redoes nothing.
    capsys.readouterr()
    assert run_pipeline(tiny(out, beta=0.02))["library"] == summary["library"]
    assert "recording demos" not in capsys.readouterr().err
    # An artifact made with other options is refused, not silently reused, and the run's summary stays whole.
    finished = (out / "summary.json").read_text()
    other_data = tiny(out, beta=0.02)
    other_data.data.action_noise = 0.3
    with pytest.raises(ValueError, match=r"dataset made with other options \(action_noise=0.1"):
        run_pipeline(other_data)
    for options, message in (({"beta": 0.5}, "beta=0.02"), ({"steps": 40}, "steps=20")):
        with pytest.raises(ValueError, match=f"skill library made with other options \\({message}"):
            run_pipeline(tiny(out, **{"beta": 0.02, **options}))
    for option, value, message in (("k", 4, "k=3"), ("kernel", 5, "median_kernel=7"), ("min_length", 3, "min_length=5")):
        other_labels = tiny(out, beta=0.02)
        setattr(other_labels.extract, option, value)
        with pytest.raises(ValueError, match=f"labels folder made with other options \\({message} there"):
            run_pipeline(other_labels)
    assert (out / "summary.json").read_text() == finished


def test_an_interrupted_skill_training_resumes_in_a_moved_run_folder(tiny_run, tmp_path):
    """A run stopped after its last checkpoint but before the library was written, then moved, picks up
    there and writes the same library."""
    summary = tiny_run[1]
    out = tmp_path / "moved"
    shutil.copytree(tiny_run[0], out)
    library = out / "library"
    weights = (library / "model.safetensors").read_bytes()
    for name in ("model.safetensors", "config.json", "eval.json"):
        (library / name).unlink()
    again = run_pipeline(tiny(out, beta=0.02))
    assert (library / "model.safetensors").read_bytes() == weights
    assert again["library"]["heldout"] == summary["library"]["heldout"]


def test_an_interrupted_skillsac_stage_continues_to_the_uninterrupted_result(tiny_run, tmp_path, monkeypatch,
                                                                               capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    shutil.rmtree(out / "rl")
    for name in ("summary.json", "report.html"):
        (out / name).unlink()
    shutil.rmtree(out / "report")
    save = skillgym.rl.train.save_training_state

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr("skillgym.rl.train.save_training_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(tiny(out, beta=0.02))
    assert not (out / "rl" / "result.json").exists()
    monkeypatch.undo()
    capsys.readouterr()
    summary = run_pipeline(tiny(out, beta=0.02))
    assert f"continuing the run in {out / 'rl'}" in capsys.readouterr().out
    for run in (summary, tiny_run[1]):
        for point in run["rl"]["curve"]:
            point.pop("wall_seconds")
    assert summary["rl"]["curve"] == tiny_run[1]["rl"]["curve"]


def test_a_run_cut_later_keeps_the_time_of_each_stage_it_made(tiny_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    for name in ("summary.json", "report.html"):
        (out / name).unlink()  # stages from a run whose times are unknown
    shutil.rmtree(out / "report")
    shutil.rmtree(out / "labels")  # made again

    def cut(_):
        raise KeyboardInterrupt

    monkeypatch.setattr("skillgym.pipeline.train_rl", cut)
    shutil.rmtree(out / "rl")
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(tiny(out, beta=0.02))
    made = json.loads((out / "summary.json").read_text())["timings"]
    assert list(made) == ["skill extraction"]
    monkeypatch.undo()
    capsys.readouterr()
    summary = run_pipeline(tiny(out, beta=0.02))
    printed = capsys.readouterr().out
    assert f"made in {made['skill extraction']:.0f} s by an earlier run" in printed
    assert printed.count("made in") == 1 and printed.count("done in") == 1  # the library's time is unknown
    assert summary["timings"]["skill extraction"] == made["skill extraction"]
    assert set(summary["timings"]) == {"skill extraction", "SkillSAC"}


def test_diagnostics_on_the_tiny_library(tiny_run):
    out, summary = tiny_run
    diag = diagnostics()
    library = SkillLibrary.load(out / "library")
    outcomes = json.loads((out / "data" / "recording.json").read_text())["episodes"]
    assert diag.data_report(out / "data")["eval_task_ceiling"] == diag.eval_task_ceiling(outcomes)
    replay = diag.posterior_replay(library, episodes=5)
    assert replay["episodes"] == 2 and len(replay["replay_subtasks"]) == 2
    completed = outcomes[0]["completed"]
    assert set(completed) <= set(replay["data_subtasks"][0])  # the recorded final state has them done
    errors = diag.window_errors(library, episodes=1)
    assert errors["windows"] == sum(errors["windows_by_subtask"].values()) > 0
    assert 0.0 <= errors["median_cm"] < 100.0
    sub = diag.subtask_replay(library, completed[0], episodes=2)
    assert 0 <= sub["decoded_done"] <= sub["instances"] == len(sub["data_distance"]) == len(sub["decoded_distance"])
    with pytest.raises(ValueError, match="unknown subtask"):
        diag.subtask_replay(library, "toaster")
    stats = diag.z_statistics(library, episodes=1)
    assert stats["windows"] == errors["windows"]
    cli = subprocess.run([sys.executable, str(ROOT / "training" / "diagnostics.py"), str(out / "library"),
                          "--z-stats", "1"], capture_output=True, text=True)
    assert cli.returncode == 0 and json.loads(cli.stdout)["z_statistics"] == stats, cli.stderr[-2000:]
    cli = subprocess.run([sys.executable, str(ROOT / "training" / "diagnostics.py"), "--recording", str(out / "data")],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and json.loads(cli.stdout)["data"] == diag.data_report(out / "data"), cli.stderr[-2000:]


def test_run_kitchen_on_a_mixed_training_set(tmp_path, few_prior_rollouts):
    """A set merged with `skillgym data merge --mixed-recipes` placed at --out/data is used as it is."""
    parts = [tmp_path / "prefix", tmp_path / "windows"]
    record_dataset(RecordArgs(out=parts[0], episodes=1, seed=3, image_size=32, workers=1, eval_windows_fraction=0))
    record_dataset(RecordArgs(out=parts[1], episodes=1, seed=3, image_size=32, workers=1, eval_windows_fraction=1))
    out = tmp_path / "run"
    merge_recordings(parts, out / "data", mixed_recipes=True)
    args = tiny(out)
    args.extract.k = 2
    args.skills, args.rl, args.rl_steps = replace(args.skills, steps=5), None, 0
    summary = run_pipeline(args)
    assert summary["dataset"]["attempted"] == 2 and summary["extraction"]["num_episodes"] == summary["dataset"]["kept"]
    assert "dataset" not in summary["timings"]  # merged outside the run: its time is unknown


def test_the_rl_budget_is_given_once(tmp_path):
    with pytest.raises(ValueError, match="both set the SkillSAC budget"):
        replace(tiny(tmp_path), rl_steps=0)


def test_a_small_rl_budget_gets_a_short_warm_up_and_a_given_config_is_kept(tmp_path):
    from skillgym.pipeline import PipelineArgs
    from skillgym.rl.train import TrainRLArgs

    for scale, rl_steps in (("quick", None), ("quick", 20_000), ("paper", None)):
        _, _, skills, rl = PipelineArgs(out=tmp_path, scale=scale, rl_steps=rl_steps).stages()
        # the warm-up takes at most a tenth of the budget, even if every skill runs to its longest
        assert 0 < rl.learning_starts * skills.window <= 0.1 * rl.steps
        assert rl.learning_starts == min(TrainRLArgs.learning_starts, int(0.1 * rl.steps / skills.window))
    assert PipelineArgs(out=tmp_path, scale="paper").stages()[3].learning_starts == 1000  # the documented setting
    given = TrainRLArgs(steps=50_000, learning_starts=700)
    assert PipelineArgs(out=tmp_path, rl=given).stages()[3].learning_starts == 700


def test_run_kitchen_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "skillgym.cli", "run", "kitchen", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--out", "--scale", "--seed", "--rl-steps"):
        assert flag in result.stdout


def test_a_killed_run_resumes_to_the_same_artifacts(tiny_run, tmp_path):
    """`skillgym run kitchen` killed once its labels exist, then run again, ends with the same
    labels, library and agent as the uninterrupted run."""
    out, summary = tiny_run
    again = tmp_path / "run"
    shutil.copytree(out / "data", again / "data")  # the recording stage is not what is tested here
    code = ("import sys; sys.path.insert(0, {!r}); from conftest import tiny_pipeline; from pathlib import Path; "
            "from skillgym.pipeline import run_pipeline; import skillgym.pipeline as p; p.PRIOR_ROLLOUT_EPISODES = 2; "
            "run_pipeline(tiny_pipeline(Path({!r}), beta=0.02))").format(str(ROOT / "tests"), str(again))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (again / "labels" / "labels.json").is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.kill()
    process.wait()
    assert not (again / "report.html").is_file(), "the run finished before it could be killed"
    resumed = run_pipeline(tiny(again, beta=0.02))
    for artifact in ("labels/labels.npz", "library/model.safetensors"):
        assert (again / artifact).read_bytes() == (out / artifact).read_bytes(), artifact
    def points(curve):
        return [(p["low_level_steps"], p["skill_decisions"], p["return_mean"]) for p in curve]

    assert points(resumed["rl"]["curve"]) == points(summary["rl"]["curve"])
