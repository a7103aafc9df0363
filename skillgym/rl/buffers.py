"""Replay buffer for ``Dict(skill=Discrete(K), arg=Box(nz))`` actions.

SB3's ReplayBuffer only knows flat actions. We reuse it unchanged for observations, rewards, dones and
time-outs (so truncation keeps bootstrapping through ``handle_timeout_termination``) and store the action
as the flat float vector ``[skill, arg_0, ..., arg_{nz-1}]`` (skill indices < 2**24 are exact in float32).
Per transition we also keep ``skill_steps`` (low-level steps the skill ran, for ``gamma_per_step``). The reward
stored is the one ``SkillSAC`` hands over: the env's reward, or Σ_t γ^t r_t over the skill's low-level rewards
with ``gamma_per_step``.

:class:`SkillFeatureReplayBuffer` stores observations as the features of a frozen encoder instead (frame stacks
under ``share_prior_encoder``), so that no update runs the encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from skillgym.spaces import check_skill_action_space


class SkillReplayBufferSamples(NamedTuple):
    """A batch of skill transitions sampled from a :class:`SkillReplayBuffer`, as torch tensors."""

    observations: th.Tensor | dict[str, th.Tensor]  # a dict of tensors for Dict observations
    skills: th.Tensor  # (B,) long — the skill that was actually executed
    args: th.Tensor  # (B, nz) float — the argument sampled by the policy (unclipped, see SkillSAC)
    next_observations: th.Tensor | dict[str, th.Tensor]
    dones: th.Tensor  # (B, 1) termination only; 0 where the episode was truncated (time-out)
    rewards: th.Tensor  # (B, 1) as stored by SkillSAC (Σ_t γ^t r_t with gamma_per_step)
    skill_steps: th.Tensor  # (B, 1) number of low-level steps (>= 1)


class _SkillActions:
    """What both skill buffers add to SB3's: the flat skill action and each transition's ``skill_steps``.

    Mixed in before SB3's ``ReplayBuffer`` / ``DictReplayBuffer``, whose storage it reuses unchanged.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ):
        self.n_skills, self.arg_dim = check_skill_action_space(action_space)
        self.skill_action_space = action_space
        flat = spaces.Box(-np.inf, np.inf, (1 + self.arg_dim,), np.float32)
        super().__init__(  # type: ignore[call-arg]
            buffer_size,
            observation_space,
            flat,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.skill_steps = np.ones((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(self, obs, next_obs, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        """Store a transition per env; ``action`` is the flat ``(n_envs, 1 + nz)`` skill action and each
        env's ``info["skill_steps"]`` (at least 1, default 1) is kept as its ``skill_steps``."""
        # Written before super().add() because it advances self.pos.
        self.skill_steps[self.pos] = [max(1, int(info.get("skill_steps", 1))) for info in infos]
        super().add(obs, next_obs, action, reward, done, infos)  # type: ignore[misc]

    def _skill_samples(self, batch_inds: np.ndarray, env_indices: np.ndarray, observations, next_observations,
                       env: VecNormalize | None) -> SkillReplayBufferSamples:
        """The batch, given its observations already as tensors."""
        actions = self.actions[batch_inds, env_indices]
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        to = self.to_torch
        return SkillReplayBufferSamples(
            observations=observations,
            skills=to(np.rint(actions[:, 0])).long(),
            args=to(actions[:, 1:]),
            next_observations=next_observations,
            dones=to(dones.reshape(-1, 1)),
            rewards=to(self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)),
            skill_steps=to(self.skill_steps[batch_inds, env_indices].reshape(-1, 1)),
        )


class SkillReplayBuffer(_SkillActions, ReplayBuffer):
    """ReplayBuffer whose action is a skill and its continuous argument (see module docstring).

    ``add`` expects ``action`` as the flat buffer action (n_envs, 1 + nz) produced by ``SkillSAC``.
    """

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> SkillReplayBufferSamples:  # type: ignore[override]
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        if self.optimize_memory_usage:
            next_obs = self.observations[(batch_inds + 1) % self.buffer_size, env_indices]
        else:
            next_obs = self.next_observations[batch_inds, env_indices]
        to = self.to_torch
        return self._skill_samples(
            batch_inds, env_indices,
            to(self._normalize_obs(self.observations[batch_inds, env_indices], env)),  # type: ignore[arg-type]
            to(self._normalize_obs(next_obs, env)), env)  # type: ignore[arg-type]


class SkillDictReplayBuffer(_SkillActions, DictReplayBuffer):
    """:class:`SkillReplayBuffer` for ``Dict`` observations, such as a language-conditioned skill env's
    ``{"state" or "pixels": ..., "instruction": ...}``; samples hold a dict of tensors per observation."""

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> SkillReplayBufferSamples:  # type: ignore[override]
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs = self._normalize_obs({k: v[batch_inds, env_indices] for k, v in self.observations.items()}, env)
        next_obs = self._normalize_obs({k: v[batch_inds, env_indices] for k, v in self.next_observations.items()}, env)
        return self._skill_samples(
            batch_inds, env_indices,
            {k: self.to_torch(v) for k, v in obs.items()},  # type: ignore[union-attr]
            {k: self.to_torch(v) for k, v in next_obs.items()}, env)  # type: ignore[union-attr]


class SkillFeatureReplayBuffer(SkillReplayBuffer):
    """:class:`SkillReplayBuffer` that stores each observation as the features a frozen encoder makes of it.

    With frame stacks and a frozen encoder (``SkillPolicy(share_prior_encoder=True)``), encoding s and s' of
    every sampled transition at every update repeats the same conv passes many times over; here the encoder
    runs once per stored observation, updates read the features, and a transition takes a few hundred floats
    instead of two frame stacks. The encoder must never change: features are computed when stored.
    ``SkillSAC`` chooses this buffer for frame observations with ``share_prior_encoder`` and sets ``encode``.

    :param features_dim: size of the encoder's feature vector (the other arguments are SB3's)
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space, *args: Any,
                 features_dim: int, **kwargs: Any):
        features = spaces.Box(-np.inf, np.inf, (features_dim,), np.float32)
        super().__init__(buffer_size, features, action_space, *args, **kwargs)
        self.encode: Callable[[np.ndarray], np.ndarray] | None = None
        """(n_envs, *frame shape) observations -> (n_envs, features_dim) float32 features"""

    def __getstate__(self) -> dict[str, Any]:
        # SB3's save_replay_buffer pickles the buffer: leave the encoder (a method of the model) out of it.
        return {**self.__dict__, "encode": None}

    def add(self, obs, next_obs, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        """Store a transition per env (see ``SkillReplayBuffer.add``), observations as their features."""
        if self.encode is None:
            raise RuntimeError("SkillFeatureReplayBuffer.encode is not set: give it the frozen encoder first")
        features = self.encode(np.concatenate([obs, next_obs]))  # s and s' in one encoder pass
        super().add(features[:len(obs)], features[len(obs):], action, reward, done, infos)
