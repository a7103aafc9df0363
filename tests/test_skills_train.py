"""train-skills: exact --resume, fine-tuning, CLI, pixel variant, built-in evaluation (tiny data)."""

import json
import shutil

import numpy as np
import pytest
import torch
from synthetic import write_synthetic_labels

from skillgym.cli import main
from skillgym.extract.labels import SkillLabels
from skillgym.skills import LibraryConfig, SkillLibrary
from skillgym.skills import train as train_module
from skillgym.skills.train import CheckpointError, TrainSkillsArgs, train_skills

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_labels(root, num_episodes=10, num_skills=4, seed=0)


def tiny_args(labels, out, **kw):
    defaults = dict(steps=20, batch_size=16, hidden_dim=32, progress=False, threads=1)
    defaults.update(kw)
    return TrainSkillsArgs(labels=str(labels), out=str(out), **defaults)


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_resume_reproduces_the_uninterrupted_run(labelled, tmp_path, noise):
    _, labels = labelled
    noises = dict(prior_obs_noise=noise, decoder_obs_noise=noise)
    full = train_skills(tiny_args(labels, tmp_path / "full", steps=24, **noises))
    first = train_skills(tiny_args(labels, tmp_path / "split", steps=12, **noises))
    rest = train_skills(tiny_args(labels, tmp_path / "split", steps=24, resume=True, **noises))
    assert rest.start_step == 12
    for key in ("loss", "action", "kl", "prior_d", "prior_z"):
        assert first.history[key] + rest.history[key] == full.history[key], key
    a, b = SkillLibrary.load(tmp_path / "full"), SkillLibrary.load(tmp_path / "split")
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_prior_obs_noise_only_changes_the_prior_terms(labelled, tmp_path):
    _, labels = labelled
    clean = train_skills(tiny_args(labels, tmp_path / "clean", steps=1))
    noisy = train_skills(tiny_args(labels, tmp_path / "noisy", steps=1, prior_obs_noise=0.5))
    assert clean.history["action"] == noisy.history["action"]  # same batch, same VAE terms
    assert clean.history["prior_z"] != noisy.history["prior_z"]


def test_decoder_obs_noise_only_changes_the_decoder_terms(labelled, tmp_path):
    _, labels = labelled
    clean = train_skills(tiny_args(labels, tmp_path / "clean", steps=1))
    noisy = train_skills(tiny_args(labels, tmp_path / "noisy", steps=1, decoder_obs_noise=0.5))
    assert clean.history["prior_d"] == noisy.history["prior_d"] and clean.history["prior_z"] == noisy.history["prior_z"]
    assert clean.history["action"] != noisy.history["action"]
    with pytest.raises(ValueError, match="decoder_obs_noise"):
        tiny_args(labels, tmp_path / "bad", decoder_obs_noise=-0.1)


def test_resume_refuses_changed_arguments_and_fresh_run_refuses_overwrite(labelled, tmp_path):
    _, labels = labelled
    train_skills(tiny_args(labels, tmp_path / "run", steps=5))
    with pytest.raises(ValueError, match="lr"):
        train_skills(tiny_args(labels, tmp_path / "run", steps=10, resume=True, lr=5e-4))
    with pytest.raises(FileExistsError, match="--resume"):
        train_skills(tiny_args(labels, tmp_path / "run", steps=10))


def test_resume_continues_a_run_whose_folders_moved_and_refuses_other_data(labelled, tmp_path):
    _, labels = labelled
    full = train_skills(tiny_args(labels, tmp_path / "full", steps=24))
    project = tmp_path / "project"
    _, own_labels = write_synthetic_labels(project, num_episodes=10, num_skills=4, seed=0)  # the same data as labelled
    train_skills(tiny_args(own_labels, project / "run", steps=12))
    moved = shutil.move(project, tmp_path / "elsewhere")

    with pytest.raises(FileNotFoundError, match="moved.*--dataset"):
        train_skills(tiny_args(moved / "labels", moved / "run", steps=24, resume=True))
    rest = train_skills(tiny_args(moved / "labels", moved / "run", steps=24, resume=True, dataset=str(moved / "data")))
    assert rest.start_step == 12
    assert full.history["loss"][12:] == rest.history["loss"]
    a, b = SkillLibrary.load(tmp_path / "full"), SkillLibrary.load(moved / "run")
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())

    other, _ = write_synthetic_labels(tmp_path / "other", num_episodes=10, num_skills=4, seed=1)
    relabelled = SkillLabels.load(moved / "labels")
    relabelled.segments[0, 3] = (relabelled.segments[0, 3] + 1) % 4
    relabelled.frame_labels[relabelled.segments[0, 1]:relabelled.segments[0, 2]] = relabelled.segments[0, 3]
    relabelled.save(tmp_path / "relabelled")
    with pytest.raises(ValueError, match="--resume: the labels in .* differ from what the interrupted run trained on"):
        train_skills(tiny_args(tmp_path / "relabelled", moved / "run", steps=30, resume=True, dataset=str(moved / "data")))
    with pytest.raises(ValueError, match="is not the dataset these labels were made from"):
        train_skills(tiny_args(moved / "labels", moved / "run", steps=30, resume=True, dataset=str(other)))


def test_labels_lead_to_their_dataset_from_another_folder(tmp_path, monkeypatch):
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.labeler import extract_skills

    write_synthetic_labels(tmp_path, num_episodes=4, num_skills=2)
    monkeypatch.chdir(tmp_path)
    extract_skills(open_dataset("data"), "extracted", encoder="action", k=2, report=False, progress=False)
    assert SkillLabels.load("extracted").dataset_path == "data"  # as given, relative to where extract ran
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    train_skills(tiny_args("../extracted", "../lib", steps=2))
    assert SkillLibrary.load(tmp_path / "lib").num_skills == 2


@pytest.fixture
def interrupted_run(labelled, tmp_path):
    """A 2-step run with hidden_dim 16 in ``tmp_path / "run"``, whose checkpoint --resume reads."""
    _, labels = labelled
    out = tmp_path / "run"
    train_skills(tiny_args(labels, out, steps=2, hidden_dim=16))
    return out


def _truncate_half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated weights": ("state.safetensors", _truncate_half),
    "empty state": ("state.json", lambda path: path.write_text("{}")),
    "state not JSON": ("state.json", lambda path: path.write_text("{garbage")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_names_a_damaged_checkpoint_file_and_keeps_it(labelled, interrupted_run, damage):
    _, labels = labelled
    out = interrupted_run
    name, harm = DAMAGE[damage]
    harm(out / "checkpoint" / name)
    before = (out / "checkpoint" / name).read_bytes()
    with pytest.raises(CheckpointError, match="--overwrite") as e:
        train_skills(tiny_args(labels, out, steps=4, hidden_dim=16, resume=True))
    assert str(out / "checkpoint" / name) in str(e.value)
    assert (out / "checkpoint" / name).read_bytes() == before


def test_resume_refuses_a_forgotten_size_option_before_reading_the_data(labelled, interrupted_run, monkeypatch):
    _, labels = labelled
    out = interrupted_run
    monkeypatch.setattr(train_module, "load_segments", lambda *a, **kw: pytest.fail("the data was read"))
    with pytest.raises(ValueError, match="hidden_dim: 16 -> 32.*--overwrite"):
        train_skills(tiny_args(labels, out, steps=4, resume=True))  # run made with hidden_dim 16


def test_resume_refuses_weights_of_other_sizes(labelled, interrupted_run, tmp_path):
    _, labels = labelled
    out = interrupted_run
    train_skills(tiny_args(labels, tmp_path / "other", steps=2, hidden_dim=8))
    shutil.copy(tmp_path / "other" / "checkpoint" / "state.safetensors", out / "checkpoint")
    with pytest.raises(CheckpointError, match=r"state.safetensors holds \d+ weights of other shapes"):
        train_skills(tiny_args(labels, out, steps=4, hidden_dim=16, resume=True))


@pytest.mark.parametrize("option", [dict(seed=-1), dict(lr=float("inf")), dict(lr=float("nan")),
                                    dict(beta=float("nan")), dict(prior_obs_noise=float("inf"))])
def test_bad_numbers_are_refused_before_anything_is_written(labelled, tmp_path, option):
    _, labels = labelled
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"{name} must be"):
        tiny_args(labels, tmp_path / "lib", **option)
    assert not (tmp_path / "lib").exists()


def test_skills_without_training_segments_are_warned_about(labelled, tmp_path):
    _, labels = labelled
    wider = SkillLabels.load(labels)
    wider.num_skills = 6  # the synthetic segments show skills 0-3 only
    wider.save(tmp_path / "labels")
    with pytest.warns(UserWarning, match=r"2 of the 6 skills .* \(skills 4, 5\).*lower --k"):
        train_skills(tiny_args(tmp_path / "labels", tmp_path / "lib", steps=2))
    assert SkillLibrary.load(tmp_path / "lib").num_skills == 6


def test_segments_of_one_episode_are_warned_about(labelled, tmp_path):
    _, labels = labelled
    one = SkillLabels.load(labels)
    one.segments = one.segments[one.segments[:, 0] == one.segments[0, 0]]
    one.save(tmp_path / "labels")
    with pytest.warns(UserWarning, match="none is held out"):
        train_skills(tiny_args(tmp_path / "labels", tmp_path / "lib", steps=2))
    assert "heldout" not in json.loads((tmp_path / "lib" / "eval.json").read_text())


def test_labels_without_segments_are_named(labelled, tmp_path):
    _, labels = labelled
    empty = SkillLabels.load(labels)
    empty.segments = np.zeros((0, 4), np.int64)
    empty.save(tmp_path / "empty")
    with pytest.raises(ValueError, match=f"labels in {tmp_path / 'empty'} hold no segments.*--min-length"):
        train_skills(tiny_args(tmp_path / "empty", tmp_path / "lib", steps=2))
    assert not (tmp_path / "lib").exists()


def test_training_learns_and_writes_library_and_eval(labelled, tmp_path):
    _, labels = labelled
    result = train_skills(tiny_args(labels, tmp_path / "lib", steps=150, batch_size=32, hidden_dim=64,
                                    decoder="open_loop"))
    h = result.history
    assert np.mean(h["action"][-10:]) < 0.5 * np.mean(h["action"][:10])
    assert np.mean(h["progress"][-10:]) < np.mean(h["progress"][:10])
    lib = SkillLibrary.load(tmp_path / "lib")
    assert lib.max_skill_steps == 30 and lib.num_skills == 4 and lib.encoder is not None
    assert lib.config.trained_on["num_segments"] > 0 and lib.config.labeler["encoder"] == "synthetic"
    ev = json.loads((tmp_path / "lib" / "eval.json").read_text())
    for key in ("action_mse", "action_mse_per_skill", "progress_mae", "prior_accuracy", "free_progress_mae"):
        assert key in ev["heldout"]
    assert (tmp_path / "lib" / "eval.png").stat().st_size > 0
    assert list((tmp_path / "lib" / "tb").iterdir())
    # The state normalisation was computed from the data (not left at 0 / 1).
    assert float(lib.priors.encoder.obs_std[20]) != 1.0


def test_init_from_fine_tunes(labelled, tmp_path_factory, tmp_path):
    _, labels = labelled
    base = tmp_path / "base"
    train_skills(tiny_args(labels, base, steps=5))
    root2 = tmp_path_factory.mktemp("target")
    _, labels2 = write_synthetic_labels(root2, num_episodes=4, num_skills=4, seed=1)
    train_skills(tiny_args(labels2, tmp_path / "ft", steps=5, init_from=str(base)))
    ft, b = SkillLibrary.load(tmp_path / "ft"), SkillLibrary.load(base)
    assert ft.config.trained_on["fine_tuned_from"]["labels_path"] == str(labels)
    # kept the base normalisation, changed the weights
    assert torch.equal(ft.priors.encoder.obs_mean, b.priors.encoder.obs_mean)
    assert not torch.equal(ft.decoder.head.weight, b.decoder.head.weight)
    _, labels3 = write_synthetic_labels(tmp_path_factory.mktemp("k3"), num_episodes=3, num_skills=3, seed=2)
    with pytest.raises(ValueError, match="4 skills"):
        train_skills(tiny_args(labels3, tmp_path / "bad", steps=2, init_from=str(base)))


def test_cli(labelled, tmp_path, capsys):
    _, labels = labelled
    code = main(["train-skills", str(labels), "--out", str(tmp_path / "cli"), "--steps", "3", "--seed", "1",
                 "--batch-size", "8", "--lr", "1e-3", "--window", "20", "--z-dim", "4", "--obs", "state",
                 "--decoder", "closed_loop", "--no-progress", "--threads", "1", "--hidden-dim", "24"])
    assert code == 0 and '"heldout"' in capsys.readouterr().out
    lib = SkillLibrary.load(tmp_path / "cli")
    assert (lib.z_dim, lib.max_skill_steps, lib.config.decoder, lib.config.state_skip) == (4, 20, "closed_loop", True)
    assert lib.config.hidden_dim == 24 and lib.decoder.lstm.hidden_size == 24


@pytest.mark.parametrize("decoder", ["open_loop", "closed_loop"])
def test_pixel_variant_trains(tmp_path_factory, tmp_path, decoder):
    _, labels = write_synthetic_labels(tmp_path_factory.mktemp("pix"), num_episodes=4, num_skills=3, seed=0,
                                       image_size=64)
    train_skills(tiny_args(labels, tmp_path / "pix", steps=3, batch_size=4, obs="pixels", frame_stack=2, decoder=decoder))
    lib = SkillLibrary.load(tmp_path / "pix")
    assert lib.config.decoder_obs == ("state" if decoder == "closed_loop" else "prior")
    assert lib.observation_space.shape == (2, 64, 64, 3)
    logits, _, _ = lib.prior(np.zeros((1, 2, 64, 64, 3), np.uint8))
    assert logits.shape == (1, 3)


def test_prior_rollouts_in_kitchen(tmp_path):
    from skillgym.envs.prior_rollouts import prior_rollouts

    lib = SkillLibrary.build(LibraryConfig(num_skills=3))
    r = prior_rollouts(lib, episodes=1, max_steps=40)
    assert r["episodes"] == 1 and len(r["ordered_subtasks"]) == 1 and sum(r["skill_histogram"]) >= 2
    r0 = prior_rollouts(lib, episodes=1, max_steps=40, z_scale=0.0)  # d sampled, z = the prior's mean
    assert r0["z_scale"] == 0.0 and sum(r0["skill_histogram"]) >= 2
    # One scale per z dim: all zeros is the same rollout as the scalar 0; a wrong length is refused.
    per_dim = prior_rollouts(lib, episodes=1, max_steps=40, z_scale=[0.0] * lib.config.z_dim)
    assert per_dim["z_scale"] == [0.0] * lib.config.z_dim
    assert per_dim["skill_histogram"] == r0["skill_histogram"]
    with pytest.raises(ValueError, match="one per z dim"):
        prior_rollouts(lib, episodes=1, max_steps=40, z_scale=[1.0, 0.0])
    other = prior_rollouts(lib, episodes=1, max_steps=40, tasks=("kettle", "hinge cabinet"))
    assert other["tasks"] == ["kettle", "hinge cabinet"] and other["unordered_subtasks"][0] <= 2


def test_a_pixel_library_needs_frames_of_16_pixels_or_more(labelled, tmp_path):
    with pytest.raises(ValueError, match="--image-size must be >= 16 for a pixel library"):
        tiny_args(labelled[1], tmp_path / "lib", obs="pixels", image_size=8)
