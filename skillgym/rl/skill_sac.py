"""SkillSAC: soft actor-critic in a skill space, regularised towards the skill priors (EXTRACT §4.3, Eq. 4-5,
Alg. 4, App. B.1.3), written as an SB3 ``OffPolicyAlgorithm`` the same way as ``stable_baselines3.SAC``.

Losses (per state s of a replay batch; KLs are true KLs, summed over dimensions):

    actor  = Σ_d π_d(d|s) [ α_z KL(π_z(·|s,d) ‖ p_z(·|s,d)) − min_i Q_i(s, z_d, d) ] + α_d KL(π_d(·|s) ‖ p_d(·|s)),
             z_d ~ π_z(·|s,d) reparameterised, for all K skills in one batched pass;
    V(s')  = Σ_d π_d(d|s') [ min_i Q̄_i(s', z'_d, d) − α_z KL_z(s',d) ] − α_d KL_d(s');
    critic = ½ Σ_i (Q_i(s, z, d) − (r + γ (1 − terminated) V(s')))², at the (d, z) *stored in the buffer*.

Truncation (time-outs) bootstraps: SB3's ``handle_timeout_termination`` zeroes ``dones`` for them.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections import deque
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.logger import KVWriter, TensorBoardOutputFormat
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import check_for_nested_spaces
from stable_baselines3.common.type_aliases import (
    GymEnv,
    MaybeCallback,
    RolloutReturn,
    Schedule,
    TrainFreq,
    TrainFrequencyUnit,
)
from stable_baselines3.common.utils import (
    check_for_correct_spaces,
    polyak_update,
    safe_mean,
    should_collect_more_steps,
)
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper
from torch import nn
from torch.nn import functional as F

from skillgym import outputs
from skillgym.rl.buffers import (
    SkillDictReplayBuffer,
    SkillFeatureReplayBuffer,
    SkillReplayBuffer,
    SkillReplayBufferSamples,
)
from skillgym.rl.callbacks import DecisionProgressBar
from skillgym.rl.checkpoint import optimizer_state, optimizer_tensors
from skillgym.rl.distributions import SkillDistribution
from skillgym.rl.model_folder import (
    MODEL_FORMAT,
    MODEL_JSON,
    OPTIMIZER_WEIGHTS,
    POLICY_WEIGHTS,
    SAVED_COUNTERS,
    ModelError,
    policy_kwargs_from_json,
    policy_kwargs_to_json,
    prior_from_json,
    prior_to_json,
    read_json,
    read_safetensors,
    space_from_json,
    space_to_json,
)
from skillgym.rl.policies import (
    Observations,
    SkillActions,
    SkillActor,
    SkillCritic,
    SkillPolicy,
    is_frame_space,
    map_observations,
    prior_encoder_dim,
    shares_prior_encoder,
)
from skillgym.rl.vec_env import AsyncSkillVecEnv
from skillgym.spaces import check_skill_action_space

SelfSkillSAC = TypeVar("SelfSkillSAC", bound="SkillSAC")


class LowLevelStepsWriter(KVWriter):
    """Mirrors every scalar of a log dump into TensorBoard under ``low_level_steps/<key>``, with the number of
    low-level env steps as x-axis (the regular tags use skill decisions, SB3's ``num_timesteps``)."""

    def __init__(self, tb_format: TensorBoardOutputFormat):
        self.writer = tb_format.writer

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        """Add each numeric scalar as ``low_level_steps/<key>`` at x = ``time/low_level_steps``, if logged."""
        x = key_values.get("time/low_level_steps")
        if x is None:
            return
        for key, value in key_values.items():
            excluded = key_excluded.get(key)
            if excluded is not None and "tensorboard" in excluded:
                continue
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                self.writer.add_scalar(f"low_level_steps/{key}", value, int(x))
        self.writer.flush()

    def close(self) -> None:
        """Nothing to close: the writer belongs to the ``TensorBoardOutputFormat``."""
        pass  # the writer belongs to the TensorBoardOutputFormat


class SkillSAC(OffPolicyAlgorithm):
    """Skill-space SAC with prior-KL regularisation (EXTRACT).

    The env's action space must be ``Dict(skill=Discrete(K), arg=Box((nz,)))`` (see :mod:`skillgym.spaces`); its
    ``info["skill_steps"]`` (low-level steps the skill ran) feeds the low-level-step logging,
    ``info["skill_rewards"]`` (the skill's low-level rewards) ``gamma_per_step``, ``info["num_completed"]`` (if any)
    the subtask logging.

    ``total_timesteps`` of :meth:`learn` counts skill decisions (SB3's ``num_timesteps``); ``num_low_level_steps``
    counts env steps. To train for a budget of low-level steps, stop with a callback:
    ``SkillSAC(...).learn(total_timesteps=10**9, callback=StopAtLowLevelSteps(300_000))``
    (:class:`~skillgym.rl.callbacks.StopAtLowLevelSteps`). ``learn`` warns if it ends before
    ``learning_starts`` decisions, i.e. without a single gradient step.

    Example:
        >>> from skillgym.envs.toy import ToySkillEnv
        >>> env = ToySkillEnv()
        >>> model = SkillSAC("SkillPolicy", env, learning_starts=10, batch_size=8, seed=0).learn(20)
        >>> obs, info = env.reset(seed=0)
        >>> action, _ = model.predict(obs, deterministic=True)
        >>> env.action_space.contains(action)
        True

    How the prior reaches the policy: pass ``prior=module`` here, or leave it out and the env attribute
    ``skill_prior`` is used (``env.get_attr("skill_prior")[0]``). Either way it ends up as
    ``policy_kwargs["prior"]`` and is saved with the model, so ``SkillSAC.load(path)`` needs no env.

    Saving: :meth:`save` writes a folder (``model.json`` settings and counters, ``policy.safetensors``
    weights, ``optimizers.safetensors`` Adam moments); :meth:`load` reads it and never unpickles anything, so
    a model file cannot run code. The prior is rebuilt from its JSON description (a library prior from its
    ``LibraryConfig``); other prior classes are saved once registered with
    :func:`skillgym.rl.model_folder.register_prior`. SB3's pickle zips remain available through
    :meth:`save_sb3_zip` / :meth:`load_sb3_zip`, for trusted files only.

    The argument sent to the env is clipped to its Box; the buffer stores the *unclipped* sample, so the critic
    is trained on the same z distribution the actor loss differentiates through (clipping is part of the env).

    :param policy: ``"SkillPolicy"`` (aliases ``"MlpPolicy"``, ``"CnnPolicy"``) or a ``SkillPolicy`` subclass
    :param env: the skill-space env (or its id, or a VecEnv); from an
        :class:`~skillgym.rl.vec_env.AsyncSkillVecEnv` it learns one ended skill at a time, its envs never waiting
        for each other's skills nor for the gradient steps
    :param learning_rate: Adam learning rate for actor, critic and (auto) coefficients; may be a schedule
    :param buffer_size: replay capacity in skill transitions
    :param learning_starts: skill decisions sampled from the *prior* (not uniformly) before learning starts
    :param batch_size: minibatch size
    :param tau: Polyak coefficient of the target critics
    :param gamma: discount per skill decision, or per low-level step when ``gamma_per_step``
    :param train_freq: update every ``train_freq`` skill decisions (or ``(n, "episode")``)
    :param gradient_steps: gradient steps per update (-1: as many as decisions collected)
    :param replay_buffer_class: default ``SkillReplayBuffer``; ``SkillDictReplayBuffer`` for Dict observations,
        ``SkillFeatureReplayBuffer`` (stores the frozen encoder's features) for frames with ``share_prior_encoder``
    :param replay_buffer_kwargs: its keyword arguments
    :param optimize_memory_usage: SB3's memory-efficient buffer (incompatible with time-out handling)
    :param alpha_d: weight of KL(π_d ‖ p_d); a float (fixed, the paper's choice) or ``"auto"``/``"auto_<init>"`` to
        tune it towards ``target_kl_d``
    :param alpha_z: weight of KL(π_z ‖ p_z), same conventions, target ``target_kl_z`` (expected under π_d)
    :param target_kl_d: target KL_d in nats for ``alpha_d="auto"``
    :param target_kl_z: target E_d[KL_z] in nats for ``alpha_z="auto"``
    :param gamma_per_step: discount within a skill too: a transition's reward is Σ_t γ^t r_t over the low-level
        rewards ``info["skill_rewards"]`` and its bootstrap discount γ^skill_steps (``SkillSpaceEnv`` reports both)
    :param target_update_interval: update target critics every this many gradient steps
    :param prior: the skill prior module (see above)
    :param stats_window_size: episodes averaged in rollout logs
    :param tensorboard_log: TensorBoard folder (None: no TensorBoard)
    :param policy_kwargs: ``SkillPolicy`` keyword arguments (``net_arch``, ``share_actor``, ...)
    :param verbose: 0, 1 or 2
    :param seed: random seed (torch, numpy, env)
    :param device: torch device
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "SkillPolicy": SkillPolicy,
        "MlpPolicy": SkillPolicy,
        "CnnPolicy": SkillPolicy,
    }
    policy: SkillPolicy
    actor: SkillActor
    critic: SkillCritic
    critic_target: SkillCritic
    replay_buffer: SkillReplayBuffer

    def __init__(
        self,
        policy: str | type[SkillPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 50_000,
        learning_starts: int = 1000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        alpha_d: float | str = 0.1,
        alpha_z: float | str = 0.01,
        target_kl_d: float = 0.5,
        target_kl_z: float = 2.0,
        gamma_per_step: bool = False,
        target_update_interval: int = 1,
        prior: nn.Module | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            supported_action_spaces=(spaces.Dict,),
            support_multi_env=True,
        )
        # Own copy: the prior is added to it below and must not leak into a dict the caller reuses.
        self.policy_kwargs = dict(self.policy_kwargs)
        if prior is not None:
            if "prior" in self.policy_kwargs:
                raise ValueError("Pass the prior either as prior=... or in policy_kwargs, not both.")
            self.policy_kwargs["prior"] = prior
        self.alpha_d = alpha_d
        self.alpha_z = alpha_z
        self.target_kl_d = float(target_kl_d)
        self.target_kl_z = float(target_kl_z)
        self.gamma_per_step = gamma_per_step
        self.target_update_interval = target_update_interval
        self.log_alpha_d: th.Tensor | None = None
        self.log_alpha_z: th.Tensor | None = None
        self.alpha_d_optimizer: th.optim.Optimizer | None = None
        self.alpha_z_optimizer: th.optim.Optimizer | None = None
        # Rollout statistics (skill decisions are SB3 "timesteps"; low-level steps are counted here).
        self.num_low_level_steps = 0
        self._skill_counts: np.ndarray | None = None
        self._skill_len_buffer: deque[float] = deque(maxlen=1000)
        self._ep_low_level_len_buffer: deque[float] = deque(maxlen=stats_window_size)
        self._ep_num_completed_buffer: deque[float] = deque(maxlen=stats_window_size)
        self._ep_low_level_len: np.ndarray | None = None
        # AsyncSkillVecEnv: env -> (env action, buffer action) of its running skill
        self._running_actions: dict[int, tuple[dict[str, Any], np.ndarray]] = {}

        if _init_setup_model:
            self._setup_model()

    # ----------------------------------------------------------------------------------------------- setup
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Like BaseAlgorithm._wrap_env but never adds VecTransposeImage: the priors take frames in the env's own
        # channels-last layout, and the critic's CNN handles that layout itself.
        if not isinstance(env, VecEnv):
            if not is_wrapped(env, Monitor) and monitor_wrapper:
                if verbose >= 1:
                    print("Wrapping the env with a `Monitor` wrapper")
                env = Monitor(env)
            env = DummyVecEnv([lambda: env])  # type: ignore[list-item, return-value]
        check_for_nested_spaces(env.observation_space)
        return env  # type: ignore[return-value]

    def _prior_from_env(self) -> nn.Module:
        if self.env is None:
            raise ValueError(
                "SkillSAC needs a prior: pass prior=... or an env with a `skill_prior` attribute."
            )
        try:
            prior = self.env.get_attr("skill_prior")[0]
        except AttributeError as e:
            raise ValueError(
                f"The env has no `skill_prior` attribute ({e}); pass the library's prior module as "
                "SkillSAC(..., prior=...)."
            ) from e
        if prior is None:
            raise ValueError("the env's skills have no priors, which SkillSAC starts from; act in their space with "
                             "FlattenSkillAction and a stock agent, or pass SkillSAC(..., prior=...)")
        if not isinstance(prior, nn.Module):
            raise TypeError(f"env.skill_prior must be an nn.Module, got {type(prior).__name__}")
        return prior

    def _setup_model(self) -> None:
        check_skill_action_space(self.action_space)
        if self.gamma_per_step and self._vec_normalize_env is not None:
            # VecNormalize hands the buffer its own copy of the reward, not the discounted skill rewards.
            raise ValueError("gamma_per_step=True does not support VecNormalize")
        if "prior" not in self.policy_kwargs:
            self.policy_kwargs["prior"] = self._prior_from_env()
        if self.replay_buffer_class is None:
            self.replay_buffer_class = self._default_buffer_class()
        if self.replay_buffer_class is SkillFeatureReplayBuffer:
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, "features_dim": self._shared_features_dim()}
        self._check_collection(self.env)
        if isinstance(self.env, AsyncSkillVecEnv):
            # Its skills end one at a time, so the buffer keeps one transition per row (SB3 would give it N).
            self.replay_buffer = self.replay_buffer_class(
                self.buffer_size, self.observation_space, self.action_space, device=self.device, n_envs=1,
                optimize_memory_usage=self.optimize_memory_usage, **self.replay_buffer_kwargs)
        super()._setup_model()
        if isinstance(self.replay_buffer, SkillFeatureReplayBuffer):
            self.replay_buffer.encode = self._encode_for_buffer
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self.log_alpha_d, self.alpha_d_tensor, self.alpha_d_optimizer = self._setup_coef(self.alpha_d)
        self.log_alpha_z, self.alpha_z_tensor, self.alpha_z_optimizer = self._setup_coef(self.alpha_z)

    def _check_collection(self, env: VecEnv | None) -> None:
        """Refuse what SkillSAC cannot collect from an :class:`AsyncSkillVecEnv` correctly."""
        if isinstance(env, VecEnvWrapper) and isinstance(env.unwrapped, AsyncSkillVecEnv):
            raise ValueError(
                f"SkillSAC collects from an AsyncSkillVecEnv one ended skill at a time, which a {type(env).__name__} "
                "around it would not see: wrap each env inside its factory instead (a Monitor, as make_vec_env does); "
                "VecNormalize is not supported there")
        if isinstance(env, AsyncSkillVecEnv) and self.optimize_memory_usage:
            raise ValueError("optimize_memory_usage reads a transition's next observation from the next buffer row, "
                             "which on an AsyncSkillVecEnv holds another env's skill; leave it off")

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's ``set_env``; the replay buffer's rows must suit the new env (one ended skill per row on an
        :class:`AsyncSkillVecEnv`, one step of every env on SB3's vector envs)."""
        env = self._wrap_env(env, self.verbose)
        self._check_collection(env)
        if self.replay_buffer is not None:
            self._check_buffer_rows(self.replay_buffer, env)
        super().set_env(env, force_reset)
        self._running_actions = {}  # skills running in the old env are not received from this one

    @staticmethod
    def _check_buffer_rows(buffer: ReplayBuffer, env: VecEnv) -> None:
        """A buffer keeps one ended skill per row for an :class:`AsyncSkillVecEnv`, one step of every env else."""
        rows = 1 if isinstance(env, AsyncSkillVecEnv) else env.num_envs
        if buffer.n_envs != rows:
            raise ValueError(
                f"the replay buffer keeps {buffer.n_envs} transition(s) per row, {type(env).__name__} needs {rows}: "
                "switch between an AsyncSkillVecEnv and another vector env with a new SkillSAC (or "
                "SkillSAC.load(path, env=...), which makes a new buffer)")

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # SB3's progress bar adds num_envs per callback step; on an AsyncSkillVecEnv a step is one ended skill.
        if progress_bar:
            if isinstance(callback, list):
                callback = CallbackList(callback)
            if not isinstance(callback, BaseCallback):
                callback = ConvertCallback(callback)
            callback, progress_bar = [callback, DecisionProgressBar()], False
        return super()._init_callback(callback, progress_bar)

    def _default_buffer_class(self) -> type[ReplayBuffer]:
        if isinstance(self.observation_space, spaces.Dict):
            return SkillDictReplayBuffer
        if is_frame_space(self.observation_space) and self._shares_prior_encoder():
            return SkillFeatureReplayBuffer  # the frozen encoder runs once per stored frame stack
        return SkillReplayBuffer

    def _shares_prior_encoder(self) -> bool:
        return shares_prior_encoder(self.policy_kwargs.get("share_prior_encoder"), self.observation_space,
                                    self.policy_kwargs["prior"])

    def _shared_features_dim(self) -> int:
        features_dim = prior_encoder_dim(self.policy_kwargs["prior"])
        if not self._shares_prior_encoder() or features_dim is None:
            raise ValueError("SkillFeatureReplayBuffer stores the shared prior encoder's features: it needs "
                             "policy_kwargs share_prior_encoder=True and a prior with an `encoder` module that has an "
                             "int `out_dim` (the library's SkillPriors)")
        return features_dim

    def _encode_for_buffer(self, observations: np.ndarray) -> np.ndarray:
        features = self.policy.encode_observations(th.as_tensor(observations, device=self.device))
        return features.cpu().numpy()

    def load_replay_buffer(self, path: str | os.PathLike | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """SB3's ``load_replay_buffer``; a feature buffer gets this model's encoder back.

        The file is an SB3 pickle: unpickling runs whatever code its author put in it, so only load
        buffers you saved yourself."""
        kept = self.replay_buffer
        super().load_replay_buffer(path, truncate_last_traj)
        if self.env is not None and self.replay_buffer is not None:
            try:
                self._check_buffer_rows(self.replay_buffer, self.env)
            except ValueError:
                self.replay_buffer = kept
                raise
        if isinstance(self.replay_buffer, SkillFeatureReplayBuffer):
            self.replay_buffer.encode = self._encode_for_buffer

    def _setup_coef(
        self, value: float | str
    ) -> tuple[th.Tensor | None, th.Tensor, th.optim.Optimizer | None]:
        """Fixed coefficient, or ``"auto"``/``"auto_<init>"``: learnt log-coefficient (like SB3 SAC's ``ent_coef``)."""
        if isinstance(value, str):
            if not value.startswith("auto"):
                raise ValueError(f"A KL coefficient must be a float, 'auto' or 'auto_<init>', got {value!r}")
            init = float(value.split("_")[1]) if "_" in value else 1.0
            if init <= 0:
                raise ValueError("The initial KL coefficient must be > 0")
            log_coef = th.log(th.ones(1, device=self.device) * init).requires_grad_(True)
            return (
                log_coef,
                th.ones(1, device=self.device) * init,
                th.optim.Adam([log_coef], lr=self.lr_schedule(1)),
            )
        return None, th.tensor(float(value), device=self.device), None

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, Any]:
        out = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        assert self.env is not None
        if reset_num_timesteps:
            self.num_low_level_steps = 0
        if (
            reset_num_timesteps
            or self._ep_low_level_len is None
            or len(self._ep_low_level_len) != self.env.num_envs
        ):
            self._ep_low_level_len = np.zeros(self.env.num_envs)
        if self._skill_counts is None:
            self._skill_counts = np.zeros(self.policy.n_skills, dtype=np.int64)
        if reset_num_timesteps:
            self._running_actions = {}  # the env was reset: no skill of before is received any more
        tb = [f for f in self.logger.output_formats if isinstance(f, TensorBoardOutputFormat)]
        if tb and not any(isinstance(f, LowLevelStepsWriter) for f in self.logger.output_formats):
            self.logger.output_formats.append(LowLevelStepsWriter(tb[0]))
        return out

    # -------------------------------------------------------------------------------------------- rollouts
    def _sample_action(
        self,
        learning_starts: int,
        action_noise: ActionNoise | None = None,
        n_envs: int = 1,
    ) -> tuple[SkillActions, np.ndarray]:  # type: ignore[override]
        """(env action with clipped argument, flat buffer action ``[skill, unclipped arg]``).

        During warm-up skills and arguments are sampled from the frozen prior, not uniformly: a uniform z
        is mostly out of the prior's support and the decoder would produce junk.
        """
        assert self._last_obs is not None, "self._last_obs was not set"
        return self._sample_skills(self._last_obs, learning_starts)

    def _sample_skills(self, observations: Any, learning_starts: int) -> tuple[SkillActions, np.ndarray]:
        """:meth:`_sample_action` for a batch of observations."""
        obs, _ = self.policy.obs_to_tensor(observations)
        warmup = self.num_timesteps < learning_starts
        with th.no_grad():
            skill, arg = self.policy.sample_skill(obs, deterministic=False, from_prior=warmup)
        skill_np = skill.cpu().numpy()
        arg_np = arg.cpu().numpy().astype(np.float32)
        buffer_action = np.concatenate([skill_np[:, None].astype(np.float32), arg_np], axis=1)
        return SkillActions(skill_np, self.policy.clip_arg(arg_np)), buffer_action

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if self.gamma_per_step:
            reward = np.array([self._discounted_skill_reward(info) for info in infos])
        for i, info in enumerate(infos):
            self._count_skill_end(i, buffer_action[i], info, bool(dones[i]))
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _count_skill_end(self, env_index: int, buffer_action: np.ndarray, info: dict[str, Any], done: bool) -> None:
        """Skill frequencies, low-level steps and episode statistics of one env's ended skill."""
        assert self._skill_counts is not None and self._ep_low_level_len is not None
        self._skill_counts[int(np.rint(buffer_action[0]))] += 1
        n = max(1, int(info.get("skill_steps", 1)))
        self.num_low_level_steps += n
        self._skill_len_buffer.append(n)
        self._ep_low_level_len[env_index] += n
        if done:
            self._ep_low_level_len_buffer.append(float(self._ep_low_level_len[env_index]))
            self._ep_low_level_len[env_index] = 0
            if "num_completed" in info:
                self._ep_num_completed_buffer.append(float(info["num_completed"]))

    # SkillSAC collects from an AsyncSkillVecEnv one ended skill at a time, in its order of low-level time, and
    # starts that env's next skill at once, so that every env runs on through the gradient steps: a skill is
    # chosen by the policy before the gradient steps of the previous decision. Everything else is what SB3's
    # collect_rollouts does for a vector step, done for one env.
    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        """SB3's, or for an :class:`~skillgym.rl.vec_env.AsyncSkillVecEnv` ``train_freq`` ended skills (each
        counts one step), each env starting its next skill as soon as its last one is stored."""
        try:
            if not isinstance(env, AsyncSkillVecEnv):
                return super().collect_rollouts(env, callback, train_freq, replay_buffer, action_noise,
                                                learning_starts, log_interval)
            return self._collect_skill_ends(env, callback, train_freq, replay_buffer, learning_starts, log_interval)
        except BaseException:
            # Cut half-way (Ctrl-C, a failing env or callback): the envs may have run on past what was recorded, so
            # a later learn() starts them afresh rather than from observations that may be stale.
            self._last_obs, self._running_actions = None, {}
            if self._ep_low_level_len is not None:
                self._ep_low_level_len[:] = 0
            raise

    def _collect_skill_ends(self, env: AsyncSkillVecEnv, callback: BaseCallback, train_freq: TrainFreq,
                            replay_buffer: ReplayBuffer, learning_starts: int, log_interval: int | None
                            ) -> RolloutReturn:
        """``collect_rollouts`` on an :class:`~skillgym.rl.vec_env.AsyncSkillVecEnv`."""
        if train_freq.unit != TrainFrequencyUnit.STEP:
            raise ValueError("SkillSAC on an AsyncSkillVecEnv counts train_freq in steps (ended skills), "
                             "not episodes")
        self.policy.set_training_mode(False)
        callback.on_rollout_start()
        self._start_skills(env, env.idle_envs(), learning_starts)
        num_collected_steps = num_collected_episodes = 0
        while should_collect_more_steps(train_freq, num_collected_steps, num_collected_episodes):
            i, observation, reward, done, info = env.receive()
            action, buffer_action = self._running_actions.pop(i)
            # SB3's names of a vector step, for callbacks; here the step of one env.
            new_obs, actions = _batch(observation), SkillActions(np.array([action["skill"]]), action["arg"][None])
            buffer_actions, rewards, dones, infos = buffer_action[None], np.array([reward]), np.array([done]), [info]
            self.num_timesteps += 1
            num_collected_steps += 1
            callback.update_locals(locals())
            continue_training = callback.on_step()
            self._update_info_buffer(infos, dones)
            # A skill that ends as a callback stops training is not stored, as in SB3; it is counted, and its env
            # goes on from its observation, so that a later learn() continues where every env is.
            self._store_skill_end(replay_buffer if continue_training else None, i, buffer_action, observation,
                                  reward, done, info)
            if not continue_training:
                return RolloutReturn(num_collected_steps, num_collected_episodes, continue_training=False)
            self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
            self._on_step()
            if done:
                num_collected_episodes += 1
                self._episode_num += 1
                if log_interval is not None and self._episode_num % log_interval == 0:
                    self.dump_logs()
            self._start_skills(env, [i], learning_starts)
        callback.on_rollout_end()
        return RolloutReturn(num_collected_steps, num_collected_episodes, continue_training=True)

    def _start_skills(self, env: AsyncSkillVecEnv, indices: list[int], learning_starts: int) -> None:
        """Sample skills for the envs ``indices`` from their last observations and start them."""
        if not indices:
            return
        obs = _rows(self._last_obs, indices)
        actions, buffer_actions = self._sample_skills(obs, learning_starts)
        env.send(indices, actions)
        self._running_actions.update(zip(indices, zip(actions, buffer_actions, strict=True), strict=True))

    def _store_skill_end(self, replay_buffer: ReplayBuffer | None, i: int, buffer_action: np.ndarray, new_obs: Any,
                         reward: float, done: bool, info: dict[str, Any]) -> None:
        """Count env i's ended skill, store it as one transition (unless ``replay_buffer`` is None) and make its
        observation env i's last."""
        self._count_skill_end(i, buffer_action, info, done)
        if replay_buffer is not None:
            if self.gamma_per_step:
                reward = self._discounted_skill_reward(info)
            next_obs = new_obs
            if done and info.get("terminal_observation") is not None:
                next_obs = info["terminal_observation"]
            replay_buffer.add(_rows(self._last_obs, [i]), _batch(next_obs), buffer_action[None], np.array([reward]),
                              np.array([done]), [info])
        _set_row(self._last_obs, i, new_obs)

    def _discounted_skill_reward(self, info: dict[str, Any]) -> float:
        """Σ_t γ^t r_t over the low-level rewards of one skill (Python floats, summed in step order)."""
        if "skill_rewards" not in info:
            raise ValueError(
                "gamma_per_step=True needs the low-level rewards of every skill in info['skill_rewards'] "
                "(SkillSpaceEnv reports them); this env does not report them, so use gamma_per_step=False."
            )
        discounted, discount = 0.0, 1.0
        for reward in info["skill_rewards"][: info["skill_steps"]]:
            discounted += discount * float(reward)
            discount *= self.gamma
        return discounted

    def dump_logs(self) -> None:
        """SB3's logs plus low-level step counts, skill lengths, subtasks completed and skill frequencies."""
        self.logger.record("time/low_level_steps", self.num_low_level_steps)
        self.logger.record("rollout/low_level_steps", self.num_low_level_steps)
        if len(self._skill_len_buffer) > 0:
            self.logger.record("rollout/skill_len_mean", safe_mean(list(self._skill_len_buffer)))
        if len(self._ep_low_level_len_buffer) > 0:
            self.logger.record(
                "rollout/ep_low_level_len_mean", safe_mean(list(self._ep_low_level_len_buffer))
            )
        if len(self._ep_num_completed_buffer) > 0:
            self.logger.record(
                "rollout/ep_num_completed_mean", safe_mean(list(self._ep_num_completed_buffer))
            )
        if self._skill_counts is not None and self._skill_counts.sum() > 0:
            freq = self._skill_counts / self._skill_counts.sum()
            for d, f in enumerate(freq):
                self.logger.record(f"rollout/skill_freq/{d}", float(f))
            # Histogram of the skills chosen since the last dump (TensorBoard only).
            self.logger.record(
                "rollout/skill_hist",
                np.repeat(np.arange(len(freq)), self._skill_counts),
                exclude=("stdout", "log", "json", "csv"),
            )
            self._skill_counts[:] = 0
        super().dump_logs()

    # ------------------------------------------------------------------------------------------------ losses
    def _coefs(self) -> tuple[th.Tensor, th.Tensor]:
        alpha_d = th.exp(self.log_alpha_d.detach()) if self.log_alpha_d is not None else self.alpha_d_tensor
        alpha_z = th.exp(self.log_alpha_z.detach()) if self.log_alpha_z is not None else self.alpha_z_tensor
        return alpha_d, alpha_z

    def _soft_value(
        self,
        pi: SkillDistribution,
        prior: SkillDistribution,
        obs: Observations,
        alpha_d: th.Tensor,
        alpha_z: th.Tensor,
    ) -> th.Tensor:
        """V(s) = Σ_d π_d(d|s)[min_i Q̄_i(s, z_d, d) − α_z KL_z(s,d)] − α_d KL_d(s) with target critics: (B,)."""
        z = pi.rsample_args()
        q = self.critic_target.q_per_skill(self.critic_target.encode(obs), z).min(dim=0).values
        return (pi.probs * (q - alpha_z * pi.kl_z(prior))).sum(dim=-1) - alpha_d * pi.kl_d(prior)

    def _critic_loss(
        self,
        data: SkillReplayBufferSamples,
        alpha_d: th.Tensor,
        alpha_z: th.Tensor,
        next_prior: SkillDistribution | None = None,
    ) -> tuple[th.Tensor, dict[str, float]]:
        """½ Σ_i MSE(Q_i(s, z, d), y) at the skill d and argument z *stored in the buffer*."""
        with th.no_grad():
            if next_prior is None:
                next_prior = self.policy.prior_dist(data.next_observations)
            next_pi = self.policy.policy_dist(data.next_observations)
            next_v = self._soft_value(
                next_pi, next_prior, data.next_observations, alpha_d, alpha_z
            ).unsqueeze(1)
            # With gamma_per_step the stored reward is already discounted within the skill.
            discounts = self.gamma**data.skill_steps if self.gamma_per_step else self.gamma
            # dones are terminations only; truncated transitions keep bootstrapping.
            target_q = (data.rewards + (1.0 - data.dones) * discounts * next_v).squeeze(1)
        current_q = self.critic.q_taken(self.critic.encode(data.observations), data.args, data.skills)
        loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
        assert isinstance(loss, th.Tensor)
        return loss, {"q_taken": current_q.mean().item(), "target_q": target_q.mean().item()}

    def _actor_loss(
        self,
        obs: Observations,
        alpha_d: th.Tensor,
        alpha_z: th.Tensor,
        prior: SkillDistribution | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, dict[str, float]]:
        """Eq. 5 summed over all skills. Returns (loss, KL_d (B,), E_{π_d}[KL_z] (B,), stats)."""
        if prior is None:
            prior = self.policy.prior_dist(obs)
        pi = self.policy.policy_dist(obs)
        z = pi.rsample_args()  # (B, K, nz), one reparameterised argument per skill
        with th.no_grad():
            features = self.critic.encode(obs)
        q = self.critic.q_per_skill(features, z, detach_params=True).min(dim=0).values  # (B, K)
        kl_z = pi.kl_z(prior)  # (B, K)
        kl_d = pi.kl_d(prior)  # (B,)
        probs = pi.probs
        loss = ((probs * (alpha_z * kl_z - q)).sum(dim=-1) + alpha_d * kl_d).mean()
        exp_kl_z = (probs * kl_z).sum(dim=-1)
        entropy_d = -(probs * F.log_softmax(pi.logits, dim=-1)).sum(dim=-1)
        stats = {"q_pi": (probs * q).sum(dim=-1).mean().item(), "entropy_d": entropy_d.mean().item()}
        return loss, kl_d, exp_kl_z, stats

    # ------------------------------------------------------------------------------------------------- train
    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """``gradient_steps`` updates of critics, actor and (if ``"auto"``) α_d and α_z; logs their means."""
        self.policy.set_training_mode(True)
        optimizers: list[th.optim.Optimizer] = [self.actor.optimizer, self.critic.optimizer]
        optimizers += [o for o in (self.alpha_d_optimizer, self.alpha_z_optimizer) if o is not None]
        self._update_learning_rate(optimizers)

        logs: dict[str, list[float]] = {}

        def log(key: str, value: float) -> None:
            logs.setdefault(key, []).append(value)

        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            alpha_d, alpha_z = self._coefs()
            n = len(data.skills)
            # s and s' in one pass: through a shared encoder (if any; a feature buffer holds its output already),
            # then the frozen prior (pure functions of s).
            both = map_observations(lambda s, s_next: th.cat([s, s_next]), data.observations, data.next_observations)
            if not isinstance(self.replay_buffer, SkillFeatureReplayBuffer):
                both = self.policy.encode_observations(both)
            data = data._replace(observations=map_observations(lambda t, n=n: t[:n], both),
                                 next_observations=map_observations(lambda t, n=n: t[n:], both))
            prior_both = self.policy.prior_dist(both)
            prior_s = SkillDistribution(*(t[:n] for t in prior_both))
            prior_next = SkillDistribution(*(t[n:] for t in prior_both))

            critic_loss, critic_stats = self._critic_loss(data, alpha_d, alpha_z, next_prior=prior_next)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            actor_loss, kl_d, kl_z, actor_stats = self._actor_loss(
                data.observations, alpha_d, alpha_z, prior=prior_s
            )
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # Coefficient tuning (only with "auto"): raise α when the KL exceeds its target, as SB3 SAC does
            # for the entropy. Uses this step's (detached) KLs.
            if self.log_alpha_d is not None and self.alpha_d_optimizer is not None:
                loss_d = -(self.log_alpha_d * (kl_d.detach().mean() - self.target_kl_d)).sum()
                self.alpha_d_optimizer.zero_grad()
                loss_d.backward()
                self.alpha_d_optimizer.step()
                log("alpha_d_loss", loss_d.item())
            if self.log_alpha_z is not None and self.alpha_z_optimizer is not None:
                loss_z = -(self.log_alpha_z * (kl_z.detach().mean() - self.target_kl_z)).sum()
                self.alpha_z_optimizer.zero_grad()
                loss_z.backward()
                self.alpha_z_optimizer.step()
                log("alpha_z_loss", loss_z.item())

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)

            log("critic_loss", critic_loss.item())
            log("actor_loss", actor_loss.item())
            log("kl_d", kl_d.mean().item())
            log("kl_z", kl_z.mean().item())
            log("alpha_d", alpha_d.item())
            log("alpha_z", alpha_z.item())
            for key, value in {**critic_stats, **actor_stats}.items():
                log(key, value)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    def learn(
        self: SelfSkillSAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "SkillSAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfSkillSAC:
        """Train for ``total_timesteps`` skill decisions (``num_low_level_steps`` counts env steps).

        For a budget in low-level steps pass ``callback=StopAtLowLevelSteps(n)`` (:mod:`skillgym.rl.callbacks`).
        """
        super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
        if self._n_updates == 0:
            when = (f"all of them in its warm-up of learning_starts={self.learning_starts} decisions sampled from "
                    "the prior" if self.num_timesteps <= self.learning_starts else "before its first update")
            warnings.warn(
                f"SkillSAC.learn ended after {self.num_timesteps} skill decisions, {when}: no gradient step was made "
                "and the policy is still the prior. Train for more decisions or lower learning_starts.",
                stacklevel=2,
            )
        return self

    # ---------------------------------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike, exclude: Any = None, include: Any = None) -> None:  # type: ignore[override]
        """Write the model to the folder ``path`` without pickles (see the class docstring).

        ``model.json`` (settings, spaces, counters, the prior's description), ``policy.safetensors``
        (prior, actor, critics), ``optimizers.safetensors`` (Adam moments). The folder is written next to
        ``path`` and renamed into place, so an interrupted save leaves the previous model intact.
        ``exclude``/``include`` (SB3's pickle options) are not supported.
        """
        if exclude is not None or include is not None:
            raise ValueError("SkillSAC.save takes no exclude/include; use save_sb3_zip for SB3's pickle zip")
        path = Path(path)
        if path.is_file():
            raise FileExistsError(f"{path} is a file; SkillSAC.save writes a folder, pick another path")
        if path.is_dir() and not (path / MODEL_JSON).is_file():
            raise FileExistsError(f"{path} exists and is not a saved SkillSAC model (no {MODEL_JSON}); "
                                  "pick another path")
        payload = self._save_payload()
        tensors = {f"policy.{k}": v.detach().cpu().clone().contiguous() for k, v in self.policy.state_dict().items()}
        optim_tensors, optim_groups = {}, {}
        for name, opt in self._optimizers().items():
            flat, groups = optimizer_tensors(opt)
            optim_tensors.update({f"{name}.{k}": v for k, v in flat.items()})
            optim_groups[name] = groups
        for key in ("d", "z"):
            log_coef = getattr(self, f"log_alpha_{key}")
            if log_coef is not None:
                tensors[f"log_alpha_{key}"] = log_coef.detach().cpu().clone()
        payload["optimizers"] = optim_groups
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        try:
            outputs.write_tensors(tensors, staging / POLICY_WEIGHTS, metadata={"format_version": str(MODEL_FORMAT)})
            outputs.write_tensors(optim_tensors, staging / OPTIMIZER_WEIGHTS)
            (staging / MODEL_JSON).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
            os.replace(staging, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _optimizers(self) -> dict[str, th.optim.Optimizer]:
        opts = {"actor_optimizer": self.actor.optimizer, "critic_optimizer": self.critic.optimizer}
        for key in ("d", "z"):
            opt = getattr(self, f"alpha_{key}_optimizer")
            if opt is not None:
                opts[f"alpha_{key}_optimizer"] = opt
        return opts

    def _save_payload(self) -> dict[str, Any]:
        kwargs = dict(self.policy_kwargs)
        prior = kwargs.pop("prior")
        lr = self.learning_rate
        if callable(lr):
            warnings.warn("SkillSAC.save stores a learning-rate schedule as its current value", stacklevel=3)
            lr = float(self.lr_schedule(self._current_progress_remaining))
        if self.replay_buffer_class not in (None, SkillReplayBuffer, SkillDictReplayBuffer, SkillFeatureReplayBuffer):
            raise ValueError(f"SkillSAC.save stores the default SkillReplayBuffer only, not "
                             f"{self.replay_buffer_class.__name__}; use save_sb3_zip for other buffers")
        settings = {
            "learning_rate": float(lr), "buffer_size": self.buffer_size, "learning_starts": self.learning_starts,
            "batch_size": self.batch_size, "tau": self.tau, "gamma": self.gamma,
            "train_freq": [self.train_freq.frequency, self.train_freq.unit.value],
            "gradient_steps": self.gradient_steps, "replay_buffer_kwargs": self.replay_buffer_kwargs,
            "optimize_memory_usage": self.optimize_memory_usage, "alpha_d": self.alpha_d, "alpha_z": self.alpha_z,
            "target_kl_d": self.target_kl_d, "target_kl_z": self.target_kl_z, "gamma_per_step": self.gamma_per_step,
            "target_update_interval": self.target_update_interval, "stats_window_size": self._stats_window_size,
            "tensorboard_log": self.tensorboard_log, "verbose": self.verbose, "seed": self.seed,
            "policy_kwargs": policy_kwargs_to_json(kwargs),
        }
        try:
            json.dumps(settings, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"SkillSAC.save needs JSON settings ({e}); use save_sb3_zip for other objects") from e
        return {
            "format_version": MODEL_FORMAT,
            "algorithm": "SkillSAC",
            "settings": settings,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "prior": prior_to_json(prior),
            "counters": {name: getattr(self, name) for name in SAVED_COUNTERS},
        }

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfSkillSAC],
        path: str | os.PathLike,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfSkillSAC:
        """Load a model folder written by :meth:`save`; reads JSON and safetensors only, never pickles.

        ``env`` (optional) is checked against the saved spaces and attached for further training.
        ``kwargs`` override saved settings (e.g. ``learning_starts=0``). An SB3 pickle zip is refused:
        open it with :meth:`load_sb3_zip` if, and only if, you trust where it came from.
        """
        path = Path(path)
        if path.is_file() and zipfile.is_zipfile(path):
            raise ModelError(
                f"{path} is an SB3 pickle zip; SkillSAC.load reads only the pickle-free folder SkillSAC.save writes. "
                "Loading a pickle can run arbitrary code: if you trust the file, use SkillSAC.load_sb3_zip(path) "
                "and save it again with SkillSAC.save"
            )
        if not path.is_dir():
            hint = " (older skillgym versions saved <path>.zip: see SkillSAC.load_sb3_zip)" if Path(
                f"{path}.zip").is_file() else ""
            raise ModelError(f"no SkillSAC model at {path}: expected a folder written by SkillSAC.save{hint}")
        payload = read_json(path / MODEL_JSON)
        if not isinstance(payload, dict) or payload.get("format_version") != MODEL_FORMAT:
            version = payload.get("format_version") if isinstance(payload, dict) else None
            raise ModelError(f"{path / MODEL_JSON}: model format {version!r} is not {MODEL_FORMAT}; "
                             "save the model again with this skillgym")
        missing = [k for k in ("settings", "observation_space", "action_space", "prior", "counters")
                   if not isinstance(payload.get(k), dict)]
        if missing:
            raise ModelError(f"{path / MODEL_JSON} lacks {missing}; the file is corrupt")
        try:
            observation_space = space_from_json(payload["observation_space"])
            action_space = space_from_json(payload["action_space"])
            check_skill_action_space(action_space)
            prior = prior_from_json(payload["prior"])
            settings = dict(payload["settings"])
            settings["policy_kwargs"] = {**policy_kwargs_from_json(settings.get("policy_kwargs", {})),
                                         "prior": prior}
            settings["train_freq"] = tuple(settings["train_freq"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{path / MODEL_JSON}: invalid model description ({e}); the file is corrupt") from e
        tensors = read_safetensors(path / POLICY_WEIGHTS)
        optim_tensors = read_safetensors(path / OPTIMIZER_WEIGHTS)
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(th.isfinite(v).all())]
        if bad:
            raise ModelError(f"{path / POLICY_WEIGHTS}: non-finite weights in {bad[:3]}; the model diverged or "
                             "the file is corrupt, load an earlier save")
        settings.update(kwargs)
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "policy", "env", "device"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ModelError(f"{path / MODEL_JSON}: unknown settings {unknown}")

        if env is not None:
            env = cls._wrap_env(env, settings.get("verbose", 0))
            check_for_correct_spaces(env, observation_space, action_space)
        model = cls(policy="SkillPolicy", env=env, device=device, _init_setup_model=False, **settings)
        if env is None:
            model.observation_space, model.action_space, model.n_envs = observation_space, action_space, 1
        model._setup_model()
        try:
            model.policy.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("policy.")})
            for key in ("d", "z"):
                log_coef = getattr(model, f"log_alpha_{key}")
                if log_coef is not None:
                    log_coef.data.copy_(tensors[f"log_alpha_{key}"].to(log_coef.device))
            groups = payload.get("optimizers", {})
            for name, opt in model._optimizers().items():
                prefix = f"{name}."
                opt.load_state_dict(optimizer_state({k[len(prefix):]: v for k, v in optim_tensors.items()
                                                     if k.startswith(prefix)}, groups[name]))
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ModelError(f"{path}: the weights do not match model.json ({e}); the files were written by "
                             "different saves or edited") from e
        for name, value in payload["counters"].items():
            if name in SAVED_COUNTERS:
                setattr(model, name, value)
        if force_reset:
            model._last_obs = None  # type: ignore[assignment]
        return model

    def save_sb3_zip(self, path: str | os.PathLike, **kwargs: Any) -> None:
        """SB3's own format: a zip holding pickled Python objects (cloudpickle), as ``SAC.save`` writes."""
        BaseAlgorithm.save(self, path, **kwargs)

    @classmethod
    def load_sb3_zip(cls: type[SelfSkillSAC], path: str | os.PathLike, env: GymEnv | None = None,
                     **kwargs: Any) -> SelfSkillSAC:
        """Load an SB3 pickle zip (``save_sb3_zip``, or skillgym before the folder format).

        Security risk: the zip holds pickled Python objects, and unpickling runs whatever code the file's
        author put in it. Only load files you made or fully trust, then save them again with :meth:`save`.
        """
        if Path(path).is_dir():  # e.g. a CheckpointCallback's "<prefix>_<n>_steps.zip", written by save()
            raise ValueError(f"{path} is a folder that SkillSAC.save wrote, not an SB3 zip: load it with SkillSAC.load")
        return BaseAlgorithm.load.__func__(cls, path, env=env, **kwargs)  # type: ignore[attr-defined]

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "critic", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts = ["policy", "actor.optimizer", "critic.optimizer"]
        variables = []
        for key in ("d", "z"):
            if getattr(self, f"alpha_{key}_optimizer") is not None:
                state_dicts.append(f"alpha_{key}_optimizer")
                variables.append(f"log_alpha_{key}")
            else:
                variables.append(f"alpha_{key}_tensor")
        return state_dicts, variables


def _rows(observations: Any, indices: list[int]) -> Any:
    """The rows ``indices`` of a batch of observations (entry by entry for Dict observations), as a new batch."""
    if isinstance(observations, dict):
        return {key: value[indices] for key, value in observations.items()}
    return observations[indices]


def _batch(observation: Any) -> Any:
    """One observation as a batch of one."""
    if isinstance(observation, dict):
        return {key: np.asarray(value)[None] for key, value in observation.items()}
    return np.asarray(observation)[None]


def _set_row(observations: Any, i: int, observation: Any) -> None:
    if isinstance(observations, dict):
        for key, value in observation.items():
            observations[key][i] = value
    else:
        observations[i] = observation
