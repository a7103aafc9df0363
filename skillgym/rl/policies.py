"""SkillPolicy: π(d, z | s) = π_d(d | s) π_z(z | s, d) initialised from the skill priors, and twin critics
Q(s, z) → R^K (one output per skill), as in EXTRACT §4.3 / App. B.1.3.

The prior reaches the policy as the constructor argument ``prior``: any ``nn.Module`` whose
``forward(obs (B, *obs_shape))`` returns ``(logits (B,K), z_mean (B,K,nz), z_log_std (B,K,nz))`` and that does
its own observation normalisation. ``SkillSAC`` fills ``policy_kwargs["prior"]`` from its ``prior=`` argument or
from the env attribute ``skill_prior``.

Observations are a ``Box`` (state vector or uint8 frames) or, in the env of a language-conditioned library, a
``Dict`` of one such ``Box`` and ``"instruction"`` (the episode's instruction embedding); the prior, the actor
and the critics then all read the instruction (the prior module takes the dict as it is).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from skillgym.language import INSTRUCTION_KEY
from skillgym.rl.distributions import SkillDistribution
from skillgym.spaces import check_skill_action_space

Observations = th.Tensor | dict[str, th.Tensor]


def map_observations(fn: Callable[..., th.Tensor], *observations: Observations) -> Observations:
    """``fn`` applied to observation tensors, entry by entry for Dict observations (``fn`` of several
    batches, e.g. ``th.cat``, gets the same entry of each)."""
    if isinstance(observations[0], Mapping):
        return {key: fn(*(obs[key] for obs in observations)) for key in observations[0]}
    return fn(*observations)


def instruction_observation_key(observation_space: spaces.Dict) -> str:
    """The entry of a ``Dict`` observation space that is not the instruction: ``{key: Box, "instruction": Box}``
    is what the env of a language-conditioned library observes; anything else raises ``ValueError``."""
    keys = set(observation_space.spaces)
    others = sorted(keys - {INSTRUCTION_KEY})
    if INSTRUCTION_KEY not in keys or len(others) != 1 or not all(
            isinstance(observation_space[k], spaces.Box) for k in keys):
        raise ValueError(f"SkillPolicy takes Box observations, or a Dict of one Box and an {INSTRUCTION_KEY!r} Box "
                         f"(a language-conditioned skill env), got {observation_space}")
    return others[0]


class SkillActions:
    """A batch of skill actions, one per env.

    Behaves as a sequence of per-env ``{"skill": int, "arg": float32 (nz,)}`` dicts (what SB3 VecEnvs index and
    iterate over) and also gives whole columns: ``actions["skill"]`` (n,) int64 and ``actions["arg"]`` (n, nz)
    float32. ``to_dict()`` returns the gymnasium-vector layout ``{"skill": (n,), "arg": (n, nz)}``.
    """

    def __init__(self, skill: np.ndarray, arg: np.ndarray):
        self.skill = np.asarray(skill, dtype=np.int64).reshape(-1)
        self.arg = np.asarray(arg, dtype=np.float32).reshape(len(self.skill), -1)

    def __len__(self) -> int:
        return len(self.skill)

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return {"skill": self.skill, "arg": self.arg}[key]
        return {"skill": self.skill[key], "arg": self.arg[key]}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self[i] for i in range(len(self)))

    def to_dict(self) -> dict[str, np.ndarray]:
        """The gymnasium-vector layout: ``{"skill": (n,), "arg": (n, nz)}``."""
        return {"skill": self.skill, "arg": self.arg}

    def __repr__(self) -> str:
        return f"SkillActions(skill={self.skill!r}, arg={self.arg!r})"


def is_frame_space(observation_space: spaces.Space) -> bool:
    """uint8 channels-last frames (H, W, C) or frame stacks (S, H, W, C)."""
    return (
        isinstance(observation_space, spaces.Box)
        and observation_space.dtype == np.uint8
        and len(observation_space.shape) in (3, 4)
    )


def prior_encoder_dim(prior: nn.Module) -> int | None:
    """Feature size of the prior's own observation encoder (``prior.encoder.out_dim``), or None if it has none."""
    encoder = getattr(prior, "encoder", None)
    out_dim = getattr(encoder, "out_dim", None)
    return out_dim if isinstance(encoder, nn.Module) and isinstance(out_dim, int) else None


def shares_prior_encoder(share_prior_encoder: bool | None, observation_space: spaces.Space, prior: nn.Module) -> bool:
    """``SkillPolicy``'s ``share_prior_encoder`` setting, with None resolved: share for frame observations when
    the prior has an encoder (the library's ``SkillPriors``), since conv passes would otherwise dominate updates."""
    if share_prior_encoder is not None:
        return share_prior_encoder
    return is_frame_space(observation_space) and prior_encoder_dim(prior) is not None


class MlpStateEncoder(BaseFeaturesExtractor):
    """Critic features extractor for state vectors: float32 cast, then an optional MLP (``net_arch=[]`` = identity).

    With the default identity the whole critic is the MLP ``[s, z] → net_arch → K``, i.e. the same network as
    SB3 SAC's critic on ``[s, a]``.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
    ):
        in_dim = int(np.prod(observation_space.shape))
        net_arch = list(net_arch or [])
        super().__init__(observation_space, net_arch[-1] if net_arch else in_dim)
        layers: list[nn.Module] = [nn.Flatten()]
        for h in net_arch:
            layers += [nn.Linear(in_dim, h), activation_fn()]
            in_dim = h
        self.net = nn.Sequential(*layers)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """``(B, *obs_shape) -> (B, features_dim)`` float32 features."""
        return self.net(observations.float())


class FrameStackCNN(BaseFeaturesExtractor):
    """Critic encoder for uint8 channels-last frames ``(S, H, W, C)`` or ``(H, W, C)``.

    The stack is folded into channels (S·C); Nature-DQN convolutions (for ≥ 36 px frames, smaller kernels
    below) then a linear layer to ``features_dim``. Scaling to [0, 1] happens here, on the float copy, so the
    replay buffer keeps uint8.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256):
        super().__init__(observation_space, features_dim)
        shape = observation_space.shape
        stack, height, width, channels = (1, *shape) if len(shape) == 3 else shape
        in_ch = stack * channels
        if min(height, width) >= 36:
            convs = [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
        else:
            convs = [(32, 3, 2), (64, 3, 1)]
        layers: list[nn.Module] = []
        for out_ch, kernel, stride in convs:
            layers += [nn.Conv2d(in_ch, out_ch, kernel, stride), nn.ReLU()]
            in_ch = out_ch
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        with th.no_grad():
            n_flat = self.cnn(th.zeros(1, stack * channels, height, width)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """uint8 ``(B, S, H, W, C)`` or ``(B, H, W, C)`` frames -> ``(B, features_dim)`` features."""
        x = observations
        if x.dim() == 4:  # (B, H, W, C) -> (B, 1, H, W, C)
            x = x.unsqueeze(1)
        b, s, h, w, c = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(b, s * c, h, w).float() / 255.0
        return self.linear(self.cnn(x))


class ObservationAndInstruction(BaseFeaturesExtractor):
    """Critic features extractor for ``{key: observation, "instruction": embedding}`` observations: the
    observation's features (``FrameStackCNN`` for uint8 frames, else ``MlpStateEncoder``, built with ``kwargs``)
    with the instruction embedding appended as it is."""

    def __init__(self, observation_space: spaces.Dict, **kwargs: Any):
        key = instruction_observation_key(observation_space)
        inner_space = observation_space[key]
        encoder_class = FrameStackCNN if is_frame_space(inner_space) else MlpStateEncoder
        encoder = encoder_class(inner_space, **kwargs)
        super().__init__(observation_space, encoder.features_dim + int(observation_space[INSTRUCTION_KEY].shape[0]))
        self.key = key
        self.observation_encoder = encoder

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        """``{key: (B, *shape), "instruction": (B, D)}`` -> ``(B, features_dim)`` float32 features."""
        return th.cat([self.observation_encoder(observations[self.key]),
                       observations[INSTRUCTION_KEY].float()], dim=1)


class SkillActor(nn.Module):
    """π_d and π_z as trainable deep copies of the prior module.

    ``share=True`` (default): one copy; π_d is its skill head and π_z its argument head, so the prior's own
    architecture decides what they share. The library's ``SkillPriors`` has separate d- and z-MLPs over an
    observation encoder that, for states, has no trainable weights: π_d and π_z are then separate networks
    at the cost of one forward pass. ``share=False``: two full copies, one read for its skill head and one for
    its argument head, for priors whose trunk (e.g. a conv encoder) should not be trained by both losses;
    it doubles the actor compute.
    """

    def __init__(self, prior: nn.Module, share: bool = True):
        super().__init__()
        self.pi_d = copy.deepcopy(prior)
        self.pi_z = self.pi_d if share else copy.deepcopy(prior)
        self.share = share
        self.requires_grad_(True)  # the library ships its priors frozen

    def forward(self, obs: Observations) -> SkillDistribution:
        """π(d, z | s) for a batch of observations, as a ``SkillDistribution``."""
        out_d = SkillDistribution.from_module_output(self.pi_d(obs))
        if self.share:
            return out_d
        out_z = SkillDistribution.from_module_output(self.pi_z(obs))
        return SkillDistribution(out_d.logits, out_z.mean, out_z.log_std)

    def train(self, mode: bool = True) -> SkillActor:
        """Stay in evaluation mode whatever ``mode`` is, so layers copied from the prior (BatchNorm,
        Dropout) behave as in the prior; their weights are still trained."""
        # Always evaluation mode: BatchNorm/Dropout layers inherited from the prior then behave exactly like
        # the prior's (π == p at initialisation). Their affine weights are still trained.
        return super().train(False)


class SkillCritic(nn.Module):
    """``n_critics`` Q-networks Q_i(s, z) ∈ R^K (one output per skill) sharing one observation encoder.

    Layout: encoder(s) → hidden layers ``net_arch`` → K outputs, with the argument z concatenated to the input of
    hidden layer ``arg_layer``. The layers before it depend on s only and run once per state; only the layers
    from ``arg_layer`` on run once per (state, skill) pair when the losses evaluate Q(s, z_d, d) for all K skills.
    ``arg_layer=-1`` (default) injects z into the last hidden layer, as DDPG injects its action into the second
    of two layers: the K-fold evaluation then costs one small matmul instead of the whole MLP. ``arg_layer=0``
    is SAC's ``[s, z] → MLP``.

    The twin MLPs are stored as stacked weights ``(n_critics, in, out)`` and run with batched matmuls (one op for
    all critics). The injection layer is split, W [h; z] = W_h h + W_z z (identical to a Linear on the
    concatenation), so its state part is also computed once per state.
    """

    def __init__(
        self,
        features_extractor: BaseFeaturesExtractor,
        n_skills: int,
        arg_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        n_critics: int = 2,
        arg_layer: int = -1,
    ):
        super().__init__()
        if len(net_arch) == 0:
            raise ValueError("The critic needs at least one hidden layer (net_arch=[...]).")
        if not -len(net_arch) <= arg_layer < len(net_arch):
            raise ValueError(f"arg_layer={arg_layer} is not a hidden layer index of net_arch={net_arch}")
        self.arg_layer = arg_layer % len(net_arch)
        self.features_extractor = features_extractor
        self.n_skills, self.arg_dim, self.n_critics = n_skills, arg_dim, n_critics
        dims = [features_extractor.features_dim, *net_arch]
        e = n_critics
        self.weights = nn.ParameterList(
            [nn.Parameter(th.empty(e, dims[i], dims[i + 1])) for i in range(len(net_arch))]
        )
        self.biases = nn.ParameterList([nn.Parameter(th.empty(e, dims[i + 1])) for i in range(len(net_arch))])
        self.w_arg = nn.Parameter(th.empty(e, arg_dim, dims[self.arg_layer + 1]))
        self.w_out = nn.Parameter(th.empty(e, dims[-1], n_skills))
        self.b_out = nn.Parameter(th.empty(e, n_skills))
        self.activation = activation_fn()
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if i == self.arg_layer:
                self._init_like_linear(dims[i] + arg_dim, [w, b, self.w_arg])
            else:
                self._init_like_linear(dims[i], [w, b])
        self._init_like_linear(dims[-1], [self.w_out, self.b_out])

    @staticmethod
    def _init_like_linear(fan_in: int, params: list[nn.Parameter]) -> None:
        # nn.Linear's default (kaiming_uniform with a=√5) is U(-1/√fan_in, 1/√fan_in) for weights and biases.
        bound = 1.0 / math.sqrt(fan_in)
        with th.no_grad():
            for p in params:
                p.uniform_(-bound, bound)

    def encode(self, obs: Observations) -> th.Tensor:
        """Observation features shared by all critics: ``(B, *obs_shape) -> (B, features_dim)``."""
        return self.features_extractor(obs)

    def _all_heads(self, features: th.Tensor, args: th.Tensor, detach: bool = False) -> th.Tensor:
        """All K heads at M arguments per state: features (B, F), args (B, M, nz) -> (E, B, M, K).

        ``detach`` uses detached weights, so gradients flow to the inputs only.
        """

        def p(t: th.Tensor) -> th.Tensor:
            return t.detach() if detach else t

        e = self.n_critics
        b, m, nz = args.shape
        x = features
        for i in range(self.arg_layer + 1):
            w, bias = p(self.weights[i]), p(self.biases[i])
            if i == 0:  # the features are shared by all critics
                pre = th.einsum("bf,efh->ebh", x, w) + bias[:, None, :]
            else:
                pre = th.baddbmm(bias[:, None, :], x, w)
            if i < self.arg_layer:
                x = self.activation(pre)
        h = pre.shape[-1]
        # Injection layer in a (B, M, E·H) layout, all critics side by side. (An (E, B·M, H) layout needs
        # broadcast batched matmuls and permutes that are 3x slower on CPU.)
        w_arg = p(self.w_arg).permute(1, 0, 2).reshape(nz, e * h)
        state_part = pre.permute(1, 0, 2).reshape(b, 1, e * h)
        # One batched matmul adds the state part (broadcast over M, never copied) to the argument part of all
        # critics: state_part + args @ W_arg, batched over states.
        if m == 1:  # one argument per state (critic loss): a plain matmul, no gradient through an expand
            pre = th.addmm(state_part.view(b, e * h), args.view(b, nz), w_arg).view(b, 1, e * h)
        else:
            pre = th.baddbmm(state_part, args, w_arg.expand(b, nz, e * h))
        if not th.is_grad_enabled() and isinstance(self.activation, nn.ReLU):
            x = pre.relu_()  # target values: in place, this (B, M, E·H) tensor is the largest of an update
        else:
            x = self.activation(pre)
        w_out, b_out = p(self.w_out), p(self.b_out)
        if self.arg_layer == len(self.weights) - 1:
            # Output of all critics at once through a block-diagonal (E·H, E·K) weight.
            q = th.mm(x.view(b * m, e * h), th.block_diag(*w_out.unbind(0))).view(b, m, e, -1) + b_out
            return q.permute(2, 0, 1, 3)
        x = x.view(b * m, e, h).transpose(0, 1)
        for i in range(self.arg_layer + 1, len(self.weights)):
            x = self.activation(th.baddbmm(p(self.biases[i])[:, None, :], x, p(self.weights[i])))
        return th.baddbmm(b_out[:, None, :], x, w_out).view(e, b, m, -1)

    def q_heads(self, features: th.Tensor, args: th.Tensor) -> th.Tensor:
        """All K heads at one argument per state: args (B, nz) -> (E, B, K)."""
        return self._all_heads(features, args[:, None, :])[:, :, 0]

    def q_taken(self, features: th.Tensor, args: th.Tensor, skills: th.Tensor) -> th.Tensor:
        """Q_i(s, z, d) at the given (z, d) per state: (E, B)."""
        q = self.q_heads(features, args)
        return q.gather(2, skills.view(1, -1, 1).expand(self.n_critics, -1, 1)).squeeze(2)

    def q_per_skill(self, features: th.Tensor, args: th.Tensor, detach_params: bool = False) -> th.Tensor:
        """Q_i(s, z_d, d) for every d in one batched pass: args (B, K, nz) -> (E, B, K).

        ``detach_params`` lets the actor loss differentiate through z without building gradients for the
        critic's weights (the actor loss does not update the critic).
        """
        # All K heads at every z_d (K outputs are cheap next to the hidden layer), then head d at z_d.
        return th.diagonal(self._all_heads(features, args, detach=detach_params), dim1=2, dim2=3)


class SkillPolicy(BasePolicy):
    """Skill-space actor-critic for ``SkillSAC``.

    :param observation_space: state ``Box`` or uint8 channels-last frames ``Box((S,H,W,C))``, or a ``Dict`` of one
        of them and ``"instruction"`` (the env of a language-conditioned library)
    :param action_space: ``Dict(skill=Discrete(K), arg=Box((nz,)))``
    :param lr_schedule: learning rate schedule (from the algorithm)
    :param prior: the library's prior module (see module docstring). π_d and π_z start as deep copies of it;
        a further frozen copy stays as p_d, p_z and is never trained.
    :param net_arch: critic hidden sizes, a list or ``dict(qf=[...])`` (the actor's architecture is the prior's)
    :param activation_fn: critic activation
    :param features_extractor_class: critic observation encoder; default ``MlpStateEncoder`` for vectors,
        ``FrameStackCNN`` for uint8 frames, ``ObservationAndInstruction`` for a ``Dict`` with an instruction
    :param features_extractor_kwargs: its keyword arguments
    :param n_critics: number of critics (2 = clipped double-Q)
    :param arg_layer: hidden layer of the critic whose input gets z (see ``SkillCritic``); -1 = last (DDPG-style,
        fast), 0 = input (SAC-style ``[s, z] → MLP``, K times the compute in the K-skill passes)
    :param share_actor: one prior copy provides both π_d and π_z (default), else one full copy each (see
        ``SkillActor``)
    :param share_prior_encoder: encode each observation once with the prior's own observation encoder (the
        library's ``SkillPriors.encoder``), frozen, and run the actor, the prior's heads and the critics on those
        features. For frame stacks this is one conv pass per observation instead of one per network, and no
        conv gradients; the critics then get no encoder of their own (``features_extractor_class`` is unused).
        None (default): share for frame-stack observations if the prior has an encoder, else not
    :param prior_uniform_mix: ε in [0, 1): the skill prior the KL is taken to is (1 − ε)·p_d + ε/K. A
        prior trained to 90 % accuracy can give the right skill log-probability −11; with ε > 0 no skill
        costs more than log(K/ε) nats of KL_d. 0 = the library's prior unchanged (the paper)
    :param optimizer_class: optimizer for actor and critic
    :param optimizer_kwargs: its keyword arguments, without the learning rate
    """

    actor: SkillActor
    critic: SkillCritic
    critic_target: SkillCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        prior: nn.Module,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        arg_layer: int = -1,
        share_actor: bool = True,
        share_prior_encoder: bool | None = None,
        prior_uniform_mix: float = 0.0,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ):
        observation_key = None
        if isinstance(observation_space, spaces.Dict):
            observation_key = instruction_observation_key(observation_space)
        elif not isinstance(observation_space, spaces.Box):
            raise ValueError(
                f"SkillPolicy supports Box observations (state or uint8 frames), got {observation_space}"
            )
        if not 0.0 <= prior_uniform_mix < 1.0:
            raise ValueError(f"prior_uniform_mix must be in [0, 1), got {prior_uniform_mix}")
        if features_extractor_class is None:
            if observation_key is not None:
                features_extractor_class = ObservationAndInstruction
            else:
                features_extractor_class = FrameStackCNN if is_frame_space(observation_space) else MlpStateEncoder
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,  # the prior normalises its own input; the CNN scales frames itself
        )
        self.n_skills, self.arg_dim = check_skill_action_space(action_space)
        self.observation_key = observation_key  # the non-instruction entry of Dict observations
        if net_arch is None:
            net_arch = [256, 256]
        self.net_arch = net_arch
        self.qf_arch = list(net_arch["qf"] if isinstance(net_arch, dict) else net_arch)
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self.arg_layer = arg_layer
        self.share_actor = share_actor
        self.share_prior_encoder = shares_prior_encoder(share_prior_encoder, observation_space, prior)
        self.prior_uniform_mix = float(prior_uniform_mix)
        arg_space = action_space["arg"]
        self.register_buffer("arg_low", th.as_tensor(arg_space.low, dtype=th.float32), persistent=False)
        self.register_buffer("arg_high", th.as_tensor(arg_space.high, dtype=th.float32), persistent=False)
        self._build(lr_schedule, prior)

    def _build(self, lr_schedule: Schedule, prior: nn.Module) -> None:
        self.observation_encoder: nn.Module | None = None
        if self.share_prior_encoder:
            if prior_encoder_dim(prior) is None:
                raise ValueError("share_prior_encoder needs a prior with an `encoder` module that has an int "
                                 "`out_dim` (the library's SkillPriors)")
            self.observation_encoder = copy.deepcopy(prior.encoder).requires_grad_(False).eval()
            prior = copy.deepcopy(prior)
            prior.encoder = nn.Identity()  # its heads now read the shared features
        # The frozen reference p_d, p_z: always eval mode, no gradients, never in an optimizer.
        self.prior = copy.deepcopy(prior).requires_grad_(False).eval()
        self.actor = SkillActor(self.prior, share=self.share_actor)
        self._check_prior_shapes()
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

        self.critic = self.make_critic()
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.critic_target.train(False)

    def _check_prior_shapes(self) -> None:
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            obs = {k: th.from_numpy(np.zeros((2, *v.shape), dtype=v.dtype)) for k, v in space.spaces.items()}
        else:
            obs = th.from_numpy(np.zeros((2, *space.shape), dtype=space.dtype))
        with th.no_grad():
            dist = SkillDistribution.from_module_output(self.prior(self.prior_input(self.encode_observations(obs))))
        if dist.logits.shape[1] != self.n_skills or dist.mean.shape[2] != self.arg_dim:
            raise ValueError(
                f"The prior has K={dist.logits.shape[1]} skills and nz={dist.mean.shape[2]} but the action space "
                f"has K={self.n_skills}, nz={self.arg_dim}"
            )

    def make_critic(self) -> SkillCritic:
        """A fresh ``SkillCritic`` with its own features extractor, built from this policy's settings."""
        if self.observation_encoder is not None:  # the critic reads the shared features as they are
            features = spaces.Box(-np.inf, np.inf, (self.observation_encoder.out_dim,), np.float32)
            if self.observation_key is None:
                features_extractor: BaseFeaturesExtractor = MlpStateEncoder(features)
            else:
                features_extractor = ObservationAndInstruction(spaces.Dict(
                    {self.observation_key: features, INSTRUCTION_KEY: self.observation_space[INSTRUCTION_KEY]}))
        else:
            features_extractor = self.make_features_extractor()
        return SkillCritic(
            features_extractor,
            self.n_skills,
            self.arg_dim,
            self.qf_arch,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            arg_layer=self.arg_layer,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            prior=self.prior,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            arg_layer=self.arg_layer,
            share_actor=self.share_actor,
            share_prior_encoder=self.share_prior_encoder,
            prior_uniform_mix=self.prior_uniform_mix,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        """Put the critic in ``mode``; the actor, the prior and a shared encoder always stay in evaluation mode."""
        # Only the critic has a training mode; actor and prior stay in eval mode (see SkillActor.train).
        self.critic.train(mode)
        self.actor.train(False)
        self.prior.eval()
        if self.observation_encoder is not None:
            self.observation_encoder.eval()
        self.training = mode

    def encode_observations(self, obs: Observations) -> Observations:
        """What the actor, the prior and the critics read: the observations themselves, or with
        ``share_prior_encoder`` their features from the frozen prior encoder (computed once, no gradients;
        an instruction stays as it is)."""
        if self.observation_encoder is None:
            return obs
        with th.no_grad():
            obs = self.prior_input(obs)
            if isinstance(obs, Mapping):
                return {**obs, self.observation_key: self.observation_encoder(obs[self.observation_key])}
            return self.observation_encoder(obs)

    def prior_input(self, obs: Observations) -> Observations:
        """Observations as the prior module takes them: float32 for vectors, untouched uint8 frames."""
        return map_observations(lambda t: t if t.dtype == th.uint8 else t.float(), obs)

    def policy_dist(self, obs: Observations) -> SkillDistribution:
        """π(d, z | s): the trainable actor's distribution, at observations as ``encode_observations`` gives them."""
        return self.actor(self.prior_input(obs))

    def prior_dist(self, obs: Observations) -> SkillDistribution:
        """p(d, z | s): the frozen library prior, its p_d mixed with uniform if ``prior_uniform_mix`` > 0, at
        observations as ``encode_observations`` gives them."""
        with th.no_grad():
            dist = SkillDistribution.from_module_output(self.prior(self.prior_input(obs)))
            if self.prior_uniform_mix == 0.0:
                return dist
            probs = (1.0 - self.prior_uniform_mix) * dist.probs + self.prior_uniform_mix / self.n_skills
            return dist._replace(logits=probs.log())

    def sample_skill(
        self, obs: Observations, deterministic: bool = False, from_prior: bool = False
    ) -> tuple[th.Tensor, th.Tensor]:
        """(d, z) per observation, z *unclipped*: (B,) long, (B, nz)."""
        obs = self.encode_observations(obs)
        dist = self.prior_dist(obs) if from_prior else self.policy_dist(obs)
        return dist.sample(deterministic)

    def clip_arg(self, arg: np.ndarray) -> np.ndarray:
        """Arguments ``(B, nz)`` clipped to the action space's ``arg`` Box, as float32."""
        return np.clip(arg, self.arg_low.cpu().numpy(), self.arg_high.cpu().numpy()).astype(np.float32)

    def obs_to_tensor(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[Observations, bool]:  # type: ignore[override]
        """A ``(B, *obs_shape)`` tensor (a dict of them for Dict observations) and whether the input was a
        batch; frames keep the env's channels-last layout (SB3's version would transpose them)."""
        # SB3's version transposes 3-D uint8 images to channels-first; the prior wants the env's layout.
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            if not isinstance(observation, Mapping) or set(observation) != set(space.spaces):
                raise ValueError(f"Observations must be dicts with the keys {sorted(space.spaces)}")
            _, vectorized = self._batch(observation[self.observation_key], space[self.observation_key].shape)
            return {k: self._batch(observation[k], v.shape, vectorized)[0] for k, v in space.spaces.items()}, vectorized
        return self._batch(observation, space.shape)

    def _batch(self, observation: Any, shape: tuple[int, ...] | None, vectorized: bool | None = None
               ) -> tuple[th.Tensor, bool]:
        obs = np.asarray(observation)
        assert shape is not None
        if vectorized is None:
            vectorized = obs.shape != shape
        if (obs.shape[1:] if vectorized else obs.shape) != shape:
            raise ValueError(f"Observation shape {obs.shape} matches neither {shape} nor (n_envs, *{shape})")
        return th.as_tensor(obs.reshape(-1, *shape), device=self.device), vectorized

    def _predict(self, observation: Observations, deterministic: bool = False) -> th.Tensor:  # type: ignore[override]
        skill, arg = self.sample_skill(observation, deterministic)
        return th.cat([skill[:, None].float(), arg], dim=1)

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[dict[str, np.ndarray] | SkillActions, tuple[np.ndarray, ...] | None]:
        """Skill action(s) for observation(s), the argument clipped to the env's Box.

        A single observation gives ``{"skill": int64 (), "arg": float32 (nz,)}``; a batch gives ``SkillActions``
        (indexable per env, and ``actions["skill"]``, ``actions["arg"]`` give the columns).
        """
        self.set_training_mode(False)
        obs, vectorized = self.obs_to_tensor(observation)
        with th.no_grad():
            skill, arg = self.sample_skill(obs, deterministic)
        actions = SkillActions(skill.cpu().numpy(), self.clip_arg(arg.cpu().numpy()))
        if not vectorized:
            return {"skill": actions.skill[0], "arg": actions.arg[0]}, state
        return actions, state

    def forward(self, obs: Observations, deterministic: bool = False) -> th.Tensor:
        """``(B, 1 + nz)``: the skill id (as float) in column 0, then its unclipped argument."""
        return self._predict(obs, deterministic)

