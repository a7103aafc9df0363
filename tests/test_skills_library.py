"""SkillLibrary: the public interface of stage 2 (shapes, save/load, rejections, speed)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from skillgym.skills import LibraryConfig, LibraryError, SkillLibrary
from skillgym.skills.config import ADDED_IN_FORMAT_1

ASSETS = Path(__file__).resolve().parents[1] / "skillgym" / "assets"

torch.set_num_threads(1)


def small(**kw):
    kw.setdefault("num_skills", 6)
    return LibraryConfig(**kw)


def test_state_library_interface():
    lib = SkillLibrary.build(small(), seed=1)
    assert (lib.num_skills, lib.z_dim, lib.max_skill_steps) == (6, 5, 30)
    assert lib.observation_space.shape == (59,) and lib.observation_space.dtype == np.float64
    assert lib.arg_space.shape == (5,) and lib.arg_space.dtype == np.float32 and lib.arg_space.high[0] == 3.0
    actions, progress = lib.decode(np.array([0, 5, 2]), np.random.default_rng(0).normal(size=(3, 5)))
    assert actions.shape == (3, 30, 9) and actions.dtype == np.float32
    assert progress.shape == (3, 30) and progress.dtype == np.float32
    assert np.all(np.abs(actions) <= 1) and np.all((progress >= 0) & (progress <= 1))
    logits, mean, log_std = lib.prior(np.zeros((4, 59)))
    assert logits.shape == (4, 6) and mean.shape == (4, 6, 5) and log_std.shape == (4, 6, 5)
    json.dumps(lib.config.to_dict())  # JSON-serialisable


@pytest.mark.parametrize("autoregressive", [False, True])
def test_decode_matches_stepping_and_torch_decoder(autoregressive):
    lib = SkillLibrary.build(small(autoregressive=autoregressive), seed=2)
    skill, z = np.array([1, 4]), np.random.default_rng(1).normal(size=(2, 5)).astype(np.float32)
    actions, progress = lib.decode(skill, z)  # numpy fast path
    state = lib.start(skill, z)
    for t in range(lib.max_skill_steps):
        a, p, state = lib.step(state, None)
        np.testing.assert_allclose(a, actions[:, t], atol=1e-5)
        np.testing.assert_allclose(p, progress[:, t], atol=1e-5)
    # Teacher forcing with its own outputs reproduces the free-running decode.
    prev_a = torch.cat([torch.zeros(2, 1, 9), torch.from_numpy(actions[:, :-1])], 1)
    prev_l = torch.cat([torch.zeros(2, 1), torch.from_numpy(progress[:, :-1])], 1)
    with torch.no_grad():
        ta, tl = lib.decoder(prev_a, prev_l, torch.from_numpy(z), torch.from_numpy(skill))
    np.testing.assert_allclose(ta.numpy(), actions, atol=1e-5)
    np.testing.assert_allclose(tl.numpy(), progress, atol=1e-5)


def test_pixel_closed_loop_library():
    lib = SkillLibrary.build(small(obs_kind="pixels", decoder="closed_loop", frame_stack=4))
    assert lib.observation_space.shape == (4, 64, 64, 3) and lib.observation_space.dtype == np.uint8
    obs = np.random.default_rng(0).integers(0, 255, (2, 4, 64, 64, 3), dtype=np.uint8)
    logits, mean, _ = lib.prior(obs)
    assert logits.shape == (2, 6) and mean.shape == (2, 6, 5)
    state = lib.start(np.array([0, 3]), np.zeros((2, 5)))
    a, p, state = lib.step(state, obs)
    assert a.shape == (2, 9) and p.shape == (2,)
    with pytest.raises(ValueError, match="closed-loop"):
        lib.decode(np.array([0]), np.zeros((1, 5)))
    with pytest.raises(ValueError, match="closed-loop"):
        lib.step(state, None)
    with pytest.raises(ValueError, match="uint8"):
        lib.prior(obs.astype(np.float32))


def test_pixel_priors_with_a_state_observing_decoder():
    lib = SkillLibrary.build(small(obs_kind="pixels", decoder="closed_loop", decoder_obs="state", frame_stack=2))
    assert lib.observation_space.shape == (2, 64, 64, 3)
    assert lib.config.decoder_obs_shape == (59,)
    logits, _, _ = lib.prior(np.zeros((1, 2, 64, 64, 3), np.uint8))
    assert logits.shape == (1, 6)
    fast = lib.start(np.array([2]), np.ones((1, 5), np.float32))  # numpy path: state input
    with torch.inference_mode():
        slow = lib.decoder.start(torch.tensor([2]), torch.ones(1, 5))
    obs = np.random.default_rng(0).normal(size=(1, 59)).astype(np.float32)
    a_fast, p_fast, _ = lib.step(fast, obs)
    with torch.inference_mode():
        a_slow, p_slow, _ = lib.decoder.step(slow, torch.from_numpy(obs))
    np.testing.assert_allclose(a_fast, a_slow.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        lib.step(lib.start(np.array([2]), np.ones((1, 5))), np.zeros((1, 2, 64, 64, 3), np.uint8))
    with pytest.raises(LibraryError, match="decoder_obs"):
        small(decoder_obs="pixels")


def test_bad_inputs_are_explained():
    lib = SkillLibrary.build(small())
    with pytest.raises(ValueError, match=r"skill ids must be in \[0, 6\)"):
        lib.decode(np.array([6]), np.zeros((1, 5)))
    with pytest.raises(ValueError, match="z must have shape"):
        lib.decode(np.array([0]), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="observations must have shape"):
        lib.prior(np.zeros(59))


@pytest.mark.parametrize("kw", [{}, {"obs_kind": "pixels", "decoder": "closed_loop", "frame_stack": 2},
                                {"decoder": "closed_loop", "state_skip": True}])
def test_save_load_round_trip(tmp_path, kw):
    lib = SkillLibrary.build(small(**kw), seed=3)
    # non-trivial normalisation buffers must survive too
    for m in lib.priors.modules():
        if hasattr(m, "obs_mean"):
            m.set_normalisation(torch.arange(59.0), torch.full((59,), 2.0))
    if lib.decoder.state_to_action is not None:  # built at zero: make it matter
        with torch.no_grad():
            lib.decoder.state_to_action.weight.normal_(0.0, 0.3)
    path = lib.save(tmp_path / "lib")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SkillLibrary.load(path)
    assert loaded.config == lib.config
    rng = np.random.default_rng(0)
    pixels = kw.get("obs_kind") == "pixels"
    obs = (rng.integers(0, 255, (3, *lib.observation_space.shape), dtype=np.uint8) if pixels
           else rng.normal(size=(3, 59)))
    for x, y in zip(lib.prior(obs), loaded.prior(obs), strict=True):
        np.testing.assert_array_equal(x, y)
    skill, z = np.array([0, 1, 5]), rng.normal(size=(3, 5))
    if not kw:
        for x, y in zip(lib.decode(skill, z), loaded.decode(skill, z), strict=True):
            np.testing.assert_array_equal(x, y)
    s1, s2 = lib.start(skill, z), loaded.start(skill, z)
    for _ in range(3):
        a1, p1, s1 = lib.step(s1, obs)
        a2, p2, s2 = loaded.step(s2, obs)
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(p1, p2)


def test_config_weight_mismatch_is_rejected(tmp_path):
    path = SkillLibrary.build(small()).save(tmp_path / "lib")
    cfg = json.loads((path / "config.json").read_text())
    cfg["num_skills"] = 8
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match=r"config.json does not match model.safetensors.*num_skills=8.*shape"):
        SkillLibrary.load(path)
    cfg["num_skills"], cfg["obs_kind"] = 6, "pixels"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="does not match"):
        SkillLibrary.load(path)
    # A config that promises a state skip the weights do not hold (and the reverse).
    cfg["obs_kind"], cfg["decoder"], cfg["state_skip"] = "state", "closed_loop", True
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="does not match"):
        SkillLibrary.load(path)


def test_bad_config_files(tmp_path):
    path = SkillLibrary.build(small()).save(tmp_path / "lib")
    good = (path / "config.json").read_text()
    (path / "config.json").write_text("{not json")
    with pytest.raises(LibraryError, match="not valid JSON"):
        SkillLibrary.load(path)
    cfg = json.loads(good)
    cfg["format_version"] = 99
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="format_version 99 is not supported"):
        SkillLibrary.load(path)
    cfg = json.loads(good)
    cfg["colour"] = "blue"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="unknown keys"):
        SkillLibrary.load(path)
    cfg = json.loads(good)
    cfg["decoder"] = "sideways"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="decoder must be one of"):
        SkillLibrary.load(path)
    cfg = json.loads(good)
    cfg["state_skip"] = True  # an open-loop decoder has no state to skip from
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LibraryError, match="state_skip needs a closed-loop decoder"):
        SkillLibrary.load(path)
    (path / "config.json").unlink()
    with pytest.raises(LibraryError, match="no config.json"):
        SkillLibrary.load(path)
    with pytest.raises(LibraryError, match="no skill library at"):
        SkillLibrary.load(tmp_path / "nowhere")


def test_missing_or_corrupt_weights(tmp_path):
    path = SkillLibrary.build(small()).save(tmp_path / "lib")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LibraryError, match="cannot be read as safetensors"):
        SkillLibrary.load(path)
    (path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(LibraryError, match="cannot be read as safetensors"):
        SkillLibrary.load(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(LibraryError, match="no model.safetensors"):
        SkillLibrary.load(path)


def test_missing_tensor_is_rejected(tmp_path):
    from safetensors.torch import load_file, save_file

    path = SkillLibrary.build(small()).save(tmp_path / "lib")
    tensors = load_file(str(path / "model.safetensors"))
    del tensors["decoder.head.weight"]
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(LibraryError, match="missing tensors.*decoder.head.weight"):
        SkillLibrary.load(path)


def test_build_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = SkillLibrary.build(small(), seed=4), SkillLibrary.build(small(), seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    other_seed = SkillLibrary.build(small(), seed=5).state_dict()
    assert not all(torch.equal(x, other_seed[k]) for k, x in a.state_dict().items())


@pytest.mark.parametrize("state_skip", [False, True])
def test_numpy_closed_loop_step_matches_torch(state_skip):
    """The env's per-step fast path and the torch decoder compute the same closed-loop skill."""
    from skillgym.skills.config import LibraryConfig as Config
    from skillgym.skills.library import NumpyDecoderState
    from skillgym.skills.library import SkillLibrary as Library

    lib = Library.build(Config(num_skills=4, decoder="closed_loop", state_skip=state_skip), seed=1)
    with torch.no_grad():
        lib.decoder.obs_encoder[0].set_normalisation(torch.linspace(-1, 1, 59), torch.linspace(0.5, 2, 59))
        if state_skip:  # built at zero; make the path matter
            lib.decoder.state_to_action.weight.normal_(0.0, 0.3)
            lib.decoder.state_to_action.bias.normal_(0.0, 0.3)
    rng = np.random.default_rng(0)
    skill, z = np.array([0, 3]), rng.normal(size=(2, 5)).astype(np.float32)
    fast = lib.start(skill, z)
    assert isinstance(fast, NumpyDecoderState)
    with torch.inference_mode():
        slow = lib.decoder.start(torch.from_numpy(skill), torch.from_numpy(z))
    for _ in range(6):
        obs = rng.normal(size=(2, 59)).astype(np.float32)
        a_fast, p_fast, fast = lib.step(fast, obs)
        with torch.inference_mode():
            a_slow, p_slow, slow = lib.decoder.step(slow, torch.from_numpy(obs))
        np.testing.assert_allclose(a_fast, a_slow.numpy(), atol=1e-5)
        np.testing.assert_allclose(p_fast, p_slow.numpy(), atol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"lstm_layers": 2}])
def test_open_loop_start_step_ignores_obs(kw):
    """One stepping API for both decoder kinds: an open-loop decoder takes and ignores obs."""
    lib = SkillLibrary.build(small(**kw), seed=4)
    skill, z = np.array([2]), np.random.default_rng(2).normal(size=(1, 5)).astype(np.float32)
    actions, progress = lib.decode(skill, z)
    with_obs, without = lib.start(skill, z), lib.start(skill, z)
    for t in range(4):
        a1, p1, with_obs = lib.step(with_obs, np.full((1, 59), 7.0))
        a2, p2, without = lib.step(without)
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(a1[0], actions[0, t])
        np.testing.assert_array_equal(p1[0], progress[0, t])


@pytest.mark.parametrize("missing", [["z_dim", "state_dim"], ["max_skill_steps"], ["num_skills"]])
def test_a_config_missing_keys_is_refused_not_filled_with_defaults(tmp_path, missing):
    # A LIBERO-like library: defaults would give it 30-step skills and a 59-d state.
    path = SkillLibrary.build(small(max_skill_steps=40, state_dim=30, action_dim=7)).save(tmp_path / "lib")
    cfg = json.loads((path / "config.json").read_text())
    for key in missing:
        del cfg[key]
    (path / "config.json").write_text(json.dumps(cfg))
    message = f"{path / 'config.json'}: config lacks the keys {sorted(missing)}"
    with pytest.raises(LibraryError, match=re.escape(message)):
        SkillLibrary.load(path)


def test_a_config_saved_before_the_later_format_1_fields_still_loads(tmp_path):
    lib = SkillLibrary.build(small(decoder="closed_loop"), seed=1)
    path = lib.save(tmp_path / "lib")
    cfg = json.loads((path / "config.json").read_text())
    for key in ADDED_IN_FORMAT_1:
        del cfg[key]
    (path / "config.json").write_text(json.dumps(cfg))
    assert SkillLibrary.load(path).config == lib.config  # the defaults are what such a library does


@pytest.mark.parametrize("name", ["kitchen-state", "kitchen-agnostic", "kitchen-pixels", "libero-spatial"])
def test_bundled_configs_hold_every_required_key(name):
    payload = json.loads((ASSETS / name / "config.json").read_text())
    assert LibraryConfig.from_dict(payload).max_skill_steps == payload["max_skill_steps"]


def test_saved_weights_are_as_readable_as_the_users_other_files(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)  # a usual setting: files readable by everyone, writable by their owner
    try:
        SkillLibrary.build(LibraryConfig(num_skills=3)).save(tmp_path / "lib")
        (tmp_path / "other.txt").write_text("mine")
    finally:
        os.umask(previous)
    modes = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("lib/model.safetensors", "other.txt")}
    assert modes["lib/model.safetensors"] == modes["other.txt"] == 0o644, modes
