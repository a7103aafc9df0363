"""Prior-only rollouts: a skill library's priors alone (no RL) acting in the kitchen task.

The paper's first check of a library: at each decision sample d ~ p(d|s), z ~ p(z|s,d) (or take
the argmax and the mean), execute the skill through :class:`SkillSpaceEnv` exactly as an agent's
would, and count the subtasks completed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import ALL_TASKS, DEFAULT_TASKS, KitchenTaskEnv


def prior_rollouts(library: SkillLibrary, episodes: int = 10, seed: int = 0,
                   progress_threshold: float | None = None, max_steps: int = 280,
                   greedy: bool = False, z_scale: float | Sequence[float] = 1.0) -> dict[str, Any]:
    """Run the priors alone (no RL) in the kitchen evaluation task; count subtasks completed.

    Skills execute through :class:`~skillgym.envs.skill_space.SkillSpaceEnv`, exactly as an
    agent's would. ``greedy`` picks argmax d and the prior mean z instead of sampling;
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
    pixels = cfg.obs_kind == "pixels"
    low = KitchenTaskEnv(tasks=DEFAULT_TASKS, ordered=True, max_episode_steps=max_steps, pixels=pixels,
                         image_size=cfg.image_size, frame_stack=cfg.frame_stack if pixels else 1)
    threshold = DEFAULT_PROGRESS_THRESHOLD if progress_threshold is None else progress_threshold
    env = SkillSpaceEnv(low, library, progress_threshold=threshold)
    ordered, unordered, any_task, skills_used, skill_lengths = [], [], [], [], []
    try:
        for i in range(episodes):
            rng = np.random.default_rng(seed + i)
            obs, info = env.reset(seed=seed + i)
            done_any: set[str] = set()
            terminated = truncated = False
            while not (terminated or truncated):
                logits, mean, log_std = library.prior(obs[None])
                if greedy:
                    d = int(logits[0].argmax())
                    z = mean[0, d]
                else:
                    p = np.exp(logits[0] - logits[0].max())
                    d = int(rng.choice(cfg.num_skills, p=p / p.sum()))
                    z = mean[0, d] + scale * np.exp(log_std[0, d]) * rng.standard_normal(cfg.z_dim)
                obs, _, terminated, truncated, info = env.step({"skill": d, "arg": z.astype(np.float32)})
                skills_used.append(d)
                skill_lengths.append(info["skill_steps"])
                done_any.update(t for t in ALL_TASKS if low.task_done(t))
            ordered.append(info["num_completed"])
            unordered.append(len(done_any & set(DEFAULT_TASKS)))
            any_task.append(len(done_any))
    finally:
        env.close()
    return {
        "episodes": episodes,
        "greedy": greedy,
        "z_scale": float(z_scale) if np.ndim(z_scale) == 0 else scale.tolist(),
        "progress_threshold": threshold,
        "tasks": list(DEFAULT_TASKS),
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
