"""Evaluation of a trained skill model on held-out segments: reconstruction, progress, priors.

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
        pred_a, pred_l = model.decoder(batch.prev_actions, batch.prev_progress, mean, batch.skill, batch.step_obs,
                                       batch.instruction)
        sq = ((pred_a - batch.actions) ** 2).mean(-1).numpy()
        skill = batch.skill.numpy()
        np.add.at(per_skill_sq, skill, (sq * mask).sum(1))
        np.add.at(per_skill_n, skill, mask.sum(1))
        sums["progress_abs"] += float((np.abs(pred_l.numpy() - batch.progress.numpy()) * mask).sum())
        n_steps += mask.sum()
        logits, _, _ = model.priors(model.priors.inputs(batch.prior_obs, batch.instruction))
        correct += int((logits.argmax(-1) == batch.skill).sum())
        n_seg += len(idx)
        _, terms = model.loss(batch, sample=False)
        sums["prior_z_nll"] += float(terms["prior_z"]) * len(idx)
        if cfg.decoder == "open_loop":  # free-running decode, exactly what the RL env executes
            instruction = None if batch.instruction is None else batch.instruction.numpy()
            free_a, free_l = library.decode(skill, mean.numpy(), instruction)
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
