"""Resumable off-policy training: an SB3 off-policy algorithm's whole training state in a folder.

A checkpoint holds everything an uninterrupted run carries on with: every network and optimizer
(SB3's ``get_parameters``) and torch variable such as SAC's ``log_ent_coef``, the filled part of
the replay buffer, the step and update counters, and the random number generators of torch,
numpy, Python and the action space. Restored into a freshly built model with the same settings,
training continues exactly as it would have, provided the env restarts where it stopped too:
checkpoint only between episodes, and either seed every episode (:class:`~skillgym.envs.SeedEpisodes`)
or save the env's last reset (:class:`~skillgym.envs.RepeatableReset`).

No pickles: ``weights.safetensors`` (tensors), ``buffer.npz`` (arrays, read with
``allow_pickle=False``) and ``state.json`` (counters, RNG states, the caller's own ``extra``).

Example:
    >>> import tempfile
    >>> from stable_baselines3 import SAC
    >>> model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=10, batch_size=8, seed=0).learn(20)
    >>> folder = tempfile.mkdtemp()
    >>> save_training_state(model, folder, extra={"note": "after 20 steps"})
    >>> again = SAC("MlpPolicy", "Pendulum-v1", learning_starts=10, batch_size=8, seed=0)
    >>> extra, last_obs = load_training_state(again, folder)
    >>> extra
    {'note': 'after 20 steps'}
    >>> again.num_timesteps, again.replay_buffer.pos
    (20, 20)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from safetensors import SafetensorError
from safetensors.torch import load_file
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device

from skillgym import outputs

WEIGHTS, BUFFER, STATE = "weights.safetensors", "buffer.npz", "state.json"
FORMAT_VERSION = 1
# Plain attributes that training changes or a caller may have set from the first budget (target_entropy: see
# bc+sac; learning_starts: compare's warm-up, which a run continued to a larger budget keeps).
COUNTERS = ("num_timesteps", "_episode_num", "_n_updates", "_current_progress_remaining", "num_low_level_steps",
            "target_entropy", "learning_starts")


class CheckpointError(ValueError):
    """A checkpoint folder is missing files, corrupt, or does not fit the model."""


def optimizer_tensors(opt: th.optim.Optimizer) -> tuple[dict[str, th.Tensor], list[dict[str, Any]]]:
    """An optimizer's state as plain tensors ``<param index>.<key>`` and its param groups as JSON."""
    state = opt.state_dict()
    tensors = {f"{i}.{key}": th.as_tensor(value).detach().cpu().clone().contiguous()
               for i, per_param in state["state"].items() for key, value in per_param.items()}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def optimizer_state(tensors: dict[str, th.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``state_dict`` that :func:`optimizer_tensors` took apart, ready for ``load_state_dict``."""
    state: dict[int, dict[str, th.Tensor]] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    param_groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    return {"state": state, "param_groups": param_groups}


def _spaces_of(space: spaces.Space) -> list[spaces.Space]:
    """A space and all its subspaces, depth first: each has its own generator."""
    found = [space]
    if isinstance(space, spaces.Dict):
        for sub in space.spaces.values():
            found += _spaces_of(sub)
    elif isinstance(space, spaces.Tuple):
        for sub in space.spaces:
            found += _spaces_of(sub)
    return found


def _buffer_arrays(buffer: Any) -> dict[str, np.ndarray]:
    """The per-transition arrays of a replay buffer (first axis = buffer_size); those of Dict
    observations as ``<name>/<key>``."""
    def per_transition(value: Any) -> bool:
        return isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == buffer.buffer_size

    arrays = {}
    for name, value in vars(buffer).items():
        if isinstance(value, dict):
            arrays.update({f"{name}/{key}": v for key, v in value.items() if per_transition(v)})
        elif per_transition(value):
            arrays[name] = value
    return arrays


def _model_from(model: OffPolicyAlgorithm, name: str) -> Any:
    obj: Any = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def save_training_state(model: OffPolicyAlgorithm, path: str | os.PathLike, extra: dict[str, Any] | None = None
                        ) -> None:
    """Write ``model``'s training state (and the JSON-able ``extra``) to the folder ``path``.

    The folder is written beside ``path`` and swapped in, so a run killed while saving keeps
    its previous checkpoint.
    """
    path = Path(path)
    tensors: dict[str, th.Tensor] = {}
    optimizers: dict[str, list[dict[str, Any]]] = {}
    for name, params in model.get_parameters().items():
        if "state" in params and "param_groups" in params:  # an optimizer
            flat, groups = optimizer_tensors(_model_from(model, name))
            tensors.update({f"{name}/{k}": v for k, v in flat.items()})
            optimizers[name] = groups
        else:
            tensors.update({f"{name}/{k}": v.detach().cpu().clone().contiguous() for k, v in params.items()})
    _, variables = model._get_torch_save_params()
    for name in variables:
        tensors[f"variables/{name}"] = _model_from(model, name).detach().cpu().clone().contiguous()
    tensors["rng/torch"] = th.get_rng_state()

    buffer = model.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {f"buffer/{k}": v[:filled] for k, v in _buffer_arrays(buffer).items()}
    np_state = np.random.get_state()
    arrays["rng/numpy_keys"] = np_state[1]
    if isinstance(model._last_obs, dict):
        arrays.update({f"last_obs/{key}": np.asarray(v) for key, v in model._last_obs.items()})
    else:
        arrays["last_obs"] = np.asarray(model._last_obs)

    state = {
        "format_version": FORMAT_VERSION,
        "algorithm": type(model).__name__,
        "counters": {k: getattr(model, k) for k in COUNTERS if hasattr(model, k)},
        "optimizers": optimizers,
        "buffer": {"pos": int(buffer.pos), "full": bool(buffer.full), "filled": int(filled)},
        "ep_info_buffer": list(model.ep_info_buffer or []),
        "rng": {
            "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "action_space": [s.np_random.bit_generator.state for s in _spaces_of(model.action_space)],
        },
        "extra": extra or {},
    }
    staging = path.with_name(path.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    outputs.write_tensors(tensors, staging / WEIGHTS)
    with open(staging / BUFFER, "wb") as f:
        np.savez(f, **arrays)
    (staging / STATE).write_text(json.dumps(state, default=float) + "\n")
    old = path.with_name(path.name + ".old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(staging, path)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_folder(path: str | os.PathLike) -> Path | None:
    """The complete checkpoint at ``path`` (or the one a swap interrupted by a kill left), if any."""
    path = Path(path)
    for candidate in (path, path.with_name(path.name + ".old")):
        if all((candidate / name).is_file() for name in (WEIGHTS, BUFFER, STATE)):
            return candidate
    return None


def saved_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` of the checkpoint at ``path``, read without a model (to check a run before building one)."""
    folder = checkpoint_folder(path)
    if folder is None:
        raise CheckpointError(f"no complete checkpoint at {path}")
    try:
        return json.loads((folder / STATE).read_text())["extra"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{folder} cannot be read ({e}); the checkpoint is corrupt") from e


def load_training_state(model: OffPolicyAlgorithm, path: str | os.PathLike
                        ) -> tuple[dict[str, Any], np.ndarray | dict[str, np.ndarray]]:
    """Restore a checkpoint into ``model`` (built with the same settings).

    Returns the ``extra`` saved with it and the observation the model was about to act on. The
    model's ``_last_obs`` is cleared, so the next ``learn(..., reset_num_timesteps=False)`` resets
    the env; a caller that restarts its episodes where they stopped can check that the reset gives
    that observation again (:func:`same_observation`).
    """
    folder = checkpoint_folder(path)
    if folder is None:
        raise CheckpointError(f"no complete checkpoint at {path}")
    try:
        state = json.loads((folder / STATE).read_text())
        tensors = load_file(str(folder / WEIGHTS), device="cpu")
        with np.load(folder / BUFFER, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, SafetensorError) as e:  # cut short by a full disk
        if "pickle" in str(e):  # an object array: not something a checkpoint holds
            raise CheckpointError(f"{folder / BUFFER} holds Python objects, not plain arrays; the checkpoint is "
                                  "not one skillgym wrote") from e
        raise CheckpointError(f"{folder} cannot be read ({e}); the checkpoint is corrupt") from e
    if state.get("format_version") != FORMAT_VERSION or state.get("algorithm") != type(model).__name__:
        raise CheckpointError(f"{folder} holds a {state.get('algorithm')} checkpoint of format "
                              f"{state.get('format_version')}, not a {type(model).__name__} one of format {FORMAT_VERSION}")
    device = get_device(model.device)
    params: dict[str, Any] = {}
    for name in model.get_parameters():
        prefix = f"{name}/"
        part = {k[len(prefix):]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}
        params[name] = optimizer_state(part, state["optimizers"][name]) if name in state["optimizers"] else part
    try:
        model.set_parameters(params, exact_match=True, device=device)
        _, variables = model._get_torch_save_params()
        for name in variables:
            _model_from(model, name).data.copy_(tensors[f"variables/{name}"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{folder} does not fit this model ({e}); was it built with other settings?") from e

    buffer = model.replay_buffer
    filled = state["buffer"]["filled"]
    for name, array in _buffer_arrays(buffer).items():
        array[:filled] = arrays[f"buffer/{name}"]
    buffer.pos, buffer.full = state["buffer"]["pos"], state["buffer"]["full"]

    for name, value in state["counters"].items():
        setattr(model, name, value)
    model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(maxlen=model._stats_window_size)
    name, pos, has_gauss, cached = state["rng"]["numpy"]
    np.random.set_state((name, arrays["rng/numpy_keys"], pos, has_gauss, cached))
    version, internal, gauss = state["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    th.set_rng_state(tensors["rng/torch"])
    for space, rng_state in zip(_spaces_of(model.action_space), state["rng"]["action_space"], strict=True):
        space.np_random.bit_generator.state = rng_state
    model._last_obs = None  # type: ignore[assignment]
    if "last_obs" in arrays:
        return state["extra"], arrays["last_obs"]
    return state["extra"], {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("last_obs/")}


def same_observation(a: np.ndarray | dict[str, np.ndarray], b: np.ndarray | dict[str, np.ndarray]) -> bool:
    """Whether two (possibly Dict) observations are equal, array for array."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


def policy_digest(model: BaseAlgorithm) -> str:
    """SHA-256 of the policy's weights: equal digests, equal policies (to check that runs repeat)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
