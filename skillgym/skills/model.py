"""The skill model of EXTRACT (paper §4.2, Eq. 2): skill VAE with a progress head, and two priors.

Components (all built from a :class:`LibraryConfig`):

- :class:`SkillEncoder` q(z | ā, d): LSTM over ``[a_t, onehot(d)]`` -> diagonal Gaussian over z.
- :class:`SkillDecoder` p(ā, l | z, d): autoregressive LSTM fed ``[a_{t-1}, l_{t-1}, z, onehot(d)]``
  (and current observation features if closed-loop); emits ``a_t`` (tanh, mapped to the action
  bounds) and progress ``l_t`` (sigmoid, in [0, 1]: a bounded head so a 0.9 threshold can fire).
- :class:`SkillPriors` p(d | s) categorical and p(z | s, d) diagonal Gaussian with learned
  variance, from one observation (state vector or uint8 frame stack).

A language-conditioned library (``config.instruction_dim > 0``) gives the priors and the decoder
the instruction's embedding l as well: p(d | s, l), p(z | s, d, l), p(ā, l | z, d, l). Each
projects l linearly to ``instruction_feature_dim`` features (then LayerNorm), concatenated to its
other inputs.
- :class:`SkillVAE` ties them together and computes the loss of Eq. 2.

Normalisation choice: the prior MLPs use LayerNorm, not BatchNorm, so the priors compute the same
function in training and in RL (BatchNorm's train/eval switch changes outputs for a frozen prior).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from skillgym.language import INSTRUCTION_KEY
from skillgym.skills.config import LibraryConfig

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
LOG_2PI = math.log(2 * math.pi)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int) -> nn.Sequential:
    """``layers`` hidden blocks Linear -> LayerNorm -> ReLU, then a linear output."""
    blocks: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(dim, hidden), nn.LayerNorm(hidden), nn.ReLU()]
        dim = hidden
    blocks.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*blocks)


# -- observation encoders ---------------------------------------------------------------------
class StateNormalizer(nn.Module):
    """Standardises a state vector with statistics of the training data (stored as buffers)."""

    def __init__(self, state_dim: int):
        super().__init__()
        self.out_dim = state_dim
        self.register_buffer("obs_mean", torch.zeros(state_dim))
        self.register_buffer("obs_std", torch.ones(state_dim))

    def set_normalisation(self, mean: Tensor, std: Tensor) -> None:
        """Store the data's per-dimension ``mean`` and ``std`` (floored at 1e-3) as the standardisation."""
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        # Constant dims (e.g. a never-touched object) would divide by ~0: floor the scale.
        self.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def forward(self, obs: Tensor) -> Tensor:
        """``(B, D)`` states -> standardised float32 ``(B, D)``, clipped to [-10, 10]."""
        x = (obs.to(torch.float32) - self.obs_mean) / self.obs_std
        return x.clamp(-10.0, 10.0)  # a state far outside the data must not blow up the MLP


class PixelEncoder(nn.Module):
    """Conv encoder for a uint8 frame stack ``(B, stack, H, W, 3)``: 4 stride-2 convs + linear."""

    def __init__(self, frame_stack: int, image_size: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        chans = [3 * frame_stack, 32, 64, 128, 128]
        convs: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            convs += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*convs)
        side = image_size // 16  # each conv halves the side, rounding down: 84 -> 42 -> 21 -> 10 -> 5
        self.head = nn.Sequential(nn.Linear(128 * side * side, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, obs: Tensor) -> Tensor:
        """uint8 ``(B, stack, H, W, 3)`` -> ``(B, out_dim)`` features."""
        b, s, h, w, c = obs.shape
        x = obs.to(torch.float32).div(255.0).sub(0.5)  # uint8 0-255 in, centred floats inside
        # Channels (stack, rgb) stay innermost in memory: oneDNN's convolutions run faster on a channels-last
        # tensor, and the NCHW view below is the same tensor to every layer.
        x = x.permute(0, 2, 3, 1, 4).reshape(b, h, w, s * c).permute(0, 3, 1, 2)
        return self.head(self.convs(x).flatten(1))


def make_obs_encoder(config: LibraryConfig, kind: str | None = None) -> nn.Module:
    """Encoder for ``kind`` observations ("state" / "pixels"; default: the priors' ``obs_kind``)."""
    if (kind or config.obs_kind) == "state":
        return StateNormalizer(config.state_dim)
    return PixelEncoder(config.frame_stack, config.image_size, config.pixel_feature_dim)


def instruction_projection(config: LibraryConfig) -> nn.Sequential:
    """Linear projection of an instruction embedding to ``instruction_feature_dim`` features, then LayerNorm.

    Sentence embeddings are unit vectors whose entries are ~0.05; normalised, their features weigh as much as
    the standardised state next to them, instead of a prior fitting the states of the few training episodes.
    """
    return nn.Sequential(nn.Linear(config.instruction_dim, config.instruction_feature_dim),
                         nn.LayerNorm(config.instruction_feature_dim))


# -- priors -----------------------------------------------------------------------------------
class SkillPriors(nn.Module):
    """p(d | s) and p(z | s, d) from one observation.

    ``forward(obs)`` takes ``(B, *obs_shape)`` (float states or uint8 frames) and returns
    ``logits (B, K)``, ``z_mean (B, K, nz)``, ``z_log_std (B, K, nz)`` -- the z prior for every
    skill at once, so a policy can evaluate all skills in one pass. A language-conditioned prior
    takes ``{obs_kind: (B, *obs_shape), "instruction": (B, instruction_dim)}`` instead
    (:meth:`inputs` builds it), the skill-space env's observation.
    """

    def __init__(self, config: LibraryConfig):
        super().__init__()
        self.num_skills, self.z_dim = config.num_skills, config.z_dim
        self.obs_key = config.obs_kind
        self.encoder = make_obs_encoder(config)
        feat = self.encoder.out_dim
        self.instruction: nn.Module | None = None
        if config.language_conditioned:
            self.instruction = instruction_projection(config)
            feat += config.instruction_feature_dim
        self.d_net = mlp(feat, config.prior_hidden_dim, config.num_skills, config.prior_layers)
        self.z_net = mlp(feat, config.prior_hidden_dim, 2 * config.num_skills * config.z_dim,
                         config.prior_layers)

    def inputs(self, obs: Tensor, instruction: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        """What :meth:`forward` takes: ``obs`` alone, or with the ``instruction`` of a conditioned prior."""
        if self.instruction is None:
            return obs
        if instruction is None:
            raise ValueError("this prior is language-conditioned: it needs the instruction embedding")
        return {self.obs_key: obs, INSTRUCTION_KEY: instruction}

    def forward(self, obs: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, *obs_shape)`` (or :meth:`inputs`'s mapping) -> ``logits (B, K)``, ``z_mean (B, K, nz)``,
        ``z_log_std (B, K, nz)``."""
        if self.instruction is None:
            feat = self.encoder(obs)
        else:
            if not isinstance(obs, Mapping):
                raise ValueError(f"this prior is language-conditioned: it takes {{{self.obs_key!r}: observations, "
                                 f"{INSTRUCTION_KEY!r}: instruction embeddings}}")
            feat = torch.cat([self.encoder(obs[self.obs_key]),
                              self.instruction(obs[INSTRUCTION_KEY].to(torch.float32))], dim=-1)
        logits = self.d_net(feat)
        z = self.z_net(feat).view(-1, self.num_skills, 2, self.z_dim)
        z_mean, z_log_std = z[:, :, 0], z[:, :, 1].clamp(LOG_STD_MIN, LOG_STD_MAX)
        return logits, z_mean, z_log_std


# -- encoder q(z | a, d) ----------------------------------------------------------------------
class SkillEncoder(nn.Module):
    """q(z | ā, d): LSTM over ``[a_t, onehot(d)]``, read at the last valid step -> Gaussian over z."""

    def __init__(self, config: LibraryConfig):
        super().__init__()
        self.num_skills = config.num_skills
        self.lstm = nn.LSTM(config.action_dim + config.num_skills, config.hidden_dim,
                            num_layers=config.lstm_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_dim, 2 * config.z_dim)

    def forward(self, actions: Tensor, skill: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``actions (B, T, A)`` right-padded, ``lengths (B,)`` >= 1 -> mean, log_std ``(B, nz)``."""
        onehot = F.one_hot(skill, self.num_skills).to(actions.dtype)
        x = torch.cat([actions, onehot[:, None].expand(-1, actions.shape[1], -1)], dim=-1)
        out, _ = self.lstm(x)
        # Padding sits after the valid steps, so the output at the last valid step never saw it.
        last = out[torch.arange(len(lengths)), lengths - 1]
        mean, log_std = self.head(last).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


# -- decoder p(a, l | z, d) -------------------------------------------------------------------
@dataclass
class DecoderState:
    """Recurrent state of a batch of skills being decoded step by step."""

    z_skill: Tensor  # (B, nz + K [+ instruction features]), the input that stays fixed during a skill
    h: Tensor  # (layers, B, H)
    c: Tensor  # (layers, B, H)
    prev_action: Tensor  # (B, A)
    prev_progress: Tensor  # (B, 1)


class SkillDecoder(nn.Module):
    """Autoregressive LSTM decoder with a bounded progress head.

    Input at step t: ``[z, onehot(d)]`` (+ the projected instruction embedding if
    language-conditioned, + observation features of s_t if closed-loop), and if
    ``config.autoregressive`` also ``[a_{t-1}, l_{t-1}]``, starting from ``a_0 = 0, l_0 = 0``. Training uses teacher forcing
    (:meth:`forward`); inference uses :meth:`start` / :meth:`step`, which feed back the
    decoder's own outputs.
    """

    def __init__(self, config: LibraryConfig):
        super().__init__()
        self.num_skills, self.z_dim, self.action_dim = config.num_skills, config.z_dim, config.action_dim
        self.closed_loop = config.decoder == "closed_loop"
        obs_dim = 0
        if self.closed_loop:
            enc = make_obs_encoder(config, config.decoder_obs_kind)
            self.obs_encoder = nn.Sequential(enc, nn.Linear(enc.out_dim, config.decoder_obs_dim), nn.ReLU())
            obs_dim = config.decoder_obs_dim
        # Linear path from the standardised state to the action (config.state_skip); starts at
        # zero so that a fresh model computes what it would without it.
        self.state_to_action: nn.Linear | None = None
        if config.state_skip:
            self.state_to_action = nn.Linear(config.state_dim, config.action_dim)
            nn.init.zeros_(self.state_to_action.weight)
            nn.init.zeros_(self.state_to_action.bias)
        # An episode's instruction is fixed during a skill, so its features join the per-skill
        # block of the input rather than the per-step one.
        self.instruction: nn.Module | None = None
        if config.language_conditioned:
            self.instruction = instruction_projection(config)
        # Input layout: [prev action (A), prev progress (1) | z (nz), onehot (K), instruction feats | obs feats];
        # the first block only if the decoder is autoregressive.
        self.autoregressive = config.autoregressive
        self.n_prev = config.action_dim + 1 if config.autoregressive else 0
        self.n_const = config.z_dim + config.num_skills
        if self.instruction is not None:
            self.n_const += config.instruction_feature_dim
        in_dim = self.n_prev + self.n_const + obs_dim
        self.lstm = nn.LSTM(in_dim, config.hidden_dim, num_layers=config.lstm_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_dim, config.action_dim + 1)
        low = torch.tensor(config.action_low, dtype=torch.float32)
        high = torch.tensor(config.action_high, dtype=torch.float32)
        self.register_buffer("action_centre", (high + low) / 2)
        self.register_buffer("action_scale", (high - low) / 2)

    def _outputs(self, h: Tensor, skip: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out = self.head(h)
        pre = out[..., : self.action_dim] if skip is None else out[..., : self.action_dim] + skip
        action = torch.tanh(pre) * self.action_scale + self.action_centre
        return action, torch.sigmoid(out[..., self.action_dim])

    def _observe(self, obs: Tensor) -> tuple[Tensor, Tensor | None]:
        """Observation features for the LSTM and the state skip (None without one)."""
        normalised = self.obs_encoder[0](obs)
        skip = None if self.state_to_action is None else self.state_to_action(normalised)
        return self.obs_encoder[1:](normalised), skip

    def _z_skill(self, z: Tensor, skill: Tensor, instruction: Tensor | None = None) -> Tensor:
        parts = [z, F.one_hot(skill, self.num_skills).to(z.dtype)]
        if self.instruction is not None:
            if instruction is None:
                raise ValueError("this decoder is language-conditioned: it needs the instruction embedding")
            parts.append(self.instruction(instruction.to(z.dtype)))
        return torch.cat(parts, dim=-1)

    def forward(self, prev_actions: Tensor, prev_progress: Tensor, z: Tensor, skill: Tensor,
                obs: Tensor | None = None, instruction: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoding: ``prev_* (B, T, ...)`` -> actions ``(B, T, A)``, progress ``(B, T)``.

        ``obs (B, T, *obs_shape)`` are the observations s_t at which a_t is taken (closed loop);
        ``instruction (B, instruction_dim)`` the episodes' instruction embeddings (language-conditioned).
        """
        b, t = prev_progress.shape
        parts = [self._z_skill(z, skill, instruction)[:, None].expand(-1, t, -1)]
        if self.autoregressive:
            parts = [prev_actions, prev_progress[..., None], *parts]
        skip = None
        if self.closed_loop:
            if obs is None:
                raise ValueError("a closed-loop decoder needs the observations")
            feats, skip = self._observe(obs.flatten(0, 1))
            parts.append(feats.view(b, t, -1))
            skip = None if skip is None else skip.view(b, t, -1)
        out, _ = self.lstm(torch.cat(parts, dim=-1))
        return self._outputs(out, skip)

    # -- step-by-step inference -----------------------------------------------------------------
    def start(self, skill: Tensor, z: Tensor, instruction: Tensor | None = None) -> DecoderState:
        """Start skills ``skill (B,)`` with arguments ``z (B, nz)`` (and ``instruction (B, instruction_dim)``
        if language-conditioned): zero LSTM state, a_0 = 0, l_0 = 0."""
        b, layers, hidden = len(skill), self.lstm.num_layers, self.lstm.hidden_size
        h = z.new_zeros(layers, b, hidden, dtype=torch.float32)
        # a skill starts from a_0 = 0, l_0 = 0
        return DecoderState(self._z_skill(z.to(torch.float32), skill, instruction), h, h.clone(),
                            h.new_zeros(b, self.action_dim), h.new_zeros(b, 1))

    def step(self, state: DecoderState, obs: Tensor | None = None) -> tuple[Tensor, Tensor, DecoderState]:
        """One decoding step with the LSTM of :meth:`forward`; ``obs (B, *obs_shape)`` is the current
        observation (closed loop)."""
        parts = [state.z_skill]
        if self.autoregressive:
            parts = [state.prev_action, state.prev_progress, *parts]
        skip = None
        if self.closed_loop:
            if obs is None:
                raise ValueError("a closed-loop decoder needs the current observation at every step")
            feats, skip = self._observe(obs)
            parts.append(feats)
        out, (h, c) = self.lstm(torch.cat(parts, dim=-1)[:, None], (state.h, state.c))
        action, progress = self._outputs(out[:, 0], skip)
        return action, progress, DecoderState(state.z_skill, h, c, action, progress[:, None])


# -- the whole VAE + priors ---------------------------------------------------------------------
@dataclass
class SkillBatch:
    """A batch of training windows (``B`` windows of up to ``T`` actions, right-padded)."""

    actions: Tensor  # (B, T, A) targets
    prev_actions: Tensor  # (B, T, A) decoder inputs (teacher forcing)
    prev_progress: Tensor  # (B, T)
    progress: Tensor  # (B, T) targets in (0, 1]
    mask: Tensor  # (B, T) bool, True on real steps
    lengths: Tensor  # (B,) int64
    skill: Tensor  # (B,) int64, the segment's own label
    prior_obs: Tensor  # (B, *obs_shape): first observation of the window
    step_obs: Tensor | None = None  # (B, T, *obs_shape) closed loop only
    instruction: Tensor | None = None  # (B, instruction_dim) float32, language-conditioned only


PRIOR_Z_TARGETS = ("sample", "mean")
RECONSTRUCTIONS = ("sum", "mean")  # over a window's steps; "sum" is Eq. 2


class SkillVAE(nn.Module):
    """q(z|ā,d), p(ā,l|z,d), p(d|s), p(z|s,d) and the loss of Eq. 2."""

    def __init__(self, config: LibraryConfig):
        super().__init__()
        self.config = config
        self.encoder = SkillEncoder(config)
        self.decoder = SkillDecoder(config)
        self.priors = SkillPriors(config)

    def set_normalisation(self, mean: Tensor, std: Tensor) -> None:
        """Store state statistics in every state encoder (no-op for pixels)."""
        for module in self.modules():
            if isinstance(module, StateNormalizer):
                module.set_normalisation(mean, std)

    def loss_terms(self, batch: SkillBatch, sample: bool = True, prior_z_target: str = "sample",
                   reconstruction: str = "sum", detach_progress: bool = False,
                   z_noise: Tensor | None = None) -> dict[str, Tensor]:
        """The five terms of Eq. 2 as losses to minimise (with their graphs), plus metrics.

        - ``action``: squared error summed over action dims and over the real (unpadded) steps of
          each window, averaged over windows; i.e. the Gaussian NLL of the window's actions with
          unit variance, up to constants (Eq. 2 sums over t).
        - ``progress``: squared error of l_t against t/N, summed over real steps, averaged over windows.
        - ``reconstruction="mean"`` averages both over real steps instead: β·KL then weighs
          ≈ one mean window length more, z carries less, and sampled prior rollouts were better
          in the kitchen (docs/skills.md "Status").
        - ``kl``: KL(q || N(0, I)) summed over z dims (not averaged), averaged over windows;
          weighted by ``beta`` in :meth:`loss`.
        - ``prior_d``: cross-entropy of p(d | s_1) against the segment's label.
        - ``prior_z``: NLL of stop-gradient(z) under p(z | s_1, d), summed over z dims; z is the
          encoder's sample (``prior_z_target="sample"``) or its mean (``"mean"``: the prior's
          variance is then the spread of the argument given the state, without the encoder's noise).
        - ``detach_progress`` (not in Eq. 2): the progress term trains the decoder only, through a
          second decoder pass on sg(z). Segment lengths come from clustering noise that the first
          state cannot predict; with this, z is not asked to encode them (docs/skills.md).
        - ``z_noise``: the ``(B, z_dim)`` standard normal draw of z's sample (default: drawn here), so
          that data-parallel processes can each take their rows of one draw for the whole batch.
        """
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        if prior_z_target not in PRIOR_Z_TARGETS:
            raise ValueError(f"prior_z_target must be one of {PRIOR_Z_TARGETS}, got {prior_z_target!r}")
        mask = batch.mask.to(torch.float32)
        n_steps = mask.sum().clamp_min(1.0)
        n_windows = len(batch.skill) if reconstruction == "sum" else n_steps
        mean, log_std = self.encoder(batch.actions, batch.skill, batch.lengths)
        if sample:
            z = mean + log_std.exp() * (torch.randn_like(mean) if z_noise is None else z_noise)
        else:
            z = mean
        pred_a, pred_l = self.decoder(batch.prev_actions, batch.prev_progress, z, batch.skill, batch.step_obs,
                                      batch.instruction)
        if detach_progress:
            _, pred_l = self.decoder(batch.prev_actions, batch.prev_progress, z.detach(), batch.skill, batch.step_obs,
                                     batch.instruction)
        sq = ((pred_a - batch.actions) ** 2).sum(-1)
        progress_err = pred_l - batch.progress
        logits, z_mean, z_log_std = self.priors(self.priors.inputs(batch.prior_obs, batch.instruction))
        idx = torch.arange(len(batch.skill))
        mu, ls = z_mean[idx, batch.skill], z_log_std[idx, batch.skill]
        # sg(z): the prior must not pull the encoder (Eq. 2)
        z_target = (mean if prior_z_target == "mean" else z).detach()
        terms = {
            # Eq. 2 sums log p(a_t, l_t | z, d) over the window's steps: summed per window, then
            # averaged over windows. (A per-step mean weighs beta·KL ~20x more; see docs/skills.md.)
            "action": (sq * mask).sum() / n_windows,
            "progress": (progress_err**2 * mask).sum() / n_windows,
            "kl": 0.5 * (mean**2 + (2 * log_std).exp() - 1.0 - 2 * log_std).sum(-1).mean(),
            "prior_d": F.cross_entropy(logits, batch.skill),
            "prior_z": (0.5 * ((z_target - mu) / ls.exp()) ** 2 + ls + 0.5 * LOG_2PI).sum(-1).mean(),
        }
        with torch.no_grad():
            terms["action_mse"] = (sq * mask).sum() / (n_steps * batch.actions.shape[-1])
            terms["progress_mae"] = (progress_err.abs() * mask).sum() / n_steps
            terms["prior_acc"] = (logits.argmax(-1) == batch.skill).float().mean()
        return terms

    def loss(self, batch: SkillBatch, beta: float = 1e-3, sample: bool = True,
             prior_z_target: str = "sample", reconstruction: str = "sum",
             detach_progress: bool = False, z_noise: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 2 as a loss to minimise; returns the total and every term (detached) for logging."""
        terms = self.loss_terms(batch, sample, prior_z_target, reconstruction, detach_progress, z_noise)
        total = terms["action"] + terms["progress"] + beta * terms["kl"] + terms["prior_d"] + terms["prior_z"]
        logged = {"loss": total.detach(), **{k: v.detach() for k, v in terms.items()}}
        return total, logged

    def forward(self, batch: SkillBatch, **loss_options: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`loss`; DistributedDataParallel averages gradients only of what runs through ``forward``."""
        return self.loss(batch, **loss_options)
