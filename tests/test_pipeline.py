"""`skillgym run kitchen` end to end at a tiny scale: real demos, real extraction, real training."""

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from skillgym.data.merge import merge_recordings
from skillgym.data.record import RecordArgs, record_dataset
from skillgym.extract.config import ExtractArgs
from skillgym.pipeline import PipelineArgs, run_pipeline
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import TrainSkillsArgs

ROOT = Path(__file__).resolve().parents[1]


def tiny(out: Path, **skills) -> PipelineArgs:
    return PipelineArgs(
        out=out, data=RecordArgs(out=out / "data", episodes=2, image_size=32, workers=1),
        extract=ExtractArgs(dataset=out / "data", out=out / "labels", encoder="state", k=3),
        skills=TrainSkillsArgs(labels="", out="", steps=20, threads=1, progress=False, **skills),
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, run_pipeline(tiny(out, beta=0.02))


def diagnostics():
    spec = importlib.util.spec_from_file_location("diagnostics", ROOT / "training" / "diagnostics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
    assert evaluation["rollouts"]["episodes"] == 10 and evaluation["rollouts_greedy"]["greedy"]
    assert "heldout" in evaluation
    # A second run finds every artifact and redoes nothing.
    capsys.readouterr()
    assert run_pipeline(tiny(out, beta=0.02))["library"] == summary["library"]
    assert "recording demos" not in capsys.readouterr().err
    # An artifact made with other options is refused, not silently reused.
    other_data = tiny(out, beta=0.02)
    other_data.data.action_noise = 0.3
    with pytest.raises(ValueError, match=r"dataset made with other options \(action_noise=0.1"):
        run_pipeline(other_data)
    for options, message in (({"beta": 0.5}, "beta=0.02"), ({"steps": 40}, "steps=20")):
        with pytest.raises(ValueError, match=f"skill library made with other options \\({message}"):
            run_pipeline(tiny(out, **{"beta": 0.02, **options}))


def test_an_interrupted_skill_training_resumes(tmp_path, tiny_run):
    """A run stopped after its last checkpoint but before the library was written picks up there."""
    out = tmp_path / "run"
    args = tiny(out)
    args.skills = replace(args.skills, steps=7)
    run_pipeline(args)
    library = out / "library"
    for name in ("model.safetensors", "config.json", "eval.json"):
        (library / name).unlink()
    run_pipeline(args)
    assert SkillLibrary.load(library).num_skills == 3 and (library / "eval.json").is_file()


def test_diagnostics_on_the_tiny_library(tiny_run):
    out, summary = tiny_run
    diag = diagnostics()
    library = SkillLibrary.load(out / "library")
    outcomes = json.loads((out / "data" / "recording.json").read_text())["episodes"]
    assert diag.data_report(library)["eval_task_ceiling"] == diag.eval_task_ceiling(outcomes)
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


def test_eval_task_ceiling_counts_the_evaluation_prefix_of_the_kept_subtasks():
    diag = diagnostics()
    outcomes = [
        {"order": ["microwave", "kettle", "light switch", "top burner"], "completed": ["microwave", "kettle"]},
        {"order": ["kettle", "microwave", "bottom burner", "light switch"],
         "completed": ["kettle", "microwave", "bottom burner", "light switch"]},
        {"order": ["top burner", "microwave"], "completed": []},  # dropped: not counted
        {"order": ["slide cabinet", "microwave"], "completed": ["slide cabinet"]},
    ]
    assert diag.eval_task_ceiling(outcomes) == pytest.approx((2 + 4 + 0) / 3)
    assert diag.eval_task_ceiling([]) == 0.0


def test_run_kitchen_on_a_mixed_training_set(tmp_path):
    """A set merged with `skillgym data merge --mixed-recipes` placed at --out/data is used as it is."""
    parts = [tmp_path / "prefix", tmp_path / "windows"]
    record_dataset(RecordArgs(out=parts[0], episodes=1, seed=3, image_size=32, workers=1, eval_windows_fraction=0))
    record_dataset(RecordArgs(out=parts[1], episodes=1, seed=3, image_size=32, workers=1, eval_windows_fraction=1))
    out = tmp_path / "run"
    merge_recordings(parts, out / "data", mixed_recipes=True)
    args = tiny(out)
    args.extract.k = 2
    args.skills = replace(args.skills, steps=5)
    summary = run_pipeline(args)
    assert summary["dataset"]["attempted"] == 2 and summary["extraction"]["num_episodes"] == summary["dataset"]["kept"]


def test_run_kitchen_help_explains_every_option():
    result = subprocess.run([sys.executable, "-m", "skillgym.cli", "run", "kitchen", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--out", "--scale", "--seed", "--rl-steps"):
        assert flag in result.stdout
