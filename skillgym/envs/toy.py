"""A tiny skill-space env for tests and benchmarks: the skill-space interface without a simulator.

States cycle 0 → 1 → … → n_states−1 → 0, one per skill decision, whatever the agent does. In state s the
optimal skill is ``optimal_skill(s) = (s + 1) % K`` with argument ``arg_target`` (default 0.5 in every dim):
reward = 1[d == d*(s)] · exp(−½‖clip(z) − z*‖²), so the optimal return is ``max_decisions``. Skill d runs
``d + 1`` low-level steps (``info["skill_steps"]``) and earns its reward at the first
(``info["skill_rewards"]``). The bundled ``skill_prior`` prefers skill 0 (never optimal),
so an agent has to move away from its prior to do well.

Example:
    >>> env = ToySkillEnv()
    >>> obs, info = env.reset(seed=0)
    >>> obs, r, terminated, truncated, info = env.step({"skill": 1, "arg": np.full(2, 0.5, np.float32)})
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn


class ToySkillPrior(nn.Module):
    """A real prior module with the library's interface.

    ``forward(obs (B, *obs_shape)) -> (logits (B,K), z_mean (B,K,nz), z_log_std (B,K,nz))``. An MLP (``net_arch``,
    default a single linear layer) on the float observation — uint8 frames are mean-pooled per channel and
    scaled to [0, 1] first, as a pixel prior would normalise its own input. The output layer starts at zero
    weights with biases giving p_d = ``skill_probs`` and p_z = N(0, I) in every state.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_skills: int,
        arg_dim: int,
        skill_probs: np.ndarray | None = None,
        net_arch: list[int] | None = None,
        frames: bool = False,
    ):
        super().__init__()
        self.n_skills, self.arg_dim, self.frames = n_skills, arg_dim, frames
        in_dim = obs_shape[-1] if frames else int(np.prod(obs_shape))
        layers: list[nn.Module] = []
        for h in net_arch or []:
            layers += [nn.Linear(in_dim, h), nn.ReLU()]
            in_dim = h
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(in_dim, n_skills + 2 * n_skills * arg_dim)
        if skill_probs is None:
            skill_probs = np.full(n_skills, 1.0 / n_skills)
        with th.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.bias[:n_skills] = th.log(th.as_tensor(skill_probs, dtype=th.float32))

    def forward(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        if self.frames:
            x = obs.float().div(255.0).flatten(1, -2).mean(dim=1)  # (B, C)
        else:
            x = obs.float().flatten(1)
        out = self.head(self.trunk(x))
        k, nz = self.n_skills, self.arg_dim
        logits = out[:, :k]
        mean, log_std = out[:, k:].reshape(-1, k, 2, nz).unbind(dim=2)
        return logits, mean, log_std


class ToySkillEnv(gym.Env[np.ndarray, dict[str, Any]]):
    """Few-state MDP with the skill-space action space ``Dict(skill=Discrete(K), arg=Box(-b, b, (nz,)))``.

    :param n_skills: K
    :param arg_dim: nz
    :param n_states: number of states in the cycle
    :param max_decisions: episode length in skill decisions (a time limit: ``truncated``, never ``terminated``)
    :param obs_dim: state observation size (one-hot of the state, zero padded); default ``n_states``
    :param obs_type: ``"state"`` (float Box) or ``"pixels"`` (uint8 ``(frame_stack, size, size, 3)``, the state's
        colour everywhere)
    :param obs_dtype: dtype of state observations (kitchen states are float64)
    :param arg_bound: b
    :param arg_target: optimal argument z* (scalar, same in every dim)
    :param prior_skill_probs: p_d of the bundled prior (default: 0.55 on skill 0, the rest uniform)
    :param prior_net_arch: hidden sizes of the bundled prior (e.g. ``[256, 256]`` for benchmarks)
    :param terminate_skill: if set, choosing this skill ends the episode (``terminated``) with reward 0
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        n_skills: int = 4,
        arg_dim: int = 2,
        n_states: int = 3,
        max_decisions: int = 10,
        obs_dim: int | None = None,
        obs_type: str = "state",
        obs_dtype: type = np.float32,
        frame_size: int = 16,
        frame_stack: int = 2,
        arg_bound: float = 2.0,
        arg_target: float = 0.5,
        prior_skill_probs: list[float] | None = None,
        prior_net_arch: list[int] | None = None,
        terminate_skill: int | None = None,
    ):
        super().__init__()
        self.n_skills, self.arg_dim, self.n_states = n_skills, arg_dim, n_states
        self.max_decisions, self.obs_type, self.arg_target = max_decisions, obs_type, arg_target
        self.terminate_skill = terminate_skill
        self.action_space = spaces.Dict(
            skill=spaces.Discrete(n_skills),
            arg=spaces.Box(-arg_bound, arg_bound, (arg_dim,), np.float32),
        )
        if obs_type == "state":
            self.obs_dim = n_states if obs_dim is None else obs_dim
            if self.obs_dim < n_states:
                raise ValueError(f"obs_dim must be >= n_states = {n_states} (the observation is a one-hot of the "
                                 f"state, zero padded), or None for n_states; got {obs_dim!r}")
            self.observation_space: spaces.Box = spaces.Box(0.0, 1.0, (self.obs_dim,), obs_dtype)
        elif obs_type == "pixels":
            self.observation_space = spaces.Box(0, 255, (frame_stack, frame_size, frame_size, 3), np.uint8)
        else:
            raise ValueError(f"obs_type must be 'state' or 'pixels', got {obs_type!r}")
        if prior_skill_probs is None:
            probs = np.full(n_skills, 0.45 / max(n_skills - 1, 1))
            probs[0] = 0.55 if n_skills > 1 else 1.0
        else:
            probs = np.asarray(prior_skill_probs, dtype=np.float64)
        # The prior is part of the env's definition: the same weights in every instance, whatever the
        # global torch seed (an agent seeded after building the env would otherwise not repeat).
        with th.random.fork_rng(devices=[]):
            th.manual_seed(0)
            self.skill_prior = ToySkillPrior(
                self.observation_space.shape,
                n_skills,
                arg_dim,
                probs / probs.sum(),
                prior_net_arch,
                frames=obs_type == "pixels",
            )
        self.skill_prior.eval()
        self._palette = (np.arange(n_states)[:, None] * np.array([[67, 131, 193]]) % 256).astype(np.uint8)
        self._state = 0
        self._t = 0
        self._completed = 0

    def optimal_skill(self, state: int | None = None) -> int:
        """The skill that earns reward in ``state`` (default: the current one): ``(state + 1) % n_skills``."""
        return ((self._state if state is None else state) + 1) % self.n_skills

    def _obs(self) -> np.ndarray:
        if self.obs_type == "pixels":
            frame = np.broadcast_to(self._palette[self._state], self.observation_space.shape)
            return np.ascontiguousarray(frame)
        obs = np.zeros(self.observation_space.shape, self.observation_space.dtype)
        obs[self._state] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = int(self.np_random.integers(self.n_states))
        self._t = 0
        self._completed = 0
        return self._obs(), {}

    def step(self, action: dict[str, Any]) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Reward ``exp(-|arg - z*|²/2)`` for the optimal skill, else 0; the state advances either way."""
        if not isinstance(action, dict) or set(action) != {"skill", "arg"}:
            raise ValueError(
                f"Expected an action {{'skill': int, 'arg': array({self.arg_dim},)}}, got {action!r}"
            )
        skill = int(action["skill"])
        arg = np.asarray(action["arg"], dtype=np.float32).reshape(-1)
        if not 0 <= skill < self.n_skills or arg.shape != (self.arg_dim,) or not np.all(np.isfinite(arg)):
            raise ValueError(f"Action out of the action space: {action!r}")
        arg = np.clip(arg, self.action_space["arg"].low, self.action_space["arg"].high)
        terminated = self.terminate_skill is not None and skill == self.terminate_skill
        reward = 0.0
        if not terminated and skill == self.optimal_skill():
            reward = float(np.exp(-0.5 * np.sum((arg - self.arg_target) ** 2)))
            self._completed += 1
        self._t += 1
        self._state = (self._state + 1) % self.n_states
        truncated = self._t >= self.max_decisions and not terminated
        # The reward is earned at the skill's first low-level step; padded to the longest skill, as
        # SkillSpaceEnv pads, so that every step's info has one shape.
        skill_rewards = np.zeros(self.n_skills)
        skill_rewards[0] = reward
        info = {"skill_steps": skill + 1, "skill_rewards": skill_rewards, "num_completed": self._completed}
        return self._obs(), reward, terminated, truncated, info
