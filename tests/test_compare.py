"""skillgym compare: resumable runs that end where uninterrupted ones do, and a tiny comparison."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from skillgym.compare import CompareArgs, RunSpec, compare, train_run
from skillgym.compare.compare import check_comparison_folder, library_labels, plan_runs, prepare_data
from skillgym.compare.page import skills_tried, value_at, write_results_page
from skillgym.compare.run import CHECKPOINT
from skillgym.data.dataset import Episode, write_minari_dataset

ASSETS = Path(__file__).resolve().parent.parent / "skillgym" / "assets"
LIBRARY = str(ASSETS / "kitchen-state")

# Budgets that cross several episode ends (280 low-level steps each) with gradient steps from the start;
# small batches keep the gradient steps cheap (resuming is what is tested, not learning).
RUNS = {
    "extract": dict(method="extract", steps=900, library=LIBRARY,
                    agent_kwargs={"learning_starts": 20, "batch_size": 32}),
    "sac": dict(method="sac", steps=700, agent_kwargs={"batch_size": 32, "policy_kwargs": {"net_arch": [64, 64]}}),
}


def run_settings(method: str, out: Path, eval_every: int = 250) -> RunSpec:
    return RunSpec(task="default", seed=1, eval_every=eval_every, eval_episodes=1, out=str(out), **RUNS[method])


def without_wall_time(curve):
    return [{k: v for k, v in point.items() if k != "wall_seconds"} for point in curve]


@pytest.mark.parametrize("method", sorted(RUNS))
def test_a_killed_run_resumes_to_the_numbers_of_an_uninterrupted_one(method, tmp_path):
    # Evaluations every 100 steps, shorter than an episode: each episode end passes marks that were not evaluated.
    straight = train_run(run_settings(method, tmp_path / "straight", eval_every=100))

    settings = run_settings(method, tmp_path / "killed", eval_every=100)
    code = ("import json, sys; from skillgym.compare.run import RunSpec, train_run; "
            "train_run(RunSpec(**json.loads(sys.argv[1])))")
    child = subprocess.Popen([sys.executable, "-c", code, json.dumps(asdict(settings))],
                             env={**os.environ, "MUJOCO_GL": "egl"}, stderr=subprocess.DEVNULL)
    state = Path(settings.out) / CHECKPOINT / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:
        if state.is_file() and json.loads(state.read_text())["extra"]["low_level_steps"] >= 250:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (Path(settings.out) / "result.json").exists()

    resumed = train_run(settings)
    assert without_wall_time(resumed["curve"]) == without_wall_time(straight["curve"])
    assert resumed["policy_sha256"] == straight["policy_sha256"]
    assert len(resumed["curve"]) >= 3  # evaluated at 0, after the kill and at the end


def test_a_run_extended_with_another_evaluation_interval_is_refused_with_the_option_to_pass(tmp_path):
    settings = run_settings("sac", tmp_path / "run")
    train_run(settings)
    grown = RunSpec(**{**asdict(settings), "steps": 1400, "eval_every": 500})
    with pytest.raises(FileExistsError, match=r"other settings \(eval_every 250 -> 500\); pass the run's --eval-every"):
        train_run(grown)
    with pytest.raises(FileExistsError, match=r"other settings \(seed 1 -> 2\); pick another --out"):
        train_run(RunSpec(**{**asdict(settings), "seed": 2}))


def test_a_comparison_that_would_extend_runs_with_other_settings_is_refused_before_any_work(tmp_path):
    args = CompareArgs(out=str(tmp_path / "cmp"), methods=("sac",), seeds=1, steps=300, eval_episodes=1, workers=1,
                       agent_kwargs={"sac": RUNS["sac"]["agent_kwargs"]})
    compare(args)
    page = {name: (tmp_path / "cmp" / name).read_bytes() for name in ("results.md", "results.json", "curves.png")}
    grown = CompareArgs(**{**asdict(args), "steps": 400})  # the evaluation interval follows --steps: 30 -> 40
    with pytest.raises(FileExistsError, match=r"eval_every 30 -> 40\); pass the run's --eval-every"):
        compare(grown)
    assert {name: (tmp_path / "cmp" / name).read_bytes() for name in page} == page


def test_a_run_folder_with_other_settings_is_refused(tmp_path):
    settings = run_settings("sac", tmp_path / "run")
    Path(settings.out).mkdir()
    (Path(settings.out) / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no comparison run"):
        train_run(settings)
    assert (Path(settings.out) / "notes.txt").read_text() == "mine"


def test_a_tiny_comparison_writes_the_results_page(kitchen_data, tmp_path):
    args = CompareArgs(out=str(tmp_path / "cmp"), methods=("extract", "spirl", "sac", "bc"), seeds=1, steps=300,
                       data=str(kitchen_data), eval_episodes=1, workers=2, library=(LIBRARY,),
                       agent_kwargs={"extract": {"learning_starts": 5}, "spirl": {"learning_starts": 5}},
                       pretrain_steps={"spirl": 20, "bc": 20})
    summary = compare(args)
    out = Path(args.out)
    page = (out / "results.md").read_text()
    for name in ("extract", "spirl", "sac", "bc", "curves.png", "skill_lengths.png",
                 "Made by `compare(CompareArgs(", "pretrain_steps={'spirl': 20, 'bc': 20}",
                 "episodes stopping before each subtask", "skills run after the last subtask"):
        assert name in page
    assert (out / "curves.png").stat().st_size > 0 and (out / "skill_lengths.png").stat().st_size > 0
    rows = {row["method"]: row for row in summary["results"]}
    assert set(rows) == {"extract", "spirl", "sac", "bc"} and all(r["finished"] == 1 for r in rows.values())
    (extract_curve,) = rows["extract"]["curves"]  # every seed's evaluations, for plots of one's own
    assert extract_curve[0]["low_level_steps"] == 0 and extract_curve[-1]["low_level_steps"] >= 300
    spirl = json.loads((out / "runs" / "spirl" / "default" / "seed0" / "result.json").read_text())
    assert set(spirl["skill_lengths"][:-1]) == {10}  # fixed-length skills (the last may be cut by the time limit)
    extract = json.loads((out / "runs" / "extract" / "default" / "seed0" / "result.json").read_text())
    (stuck,) = extract["final_skills_after_last_subtask"]  # one evaluation episode, short of all four subtasks
    assert extract["final_completed"][0] < 4 and stuck and set(stuck) <= set(range(8))
    bc = json.loads((out / "runs" / "bc" / "default" / "seed0" / "result.json").read_text())
    assert [p["low_level_steps"] for p in bc["curve"]] == [0]  # learns from data only

    # The same command again finds every run finished and rewrites the page from their results.
    made = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file() and p.name != "run.json"}
    assert compare(args)["results"] == summary["results"]
    assert {p: p.stat().st_mtime_ns for p in made} == made  # nothing trained or evaluated again


def test_the_spirl_library_does_not_depend_on_how_many_runs_go_in_parallel(kitchen_data, tmp_path):
    weights = []
    for workers in (1, 3):
        out = tmp_path / f"workers{workers}"
        prepare_data(CompareArgs(out=str(out), methods=("spirl",), data=str(kitchen_data), workers=workers,
                                 pretrain_steps={"spirl": 30}))
        weights.append((out / "spirl" / "library" / "model.safetensors").read_bytes())
    assert weights[0] == weights[1]


def test_the_page_of_a_comparison_with_no_finished_run_says_so(tmp_path, recwarn):
    runs = [("extract", run_settings("extract", tmp_path / "runs" / f"seed{seed}")) for seed in (0, 1)]
    write_results_page(tmp_path, runs, command="skillgym compare")
    assert "| extract | default | – | – |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_the_table_gives_each_budgets_mean_and_std_over_seeds_and_the_mean_over_tasks(tmp_path, recwarn):
    # Three tasks x three seeds of 300k steps, evaluated at 0, 100k and 300k. Seed s on task j completes
    # s + MORE[j] subtasks at 100k and one more at 300k (its success rate: 0 at 100k, 1 at 300k).
    tasks, more = ("default", "switch-first", "kettle+microwave+top burner+slide cabinet"), (0, 0, 3)
    runs = []
    for task, extra in zip(tasks, more, strict=True):
        for seed in range(3):
            settings = RunSpec(**{**asdict(run_settings("extract", tmp_path / task / f"seed{seed}")), "task": task,
                                  "seed": seed, "steps": 300_000, "eval_every": 100_000})
            runs.append(("extract", settings))
            curve = [{"low_level_steps": steps, "subtasks_mean": float(seed + extra + (steps >= 300_000)) * (steps > 0),
                      "success_rate": float(steps >= 300_000)} for steps in (0, 100_040, 300_120)]
            # seed 2 of the second task stopped at 100k: it is left out of that row, and of the mean over tasks
            reached = 100_000 if (task, seed) == ("switch-first", 2) else 300_000
            Path(settings.out).mkdir(parents=True)
            (Path(settings.out) / "result.json").write_text(json.dumps({
                "steps": reached, "curve": curve if reached == 300_000 else curve[:2], "skill_lengths": [10, 12],
                "final_completed": [1], "final_skills_after_last_subtask": [[3]]}))
    write_results_page(tmp_path, runs, command="skillgym compare")
    page = (tmp_path / "results.md").read_text()
    assert "| method | task | subtasks @ 100k | subtasks @ 300k | full-sequence success |" in page
    # seeds 0, 1, 2 -> 100k: 0, 1, 2 (mean 1, population std sqrt(2/3)); 300k: 1, 2, 3
    assert "| extract | default | 1.00 ± 0.82 | 2.00 ± 0.82 | 1.00 ± 0.00 |" in page
    assert "| extract | switch-first | 0.50 ± 0.50 (2 of 3 seeds) | 1.50 ± 0.50 (2 of 3 seeds) | " \
        "1.00 ± 0.00 (2 of 3 seeds) |" in page
    # each seed's mean over its three tasks: seed 0 (0 + 0 + 3) / 3 = 1, seed 1 2, seed 2 unfinished
    assert "| extract | mean of 3 tasks | 1.50 ± 0.50 (2 of 3 seeds) | 2.50 ± 0.50 (2 of 3 seeds) | " \
        "1.00 ± 0.00 (2 of 3 seeds) |" in page
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_skills_tried_gives_the_most_run_skills_as_shares():
    assert skills_tried([[3, 3, 5], [], [3, 1]]) == "skill 3 60 %, skill 1 20 %, skill 5 20 %"
    assert skills_tried([[], []]) == "–" and skills_tried([]) == "–"


def test_value_at_takes_the_first_evaluation_at_or_after_the_budget():
    curve = [{"low_level_steps": s, "subtasks_mean": v} for s, v in ((0, 0.0), (100_150, 1.5), (200_020, 2.0))]
    assert value_at(curve, 100_000) == 1.5 and value_at(curve, 200_020) == 2.0 and value_at(curve, 300_000) is None


@pytest.mark.parametrize("flags, message", [
    (["--methods", "extract,ppo"], "unknown methods"),
    (["--tasks", "kettle+dishwasher"], "'dishwasher' is no subtask"),
    (["--tasks", "kettle+kettle"], "distinct subtasks"),
    (["--tasks", "kettle-cabinet"], "or a group of tasks: held-out, suite"),
    (["--library", "no/such/library"], "no skill library at no/such/library"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--seeds", "1001"], "seeds must be <= 1000"),
])
def test_bad_options_are_one_line_errors(flags, message, tmp_path, capsys):
    from skillgym.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(tmp_path / "cmp"), *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_a_run_does_not_continue_with_a_retrained_library(tmp_path):
    from safetensors.torch import load_file, save_file

    library = tmp_path / "library"
    shutil.copytree(LIBRARY, library)
    settings = RunSpec(method="extract", task="default", seed=0, steps=20, eval_every=20, eval_episodes=1,
                   out=str(tmp_path / "run"), library=str(library))
    train_run(settings)
    weights = load_file(str(library / "model.safetensors"))
    weights = {k: v + 1e-3 if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, str(library / "model.safetensors"))
    with pytest.raises(FileExistsError, match="library_weights_sha256"):
        train_run(RunSpec(**{**asdict(settings), "steps": 40}))


def run_compare_cli(tmp_path, capsys, *flags: str) -> str:
    """``skillgym compare`` with tiny settings; returns its one-line error (it must fail with exit 2)."""
    from skillgym.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--methods", "extract", "--steps", "100", "--seeds", "1", "--eval-episodes", "1",
              "--workers", "1", *flags])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("names", [("results.md", "results.json"), ("curves.png",), ("runs",)])
def test_an_out_folder_holding_the_users_files_named_like_the_page_is_refused(names, tmp_path, capsys):
    out = tmp_path / "cmp"
    out.mkdir()
    for name in names:
        path = out / name / "mine.txt" if name == "runs" else out / name
        path.parent.mkdir(exist_ok=True)
        path.write_text('{"mine": 1}')
    err = run_compare_cli(tmp_path, capsys, "--out", str(out))
    assert "which skillgym did not write" in err and names[0] in err
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all((out / name).is_dir() or (out / name).read_text() == '{"mine": 1}' for name in names)


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "afile"
    out.write_text("mine")
    assert f"--out {out} is a file; pick a folder" in run_compare_cli(tmp_path, capsys, "--out", str(out))
    assert out.read_text() == "mine"


def test_an_earlier_comparisons_folder_is_its_own(tmp_path):
    args = CompareArgs(out=str(tmp_path / "cmp"), methods=("extract",), seeds=1)
    run = Path(plan_runs(args, None, None)[0][1].out)
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"method": "extract", "task": "default", "seed": 0}))
    (tmp_path / "cmp" / "results.md").write_text("an earlier page")
    check_comparison_folder(args)  # run folders mark it: no error
    (run / "run.json").unlink()
    with pytest.raises(FileExistsError, match="did not write"):
        check_comparison_folder(args)
    (tmp_path / "cmp" / "results.json").write_text(json.dumps({"command": "skillgym compare", "steps": 100,
                                                               "eval_every": 10, "results": []}))
    check_comparison_folder(args)  # so does an earlier page's results.json


def test_libraries_of_the_same_name_get_labels_and_folders_of_their_own(tmp_path):
    assert library_labels(["default", "/runs/a/library", "/runs/b/library", "/runs/c"]) == [
        "default", "a/library", "b/library", "c"]
    assert library_labels(["agnostic", "/x/agnostic", "/y/a/lib", "/z/a/lib"]) == [
        "agnostic", "x/agnostic", "y/a/lib", "z/a/lib"]
    for folder in ("a/library", "b/library"):
        (tmp_path / folder).mkdir(parents=True)
    args = CompareArgs(out=str(tmp_path / "cmp"), methods=("extract",), seeds=1,
                       library=(str(tmp_path / "a/library"), str(tmp_path / "b/library")))
    runs = plan_runs(args, None, None)
    assert [label for label, _ in runs] == ["extract[a/library]", "extract[b/library]"]
    assert [Path(run.out).parts[-3] for _, run in runs] == ["extract[a-library]", "extract[b-library]"]


def test_one_task_spelled_two_ways_runs_once():
    args = CompareArgs(out="cmp", methods=("sac",), tasks=(" kettle + microwave ", "kettle+microwave",
                                                            "microwave+kettle+bottom burner+light switch", "default"))
    assert args.task_names() == ["kettle+microwave", "default"]
    assert [Path(run.out).parts[-2] for _, run in plan_runs(args, None, None)] == ["kettle+microwave"] * 3 + \
        ["default"] * 3


def test_a_string_option_in_python_is_a_comma_separated_list_as_on_the_command_line():
    args = CompareArgs(out="cmp", methods="extract,sac", tasks="default", library="agnostic")
    assert (args.methods, args.tasks, args.library) == (("extract", "sac"), ("default",), ("agnostic",))


def test_libraries_are_only_looked_for_when_a_method_uses_one():
    assert CompareArgs(out="cmp", methods=("sac", "bc"), library=("no/such/library",)).method_names() == ["sac", "bc"]
    with pytest.raises(FileNotFoundError, match="no skill library at no/such/library"):
        CompareArgs(out="cmp", methods=("sac", "extract"), library=("no/such/library",))


def test_a_library_named_twice_runs_once():
    args = CompareArgs(out="cmp", methods=("extract",), library=("default", "agnostic", "default", LIBRARY))
    assert args.library == ("default", "agnostic")
    labels = [label for label, _ in plan_runs(args, None, None)]
    assert labels == ["extract[default]"] * 3 + ["extract[agnostic]"] * 3


def write_bad_library(folder: Path, problem: str) -> Path:
    if problem == "libero":
        return ASSETS / "libero-spatial"
    shutil.copytree(LIBRARY, folder)
    if problem == "labels":  # a labels folder given as a library
        for name in ("config.json", "model.safetensors"):
            (folder / name).unlink()
        (folder / "labels.json").write_text("{}")
    else:
        (folder / "model.safetensors").write_bytes(b"not safetensors")
    return folder


@pytest.mark.parametrize("problem, message", [
    ("labels", "has no config.json: not a skill library"),
    ("corrupt", "cannot be read as safetensors"),
    ("libero", "does not fit the kitchen: the skill library is language-conditioned"),
])
def test_a_library_that_will_not_do_is_refused_before_any_run(problem, message, tmp_path, capsys):
    library = write_bad_library(tmp_path / "library", problem)
    err = run_compare_cli(tmp_path, capsys, "--out", str(tmp_path / "cmp"), "--library", f"default,{library}")
    assert message in err.strip().splitlines()[-1]
    assert not (tmp_path / "cmp").exists()


def test_data_that_are_not_kitchen_demonstrations_are_refused_before_any_run(tmp_path, capsys):
    data = tmp_path / "data"
    write_minari_dataset(data, [[Episode(states=np.zeros((4, 12)), actions=np.zeros((3, 7), np.float32))]])
    err = run_compare_cli(tmp_path, capsys, "--out", str(tmp_path / "cmp"), "--methods", "bc", "--data", str(data))
    assert "holds 12-d states and 7-d actions, but the kitchen's are 59-d and 9-d" in err
    assert "no dataset at" in run_compare_cli(tmp_path, capsys, "--out", str(tmp_path / "cmp"), "--methods", "bc",
                                              "--data", str(tmp_path / "none"))
    assert not (tmp_path / "cmp").exists()


def test_a_run_that_failed_before_training_starts_again_with_other_settings(tmp_path):
    from skillgym.skills.library import LibraryError

    library = tmp_path / "library"
    write_bad_library(library, "corrupt")
    settings = RunSpec(method="extract", task="default", seed=0, steps=20, eval_every=20, eval_episodes=1,
                       out=str(tmp_path / "run"), library=str(library))
    with pytest.raises(LibraryError, match="cannot be read as safetensors"):
        train_run(settings)
    assert (tmp_path / "run" / "run.json").is_file()
    shutil.copy(Path(LIBRARY) / "model.safetensors", library / "model.safetensors")  # the library fixed
    assert train_run(settings)["steps"] == 20


@pytest.mark.parametrize(("steps", "warm_up"), [(20_000, 66), (300_000, 1000), (3_000_000, 1000)])
def test_skillsac_warm_up_takes_at_most_a_tenth_of_a_small_budget(steps, warm_up, tmp_path):
    from skillgym.compare.methods import METHODS

    settings = RunSpec(method="extract", task="default", seed=0, steps=steps, eval_every=steps, eval_episodes=1,
                       out=str(tmp_path), library=LIBRARY)
    env = METHODS["extract"].make_env(settings)
    try:
        assert METHODS["extract"].make_model(settings, env, str(tmp_path)).learning_starts == warm_up
        chosen = RunSpec(**{**asdict(settings), "agent_kwargs": {"learning_starts": 7}})
        assert METHODS["extract"].make_model(chosen, env, str(tmp_path)).learning_starts == 7
    finally:
        env.close()


@pytest.mark.parametrize("ctrl_c", [False, True])
def test_a_terminated_comparison_stops_its_worker_processes_too(tmp_path, ctrl_c):
    """SIGTERM (kill, a job scheduler) to the command, or Ctrl-C (SIGINT to the terminal's whole process group),
    ends it and its workers at once: a worker whose run was stopped does not take the queued third run."""
    out = tmp_path / "cmp"
    command = [sys.executable, "-m", "skillgym.cli", "compare", "--methods", "sac", "--seeds", "3", "--steps",
               "100000", "--workers", "2", "--eval-episodes", "1", "--out", str(out)]
    # As from a terminal: Ctrl-C reaches the command even if these tests run where SIGINT is ignored (a background
    # job of a script), which a child would inherit.
    main = subprocess.Popen(command, env={**os.environ, "MUJOCO_GL": "egl"}, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(list(out.glob("runs/sac/default/seed*/run.json"))) < 2:
            time.sleep(0.2)
        workers = [int(pid) for pid in Path(f"/proc/{main.pid}/task/{main.pid}/children").read_text().split()]
        assert len(workers) >= 2, "both runs should be training in worker processes by now"
        if ctrl_c:
            os.killpg(main.pid, signal.SIGINT)
        else:
            main.send_signal(signal.SIGTERM)
        _, err = main.communicate(timeout=60)
    finally:  # whatever happened, nothing of it keeps running
        if main.poll() is None:
            os.killpg(main.pid, signal.SIGKILL)
            main.wait()
    assert main.returncode == 130 and "interrupted; run the same command again to continue" in err, err[-2000:]
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert not (out / "runs" / "sac" / "default" / "seed2" / "run.json").exists()
