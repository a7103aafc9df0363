"""SkillLibrary: the frozen artifact of stage 2 (decoder + priors + metadata), used by the RL env.

A library is a folder::

    config.json          LibraryConfig (shapes, observation layout, provenance, versions)
    model.safetensors    weights: ``decoder.*``, ``priors.*`` (and ``encoder.*``, the VAE encoder
                         q(z|a,d), kept only so a library can be fine-tuned; inference ignores it)

A language-conditioned library (``config.instruction_dim > 0``, trained on episodes that carry
instructions) takes the episode's instruction embedding in :meth:`SkillLibrary.start` and
:meth:`SkillLibrary.prior`, and its :attr:`SkillLibrary.observation_space` is a ``Dict`` of the
observation and ``"instruction"``.

Example:
    >>> lib = SkillLibrary.build(LibraryConfig(num_skills=8))
    >>> state = lib.start(np.array([3]), np.zeros((1, 5), np.float32))
    >>> action, progress, state = lib.step(state, np.zeros((1, 59)))  # open loop: obs is ignored
    >>> action.shape, progress.shape
    ((1, 9), (1,))
    >>> actions, progress = lib.decode(np.array([3]), np.zeros((1, 5), np.float32))  # whole skills
    >>> actions.shape, progress.shape
    ((1, 30, 9), (1, 30))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from skillgym import outputs
from skillgym.language import INSTRUCTION_KEY
from skillgym.skills.config import FORMAT_VERSION, LibraryConfig, LibraryError
from skillgym.skills.model import DecoderState, SkillDecoder, SkillEncoder, SkillPriors
from skillgym.spaces import skill_action_space
from skillgym.version import __version__

__all__ = ["SkillLibrary", "LibraryConfig", "LibraryError", "DecoderState", "CONFIG_FILE", "WEIGHTS_FILE"]


@dataclass
class NumpyDecoderState:
    """Decoder state of the numpy fast path (1-layer LSTM); advanced in place by each step."""

    const: np.ndarray  # (B, 4H) input projection of [z, onehot(d), instruction feats] + biases, fixed per skill
    h: np.ndarray  # (B, H)
    c: np.ndarray  # (B, H)
    prev: np.ndarray  # (B, A + 1) last [action, progress]


CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 2**20


def current_versions() -> dict[str, str]:
    """``{"skillgym": ..., "torch": ...}``: the versions a new library records (torch without ``+cpu``)."""
    return {"skillgym": __version__, "torch": torch.__version__.split("+")[0]}


class SkillLibrary:
    """Frozen skill decoder p(ā, l | z, d) and priors p(d | s), p(z | s, d); CPU, inference only.

    Numpy in, numpy out. :meth:`start` / :meth:`step` run skills step by step for both decoder
    kinds (closed-loop decoders look at the current observation, open-loop ones ignore it);
    :meth:`decode` runs whole open-loop skills in one call.

    Stepping has two implementations on the same weights: the torch decoder (the one trained) and,
    for 1-layer LSTMs on CPU with state observations, a numpy version of the same computation that
    is several times faster at batch size 1 (once per low-level step in the RL env).
    """

    def __init__(self, config: LibraryConfig, priors: SkillPriors, decoder: SkillDecoder,
                 encoder: SkillEncoder | None = None, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.priors = priors.to(self.device).eval().requires_grad_(False)
        # The priors carry their config, so an agent that copies them can save them without pickling.
        self.priors.library_config = config
        self.decoder = decoder.to(self.device).eval().requires_grad_(False)
        self.encoder = encoder  # optional, only for fine-tuning
        self._action_low = np.asarray(config.action_low, np.float32)
        self._action_high = np.asarray(config.action_high, np.float32)
        self._np_cache: dict[str, np.ndarray] | None = None

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def build(cls, config: LibraryConfig, seed: int = 0) -> SkillLibrary:
        """An untrained library with freshly initialised weights (for tests and tiny envs)."""
        if not config.versions:
            config.versions = current_versions()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            priors, decoder, encoder = SkillPriors(config), SkillDecoder(config), SkillEncoder(config)
        return cls(config, priors, decoder, encoder)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every weight, keyed ``priors.*``, ``decoder.*`` and (if there is one) ``encoder.*``."""
        tensors = {f"priors.{k}": v for k, v in self.priors.state_dict().items()}
        tensors.update({f"decoder.{k}": v for k, v in self.decoder.state_dict().items()})
        if self.encoder is not None:
            tensors.update({f"encoder.{k}": v for k, v in self.encoder.state_dict().items()})
        return tensors

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into the folder ``path``; returns it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        # Write to temporary names and rename, so an interrupted save never leaves a half file.
        tmp_w, tmp_c = path / (WEIGHTS_FILE + ".tmp"), path / (CONFIG_FILE + ".tmp")
        outputs.write_tensors(tensors, tmp_w, metadata={"format_version": str(FORMAT_VERSION)})
        tmp_c.write_text(self.config.to_json())
        os.replace(tmp_w, path / WEIGHTS_FILE)
        os.replace(tmp_c, path / CONFIG_FILE)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SkillLibrary:
        """Load a library folder; every mismatch is reported with what to do about it."""
        path = Path(path)
        if not path.is_dir():
            raise LibraryError(
                f"no skill library at {path} (expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE}); "
                "train one with `skillgym train-skills LABELS --out DIR`"
            )
        config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not config_file.is_file():
            raise LibraryError(f"{path} has no {CONFIG_FILE}: not a skill library, or an interrupted save")
        if config_file.stat().st_size > MAX_CONFIG_BYTES:
            raise LibraryError(f"{config_file} is larger than {MAX_CONFIG_BYTES} bytes: not a library config")
        try:
            payload = json.loads(config_file.read_text())
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise LibraryError(f"{config_file} is not valid JSON ({type(e).__name__}: {str(e)[:200]}); "
                               "the file is corrupt, retrain with `skillgym train-skills`") from e
        try:
            config = LibraryConfig.from_dict(payload)
        except LibraryError as e:
            raise LibraryError(f"{config_file}: {e}") from e
        if not weights_file.is_file():
            raise LibraryError(f"{path} has {CONFIG_FILE} but no {WEIGHTS_FILE}: the weights are missing")
        try:
            tensors = load_file(str(weights_file), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise LibraryError(
                f"{weights_file} cannot be read as safetensors ({e}); the file is corrupt or truncated"
            ) from e

        lib = cls.build(config)
        expected = lib.state_dict()
        missing = [k for k in expected if k not in tensors and not k.startswith("encoder.")]
        unexpected = [k for k in tensors if k not in expected]
        wrong = [f"{k}: file {tuple(tensors[k].shape)} vs config {tuple(v.shape)}"
                 for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
        if missing or unexpected or wrong:
            problems = []
            if wrong:
                problems.append(f"{len(wrong)} shape mismatches, e.g. " + "; ".join(wrong[:3]))
            if missing:
                problems.append(f"{len(missing)} missing tensors, e.g. {missing[:3]}")
            if unexpected:
                problems.append(f"{len(unexpected)} unexpected tensors, e.g. {unexpected[:3]}")
            raise LibraryError(
                f"{path}: {CONFIG_FILE} does not match {WEIGHTS_FILE} (config: num_skills="
                f"{config.num_skills}, z_dim={config.z_dim}, obs_kind={config.obs_kind}, decoder="
                f"{config.decoder}, hidden_dim={config.hidden_dim}): " + " | ".join(problems)
                + ". Were the two files written by different trainings, or was the config edited?"
            )
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise LibraryError(
                f"{weights_file} holds NaN or infinite weights ({len(bad)} tensors, e.g. {bad[:3]}): the training "
                "diverged or the file is corrupt; retrain with `skillgym train-skills` (a lower --lr helps)"
            )
        has_encoder = any(k.startswith("encoder.") for k in tensors)
        lib.priors.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("priors.")})
        lib.decoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")})
        if has_encoder:
            lib.encoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})
        else:
            lib.encoder = None
        return cls(config, lib.priors, lib.decoder, lib.encoder, device=device)

    # -- spaces -------------------------------------------------------------------------------------
    @property
    def num_skills(self) -> int:
        """Number of skills ``K``."""
        return self.config.num_skills

    @property
    def z_dim(self) -> int:
        """Size ``nz`` of a skill's continuous argument."""
        return self.config.z_dim

    @property
    def max_skill_steps(self) -> int:
        """Most low-level steps one skill runs."""
        return self.config.max_skill_steps

    @property
    def observation_space(self) -> gym.spaces.Box | gym.spaces.Dict:
        """What the priors observe: float64 state vectors or uint8 ``(frame_stack, H, W, 3)`` frames; for a
        language-conditioned library a ``Dict`` of that (under ``obs_kind``) and ``"instruction"``."""
        c = self.config
        if c.obs_kind == "state":
            space = gym.spaces.Box(-np.inf, np.inf, (c.state_dim,), np.float64)
        else:
            space = gym.spaces.Box(0, 255, c.obs_shape, np.uint8)
        if not c.language_conditioned:
            return space
        return gym.spaces.Dict({c.obs_kind: space, INSTRUCTION_KEY: self.instruction_space})

    @property
    def instruction_space(self) -> gym.spaces.Box | None:
        """The instruction embeddings a language-conditioned library takes (unit vectors), else None."""
        if not self.config.language_conditioned:
            return None
        return gym.spaces.Box(-1.0, 1.0, (self.config.instruction_dim,), np.float32)

    @property
    def action_space(self) -> gym.spaces.Box:
        """The low-level action space the decoder emits into."""
        return gym.spaces.Box(self._action_low, self._action_high, dtype=np.float32)

    @property
    def arg_space(self) -> gym.spaces.Box:
        """The skill argument space ``Box(-arg_bound, arg_bound, (nz,), float32)``."""
        return skill_action_space(self.num_skills, self.z_dim, float(self.config.arg_bound))["arg"]

    # -- inference ----------------------------------------------------------------------------------
    def _check_skill_z(self, skill, z) -> tuple[torch.Tensor, torch.Tensor]:
        skill = np.asarray(skill)
        z = np.asarray(z, dtype=np.float32)
        if skill.ndim != 1 or not np.issubdtype(skill.dtype, np.integer):
            raise ValueError(f"skill must be a 1-d integer array (B,), got {skill.dtype} {skill.shape}")
        if z.shape != (len(skill), self.z_dim):
            raise ValueError(f"z must have shape (B, {self.z_dim}) = ({len(skill)}, {self.z_dim}), got {z.shape}")
        if len(skill) and (skill.min() < 0 or skill.max() >= self.num_skills):
            raise ValueError(f"skill ids must be in [0, {self.num_skills}), got {skill.tolist()}")
        if not np.all(np.isfinite(z)):
            raise ValueError("z must be finite")
        return (torch.from_numpy(skill.astype(np.int64)).to(self.device),
                torch.from_numpy(z).to(self.device))

    def _obs_tensor(self, obs, batch: int | None = None, for_decoder: bool = False) -> torch.Tensor:
        kind = self.config.decoder_obs_kind if for_decoder else self.config.obs_kind
        shape = self.config.decoder_obs_shape if for_decoder else self.config.obs_shape
        obs = np.asarray(obs)
        if obs.ndim != len(shape) + 1 or obs.shape[1:] != shape:
            raise ValueError(
                f"{'decoder ' if for_decoder else ''}observations must have shape (B, {', '.join(map(str, shape))}) "
                f"for this {kind} library, got {obs.shape}"
            )
        if batch is not None and len(obs) != batch:
            raise ValueError(f"expected {batch} observations (one per skill), got {len(obs)}")
        if kind == "pixels":
            if obs.dtype != np.uint8:
                raise ValueError(f"pixel observations must be uint8 0-255, got {obs.dtype}")
            return torch.from_numpy(np.ascontiguousarray(obs)).to(self.device)
        return torch.from_numpy(np.asarray(obs, np.float32)).to(self.device)

    def _instruction_tensor(self, instruction, batch: int) -> torch.Tensor | None:
        if not self.config.language_conditioned:
            if instruction is not None:
                raise ValueError("this library is not language-conditioned (trained without instructions); "
                                 "pass no instruction")
            return None
        if instruction is None:
            raise ValueError(f"this library is language-conditioned: pass the instruction embeddings "
                             f"(B, {self.config.instruction_dim})")
        instruction = np.asarray(instruction, np.float32)
        if instruction.shape != (batch, self.config.instruction_dim):
            raise ValueError(f"instruction must have shape ({batch}, {self.config.instruction_dim}), "
                             f"got {instruction.shape}")
        if not np.all(np.isfinite(instruction)):
            raise ValueError("instruction embeddings must be finite")
        return torch.from_numpy(instruction).to(self.device)

    def start(self, skill: np.ndarray, z: np.ndarray, instruction: np.ndarray | None = None
              ) -> DecoderState | NumpyDecoderState:
        """Start decoding skills ``skill (B,)`` int with arguments ``z (B, nz)``; returns the state.

        ``instruction (B, instruction_dim)``: the episodes' instruction embeddings, required by a
        language-conditioned library and refused by others.
        """
        skill_t, z_t = self._check_skill_z(skill, z)
        instruction_t = self._instruction_tensor(instruction, len(skill_t))
        if self._numpy_ok():
            features = None
            if instruction_t is not None:  # once per skill: the torch projection is cheap enough
                with torch.inference_mode():
                    features = self.decoder.instruction(instruction_t).numpy()
            return self._numpy_start(skill_t.numpy(), z_t.numpy(), features)
        with torch.inference_mode():
            return self.decoder.start(skill_t, z_t, instruction_t)

    def step(self, state: DecoderState | NumpyDecoderState, obs: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, DecoderState | NumpyDecoderState]:
        """One step: ``action (B, A)`` float32, ``progress (B,)`` float32, next state.

        ``obs (B, *decoder_obs_shape)`` is the current observation (the state vector for a
        library with ``decoder_obs="state"``); required for closed-loop decoders, ignored by
        open-loop ones.
        """
        closed = self.config.decoder == "closed_loop"
        if closed and obs is None:
            raise ValueError("a closed-loop decoder needs obs (B, *decoder_obs_shape) at every step")
        if isinstance(state, NumpyDecoderState):
            if closed:
                obs = np.asarray(obs, np.float32)
                want = (len(state.h), *self.config.decoder_obs_shape)
                if obs.shape != want:
                    raise ValueError(f"obs must have shape {want}, got {obs.shape}")
            action, progress = self._numpy_step(state, obs if closed else None)
            return action, progress, state
        obs_t = self._obs_tensor(obs, batch=state.prev_action.shape[0], for_decoder=True) if closed else None
        with torch.inference_mode():
            action, progress, state = self.decoder.step(state, obs_t)
        return action.cpu().numpy(), progress.cpu().numpy(), state

    def decode(self, skill: np.ndarray, z: np.ndarray, instruction: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Open-loop decode of whole skills: actions ``(B, L, A)`` float32, progress ``(B, L)`` float32.

        ``L = max_skill_steps``; the caller stops at the first step with progress >= its threshold.
        Closed-loop decoders need the observation at every step: use :meth:`start` / :meth:`step`.
        ``instruction`` as in :meth:`start`.
        """
        if self.config.decoder == "closed_loop":
            raise ValueError(
                "this library's decoder is closed-loop: it needs the observation at every step, "
                "so use start(skill, z) and step(state, obs) instead of decode()"
            )
        state = self.start(skill, z, instruction)
        steps = self.max_skill_steps
        actions = np.empty((len(skill), steps, self.config.action_dim), np.float32)
        progress = np.empty((len(skill), steps), np.float32)
        for t in range(steps):
            actions[:, t], progress[:, t], state = self.step(state)
        return actions, progress

    # The numpy path. At batch size 1, torch's per-op overhead (~4 us x 20 ops) dominates a
    # 128-unit LSTM step; numpy's is ~4x smaller. Tests hold it equal to the torch decoder.
    def _numpy_ok(self) -> bool:
        c = self.config
        return c.lstm_layers == 1 and self.device.type == "cpu" and (
            c.decoder == "open_loop" or c.decoder_obs_kind == "state")

    def _numpy_start(self, skill: np.ndarray, z: np.ndarray, instruction_features: np.ndarray | None = None
                     ) -> NumpyDecoderState:
        w = self._numpy_weights()
        b, hidden = len(skill), w["w_hh"].shape[0]
        parts = [z, np.eye(self.num_skills, dtype=np.float32)[skill]]
        if instruction_features is not None:
            parts.append(instruction_features)
        z_skill = np.concatenate(parts, axis=1)
        zeros = np.zeros((b, hidden), np.float32)
        # [a_{t-1}, l_{t-1}]: a skill starts from zeros
        return NumpyDecoderState(z_skill @ w["w_const"] + w["bias"], zeros, zeros.copy(),
                                 np.zeros((b, self.config.action_dim + 1), np.float32))

    def _numpy_step(self, state: NumpyDecoderState, obs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``state`` in place; returns ``action (B, A)``, ``progress (B,)``."""
        w = self._numpy_weights()
        hidden, a_dim = w["w_hh"].shape[0], self.config.action_dim
        gates = state.const + state.h @ w["w_hh"]
        if "w_prev" in w:
            gates += state.prev @ w["w_prev"]
        if "w_obs" in w:
            x = np.clip((np.asarray(obs, np.float32) - w["obs_mean"]) / w["obs_std"], -10.0, 10.0)
            gates += np.maximum(x @ w["w_feat"] + w["b_feat"], 0.0) @ w["w_obs"]
        sig = 1.0 / (1.0 + np.exp(-gates))
        state.c = sig[:, hidden: 2 * hidden] * state.c + sig[:, :hidden] * np.tanh(gates[:, 2 * hidden: 3 * hidden])
        state.h = sig[:, 3 * hidden:] * np.tanh(state.c)
        out = state.h @ w["w_head"] + w["b_head"]
        if "w_skip" in w:
            out[:, :a_dim] += x @ w["w_skip"] + w["b_skip"]
        state.prev[:, :a_dim] = np.tanh(out[:, :a_dim]) * w["scale"] + w["centre"]
        state.prev[:, a_dim] = 1.0 / (1.0 + np.exp(-out[:, a_dim]))
        return state.prev[:, :a_dim].copy(), state.prev[:, a_dim].copy()

    def _numpy_weights(self) -> dict[str, np.ndarray]:
        # The library is frozen, so the transposed weights are cached once.
        if self._np_cache is None:
            d = self.decoder

            def t(x: torch.Tensor) -> np.ndarray:
                return np.ascontiguousarray(x.detach().cpu().numpy().T)

            w_ih = d.lstm.weight_ih_l0
            start, end = d.n_prev, d.n_prev + d.n_const
            cache = {
                "w_const": t(w_ih[:, start:end]),
                "bias": (d.lstm.bias_ih_l0 + d.lstm.bias_hh_l0).detach().cpu().numpy(),
                "w_hh": t(d.lstm.weight_hh_l0),
                "w_head": t(d.head.weight),
                "b_head": d.head.bias.detach().cpu().numpy(),
                "scale": d.action_scale.cpu().numpy(),
                "centre": d.action_centre.cpu().numpy(),
            }
            if d.autoregressive:
                cache["w_prev"] = t(w_ih[:, :start])
            if d.closed_loop:
                normalizer, linear = d.obs_encoder[0], d.obs_encoder[1]
                cache.update(w_obs=t(w_ih[:, end:]), w_feat=t(linear.weight),
                             b_feat=linear.bias.detach().cpu().numpy(),
                             obs_mean=normalizer.obs_mean.cpu().numpy(),
                             obs_std=normalizer.obs_std.cpu().numpy())
            if d.state_to_action is not None:
                cache.update(w_skip=t(d.state_to_action.weight),
                             b_skip=d.state_to_action.bias.detach().cpu().numpy())
            self._np_cache = cache
        return self._np_cache

    def prior(self, obs: np.ndarray, instruction: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Priors for a batch of observations: logits ``(B, K)``, z mean and log-std ``(B, K, nz)``.

        ``instruction (B, instruction_dim)``: the episodes' instruction embeddings, required by a
        language-conditioned library and refused by others.
        """
        obs_t = self._obs_tensor(obs)
        instruction_t = self._instruction_tensor(instruction, len(obs_t))
        with torch.inference_mode():
            logits, mean, log_std = self.priors(self.priors.inputs(obs_t, instruction_t))
        return logits.cpu().numpy(), mean.cpu().numpy(), log_std.cpu().numpy()

    def __repr__(self) -> str:
        c = self.config
        language = f", instruction_dim={c.instruction_dim}" if c.language_conditioned else ""
        return (f"SkillLibrary(num_skills={c.num_skills}, z_dim={c.z_dim}, obs={c.obs_kind}"
                f"{c.obs_shape}, decoder={c.decoder}, max_skill_steps={c.max_skill_steps}{language})")
