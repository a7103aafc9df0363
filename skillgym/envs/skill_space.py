"""SkillSpaceEnv: act in a skill library's space instead of the low-level action space.

One ``step`` picks a skill ``d`` and its argument ``z``; the library's decoder turns them into
low-level actions that run until the decoder says the skill is done (progress >= threshold), the
skill step cap is reached, or the low-level episode ends. The reward is the sum of the low-level
rewards; ``info["skill_rewards"]`` has each of them, for agents that discount within a skill
(padded with zeros to ``max_skill_steps``, so that vector envs can stack the infos of skills of
different lengths; the first ``info["skill_steps"]`` are the skill's).

Example:
    >>> from skillgym.tasks.kitchen import KitchenTaskEnv
    >>> env = SkillSpaceEnv(KitchenTaskEnv(), "skillgym/assets/kitchen-state")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step({"skill": 3, "arg": np.zeros(5, np.float32)})
    >>> info["skill_steps"]   # low-level steps the skill ran
    28
    >>> info["skill_rewards"].shape, float(info["skill_rewards"].sum()) == reward
    ((30,), True)
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from skillgym.language import INSTRUCTION_KEY
from skillgym.skills.library import SkillLibrary
from skillgym.spaces import skill_action_space

# The progress head is a sigmoid trained on t/N: it approaches 1 but never reaches it (held-out
# error ~0.07). Measured with the bundled kitchen library, prior-only episodes: 0.95 completes
# 1.20 ordered subtasks (100 episodes; skills 18.7 steps long), 0.9 completes 0.99 (16.2), 0.8
# about 0.55 (two runs of 20; ≈ 10): stopping early cuts skills before they reach their target.
DEFAULT_PROGRESS_THRESHOLD = 0.95
# The argument box of skills of one's own that do not say theirs: a few standard deviations of a unit Gaussian.
DEFAULT_ARG_BOUND = 3.0
# What SkillSpaceEnv needs of skills that are not a SkillLibrary (see ``SkillSpaceEnv``).
SKILL_SET_ATTRIBUTES = ("num_skills", "z_dim", "max_skill_steps", "observation_space", "start", "step")


def as_skill_set(library: Any) -> Any:
    """A :class:`SkillLibrary` for a folder or a library, else ``library`` itself once it has everything
    :class:`SkillSpaceEnv` calls (``TypeError`` naming what it lacks)."""
    if isinstance(library, (str, os.PathLike)):
        return SkillLibrary.load(library)
    missing = [name for name in SKILL_SET_ATTRIBUTES if not hasattr(library, name)]
    if missing:
        raise TypeError(f"a skill library is a SkillLibrary, the folder of one, or an object with "
                        f"{', '.join(SKILL_SET_ATTRIBUTES)}; {type(library).__name__} has no {', '.join(missing)}")
    return library


def check_skill_options(max_skill_steps: int | None, progress_threshold: float | None,
                        low_level_steps: int | None = None) -> None:
    """Raise ``ValueError`` naming the option that is out of range.

    ``max_skill_steps`` is None (the library's cap) or an int >= 1; ``progress_threshold`` is None
    (fixed-length skills) or a number in (0, 1]; ``low_level_steps`` (a task's time limit, checked if
    given) an int >= 1.

    Example:
        >>> check_skill_options(None, DEFAULT_PROGRESS_THRESHOLD)
        >>> check_skill_options(30, 0.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: progress_threshold must be a number in (0, 1] ... got 0.0
    """
    if max_skill_steps is not None and not _is_count(max_skill_steps):
        raise ValueError(f"max_skill_steps must be an int >= 1 (low-level steps per skill), or None for the "
                         f"library's cap; got {max_skill_steps!r}")
    if progress_threshold is not None and (isinstance(progress_threshold, bool)
                                           or not isinstance(progress_threshold, numbers.Real)
                                           or not 0.0 < progress_threshold <= 1.0):
        raise ValueError(f"progress_threshold must be a number in (0, 1] (default {DEFAULT_PROGRESS_THRESHOLD}), "
                         f"or None for fixed-length skills; got {progress_threshold!r}")
    if low_level_steps is not None and not _is_count(low_level_steps):
        raise ValueError(f"low_level_steps must be an int >= 1 (the task's time limit in low-level steps), "
                         f"got {low_level_steps!r}")


def _is_count(value: object) -> bool:
    """An int >= 1 (a bool is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


class SkillSpaceEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Wrap a low-level env with a ``Dict(skill=Discrete(K), arg=Box)`` action space.

    Args:
        env: the low-level env. Its observation (or its ``"state"``/``"pixels"`` entry for Dict
            observations) must be what the library's priors expect; for a language-conditioned
            library it is a Dict that also holds the episode's instruction embedding under
            ``"instruction"`` (as :class:`~skillgym.tasks.libero.LiberoTaskEnv`'s does).
        library: a :class:`~skillgym.skills.library.SkillLibrary` or the path of one; or skills of your own,
            any object with ``num_skills``, ``z_dim``, ``max_skill_steps``, ``observation_space`` (the
            observation its skills read), ``start(skills (1,), args (1, z_dim)) -> state`` and
            ``step(state, obs (1, *obs_shape)) -> (actions (1, A), progress (1,), state)``; optionally
            ``arg_bound`` (default 3) and ``priors`` (the torch module SkillSAC starts from; without it,
            act through :class:`~skillgym.envs.FlattenSkillAction` with a stock agent).
        max_skill_steps: cap on low-level steps per skill, >= 1 (None: the library's, 30 in kitchen).
        progress_threshold: a skill stops once its predicted progress reaches this value, in (0, 1]. The
            progress head is a sigmoid trained on t/N, so it approaches 1.0 (float32 rounds it to 1.0
            only from a logit of ~17). None: ignore progress, every skill runs ``max_skill_steps``
            (fixed-length skills such as SPiRL's).
        record_frames: put the low-level frames of every skill in ``info["frames"]`` (needs the
            low-level env to render ``rgb_array``).

    Action space: ``skill`` in ``Discrete(K)``; ``arg`` in ``Box(-b, b, (nz,), float32)`` where
    ``b`` is the library's ``arg_bound`` (the priors are Gaussian, so a few standard deviations
    around 0). Arguments outside the box are clipped; malformed actions raise ``ValueError``
    before the simulator is touched.

    Observation: the priors' input, as the low-level env gives it; with a language-conditioned
    library a ``Dict`` of it (under the library's ``obs_kind``, "state" or "pixels") and
    ``"instruction"``, which also goes to the decoder and the priors.

    ``info`` after a step: ``skill``, ``arg``, ``skill_steps`` (low-level steps run),
    ``skill_rewards`` (their rewards, float64 ``(max_skill_steps,)``, zeros after ``skill_steps``),
    the low-level info of the last
    step, and ``frames`` if ``record_frames``.

    Pixels are rendered only for the observation the agent gets: when the priors see ``"pixels"``
    and the decoder does not (open-loop, or closed-loop on the ``"state"`` vector), a low-level env
    with ``step_without_pixels`` / ``current_observation`` (e.g.
    :class:`~skillgym.tasks.kitchen.KitchenTaskEnv`) is stepped without rendering and asked for
    the full observation once, at the skill's end. Any other env is stepped with ``step``.
    """

    def __init__(
        self,
        env: gym.Env,
        library: Any,
        max_skill_steps: int | None = None,
        progress_threshold: float | None = DEFAULT_PROGRESS_THRESHOLD,
        record_frames: bool = False,
    ):
        gym.utils.RecordConstructorArgs.__init__(
            self, library=str(library) if isinstance(library, (str, os.PathLike)) else f"<{type(library).__name__}>",
            max_skill_steps=max_skill_steps, progress_threshold=progress_threshold, record_frames=record_frames,
        )
        check_skill_options(max_skill_steps, progress_threshold)
        gym.Wrapper.__init__(self, env)
        self.library = as_skill_set(library)
        self.library_path = str(Path(library)) if isinstance(library, (str, os.PathLike)) else None
        self.max_skill_steps = self.library.max_skill_steps if max_skill_steps is None else int(max_skill_steps)
        self.progress_threshold, self.record_frames = progress_threshold, record_frames
        if record_frames and getattr(env, "render_mode", None) != "rgb_array":
            raise ValueError(f"record_frames needs a low-level env that renders frames (render_mode='rgb_array'), "
                             f"got render_mode={getattr(env, 'render_mode', None)!r}")

        # Skills of one's own have no LibraryConfig: closed loop on the observation they declare, no instruction.
        cfg = self.library.config if isinstance(self.library, SkillLibrary) else None
        prior_space = self.library.observation_space
        self._conditioned = cfg is not None and cfg.language_conditioned
        if self._conditioned:
            self._check_instruction(env.observation_space, self.library.instruction_space)
            prior_space = prior_space[cfg.obs_kind]
        self._obs_key = self._find_observation_key(env.observation_space, prior_space)
        self._obs_dtype = prior_space.dtype
        # A closed-loop decoder may observe the state vector while the priors see pixels.
        self._decoder_obs_key = self._obs_key
        if cfg is not None and cfg.decoder == "closed_loop" and cfg.decoder_obs_kind != cfg.obs_kind:
            wanted = spaces.Box(-np.inf, np.inf, cfg.decoder_obs_shape, np.float32)
            self._decoder_obs_key = self._find_observation_key(env.observation_space, wanted)
        self._decoder_reads_obs = cfg is None or cfg.decoder == "closed_loop"
        self._pixels_at_skill_end = (
            self._obs_key == "pixels" and hasattr(env, "step_without_pixels")
            and not (self._decoder_reads_obs and self._decoder_obs_key == "pixels")
        )
        self.observation_space = self.library.observation_space
        arg_bound = cfg.arg_bound if cfg is not None else float(getattr(self.library, "arg_bound", DEFAULT_ARG_BOUND))
        self.action_space = skill_action_space(self.library.num_skills, self.library.z_dim, arg_bound)
        self._last_obs: Any = None
        self._episode_over = False
        self.last_skill_frames: list[np.ndarray] = []
        self.on_low_level_step: Callable[[], None] | None = None
        """Called after each low-level step of a skill (AsyncSkillVecEnv's workers report progress with it)."""

    @property
    def skill_prior(self):
        """The library's priors p(d|s), p(z|s,d) (a torch module) — SkillSAC starts from them; None for skills
        of one's own that have none."""
        return getattr(self.library, "priors", None)

    @staticmethod
    def _check_instruction(low: spaces.Space, wanted: spaces.Box) -> None:
        entry = low.spaces.get(INSTRUCTION_KEY) if isinstance(low, spaces.Dict) else None
        if not (isinstance(entry, spaces.Box) and entry.shape == wanted.shape):
            raise ValueError(
                f"the skill library is language-conditioned: the low-level env must observe a Dict with the "
                f"episode's instruction embedding under {INSTRUCTION_KEY!r}, shape {wanted.shape}, got {low}. "
                "LiberoTaskEnv does (with embed_instruction=True); or use a library trained without instructions."
            )

    @staticmethod
    def _find_observation_key(low: spaces.Space, wanted: spaces.Space) -> str | None:
        def fits(space: spaces.Space) -> bool:
            return isinstance(space, spaces.Box) and space.shape == wanted.shape

        if fits(low):
            return None
        if isinstance(low, spaces.Dict):
            for key in ("pixels", "state", *low.spaces):
                if key in low.spaces and fits(low.spaces[key]):
                    return key
        raise ValueError(
            f"the low-level env observes {low}, but the skill library's priors expect {wanted}. "
            "Make the env produce that observation (e.g. KitchenTaskEnv(pixels=True, image_size=64, "
            "frame_stack=4) for a pixel library) or use a library trained on this observation."
        )

    def _prior_observation(self, obs: Any) -> np.ndarray:
        obs = obs if self._obs_key is None else obs[self._obs_key]
        return np.asarray(obs, dtype=self._obs_dtype)

    def _instruction(self, obs: Any) -> np.ndarray | None:
        return np.asarray(obs[INSTRUCTION_KEY], np.float32) if self._conditioned else None

    def _observation(self, obs: Any) -> np.ndarray | dict[str, np.ndarray]:
        if not self._conditioned:
            return self._prior_observation(obs)
        return {self.library.config.obs_kind: self._prior_observation(obs), INSTRUCTION_KEY: self._instruction(obs)}

    def _decoder_observation(self, obs: Any) -> np.ndarray:
        if self._decoder_obs_key == self._obs_key:
            return self._prior_observation(obs)
        return np.asarray(obs if self._decoder_obs_key is None else obs[self._decoder_obs_key], np.float32)

    # -- action checking ----------------------------------------------------------------------
    def parse_action(self, action: Any) -> tuple[int, np.ndarray]:
        """Validate an action; returns ``(skill, arg)`` or raises ``ValueError`` naming the problem."""
        if not isinstance(action, Mapping):
            raise ValueError(
                f"a skill action is a dict {{'skill': int, 'arg': float32 array of shape "
                f"({self.library.z_dim},)}}, got {type(action).__name__}. Wrap the env with "
                "FlattenSkillAction to act with a flat Box."
            )
        if set(action.keys()) != {"skill", "arg"}:
            raise ValueError(f"a skill action has exactly the keys 'skill' and 'arg', got {sorted(action)}")
        skill = np.asarray(action["skill"])
        if skill.size != 1 or not np.issubdtype(skill.dtype, np.integer):
            raise ValueError(f"action['skill'] must be one integer, got {action['skill']!r}")
        skill_id = int(skill.reshape(()))
        if not 0 <= skill_id < self.library.num_skills:
            raise ValueError(f"action['skill'] = {skill_id} is outside [0, {self.library.num_skills})")
        arg = np.asarray(action["arg"])
        if arg.shape != (self.library.z_dim,):
            raise ValueError(f"action['arg'] must have shape ({self.library.z_dim},), got {arg.shape}")
        if not np.issubdtype(arg.dtype, np.floating):
            raise ValueError(f"action['arg'] must be a float array, got dtype {arg.dtype}")
        if not np.all(np.isfinite(arg)):
            raise ValueError(f"action['arg'] contains NaN or inf: {arg}")
        box = self.action_space["arg"]
        return skill_id, np.clip(arg.astype(np.float32), box.low, box.high)

    # -- gymnasium API ------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        self._episode_over = False
        self.last_skill_frames = []
        return self._observation(obs), info

    def step(self, action: Any):
        """Run one skill to its end; the reward is the sum of its low-level rewards."""
        if self._last_obs is None:
            raise RuntimeError("call reset() before step()")
        if self._episode_over:
            raise RuntimeError("the episode has ended (terminated or truncated); call reset() before step()")
        skill, arg = self.parse_action(action)
        instruction = self._instruction(self._last_obs)
        state = (self.library.start(np.array([skill]), arg[None]) if instruction is None
                 else self.library.start(np.array([skill]), arg[None], instruction[None]))
        terminated = truncated = False
        info: dict[str, Any] = {}
        total, rewards = 0.0, []
        frames: list[np.ndarray] = []
        obs = self._last_obs
        low_step = self.env.step_without_pixels if self._pixels_at_skill_end else self.env.step
        for _ in range(self.max_skill_steps):
            decoder_obs = self._decoder_observation(obs)[None] if self._decoder_reads_obs else None
            low_action, progress, state = self.library.step(state, decoder_obs)
            obs, reward, terminated, truncated, info = low_step(low_action[0])
            total += float(reward)
            rewards.append(float(reward))
            if self.on_low_level_step is not None:
                self.on_low_level_step()
            if self.record_frames:
                frames.append(self.env.render())
            if terminated or truncated or (self.progress_threshold is not None
                                           and float(progress[0]) >= self.progress_threshold):
                break
        if self._pixels_at_skill_end:
            obs = self.env.current_observation()
        self._last_obs = obs
        self._episode_over = bool(terminated or truncated)
        self.last_skill_frames = frames
        info = dict(info)
        skill_rewards = np.zeros(self.max_skill_steps, np.float64)
        skill_rewards[: len(rewards)] = rewards
        info.update(skill=skill, arg=arg, skill_steps=len(rewards), skill_rewards=skill_rewards)
        if self.record_frames:
            info["frames"] = frames
        return self._observation(obs), total, terminated, truncated, info

    def render(self):
        """The last low-level frame (``RecordSkillVideo`` records all of a skill's frames)."""
        return self.env.render()
