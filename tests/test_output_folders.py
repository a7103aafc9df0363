"""Every command that writes stops before any work when its output holds files it did not write, and
replaces its own earlier output as before; the user's files are left byte for byte."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_pipeline
from PIL import Image

from skillgym.cli import main
from skillgym.compare.compare import CompareArgs, check_inputs
from skillgym.data.dataset import is_skillgym_dataset, open_dataset, write_minari_dataset
from skillgym.data.record import RecordArgs, record_dataset
from skillgym.data.show import contact_sheet
from skillgym.envs.show_skills import write_skill_sheets
from skillgym.extract.download import DownloadError, download_weights
from skillgym.extract.labeler import extract_skills
from skillgym.pipeline import run_pipeline
from skillgym.rl.train import TrainRLArgs, train_rl
from skillgym.skills.train import train_skills
from tests.synthetic import synthetic_episodes, tiny_training_args, write_synthetic_labels


def user_files(folder: Path, names: tuple[str, ...]) -> dict[Path, bytes]:
    """Write a user's own files (folders for names without a suffix) and return their contents."""
    written = {}
    for name in names:
        path = folder / name
        if not path.suffix:
            path.mkdir(parents=True)
            path = path / "mine.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"the user's {name}".encode())
        written[path] = path.read_bytes()
    return written


def assert_intact(files: dict[Path, bytes]) -> None:
    for path, content in files.items():
        assert path.read_bytes() == content, path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, Path]:
    return write_synthetic_labels(tmp_path_factory.mktemp("syn"), num_episodes=6, num_skills=3)


@pytest.mark.parametrize(("names", "overwrite"),
                         [(("tb", "checkpoint"), True), (("eval.json", "model.safetensors"), False),
                          (("Eval.json",), False)])  # the same file as eval.json on macOS and Windows
def test_train_skills_refuses_a_folder_with_files_named_like_a_librarys(synthetic, tmp_path, names, overwrite):
    files = user_files(tmp_path / "out", names)
    with pytest.raises(FileExistsError, match="skillgym did not write"):
        train_skills(tiny_training_args(synthetic[1], tmp_path / "out", overwrite=overwrite))
    assert_intact(files)


def test_a_run_cut_before_its_first_checkpoint_is_still_its_own(synthetic, tmp_path):
    events = tmp_path / "out" / "tb" / "events.out.tfevents.1.host.1.0"
    events.parent.mkdir(parents=True)
    events.write_bytes(b"")
    train_skills(tiny_training_args(synthetic[1], tmp_path / "out", overwrite=True))
    # Only events, no library or checkpoint: they may be the user's, so they are added to, not deleted.
    assert events.exists() and (tmp_path / "out" / "model.safetensors").is_file()


def test_train_skills_leaves_other_files_and_replaces_its_own_library(synthetic, tmp_path):
    notes = user_files(tmp_path / "out", ("notes.txt",))
    train_skills(tiny_training_args(synthetic[1], tmp_path / "out"))
    train_skills(tiny_training_args(synthetic[1], tmp_path / "out", overwrite=True, seed=1))
    assert_intact(notes)
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["seed"] == 1


def test_extract_refuses_a_folder_with_a_users_labels_or_report(synthetic, tmp_path):
    dataset = open_dataset(synthetic[0])
    files = user_files(tmp_path / "out", ("labels.json", "report"))
    with pytest.raises(FileExistsError, match="labels.json, report, which skillgym did not write"):
        extract_skills(dataset, tmp_path / "out", encoder="state", k=3, progress=False, report=False)
    assert_intact(files)
    # Its own labels folder is relabelled (another seed), next to a user's unrelated file.
    notes = user_files(tmp_path / "own", ("notes.txt",))
    extract_skills(dataset, tmp_path / "own", encoder="state", k=3, progress=False, report=False)
    extract_skills(dataset, tmp_path / "own", encoder="state", k=3, seed=1, progress=False, report=False)
    assert_intact(notes)


def test_dataset_overwrite_refuses_a_folder_holding_more_than_a_dataset(tmp_path):
    episodes, _ = synthetic_episodes(2)
    out = write_minari_dataset(tmp_path / "data", [episodes])
    files = user_files(out, ("notes.txt", "labels"))
    with pytest.raises(FileExistsError, match="also holds labels, notes.txt"):
        write_minari_dataset(out, [episodes], overwrite=True)
    assert_intact(files)
    (out / "notes.txt").unlink()
    shutil.rmtree(out / "labels")
    write_minari_dataset(out, [episodes[:1]], overwrite=True)  # a dataset folder alone is still replaced
    assert len(open_dataset(out)) == 1


def test_a_dataset_is_recorded_into_an_empty_folder(tmp_path):
    (tmp_path / "data").mkdir()
    record_dataset(RecordArgs(out=tmp_path / "data", episodes=1, image_size=32, workers=1))
    assert is_skillgym_dataset(tmp_path / "data")


def test_run_force_checks_every_stage_folder_before_deleting_any(tmp_path):
    out = tmp_path / "run"
    episodes, _ = synthetic_episodes(2)
    write_minari_dataset(out / "data", [episodes])  # a stage folder skillgym wrote
    files = user_files(out / "labels", ("labels.json",))  # and one it did not
    with pytest.raises(FileExistsError, match="labels holds labels.json, which skillgym did not write"):
        run_pipeline(replace(tiny_pipeline(out), force=True))
    assert_intact(files)
    assert len(open_dataset(out / "data")) == 2
    shutil.rmtree(out / "labels")
    notebook = user_files(out / "library", ("analysis.ipynb",))
    with pytest.raises(FileExistsError, match="library is not a folder this stage wrote"):
        run_pipeline(replace(tiny_pipeline(out), force=True))
    assert_intact(notebook)


def test_run_refuses_a_users_report_and_an_rl_run_made_with_other_options(tiny_run, tmp_path):
    user = tmp_path / "user"
    files = user_files(user, ("summary.json",))
    with pytest.raises(FileExistsError, match="summary.json is not a summary this command wrote"):
        run_pipeline(tiny_pipeline(user))
    assert_intact(files)
    out = tmp_path / "copy"
    shutil.copytree(tiny_run[0], out)
    result = json.loads((out / "rl" / "result.json").read_text())
    result["args"]["alpha_d"] = 0.5
    (out / "rl" / "result.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="holds a SkillSAC run made with other options"):
        run_pipeline(tiny_pipeline(out, beta=0.02))


def test_train_rl_checks_its_folder_and_env_before_training(tmp_path):
    files = user_files(tmp_path / "rl", ("curve.json", "result.json"))
    with pytest.raises(FileExistsError, match="curve.json, result.json, which skillgym did not write"):
        train_rl(TrainRLArgs(steps=10, out=str(tmp_path / "rl")))
    assert_intact(files)
    for env_id, message in (("NoSuchEnv-v0", "cannot make 'NoSuchEnv-v0'"), ("CartPole-v1", "not a skill-space env")):
        with pytest.raises(ValueError, match=message):
            train_rl(TrainRLArgs(env_id=env_id, steps=10, out=str(tmp_path / "new")))
        assert not (tmp_path / "new").exists()


def test_skills_show_refuses_a_users_files_before_running_anything(tmp_path):
    files = user_files(tmp_path / "show", ("skills.json", "skill_0.gif"))
    with pytest.raises(FileExistsError, match="skill_0.gif, skills.json, which skillgym did not write"):
        write_skill_sheets(tmp_path / "no-library-needed", tmp_path / "show")
    assert_intact(files)
    assert not (tmp_path / "no-library-needed").exists()


def test_data_show_replaces_only_its_own_png(tmp_path):
    dataset, _ = write_synthetic_labels(tmp_path / "syn", num_episodes=1, num_skills=2, image_size=16)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(photo)
    files = {photo: photo.read_bytes()}
    with pytest.raises(FileExistsError, match="skillgym cannot tell it wrote it"):
        contact_sheet(dataset, 0, photo)
    assert_intact(files)
    sheet = contact_sheet(dataset, 0, tmp_path / "sheet.png")
    assert contact_sheet(dataset, 0, sheet) == sheet  # its own sheet, written again
    with pytest.raises(ValueError, match="must name a .png file"):
        contact_sheet(dataset, 0, tmp_path / "sheet")


@pytest.mark.parametrize("force", [False, True])
def test_download_never_replaces_a_file_that_is_not_a_checkpoint(tmp_path, force):
    dest = tmp_path / "weights.pt"
    dest.write_text("my thesis")
    with pytest.raises(DownloadError, match="exists and is not a readable R3M checkpoint"):
        download_weights("r3m-18", url="http://127.0.0.1:9/never-asked", dest=dest, overwrite=force, progress=False)
    assert dest.read_text() == "my thesis"
    with pytest.raises(DownloadError, match="is a folder"):
        download_weights("r3m-18", url="http://127.0.0.1:9/never-asked", dest=tmp_path, overwrite=force)


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    episodes, _ = synthetic_episodes(1)
    with pytest.raises(FileExistsError, match="a-file is a file, not a folder"):
        write_minari_dataset(blocker / "data", iter([episodes]))
    with pytest.raises(FileExistsError, match="a-file is a file, not a folder"):
        train_rl(TrainRLArgs(steps=10, out=str(blocker / "rl")))


def test_cli_turns_os_errors_into_one_line(synthetic, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["extract", str(synthetic[0]), "--out", str(blocker / "labels"), "--encoder", "state", "--k", "3",
              "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and err.count("\n") == 0 and "a-file" in err, err
    assert blocker.read_text() == "x"


def test_generic_file_names_do_not_make_a_folder_skillgyms(synthetic, tmp_path):
    """A user's checkpoint/state.json, an empty curve.json, a recording.json or an embeddings cache next to
    the user's own labels.json are not skillgym's markers."""
    files = user_files(tmp_path / "exp", ("checkpoint/state.json", "tb/events.txt", "eval.json"))
    with pytest.raises(FileExistsError, match="skillgym did not write"):
        train_skills(tiny_training_args(synthetic[1], tmp_path / "exp", overwrite=True))
    assert_intact(files)

    (tmp_path / "rl").mkdir()
    (tmp_path / "rl" / "curve.json").write_text("[]")
    files = user_files(tmp_path / "rl", ("result.json",))
    with pytest.raises(FileExistsError, match="skillgym did not write"):
        train_rl(TrainRLArgs(steps=10, out=str(tmp_path / "rl")))
    assert_intact(files)

    episodes, _ = synthetic_episodes(1)
    files = user_files(tmp_path / "data", ("recording.json", "data/results.csv"))
    with pytest.raises(FileExistsError, match="not a dataset skillgym wrote"):
        write_minari_dataset(tmp_path / "data", [episodes], overwrite=True)
    assert_intact(files)
    (tmp_path / "data" / "recording.json").write_text('{"episodes": 3}')  # JSON, but not a recording's report
    files = {path: path.read_bytes() for path in files}
    with pytest.raises(FileExistsError, match="not a dataset skillgym wrote"):
        write_minari_dataset(tmp_path / "data", [episodes], overwrite=True)
    assert_intact(files)

    files = user_files(tmp_path / "labels", ("labels.json", "cache/embeddings-clip.npy"))
    with pytest.raises(FileExistsError, match="labels.json"):
        extract_skills(open_dataset(synthetic[0]), tmp_path / "labels", encoder="state", k=3, progress=False)
    assert_intact(files)


def test_replacing_a_folder_looks_inside_its_subfolders(synthetic, tmp_path):
    episodes, _ = synthetic_episodes(2)
    out = write_minari_dataset(tmp_path / "data", [episodes])
    files = user_files(out, ("data/notes.txt",))
    with pytest.raises(FileExistsError, match="also holds data/notes.txt"):
        write_minari_dataset(out, [episodes], overwrite=True)
    assert_intact(files)

    train_skills(tiny_training_args(synthetic[1], tmp_path / "lib"))
    files = user_files(tmp_path / "lib", ("tb/notes.txt", "checkpoint/notes.txt"))
    with pytest.raises(FileExistsError, match="also holds notes.txt"):
        train_skills(tiny_training_args(synthetic[1], tmp_path / "lib", overwrite=True))
    assert_intact(files)


def test_a_download_never_touches_a_users_file_named_like_its_temporary_one(tmp_path):
    dest = tmp_path / "r3m.pt"
    (tmp_path / "r3m.pt.part").write_text("mine")
    with pytest.raises(DownloadError):
        download_weights("r3m-18", url="http://127.0.0.1:9/refused", dest=dest, progress=False, timeout=2)
    assert (tmp_path / "r3m.pt.part").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r3m.pt.part"]


def test_resume_takes_the_same_folders_written_another_way(synthetic, tmp_path, monkeypatch):
    monkeypatch.chdir(synthetic[1].parent)
    args = tiny_training_args(Path("labels"), tmp_path / "lib", steps=60)
    train_skills(args)
    resumed = train_skills(replace(args, labels="./labels/", steps=80, resume=True))
    assert resumed.start_step == 60


def test_markers_are_checked_for_what_skillgym_writes_in_them(synthetic, tmp_path):
    files = user_files(tmp_path / "exp", ("report.html", "report/learning_curve.png"))
    (tmp_path / "exp" / "summary.json").write_text('{"run": "exp-12", "accuracy": 0.93}')
    with pytest.raises(FileExistsError, match="not a summary this command wrote"):
        run_pipeline(tiny_pipeline(tmp_path / "exp"))
    assert_intact(files)

    files = user_files(tmp_path / "labels", ("cache/embeddings-bert.npy", "report/summary.json"))
    with pytest.raises(FileExistsError, match="report, which skillgym did not write"):
        extract_skills(open_dataset(synthetic[0]), tmp_path / "labels", encoder="state", k=3, progress=False)
    assert_intact(files)


def test_run_checks_every_stage_folder_before_writing_anything(tmp_path):
    files = user_files(tmp_path / "run", ("data/train.csv",))
    with pytest.raises(FileExistsError, match="is not a recording skillgym made"):
        run_pipeline(tiny_pipeline(tmp_path / "run"))
    assert_intact(files)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["data"]


def test_a_run_cut_inside_its_first_checkpoint_is_still_its_own(synthetic, tmp_path):
    user_files(tmp_path / "out", ("checkpoint/state.safetensors.tmp", "tb/events.out.tfevents.1.host.1.0"))
    train_skills(tiny_training_args(synthetic[1], tmp_path / "out"))
    assert (tmp_path / "out" / "checkpoint" / "state.json").is_file()


def test_compare_refuses_a_users_data_folder_where_it_would_record(tmp_path):
    files = user_files(tmp_path / "cmp", ("data/train.csv",))
    with pytest.raises(FileExistsError, match="where compare records the demonstrations"):
        check_inputs(CompareArgs(out=str(tmp_path / "cmp"), methods=("bc",), seeds=1))
    assert_intact(files)
    (tmp_path / "empty" / "data").mkdir(parents=True)  # an empty one is recorded into
    check_inputs(CompareArgs(out=str(tmp_path / "empty"), methods=("bc",), seeds=1))


def test_run_kitchen_refuses_a_dataset_folder_and_a_dataset_it_did_not_record_before_writing(tmp_path):
    episodes, _ = synthetic_episodes(2, 3, 0)
    write_minari_dataset(tmp_path / "recorded", [episodes])
    (tmp_path / "recorded" / "recording.json").write_text("{}")  # as `skillgym data kitchen` leaves one
    with pytest.raises(FileExistsError, match="is a dataset folder; give run kitchen a folder of its own"):
        run_pipeline(tiny_pipeline(tmp_path / "recorded"))
    write_minari_dataset(tmp_path / "run" / "data", [episodes])
    with pytest.raises(FileExistsError, match="not a finished recording of this command; pass --force"):
        run_pipeline(tiny_pipeline(tmp_path / "run"))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["data"]
    assert sorted(p.name for p in (tmp_path / "recorded").iterdir()) == ["data", "recording.json"]
