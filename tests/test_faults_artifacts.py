"""Corrupt and hostile inputs per artifact, interruptions per command: each gives a clear error (exit 2 at the
CLI, one line) or recovers, and nothing outside the run folder changes."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from skillgym.cli import main
from skillgym.data.dataset import DatasetError, Episode, open_dataset, write_minari_dataset
from skillgym.envs.toy import ToySkillEnv
from skillgym.extract.labeler import LabelerError, SkillLabeler, extract_skills
from skillgym.extract.labels import LabelsError, SkillLabels
from skillgym.rl import checkpoint as rl_checkpoint
from skillgym.rl.checkpoint import policy_digest
from skillgym.rl.model_folder import ModelError
from skillgym.rl.skill_sac import SkillSAC
from skillgym.skills import train as train_module
from skillgym.skills.config import LibraryConfig, LibraryError
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import CheckpointError, NonFiniteLossError, train_skills
from tests.synthetic import tiny_training_args, write_synthetic_labels

REPO = Path(__file__).resolve().parents[1]


def cli_error(argv: list[str], capsys) -> str:
    """Run the CLI, expect exit 2 and a single stderr line; return it."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("skillgym "), err
    return err


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> tuple[Path, Path]:
    return write_synthetic_labels(tmp_path_factory.mktemp("syn"), num_episodes=6, num_skills=3)


# -- labels -------------------------------------------------------------------------------------
def _npz_bytes(labels_dir: Path) -> bytes:
    return (labels_dir / "labels.npz").read_bytes()


def _bad_crc(data: bytes) -> bytes:
    # flip a byte inside the first stored member's data (after its 30-byte header + name)
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z:
        info = z.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1:]


CORRUPT_NPZ = {
    "empty": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "bad_crc": _bad_crc,
    "random_bytes": lambda good: np.random.default_rng(0).bytes(2000),
    "pickle": lambda good: pickle.dumps({"frame_labels": [1, 2]}),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT_NPZ))
def test_corrupt_labels_npz_gives_labels_error(labelled, tmp_path, kind, capsys):
    data, labels = labelled
    bad = tmp_path / "labels"
    bad.mkdir()
    (bad / "labels.json").write_text((labels / "labels.json").read_text())
    (bad / "labels.npz").write_bytes(CORRUPT_NPZ[kind](_npz_bytes(labels)))
    with pytest.raises(LabelsError) as exc:
        SkillLabels.load(bad)
    assert "allow_pickle" not in str(exc.value) and "skillgym extract" in str(exc.value)
    before = snapshot(labelled[0].parent)
    err = cli_error(["train-skills", str(bad), "--out", str(tmp_path / "lib")], capsys)
    assert "allow_pickle" not in err and "labels" in err
    assert snapshot(labelled[0].parent) == before


@pytest.mark.parametrize("payload", [
    {"format_version": 1},  # keys missing
    {"format_version": 1, "num_skills": "3", "dataset_path": "x", "dataset_fingerprint": "y"},
    [1, 2, 3],
    "deep",
])
def test_bad_labels_json_gives_labels_error(labelled, tmp_path, payload):
    _, labels = labelled
    bad = tmp_path / "labels"
    bad.mkdir()
    (bad / "labels.npz").write_bytes(_npz_bytes(labels))
    text = "[" * 100_000 + "]" * 100_000 if payload == "deep" else json.dumps(payload)
    (bad / "labels.json").write_text(text)
    with pytest.raises(LabelsError, match="skillgym extract"):
        SkillLabels.load(bad)


def test_labels_npz_of_another_run_gives_labels_error(labelled, tmp_path):
    labels = SkillLabels.load(labelled[1])
    folder = labels.save(tmp_path / "labels")
    other = labels.frame_labels.copy()
    other[other >= 0] = (other[other >= 0] + 1) % labels.num_skills  # another labelling, same shapes
    elsewhere = SkillLabels(other, labels.episode_offsets, labels.segments, labels.num_skills, labels.dataset_path,
                            labels.dataset_fingerprint).save(tmp_path / "other")
    (folder / "labels.npz").write_bytes((elsewhere / "labels.npz").read_bytes())
    with pytest.raises(LabelsError, match="does not hold the labels"):
        SkillLabels.load(folder)


def test_labels_out_of_range_skill_rejected(labelled, tmp_path):
    labels = SkillLabels.load(labelled[1])
    arrays = dict(frame_labels=labels.frame_labels.copy(), episode_offsets=labels.episode_offsets,
                  segments=labels.segments)
    arrays["frame_labels"][0] = 999
    bad = tmp_path / "labels"
    bad.mkdir()
    np.savez(bad / "labels.npz", **arrays)
    (bad / "labels.json").write_text((labelled[1] / "labels.json").read_text())
    with pytest.raises(LabelsError, match=r"\[-1, 3\)"):
        SkillLabels.load(bad)


def _labeler(folder: Path) -> Path:
    """A real fitted labeler saved in ``folder`` (the action encoder on a two-phase dataset)."""
    phases = np.repeat([[0.5, 0.0], [0.0, -0.5]], 20, axis=0)
    episodes = [Episode(states=np.cumsum(np.r_[np.zeros((1, 2)), phases], 0), actions=phases)] * 3
    ds = open_dataset(write_minari_dataset(folder.parent / "labeler-data", [episodes]))
    return SkillLabeler.fit(ds, encoder="action", k=2, seed=0, progress=False).save(folder)


def test_labeler_corrupt_centroids(tmp_path):
    folder = _labeler(tmp_path / "labeler")
    SkillLabeler.load(folder)  # intact, it loads
    (folder / "labeler.npz").write_bytes(b"garbage")
    with pytest.raises(LabelerError, match="labeler.npz is not an NPZ archive"):
        SkillLabeler.load(folder)


# -- library ------------------------------------------------------------------------------------
def _library(tmp_path: Path) -> Path:
    return SkillLibrary.build(LibraryConfig(num_skills=3, max_skill_steps=5)).save(tmp_path / "lib")


@pytest.mark.parametrize("change", [
    {"arg_bound": float("nan")}, {"arg_bound": float("inf")}, {"arg_bound": True},
    {"action_low": [float("nan")] * 9}, {"action_high": [float("inf")] * 9}, {"action_low": "low"},
    {"hidden_dim": 10**9}, {"num_skills": -1}, {"labeler": [1]}, {"format_version": 99}, {"evil": 1},
])
def test_hostile_library_config(tmp_path, change, capsys):
    lib = _library(tmp_path)
    config = json.loads((lib / "config.json").read_text())
    (lib / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(LibraryError):
        SkillLibrary.load(lib)


@pytest.mark.parametrize("text", ["[" * 200_000, "{\"num_skills\": ", "\xff\xfe", "null"])
def test_unparseable_library_config(tmp_path, text):
    lib = _library(tmp_path)
    (lib / "config.json").write_text(text, errors="surrogateescape") if text != "\xff\xfe" else (
        lib / "config.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LibraryError):
        SkillLibrary.load(lib)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_library_weights(tmp_path, value):
    lib = _library(tmp_path)
    tensors = load_file(str(lib / "model.safetensors"))
    key = next(k for k in tensors if k.startswith("decoder."))
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = value
    save_file(tensors, str(lib / "model.safetensors"))
    with pytest.raises(LibraryError, match="NaN or infinite"):
        SkillLibrary.load(lib)


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"PK\x03\x04garbage"])
def test_corrupt_library_weights(tmp_path, content):
    lib = _library(tmp_path)
    (lib / "model.safetensors").write_bytes(content)
    with pytest.raises(LibraryError, match="corrupt"):
        SkillLibrary.load(lib)


def test_bundled_libraries_still_load():
    for name in ("kitchen-state", "kitchen-pixels"):
        lib = SkillLibrary.load(REPO / "skillgym" / "assets" / name)
        assert lib.config.trained_on.get("dataset_fingerprint")


# -- model (SkillSAC) ---------------------------------------------------------------------------
class _Evil:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "pwned"))


def _evil_sb3_zip(path: Path, target: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps({"policy_class": {":serialized:": __import__("base64").b64encode(
            pickle.dumps(_Evil(str(target)))).decode()}}))
        z.writestr("pytorch_variables.pth", pickle.dumps(_Evil(str(target))))
        z.writestr("_stable_baselines3_version", "2.9.2")
    return path


def test_load_never_unpickles_an_sb3_zip(tmp_path):
    target = tmp_path / "created_by_pickle"
    evil = _evil_sb3_zip(tmp_path / "model.zip", target)
    with pytest.raises(ModelError, match="load_sb3_zip"):
        SkillSAC.load(evil)
    assert not target.exists()
    # a folder whose files are pickles is rejected too
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_bytes(pickle.dumps(_Evil(str(target))))
    (folder / "policy.safetensors").write_bytes(pickle.dumps(_Evil(str(target))))
    with pytest.raises(ModelError):
        SkillSAC.load(folder)
    assert not target.exists()


def _evil_npz(path: Path, keys: list[str], target: Path) -> None:
    """An intact NPZ whose every array is an object array: loading it with pickles allowed writes ``target``."""
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil(str(target))
    path.unlink()
    np.savez(path, **{key: evil for key in keys})


def _toy_skillsac() -> SkillSAC:
    return SkillSAC("SkillPolicy", ToySkillEnv(), learning_starts=5, batch_size=8, seed=0,
                    policy_kwargs=dict(net_arch=[16]))


def _npz_artifact(kind: str, labels: Path, folder: Path) -> tuple[Path, Callable[[], Any], type[Exception]]:
    """A real artifact of ``kind`` saved in ``folder``: its NPZ file, its documented loader and that loader's error."""
    if kind == "labels":
        SkillLabels.load(labels).save(folder)
        return folder / "labels.npz", lambda: SkillLabels.load(folder), LabelsError
    if kind == "labeler":
        _labeler(folder)
        return folder / "labeler.npz", lambda: SkillLabeler.load(folder), LabelerError
    rl_checkpoint.save_training_state(_toy_skillsac().learn(10), folder)
    return folder / "buffer.npz", lambda: rl_checkpoint.load_training_state(_toy_skillsac(), folder), \
        rl_checkpoint.CheckpointError


@pytest.mark.parametrize("kind", ["labels", "labeler", "checkpoint"])
def test_no_npz_reader_runs_a_pickle(labelled, tmp_path, kind):
    npz, load, error = _npz_artifact(kind, labelled[1], tmp_path / kind)
    load()  # intact, it loads
    with np.load(npz) as intact:
        keys = list(intact.files)
    target = tmp_path / "created_by_pickle"
    _evil_npz(npz, keys, target)
    with pytest.raises(error, match="holds Python objects, not plain arrays"):
        load()
    assert not target.exists()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    model = SkillSAC("SkillPolicy", ToySkillEnv(), learning_starts=5, batch_size=8, seed=0,
                     policy_kwargs=dict(net_arch=[16]), alpha_d="auto")
    model.learn(10)
    path = tmp_path_factory.mktemp("model") / "skillsac"
    model.save(path)
    path.with_suffix(".digest").write_text(policy_digest(model))  # beside the folder: what it must load as
    return path


def test_model_round_trip_without_pickle(saved_model):
    files = {p.name for p in saved_model.iterdir()}
    assert files == {"model.json", "policy.safetensors", "optimizers.safetensors"}
    loaded = SkillSAC.load(saved_model)
    assert policy_digest(loaded) == saved_model.with_suffix(".digest").read_text()
    assert loaded.num_timesteps == 10


@pytest.mark.parametrize("damage", ["json_deep", "json_missing", "weights_nan", "weights_truncated",
                                    "weights_missing", "unknown_setting", "unknown_class", "format"])
def test_damaged_model_folder(saved_model, tmp_path, damage):
    import shutil

    path = tmp_path / "m"
    shutil.copytree(saved_model, path)
    payload = json.loads((path / "model.json").read_text())
    if damage == "json_deep":
        (path / "model.json").write_text("[" * 200_000)
    elif damage == "json_missing":
        del payload["settings"]
        (path / "model.json").write_text(json.dumps(payload))
    elif damage == "unknown_setting":
        payload["settings"]["exec"] = "print(1)"
        (path / "model.json").write_text(json.dumps(payload))
    elif damage == "unknown_class":
        payload["settings"]["policy_kwargs"]["activation_fn"] = "os.system"
        (path / "model.json").write_text(json.dumps(payload))
    elif damage == "format":
        payload["format_version"] = 0
        (path / "model.json").write_text(json.dumps(payload))
    elif damage == "weights_nan":
        tensors = load_file(str(path / "policy.safetensors"))
        key = next(k for k, v in tensors.items() if v.is_floating_point())
        tensors[key] = torch.full_like(tensors[key], float("nan"))
        save_file(tensors, str(path / "policy.safetensors"))
    elif damage == "weights_truncated":
        data = (path / "policy.safetensors").read_bytes()
        (path / "policy.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "weights_missing":
        (path / "policy.safetensors").unlink()
    with pytest.raises(ModelError):
        SkillSAC.load(path)


def test_model_save_refuses_foreign_folder(saved_model, tmp_path):
    model = SkillSAC.load(saved_model)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        model.save(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    model.save(saved_model.parent / "again")
    model.save(saved_model.parent / "again")  # replacing its own save is fine
    assert not list(saved_model.parent.glob(".again*"))


# -- datasets -----------------------------------------------------------------------------------
def _episodes(n: int = 3, t: int = 6, size: int | None = None, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [Episode(states=rng.normal(size=(t + 1, 4)), actions=rng.uniform(-1, 1, (t, 2)).astype(np.float32),
                    frames=rng.integers(0, 255, (t + 1, size, size, 3), dtype=np.uint8) if size else None)
            for _ in range(n)]


def test_d4rl_file_without_terminals(tmp_path):
    with h5py.File(tmp_path / "kitchen.hdf5", "w") as f:
        f["observations"] = np.zeros((10, 60))
        f["actions"] = np.zeros((10, 9))
        f["timeouts"] = np.zeros(10, bool)
    with pytest.raises(DatasetError, match="terminals"):
        open_dataset(tmp_path / "kitchen.hdf5")


def test_inconsistent_frame_sizes_across_episodes(tmp_path):
    path = write_minari_dataset(tmp_path / "d", [_episodes(2, size=8)], image_size=8)
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        del f["episode_1/observations/pixels"]
        f["episode_1/observations/pixels"] = np.zeros((7, 16, 16, 3), np.uint8)
    with pytest.raises(DatasetError, match="episode_1"):
        open_dataset(path)


def test_inconsistent_state_size_and_missing_rewards(tmp_path):
    path = write_minari_dataset(tmp_path / "d", [_episodes(2)])
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        del f["episode_1/rewards"]
    with pytest.raises(DatasetError, match="rewards"):
        open_dataset(path)


def test_non_finite_values_rejected_when_read(tmp_path):
    path = write_minari_dataset(tmp_path / "d", [_episodes(2)])
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        f["episode_1/observations/state"][2, 1] = np.nan
    ds = open_dataset(path)
    with pytest.raises(DatasetError, match="NaN"):
        ds.episode(1)


def _nudged(value: np.generic) -> np.generic:
    """The smallest change of one stored value: a flipped flag, a flipped low bit, a small offset."""
    if value.dtype.kind == "b":
        return not value
    return value ^ 1 if value.dtype.kind in "ui" else value + 1e-3


def test_fingerprint_covers_every_frame_state_action_reward_and_episode_end(tmp_path):
    path = write_minari_dataset(tmp_path / "d", [_episodes(3, size=8)], image_size=8)
    seen = [open_dataset(path).fingerprint]
    assert open_dataset(path).fingerprint == seen[0]
    changes = {"observations/pixels": (3, 0, 0, 0), "observations/state": (2, 0), "actions": (2, 0), "rewards": 2,
               "terminations": 2}  # one value of a middle episode each
    for name, index in changes.items():
        with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
            values = f[f"episode_1/{name}"][()]
            values[index] = _nudged(values[index])
            f[f"episode_1/{name}"][()] = values
        fingerprint = open_dataset(path).fingerprint
        assert fingerprint not in seen, name
        seen.append(fingerprint)


def test_embedding_cache_not_reused_after_a_change(tmp_path):
    from skillgym.extract.clustering import compute_embeddings
    from skillgym.extract.encoders import make_encoder

    path = write_minari_dataset(tmp_path / "d", [_episodes(3)])
    first = np.asarray(compute_embeddings(open_dataset(path), make_encoder("state"), tmp_path / "c" / "e.npy",
                                          progress=False)).copy()
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        f["episode_1/observations/state"][3] += 5.0
    second = np.asarray(compute_embeddings(open_dataset(path), make_encoder("state"), tmp_path / "c" / "e.npy",
                                           progress=False))
    assert not np.array_equal(first, second)


def test_write_refuses_foreign_folder_and_keeps_it(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"cat")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError):
            write_minari_dataset(foreign, [_episodes()], overwrite=overwrite)
    assert (foreign / "cat.jpg").read_bytes() == b"cat"
    assert not list(tmp_path.glob(".minari-*"))


def test_write_replaces_own_dataset_and_survives_interruption(tmp_path):
    out = write_minari_dataset(tmp_path / "d", [_episodes(seed=0)])
    fingerprint = open_dataset(out).fingerprint

    def chunks():
        yield _episodes(seed=1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_minari_dataset(out, chunks(), overwrite=True)
    assert open_dataset(out).fingerprint == fingerprint  # the old dataset is intact
    assert not list(tmp_path.glob(".minari-*"))
    write_minari_dataset(out, [_episodes(seed=1)], overwrite=True)
    assert open_dataset(out).fingerprint != fingerprint


def test_stale_staging_of_a_killed_writer_is_removed(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".minari-{proc.stdout.strip()}-abc"
    (stale / "skillgym").mkdir(parents=True)
    live = tmp_path / f".minari-{os.getpid()}-abc"  # a writer still at work (this very process)
    (live / "skillgym").mkdir(parents=True)
    write_minari_dataset(tmp_path / "d", [_episodes()])
    assert not stale.exists() and (live / "skillgym").is_dir()


def test_data_kitchen_cli_refuses_non_recording(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    err = cli_error(["data", "kitchen", "--out", str(foreign), "--overwrite", "--episodes", "1"], capsys)
    assert "not a dataset skillgym wrote" in err
    assert (foreign / "keep.txt").read_text() == "x"


def _descendants(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            children += [child, *_descendants(child)]
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_data_kitchen_leaves_no_workers_or_staging(tmp_path, sig):
    out = tmp_path / "rec"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen([sys.executable, "-m", "skillgym.cli", "data", "kitchen", "--out", str(out),
                             "--workers", "2", "--episodes", "4", "--image-size", "16"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    workers: list[int] = []
    deadline = time.time() + 90
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _descendants(proc.pid)
    assert len(workers) >= 2, "the workers did not start"
    time.sleep(3)  # let them record
    workers = _descendants(proc.pid)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.5)
    assert not [p for p in workers if _alive(p)]
    if sig == signal.SIGTERM:
        assert proc.returncode == 130
        assert not list(tmp_path.glob(".minari-*"))
    assert not (out / "recording.json").exists()
    if sig == signal.SIGKILL:
        return
    # Run again to completion: the same episodes as a recording that was never interrupted.
    args = ["data", "kitchen", "--episodes", "4", "--image-size", "16", "--workers", "2"]
    for folder in (out, tmp_path / "whole"):
        done = subprocess.run([sys.executable, "-m", "skillgym.cli", *args, "--out", str(folder)], env=env,
                              capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
    assert open_dataset(out).fingerprint == open_dataset(tmp_path / "whole").fingerprint


# -- skill training -----------------------------------------------------------------------------
def test_train_skills_refuses_to_replace_a_library(labelled, tmp_path, capsys):
    out = tmp_path / "lib"
    SkillLibrary.build(LibraryConfig(num_skills=3)).save(out)
    before = (out / "model.safetensors").read_bytes()
    err = cli_error(["train-skills", str(labelled[1]), "--out", str(out), "--steps", "2"], capsys)
    assert "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == before
    train_skills(tiny_training_args(labelled[1], out, overwrite=True, steps=2))
    assert (out / "model.safetensors").read_bytes() != before


def killed_after_a_checkpoint(monkeypatch, args) -> None:
    """``train_skills(args)`` with checkpoints every 3 steps, killed during step 5 (after the one at step 3)."""
    monkeypatch.setattr(train_module, "CHECKPOINT_EVERY", 3)
    original, calls = train_module.make_batch, {"n": 0}

    def interrupted(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(*a, **kw)

    monkeypatch.setattr(train_module, "make_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_skills(args)
    monkeypatch.setattr(train_module, "make_batch", original)


def test_train_skills_overwrite_cut_short_leaves_no_old_library(labelled, tmp_path, monkeypatch):
    out = tmp_path / "lib"
    SkillLibrary.build(LibraryConfig(num_skills=5)).save(out)
    killed_after_a_checkpoint(monkeypatch, tiny_training_args(labelled[1], out, overwrite=True, steps=6))
    with pytest.raises(LibraryError, match="config.json"):
        SkillLibrary.load(out)
    first_part = sorted((out / "tb").glob("events.out.tfevents.*"))
    # The same command with --resume, as the interrupt message says, continues the run and keeps its logs.
    resumed = train_skills(tiny_training_args(labelled[1], out, overwrite=True, resume=True, steps=6))
    assert resumed.start_step == 3 and SkillLibrary.load(out).config.num_skills == 3
    assert first_part and all(f.exists() for f in first_part)


def test_train_skills_never_replaces_a_foreign_config(labelled, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"my": "settings"}))
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a skill library"):
            train_skills(tiny_training_args(labelled[1], out, overwrite=overwrite))
    assert json.loads((out / "config.json").read_text()) == {"my": "settings"}


def test_train_skills_never_writes_into_a_users_tb_folder(labelled, tmp_path):
    out = tmp_path / "project"
    (out / "tb").mkdir(parents=True)
    (out / "tb" / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="tb"):
            train_skills(tiny_training_args(labelled[1], out, overwrite=overwrite))
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt", "tb"]


def test_train_skills_stops_at_a_non_finite_loss(labelled, tmp_path, monkeypatch):
    original = train_module.SkillVAE.loss

    def nan_loss(self, *a, **kw):
        loss, terms = original(self, *a, **kw)
        terms = {**terms, "action_mse": torch.tensor(float("nan"))}
        return loss * float("nan"), terms

    monkeypatch.setattr(train_module.SkillVAE, "loss", nan_loss)
    with pytest.raises(NonFiniteLossError, match=r"step 1.*action_mse.*--lr"):
        train_skills(tiny_training_args(labelled[1], tmp_path / "lib"))
    assert not (tmp_path / "lib" / "config.json").exists()


def test_train_skills_kill_and_resume_gives_identical_weights(labelled, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "CHECKPOINT_EVERY", 3)
    train_skills(tiny_training_args(labelled[1], tmp_path / "straight"))
    killed_after_a_checkpoint(monkeypatch, tiny_training_args(labelled[1], tmp_path / "killed"))
    assert not (tmp_path / "killed" / "config.json").exists()  # no half library
    train_skills(tiny_training_args(labelled[1], tmp_path / "killed", resume=True))
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cut_at", [1, 2])
def test_train_skills_killed_between_a_checkpoints_two_renames(labelled, tmp_path, monkeypatch, cut_at):
    """The weights are renamed into place before the state that goes with them: a run killed in between
    starts over (first checkpoint) or resumes from the new weights with their state (later ones)."""
    monkeypatch.setattr(train_module, "CHECKPOINT_EVERY", 3)
    train_skills(tiny_training_args(labelled[1], tmp_path / "straight"))
    replace, states = os.replace, {"n": 0}

    def killed_at_a_state_rename(src, dst):
        if Path(dst).name == "state.json":
            states["n"] += 1
            if states["n"] == cut_at:
                raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(train_module.os, "replace", killed_at_a_state_rename)
    with pytest.raises(KeyboardInterrupt):
        train_skills(tiny_training_args(labelled[1], tmp_path / "killed"))
    monkeypatch.setattr(train_module.os, "replace", replace)
    resumed = train_skills(tiny_training_args(labelled[1], tmp_path / "killed", resume=cut_at > 1))
    assert resumed.start_step == (0 if cut_at == 1 else 6)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_names_weights_and_state_of_different_steps(labelled, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "CHECKPOINT_EVERY", 3)
    checkpoint = tmp_path / "run" / "checkpoint"
    train_skills(tiny_training_args(labelled[1], tmp_path / "run", steps=3))
    older = (checkpoint / "state.safetensors").read_bytes()
    train_skills(tiny_training_args(labelled[1], tmp_path / "run", steps=6, resume=True))
    (checkpoint / "state.safetensors").write_bytes(older)
    with pytest.raises(CheckpointError, match=r"state.json is of step 6 but .*state.safetensors of step 3"):
        train_skills(tiny_training_args(labelled[1], tmp_path / "run", steps=9, resume=True))


# -- extraction ---------------------------------------------------------------------------------
def test_extraction_rerun_after_a_kill_gives_identical_labels(tmp_path, monkeypatch):
    path = write_minari_dataset(tmp_path / "d", [_episodes(4, t=20)])
    ds = open_dataset(path)
    first = extract_skills(ds, tmp_path / "a", encoder="action", k=2, seed=0, report=False, progress=False)
    import skillgym.extract.labeler as labeler_module

    def killed(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(labeler_module.SkillLabeler, "save", killed)  # killed after the labels, before the labeler
    with pytest.raises(KeyboardInterrupt):
        extract_skills(ds, tmp_path / "b", encoder="action", k=2, seed=0, report=False, progress=False)
    monkeypatch.undo()
    again = extract_skills(ds, tmp_path / "b", encoder="action", k=2, seed=0, report=False, progress=False)
    assert np.array_equal(first.frame_labels, again.frame_labels)
    assert np.array_equal(first.segments, again.segments)
    assert SkillLabels.load(tmp_path / "b").dataset_fingerprint == ds.fingerprint


def test_extraction_over_earlier_labels_cut_in_its_report_leaves_no_labels(tmp_path, monkeypatch):
    """Labels of one run never stand next to another run's labeler or report."""
    ds = open_dataset(write_minari_dataset(tmp_path / "d", [_episodes(4, t=20)]))
    extract_skills(ds, tmp_path / "labels", encoder="action", k=2, seed=0, progress=False)
    import skillgym.extract.report as report_module

    def killed(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "write_report", killed)
    with pytest.raises(KeyboardInterrupt):
        extract_skills(ds, tmp_path / "labels", encoder="action", k=2, seed=1, progress=False)
    monkeypatch.undo()
    with pytest.raises(LabelsError, match="not a labels folder"):
        SkillLabels.load(tmp_path / "labels")
    again = extract_skills(ds, tmp_path / "labels", encoder="action", k=2, seed=1, progress=False)
    assert SkillLabels.load(tmp_path / "labels").content_digest() == again.content_digest()


def test_interrupted_labels_save_never_loads_half(labelled, tmp_path, monkeypatch):
    labels = SkillLabels.load(labelled[1])
    folder = labels.save(tmp_path / "labels")
    import skillgym.extract.labels as labels_module

    def killed(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(labels_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        labels.save(folder)
    monkeypatch.undo()
    with pytest.raises(LabelsError):  # the old json was removed first: no mixed pair loads
        SkillLabels.load(folder)


# -- envs ---------------------------------------------------------------------------------------
def test_step_after_episode_end_raises(tmp_path):
    from skillgym.envs.skill_space import SkillSpaceEnv
    from skillgym.tasks.kitchen import KitchenTaskEnv

    low = KitchenTaskEnv(max_episode_steps=2)
    with pytest.raises(RuntimeError, match="reset"):
        low.step(np.zeros(9, np.float32))  # before the first reset
    env = SkillSpaceEnv(low, SkillLibrary.build(LibraryConfig(num_skills=3, max_skill_steps=5)))
    env.reset(seed=0)
    action = {"skill": 0, "arg": np.zeros(5, np.float32)}
    *_, truncated, _ = env.step(action)
    assert truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(action)
    env.reset(seed=1)
    env.step(action)  # fine again after reset
    for bad in (np.full(59, np.nan), np.full(59, np.inf)):
        with pytest.raises(ValueError, match="NaN"):
            low.set_sim_state(bad)
    env.close()
