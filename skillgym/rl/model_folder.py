"""The pickle-free folder :meth:`SkillSAC.save` writes and :meth:`SkillSAC.load` reads.

``model.json`` describes the model in plain JSON (settings, spaces, counters, the prior's shapes); the
weights are safetensors. Every class a ``model.json`` may name is looked up in a fixed table here, so
loading a folder someone hands you never imports or runs anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from skillgym.envs.toy import ToySkillPrior
from skillgym.rl.policies import FrameStackCNN, MlpStateEncoder, ObservationAndInstruction
from skillgym.skills.config import LibraryConfig
from skillgym.skills.model import SkillPriors

MODEL_FORMAT = 1
MODEL_JSON = "model.json"
POLICY_WEIGHTS = "policy.safetensors"
OPTIMIZER_WEIGHTS = "optimizers.safetensors"
SAVED_COUNTERS = ("num_timesteps", "_total_timesteps", "_num_timesteps_at_start", "_episode_num", "_n_updates",
                  "num_low_level_steps", "_current_progress_remaining")
# Classes a model.json may name, by name: nothing outside these tables is ever imported or built.
FEATURE_EXTRACTORS: dict[str, type[nn.Module]] = {"MlpStateEncoder": MlpStateEncoder, "FrameStackCNN": FrameStackCNN,
                                                  "ObservationAndInstruction": ObservationAndInstruction}
MAX_JSON_BYTES = 16 * 2**20


class ModelError(ValueError):
    """A saved SkillSAC model is missing, corrupt, or not in the pickle-free format."""


def read_json(file: Path) -> Any:
    """The JSON in ``file``; a :class:`ModelError` saying what is wrong if it is missing, huge or not JSON."""
    if not file.is_file():
        raise ModelError(f"{file.parent} has no {file.name}: not a SkillSAC model folder, or an interrupted save")
    if file.stat().st_size > MAX_JSON_BYTES:
        raise ModelError(f"{file} is larger than {MAX_JSON_BYTES} bytes; not a model description")
    try:
        return json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelError(f"{file} is not valid JSON ({type(e).__name__}); the file is corrupt") from e


def read_safetensors(file: Path) -> dict[str, th.Tensor]:
    """The tensors in ``file`` on the CPU; a :class:`ModelError` if it is missing or unreadable."""
    if not file.is_file():
        raise ModelError(f"{file.parent} has no {file.name}: the weights are missing (interrupted save?)")
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{file} cannot be read as safetensors ({e}); the file is corrupt or truncated") from e


def _class_name(cls: type, table: dict[str, type], what: str) -> str:
    for name, known in table.items():
        if known is cls:
            return name
    raise ValueError(f"SkillSAC.save cannot describe {what} {cls.__name__} without pickling it; "
                     "use one of " + ", ".join(sorted(table)) + " or save_sb3_zip")


def _torch_classes(module: Any, base: type) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items() if isinstance(obj, type) and issubclass(obj, base)}


def policy_kwargs_to_json(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``policy_kwargs`` with its classes (activation, optimizer, features extractor) replaced by their names."""
    out = dict(kwargs)
    if "activation_fn" in out:
        out["activation_fn"] = _class_name(out["activation_fn"], _torch_classes(nn, nn.Module), "activation")
    if "optimizer_class" in out:
        out["optimizer_class"] = _class_name(out["optimizer_class"], _torch_classes(th.optim, th.optim.Optimizer),
                                             "optimizer")
    if out.get("features_extractor_class") is not None:
        out["features_extractor_class"] = _class_name(out["features_extractor_class"], FEATURE_EXTRACTORS,
                                                      "features extractor")
    return out


def policy_kwargs_from_json(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`policy_kwargs_to_json`; only names of the known classes are accepted."""
    if not isinstance(kwargs, dict):
        raise ValueError("policy_kwargs must be an object")
    out = dict(kwargs)
    for key, table in (("activation_fn", _torch_classes(nn, nn.Module)),
                       ("optimizer_class", _torch_classes(th.optim, th.optim.Optimizer)),
                       ("features_extractor_class", FEATURE_EXTRACTORS)):
        if out.get(key) is not None:
            if out[key] not in table:
                raise ValueError(f"policy_kwargs.{key} = {out[key]!r} is not one of the known classes")
            out[key] = table[out[key]]
    return out


# -- spaces as JSON -----------------------------------------------------------------------------------
def _bound_to_json(values: np.ndarray) -> Any:
    flat = np.asarray(values, np.float64).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _float_to_json(float(flat[0]))
    return [_float_to_json(float(v)) for v in flat]


def _float_to_json(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _bound_from_json(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(value, list):
        array = np.asarray([float(v) for v in value], np.float64)
        if array.size != math.prod(shape):
            raise ValueError(f"a Box bound has {array.size} values for shape {shape}")
        return array.reshape(shape).astype(dtype)
    return np.full(shape, float(value), np.float64).astype(dtype)


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A ``Box``, ``Discrete`` or ``Dict`` space as plain JSON."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound_to_json(space.low), "high": _bound_to_json(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise ValueError(f"SkillSAC.save handles Box, Discrete and Dict spaces, got {type(space).__name__}")


def space_from_json(payload: Any, depth: int = 0) -> spaces.Space:
    """The space :func:`space_to_json` described; raises ``ValueError`` on anything implausible."""
    if not isinstance(payload, dict) or depth > 2:
        raise ValueError("a space must be a JSON object nested at most two levels")
    kind = payload.get("type")
    if kind == "Box":
        dtype = np.dtype(payload["dtype"])
        if dtype.kind not in "uif":
            raise ValueError(f"Box dtype {dtype} is not numeric")
        shape = tuple(int(n) for n in payload["shape"])
        if len(shape) > 5 or any(n < 1 for n in shape) or math.prod(shape) > 2**26:
            raise ValueError(f"implausible Box shape {shape}")
        return spaces.Box(_bound_from_json(payload["low"], shape, dtype),
                          _bound_from_json(payload["high"], shape, dtype), shape, dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(payload["n"]), start=int(payload.get("start", 0)))
    if kind == "Dict":
        return spaces.Dict({str(k): space_from_json(v, depth + 1) for k, v in payload["spaces"].items()})
    raise ValueError(f"unknown space type {kind!r}")


# -- priors as JSON -----------------------------------------------------------------------------------
PriorCodec = tuple[type[nn.Module], Callable[[nn.Module], dict[str, Any]], Callable[[dict[str, Any]], nn.Module]]
PRIOR_CODECS: dict[str, PriorCodec] = {}


def register_prior(kind: str, cls: type[nn.Module], to_config: Callable[[nn.Module], dict[str, Any]],
                   from_config: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Let :meth:`SkillSAC.save` describe priors of class ``cls``: ``to_config(prior)`` returns JSON settings,
    ``from_config(settings)`` builds an untrained prior of the same shapes (the weights are saved separately).

    Example:
        >>> class Zero(nn.Module):
        ...     def __init__(self, k: int):
        ...         super().__init__()
        ...         self.k = k
        >>> register_prior("zero", Zero, lambda p: {"k": p.k}, lambda c: Zero(c["k"]))
    """
    PRIOR_CODECS[kind] = (cls, to_config, from_config)


def prior_to_json(prior: nn.Module) -> dict[str, Any]:
    """``{"kind", "config"}`` describing ``prior`` (not its weights) via its :func:`register_prior` codec."""
    for kind, (cls, to_config, _) in PRIOR_CODECS.items():
        if type(prior) is cls:
            return {"kind": kind, "config": to_config(prior)}
    raise ValueError(f"SkillSAC.save does not know how to describe a {type(prior).__name__} prior without "
                     "pickling it: register it with skillgym.rl.model_folder.register_prior, or use save_sb3_zip")


def prior_from_json(payload: dict[str, Any]) -> nn.Module:
    """An untrained prior of the shapes :func:`prior_to_json` described; load its weights separately."""
    kind = payload.get("kind")
    if kind not in PRIOR_CODECS:
        raise ValueError(f"unknown prior kind {kind!r} (known: {sorted(PRIOR_CODECS)}); a custom prior must be "
                         "registered with register_prior before loading")
    return PRIOR_CODECS[kind][2](payload["config"])


def _library_prior_config(prior: nn.Module) -> dict[str, Any]:
    config = getattr(prior, "library_config", None)
    if config is None:
        raise ValueError("this SkillPriors module carries no LibraryConfig; take the prior from a SkillLibrary "
                         "(library.priors) so the model can be saved")
    return config.to_dict()


def _library_prior(config: dict[str, Any]) -> nn.Module:
    library_config = LibraryConfig.from_dict(config)
    prior = SkillPriors(library_config)
    prior.library_config = library_config
    return prior


def _toy_prior_config(prior: nn.Module) -> dict[str, Any]:
    linears = [m for m in prior.modules() if isinstance(m, nn.Linear)]
    return {"in_dim": linears[0].in_features, "n_skills": prior.n_skills, "arg_dim": prior.arg_dim,
            "net_arch": [m.out_features for m in linears[:-1]], "frames": prior.frames}


def _toy_prior(config: dict[str, Any]) -> nn.Module:
    return ToySkillPrior((int(config["in_dim"]),), int(config["n_skills"]), int(config["arg_dim"]),
                         net_arch=[int(h) for h in config["net_arch"]], frames=bool(config["frames"]))


register_prior("skill_library", SkillPriors, _library_prior_config, _library_prior)
register_prior("toy", ToySkillPrior, _toy_prior_config, _toy_prior)
