"""Prior-only rollouts: a skill library's priors alone (no RL) acting in a task.

The paper's first check of a library: at each decision sample d ~ p(d|s), z ~ p(z|s,d) (or take
the argmax and the mean), execute the skill through :class:`SkillSpaceEnv` exactly as an agent's
would, and count the subtasks completed (:func:`prior_rollouts`, the kitchen) or the returns and
successes (:func:`skill_env_rollouts`, any skill env, e.g. a LIBERO task).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from skillgym.envs.skill_kitchen import kitchen_env_for
from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv
from skillgym.language import INSTRUCTION_KEY
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import ALL_TASKS, DEFAULT_TASKS


def prior_action(library: SkillLibrary, obs: Any, rng: np.random.Generator, greedy: bool = False,
                 z_scale: float | np.ndarray = 1.0) -> dict[str, Any]:
    """The priors' skill-space action at the skill env's observation ``obs``.

    ``obs`` is what :class:`SkillSpaceEnv` returns: the priors' input, or for a language-conditioned
    library the ``Dict`` of it and the ``"instruction"`` embedding, which the priors then read.
    Sampled: d ~ p(d|s), z ~ mean + ``z_scale`` * std * N(0, 1) from ``rng``; ``greedy``: argmax d
    and the mean z (``rng`` unused).
    """
    if isinstance(obs, dict):
        logits, mean, log_std = library.prior(obs[library.config.obs_kind][None],
                                              instruction=obs[INSTRUCTION_KEY][None])
    else:
        logits, mean, log_std = library.prior(obs[None])
    if greedy:
        d = int(logits[0].argmax())
        z = mean[0, d]
    else:
        p = np.exp(logits[0] - logits[0].max())
        d = int(rng.choice(library.num_skills, p=p / p.sum()))
        z = mean[0, d] + z_scale * np.exp(log_std[0, d]) * rng.standard_normal(library.z_dim)
    return {"skill": d, "arg": z.astype(np.float32)}


def skill_env_rollouts(env: gym.Env, episodes: int = 10, seed: int = 0,
                       greedy: bool = False) -> dict[str, Any]:
    """Run the priors of the skill env ``env``'s library alone in it; returns and successes.

    A success is an episode that ends ``terminated`` with ``info["success"]`` true (LIBERO's own
    check) or, for envs without that entry, terminated. Seeded as :func:`prior_rollouts`: episode
    ``i`` resets with ``seed + i`` and samples from ``default_rng(seed + i)``. ``env`` stays open.
    """
    if episodes < 1 or seed < 0:
        raise ValueError(f"episodes must be >= 1 and seed >= 0, got episodes={episodes}, seed={seed}")
    library = env.get_wrapper_attr("library")
    returns, successes, lengths, skills_used, skill_lengths = [], [], [], [], []
    for i in range(episodes):
        rng = np.random.default_rng(seed + i)
        obs, info = env.reset(seed=seed + i)
        total, steps, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated):
            action = prior_action(library, obs, rng, greedy=greedy)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += int(info["skill_steps"])
            skills_used.append(action["skill"])
            skill_lengths.append(info["skill_steps"])
        returns.append(total)
        successes.append(bool(terminated and info.get("success", True)))
        lengths.append(steps)
    return {
        "episodes": episodes,
        "seed": seed,
        "greedy": greedy,
        "returns": returns,
        "successes": successes,
        "success_rate": float(np.mean(successes)),
        "mean_return": float(np.mean(returns)),
        "episode_steps": lengths,
        "skill_histogram": np.bincount(skills_used, minlength=library.num_skills).tolist(),
        "mean_skill_length": float(np.mean(skill_lengths)) if skill_lengths else 0.0,
    }


def prior_rollouts(library: SkillLibrary, episodes: int = 10, seed: int = 0,
                   progress_threshold: float | None = DEFAULT_PROGRESS_THRESHOLD, max_steps: int = 280,
                   greedy: bool = False, z_scale: float | Sequence[float] = 1.0,
                   tasks: Sequence[str] = DEFAULT_TASKS) -> dict[str, Any]:
    """Run the priors alone (no RL) in the ordered kitchen task ``tasks``; count subtasks completed.

    Skills execute through :class:`~skillgym.envs.skill_space.SkillSpaceEnv`, exactly as an
    agent's would, and ``progress_threshold`` means what it means there (None: fixed-length
    skills). ``greedy`` picks argmax d and the prior mean z instead of sampling;
    ``z_scale`` multiplies the prior's std when z is sampled (1: the prior; 0: its mean, with d
    still sampled), or one scale per z dim -- a diagnostic of how much the sampled arguments cost
    and in which dims (see training/diagnostics.py). Seeded:
    episode ``i`` resets the env with ``seed + i`` and samples from ``default_rng(seed + i)``.
    """
    cfg = library.config
    scale = np.asarray(z_scale, dtype=np.float64)
    if scale.ndim == 0:
        scale = np.full(cfg.z_dim, float(scale))
    if scale.shape != (cfg.z_dim,):
        raise ValueError(f"z_scale: one number or one per z dim ({cfg.z_dim} of them), got {z_scale!r}")
    low = kitchen_env_for(library, tasks=tasks, ordered=True, max_episode_steps=max_steps)
    env = SkillSpaceEnv(low, library, progress_threshold=progress_threshold)
    ordered, unordered, any_task, skills_used, skill_lengths = [], [], [], [], []
    try:
        for i in range(episodes):
            rng = np.random.default_rng(seed + i)
            obs, info = env.reset(seed=seed + i)
            done_any: set[str] = set()
            terminated = truncated = False
            while not (terminated or truncated):
                action = prior_action(library, obs, rng, greedy=greedy, z_scale=scale)
                obs, _, terminated, truncated, info = env.step(action)
                skills_used.append(action["skill"])
                skill_lengths.append(info["skill_steps"])
                done_any.update(t for t in ALL_TASKS if low.task_done(t))
            ordered.append(info["num_completed"])
            unordered.append(len(done_any & set(tasks)))
            any_task.append(len(done_any))
    finally:
        env.close()
    return {
        "episodes": episodes,
        "greedy": greedy,
        "z_scale": float(z_scale) if np.ndim(z_scale) == 0 else scale.tolist(),
        "progress_threshold": progress_threshold,
        "tasks": list(tasks),
        "ordered_subtasks": ordered,
        "ordered_mean": float(np.mean(ordered)),
        "unordered_subtasks": unordered,
        "unordered_mean": float(np.mean(unordered)),
        "any_of_7_subtasks": any_task,
        "any_of_7_mean": float(np.mean(any_task)),
        "skill_histogram": np.bincount(skills_used, minlength=cfg.num_skills).tolist(),
        "mean_skill_length": float(np.mean(skill_lengths)) if skill_lengths else 0.0,
        "capped_fraction": float(np.mean(np.asarray(skill_lengths) >= cfg.max_skill_steps)) if skill_lengths else 0.0,
    }
