"""Evaluation of a trained skill model: held-out reconstruction, priors, and prior rollouts.

- :func:`evaluate_heldout`: on held-out segments (each from its first action, up to the window
  length): action MSE per skill, progress MAE, prior top-1 accuracy -- teacher-forced (what the
  loss sees) and free-running (the library's own decode from the encoder's mean z, what RL sees).
- :func:`prior_rollouts`: paper-style "prior-only" rollouts in the kitchen: at each decision
  sample d ~ p(d|s), z ~ p(z|s,d), execute the decoded actions until progress >= threshold or
  ``max_skill_steps``; count subtasks completed in 280 steps (the ordered evaluation task, and
  unordered).
- :func:`posterior_replay`: the decoder alone, closed loop: replay labelled training episodes
  from their recorded start, each segment decoded from the encoder's z of its own actions. It
  separates a decoder that cannot reproduce its data from priors that choose badly.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skillgym.skills.data import SegmentData, make_batch
from skillgym.skills.library import SkillLibrary
from skillgym.skills.model import SkillVAE


@torch.no_grad()
def evaluate_heldout(model: SkillVAE, library: SkillLibrary, data: SegmentData, window: int,
                     batch_size: int = 256) -> dict[str, Any]:
    """Reconstruction / progress / prior metrics on every segment of ``data`` (deterministic)."""
    cfg = model.config
    if data.num_segments == 0:
        return {"num_segments": 0}
    sums: dict[str, float] = defaultdict(float)
    per_skill_sq = np.zeros(cfg.num_skills)
    per_skill_n = np.zeros(cfg.num_skills)
    per_skill_free_sq = np.zeros(cfg.num_skills)
    n_steps = 0.0
    n_seg = 0
    correct = 0
    for lo in range(0, data.num_segments, batch_size):
        idx = np.arange(lo, min(lo + batch_size, data.num_segments))
        batch = make_batch(data, idx, window, obs_kind=cfg.obs_kind, frame_stack=cfg.frame_stack,
                           closed_loop=cfg.decoder == "closed_loop", step_obs_kind=cfg.decoder_obs_kind)
        mask = batch.mask.numpy()
        mean, _ = model.encoder(batch.actions, batch.skill, batch.lengths)
        pred_a, pred_l = model.decoder(batch.prev_actions, batch.prev_progress, mean, batch.skill, batch.step_obs)
        sq = ((pred_a - batch.actions) ** 2).mean(-1).numpy()
        skill = batch.skill.numpy()
        np.add.at(per_skill_sq, skill, (sq * mask).sum(1))
        np.add.at(per_skill_n, skill, mask.sum(1))
        sums["progress_abs"] += float((np.abs(pred_l.numpy() - batch.progress.numpy()) * mask).sum())
        n_steps += mask.sum()
        logits, _, _ = model.priors(batch.prior_obs)
        correct += int((logits.argmax(-1) == batch.skill).sum())
        n_seg += len(idx)
        _, terms = model.loss(batch, sample=False)
        sums["prior_z_nll"] += float(terms["prior_z"]) * len(idx)
        if cfg.decoder == "open_loop":  # free-running decode, exactly what the RL env executes
            free_a, free_l = library.decode(skill, mean.numpy())
            free_a, free_l = free_a[:, :window], free_l[:, :window]
            fsq = ((free_a - batch.actions.numpy()) ** 2).mean(-1)
            np.add.at(per_skill_free_sq, skill, (fsq * mask).sum(1))
            sums["free_progress_abs"] += float((np.abs(free_l - batch.progress.numpy()) * mask).sum())
    seen = per_skill_n > 0
    out: dict[str, Any] = {
        "num_segments": n_seg,
        "num_steps": int(n_steps),
        "action_mse": float(per_skill_sq.sum() / n_steps),
        "action_mse_per_skill": [float(s / n) if n else None for s, n in zip(per_skill_sq, per_skill_n, strict=True)],
        "segments_per_skill": np.bincount(data.segments[:, 3], minlength=cfg.num_skills).tolist(),
        "progress_mae": sums["progress_abs"] / n_steps,
        "prior_accuracy": correct / n_seg,
        "prior_z_nll": sums["prior_z_nll"] / n_seg,
    }
    if cfg.decoder == "open_loop":
        out["free_action_mse"] = float(per_skill_free_sq.sum() / n_steps)
        out["free_action_mse_per_skill"] = [float(s / n) if n else None
                                            for s, n in zip(per_skill_free_sq, per_skill_n, strict=True)]
        out["free_progress_mae"] = sums["free_progress_abs"] / n_steps
    out["skills_seen"] = int(seen.sum())
    return out


def prior_rollouts(library: SkillLibrary, episodes: int = 10, seed: int = 0,
                   progress_threshold: float | None = None, max_steps: int = 280,
                   greedy: bool = False, z_scale: float | Sequence[float] = 1.0) -> dict[str, Any]:
    """Run the priors alone (no RL) in the kitchen evaluation task; count subtasks completed.

    Skills execute through :class:`~skillgym.envs.skill_space.SkillSpaceEnv`, exactly as an
    agent's would. ``greedy`` picks argmax d and the prior mean z instead of sampling;
    ``z_scale`` multiplies the prior's std when z is sampled (1: the prior; 0: its mean, with d
    still sampled), or one scale per z dim -- a diagnostic of how much the sampled arguments cost
    and in which dims (see :func:`z_statistics`). Seeded:
    episode ``i`` resets the env with ``seed + i`` and samples from ``default_rng(seed + i)``.
    """
    from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv
    from skillgym.tasks.kitchen import ALL_TASKS, DEFAULT_TASKS, KitchenTaskEnv

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


def _replay_inputs(library: SkillLibrary, labels_path, dataset_path):
    """Checks shared by the replay diagnostics; returns the labels and the dataset they replay."""
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.labels import SkillLabels

    cfg = library.config
    if library.encoder is None:
        raise ValueError("replaying the data needs the encoder q(z|a,d); this library was saved without it")
    if cfg.decoder == "closed_loop" and cfg.decoder_obs_kind != "state":
        raise ValueError("replaying the data supports decoders that see the state vector (decoder_obs='state')")
    labels = SkillLabels.load(labels_path or cfg.trained_on.get("labels_path", ""))
    dataset = open_dataset(dataset_path or cfg.trained_on.get("dataset_path", ""))
    if not dataset.has_sim_states:
        raise ValueError(f"{dataset.path} stores no simulator states; replaying it needs them")
    return labels, dataset


def _windows(library: SkillLibrary, labels, episode: int) -> dict[int, tuple[int, int]]:
    """Start step -> (length, skill) of every labelled window of ``episode``: segments cut into
    pieces of at most ``max_skill_steps``, as the env caps a skill."""
    cap = library.config.max_skill_steps
    windows = {}
    for _, start, end, skill in labels.segments[labels.segments[:, 0] == episode]:
        for a in range(int(start), int(end), cap):
            windows[a] = (min(cap, int(end) - a), int(skill))
    return windows


def _run_window(library: SkillLibrary, env, obs, actions: np.ndarray, skill: int):
    """Decode one window in ``env`` from ``obs`` with z = the encoder mean of its ``actions``."""
    with torch.no_grad():
        z, _ = library.encoder(torch.from_numpy(actions[None].astype(np.float32)), torch.tensor([skill]),
                               torch.tensor([len(actions)]))
    state = library.decoder_start(np.array([skill]), z.numpy())
    for _ in range(len(actions)):
        action, _, state = library.decoder_step(state, np.asarray(obs, np.float32)[None])
        obs, *_ = env.step(action[0])
    return obs


def _replay_span(library: SkillLibrary, env, ep, windows: dict[int, tuple[int, int]], start: int, end: int) -> None:
    """Steps ``start..end`` of ``ep`` in ``env`` (already at the state of step ``start``): labelled
    windows decoded with the encoder's z of their actions, unlabelled steps replaying the data's."""
    obs, t = ep.states[start], start
    while t < end:
        if t in windows:
            n, skill = windows[t]
            obs = _run_window(library, env, obs, ep.actions[t:t + n], skill)
            t += n
        else:
            obs, *_ = env.step(ep.actions[t])
            t += 1


def posterior_replay(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                     dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Decode the first ``episodes`` episodes of the library's labelled data (most of them training
    episodes; about 10 % were held out) with the encoder's z of their own actions.

    Each episode starts from its recorded simulator state. Unlabelled steps replay the data's
    actions; a segment is cut into windows of at most ``max_skill_steps`` (as the env caps a
    skill), each window's z is the encoder mean of that window's actions, and the decoder runs
    exactly that many steps in the env, closed loop when the library is. Returns the subtasks (any
    of 7) completed by the data and by the replay. Needs the library's encoder weights and its
    training data (paths default to ``config.trained_on``).
    """
    from skillgym.tasks.kitchen import ALL_TASKS, KitchenTaskEnv

    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    env = KitchenTaskEnv(max_episode_steps=10**6)
    data_done, replay_done = [], []
    try:
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            env.reset(seed=e)
            env.set_sim_state(ep.sim_states[0])
            _replay_span(library, env, ep, _windows(library, labels, e), 0, len(ep.actions))
            replay_done.append([task for task in ALL_TASKS if env.task_done(task)])
            env.set_sim_state(ep.sim_states[-1])
            data_done.append([task for task in ALL_TASKS if env.task_done(task)])
    finally:
        env.close()
    n_data, n_replay = sum(map(len, data_done)), sum(map(len, replay_done))
    return {
        "episodes": len(data_done),
        "data_subtasks": data_done,
        "replay_subtasks": replay_done,
        "data_mean": n_data / max(len(data_done), 1),
        "replay_mean": n_replay / max(len(data_done), 1),
        "replay_fraction": n_replay / n_data if n_data else None,
    }


def window_errors(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                  dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """How far each decoded window ends from where the data's window ended, in cm of end-effector
    position, by the subtask the data was performing.

    Unlike :func:`posterior_replay`, every window starts from the data's own simulator state at
    its first step, so errors do not carry over: this measures one skill execution at a time.
    """
    from skillgym.tasks.kitchen import ALL_TASKS, KitchenTaskEnv

    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    env = KitchenTaskEnv(max_episode_steps=10**6)
    site = env.model.site("end_effector").id
    errors: dict[str, list[float]] = {}
    try:
        env.reset(seed=0)
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            for t, (n, skill) in sorted(_windows(library, labels, e).items()):
                env.set_sim_state(ep.sim_states[t + n])
                target = env.data.site_xpos[site].copy()
                env.set_sim_state(ep.sim_states[t])
                _run_window(library, env, ep.states[t], ep.actions[t:t + n], skill)
                task = "unknown" if ep.subtasks is None or ep.subtasks[t] < 0 else ALL_TASKS[ep.subtasks[t]]
                errors.setdefault(task, []).append(100 * float(np.linalg.norm(env.data.site_xpos[site] - target)))
    finally:
        env.close()
    every = [x for v in errors.values() for x in v]
    return {
        "episodes": min(episodes, len(dataset)),
        "windows": len(every),
        "median_cm": float(np.median(every)) if every else None,
        "mean_cm": float(np.mean(every)) if every else None,
        "median_cm_by_subtask": {k: float(np.median(v)) for k, v in sorted(errors.items())},
        "windows_by_subtask": {k: len(v) for k, v in sorted(errors.items())},
    }


def subtask_replay(library: SkillLibrary, task: str, episodes: int = 20, labels_path: str | os.PathLike | None = None,
                   dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """One subtask at a time: from the data's own simulator state where the windows covering
    ``task`` begin, decode them (z from the encoder, as in :func:`posterior_replay`) and report
    whether the subtask gets done and how far its object ends from the goal, next to where the
    demonstration left it. Tells "the decoder cannot do it" from "it gets close": the demonstrations
    may themselves stop just inside the success threshold (see ``--follow-through`` of the data).
    """
    from skillgym.tasks.kitchen import ALL_TASKS, BONUS_THRESH, KitchenTaskEnv

    if task not in ALL_TASKS:
        raise ValueError(f"unknown subtask {task!r}; choose from {ALL_TASKS}")
    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    if not dataset.has_subtasks:
        raise ValueError(f"{dataset.path} stores no per-step subtask; subtask_replay needs it")
    env = KitchenTaskEnv(max_episode_steps=10**6)
    code = ALL_TASKS.index(task)
    rows = []
    try:
        env.reset(seed=0)
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            steps = np.flatnonzero(ep.subtasks == code)
            if len(steps) == 0:
                continue
            windows = _windows(library, labels, e)
            first, end = int(steps[0]), int(steps[-1]) + 1
            starts = [t for t in sorted(windows) if first <= t < end]
            if not starts:
                continue
            env.set_sim_state(ep.sim_states[end])
            data_distance = env.task_distance(task)
            env.set_sim_state(ep.sim_states[starts[0]])
            _replay_span(library, env, ep, windows, starts[0], end)
            rows.append((data_distance, env.task_distance(task)))
    finally:
        env.close()
    data_d, decoded_d = (np.array([r[i] for r in rows]) for i in (0, 1))
    return {
        "task": task,
        "instances": len(rows),
        "threshold": BONUS_THRESH,
        "data_done": int((data_d < BONUS_THRESH).sum()),
        "decoded_done": int((decoded_d < BONUS_THRESH).sum()),
        "data_distance_median": float(np.median(data_d)) if rows else None,
        "decoded_distance_median": float(np.median(decoded_d)) if rows else None,
        "data_distance": data_d.round(3).tolist(),
        "decoded_distance": decoded_d.round(3).tolist(),
    }


@torch.no_grad()
def z_statistics(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                 dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Per z dim, over every window of the first ``episodes`` episodes of the library's data: how
    much the encoder's z varies between windows, how wide q(z|a,d) and p(z|s,d) are, and how far
    the prior's mean is from the encoder's.

    A dim whose posterior means barely vary (``posterior_mean_spread`` ≈ 0, ``posterior_std`` ≈ 1)
    carries no information and the decoder ignores it. In an informative dim, a prior std well
    above the posterior's is the part of the argument the state does not determine: sampled prior
    rollouts draw it at random (compare ``--z-scale`` with 1 in those dims only).
    ``length_correlation_by_skill``: per skill with ≥ 10 windows, the correlation of each dim of
    the encoder's mean with the window's length (how much z encodes where the skill stops).
    """
    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    if library.config.obs_kind != "state":
        raise ValueError("z_statistics evaluates the priors on the data's state vectors: state libraries only")
    rows = []
    for e in range(min(episodes, len(dataset))):
        ep = dataset.episode(e, frames=False)
        for t, (n, skill) in sorted(_windows(library, labels, e).items()):
            q_mean, q_log_std = library.encoder(torch.from_numpy(ep.actions[None, t:t + n].astype(np.float32)),
                                                torch.tensor([skill]), torch.tensor([n]))
            _, p_mean, p_log_std = library.prior(ep.states[t][None])
            rows.append((q_mean[0].numpy(), np.exp(q_log_std[0].numpy()), p_mean[0, skill], np.exp(p_log_std[0, skill]),
                         skill, n))
    if not rows:
        return {"episodes": min(episodes, len(dataset)), "windows": 0}
    q_mean, q_std, p_mean, p_std, skills, lengths = (np.stack(x) for x in zip(*rows, strict=True))
    # Does z encode how long the skill runs? Correlation with the window's length, within each skill.
    length_corr = {}
    for k in np.unique(skills):
        m = skills == k
        if m.sum() >= 10 and lengths[m].std() > 0:
            length_corr[str(int(k))] = [round(float(np.corrcoef(q_mean[m, i], lengths[m])[0, 1]), 2)
                                        for i in range(q_mean.shape[1])]
    return {
        "episodes": min(episodes, len(dataset)),
        "windows": len(rows),
        "posterior_mean_spread": np.round(q_mean.std(0).astype(np.float64), 3).tolist(),
        "posterior_std": np.round(q_std.mean(0).astype(np.float64), 3).tolist(),
        "prior_std": np.round(p_std.mean(0).astype(np.float64), 3).tolist(),
        "prior_mean_error": np.round(np.abs(p_mean - q_mean).mean(0).astype(np.float64), 3).tolist(),
        "length_correlation_by_skill": length_corr,
    }


def write_eval(out: str | os.PathLike, results: dict[str, Any]) -> Path:
    """``eval.json`` and a small bar plot ``eval.png`` in the library folder."""
    out = Path(out)
    (out / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = results.get("heldout", {})
    rolls = [r for r in (results.get("rollouts"), results.get("rollouts_greedy")) if r]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    per_skill = held.get("action_mse_per_skill") or []
    axes[0].bar(range(len(per_skill)), [v if v is not None else 0.0 for v in per_skill], label="teacher-forced")
    if held.get("free_action_mse_per_skill"):
        axes[0].plot(range(len(per_skill)), [v if v is not None else np.nan for v in held["free_action_mse_per_skill"]],
                     "k.", label="free-running")
    axes[0].set(xlabel="skill", ylabel="held-out action MSE",
                title=f"progress MAE {held.get('progress_mae', float('nan')):.3f}, "
                      f"prior acc {held.get('prior_accuracy', float('nan')):.2f}")
    axes[0].legend(fontsize=7)
    labels, values = [], []
    for r in rolls:
        tag = "greedy" if r["greedy"] else "sampled"
        labels += [f"ordered\n{tag}", f"unordered\n{tag}"]
        values += [r["ordered_mean"], r["unordered_mean"]]
    axes[1].bar(range(len(values)), values, color="tab:green")
    axes[1].set_xticks(range(len(values)), labels, fontsize=7)
    title = "prior rollouts"
    if results.get("replay"):
        replay = results["replay"]
        title += f"\n(posterior replay: {replay['replay_mean']:.1f} of the data's {replay['data_mean']:.1f} subtasks)"
    axes[1].set(ylabel="subtasks / episode (of 4)", ylim=(0, 4))
    axes[1].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "eval.png", dpi=100)
    plt.close(fig)
    return out / "eval.json"


def data_ceiling(library: SkillLibrary) -> float | None:
    """What the training data's own subtask orders would score on the evaluation task, replayed
    perfectly (:func:`skillgym.data.record.eval_task_ceiling`); None if that data is not on disk."""
    from skillgym.data.record import eval_task_ceiling

    path = Path(library.config.trained_on.get("dataset_path", "")) / "recording.json"
    if not path.is_file():
        return None
    return eval_task_ceiling(json.loads(path.read_text())["episodes"])


def _z_scale(text: str) -> float | list[float]:
    values = [float(x) for x in text.split(",")]
    return values[0] if len(values) == 1 else values


def main(argv: list[str] | None = None) -> int:
    """Re-run the prior rollouts of an existing library: ``python -m skillgym.skills.evaluate LIB``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m skillgym.skills.evaluate", description=main.__doc__)
    p.add_argument("library")
    p.add_argument("--episodes", type=int, default=10, help="prior-rollout episodes (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threshold", type=float, default=None,
                   help="progress threshold that ends a skill (default: SkillSpaceEnv's)")
    p.add_argument("--greedy", action="store_true", help="argmax skill and mean z instead of sampling")
    p.add_argument("--z-scale", type=_z_scale, default=1.0, metavar="S or S1,S2,...",
                   help="scale of the prior's std when sampling z (1: the prior, 0: its mean; d is still "
                        "sampled), or one per z dim, e.g. 0,1,0,1,0")
    p.add_argument("--replay", type=int, default=0, metavar="N",
                   help="also replay the first N episodes of the library's data with the decoder alone "
                        "(z from the encoder), see posterior_replay")
    p.add_argument("--window-errors", type=int, default=0, metavar="N",
                   help="also decode every window of the first N episodes from the data's own state and "
                        "report how far from the data's end point it ends (see window_errors)")
    p.add_argument("--z-stats", type=int, default=0, metavar="N",
                   help="also report, per z dim, the spread and width of q(z|a,d) and p(z|s,d) over every "
                        "window of the first N episodes of the library's data (see z_statistics)")
    p.add_argument("--subtask-replay", nargs=2, metavar=("TASK", "N"), default=None,
                   help="also decode TASK alone from the data's state where it starts, in the first N episodes "
                        "(see subtask_replay), e.g. --subtask-replay 'bottom burner' 20")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    library = SkillLibrary.load(args.library)
    if args.replay:
        replay = posterior_replay(library, episodes=args.replay)
        print(json.dumps({"posterior_replay": replay}, indent=2))
    if args.window_errors:
        print(json.dumps({"window_errors": window_errors(library, episodes=args.window_errors)}, indent=2))
    if args.subtask_replay:
        task, n = args.subtask_replay
        print(json.dumps({"subtask_replay": subtask_replay(library, task, episodes=int(n))}, indent=2))
    if args.z_stats:
        print(json.dumps({"z_statistics": z_statistics(library, episodes=args.z_stats)}, indent=2))
    if args.episodes > 0:
        r = prior_rollouts(library, episodes=args.episodes, seed=args.seed,
                           progress_threshold=args.threshold, greedy=args.greedy, z_scale=args.z_scale)
        ceiling = data_ceiling(library)
        if ceiling is not None:
            r["data_ceiling"] = ceiling
        print(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
