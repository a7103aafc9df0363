"""Plots and numbers that show what stage 1 found (paper Fig. 4, 10, 11).

``write_report(labels, dataset, out_dir, embeddings=...)`` writes:

- ``pca.png``: 2-D PCA of a sample of embedding differences, coloured by skill (Fig. 4);
- ``lengths.png``: histogram of segment lengths and a box plot per skill (Fig. 10);
- ``frames.png``: frames from two random segments per skill (Fig. 11), if frames are available;
- ``timeline.png``: skill labels along the first episodes (and the true subtasks, if recorded);
- ``summary.json``: segments per skill, mean/median length, silhouette on a sample, fraction of
  steps kept in segments and, with ground-truth subtasks, how well skills match them (AMI, ARI,
  purity, boundary precision/recall/F1, mean subtask length; see :mod:`skillgym.extract.quality`)
  plus the skill x subtask confusion table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from skillgym.extract.labels import SkillLabels
from skillgym.extract.quality import contingency, subtask_quality

PCA_SAMPLES = 5000
SILHOUETTE_SAMPLES = 3000
FRAMES_PER_STRIP = 6


def summarize(labels: SkillLabels, dataset: Any = None, embeddings: np.ndarray | None = None,
              seed: int = 0) -> dict[str, Any]:
    """The numbers of ``summary.json`` (see module docstring)."""
    from sklearn.metrics import silhouette_score

    k, seg = labels.num_skills, labels.segments
    lengths = seg[:, 2] - seg[:, 1] if len(seg) else np.zeros(0, np.int64)
    per_skill = [lengths[seg[:, 3] == s] for s in range(k)] if len(seg) else [lengths] * k
    n = len(labels.frame_labels)
    summary: dict[str, Any] = {
        "num_episodes": labels.num_episodes,
        "num_steps": int(n),
        "k": k,
        "num_segments": int(len(seg)),
        "segments_per_episode": float(len(seg) / max(labels.num_episodes, 1)),
        "segments_per_skill": [int(len(x)) for x in per_skill],
        "skills_used": int(sum(len(x) > 0 for x in per_skill)),
        "steps_per_skill": np.bincount(labels.frame_labels, minlength=k).astype(int).tolist(),
        "mean_segment_length": float(lengths.mean()) if len(lengths) else 0.0,
        "median_segment_length": float(np.median(lengths)) if len(lengths) else 0.0,
        "mean_segment_length_per_skill": [float(x.mean()) if len(x) else None for x in per_skill],
        "fraction_steps_kept": float(lengths.sum() / max(n, 1)),
        "settings": labels.metadata,
    }
    if embeddings is not None and len(np.unique(labels.frame_labels)) > 1:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(n, size=min(n, SILHOUETTE_SAMPLES), replace=False))
        sample_labels = labels.frame_labels[idx]
        if len(np.unique(sample_labels)) > 1:
            x = np.asarray(embeddings[idx], np.float32)
            summary["silhouette"] = float(silhouette_score(x, sample_labels))
            summary["silhouette_samples"] = int(len(idx))
    if dataset is not None and getattr(dataset, "has_subtasks", False):
        truth = [dataset.episode(i, frames=False).subtasks for i in range(len(dataset))]
        quality = subtask_quality(labels, truth)
        if quality is not None:
            names = list(dataset.subtask_names())
            summary.update(quality)
            table = contingency(labels.frame_labels, np.concatenate(truth), k, len(names))
            summary["confusion"] = {"rows": "skill", "columns": names, "counts": table.tolist()}
            summary["skill_majority_subtask"] = [
                {"skill": s, "subtask": names[int(table[s].argmax())], "purity": quality["purity_per_skill"][s]}
                for s in range(k) if table[s].sum() > 0
            ]
    return summary


def write_report(
    labels: SkillLabels,
    dataset: Any,
    out_dir: str | os.PathLike,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    max_timeline_episodes: int = 12,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the plots and ``summary.json`` into ``out_dir``; returns the summary."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(labels, dataset, embeddings, seed)
    plots = []
    if embeddings is not None:
        _plot_pca(labels, embeddings, out / "pca.png", seed)
        plots.append("pca.png")
    _plot_lengths(labels, out / "lengths.png")
    plots.append("lengths.png")
    if dataset is not None and _can_show_frames(dataset) and len(labels.segments):
        _plot_frames(labels, dataset, out / "frames.png", seed)
        plots.append("frames.png")
    if dataset is not None:
        _plot_timeline(labels, dataset, out / "timeline.png", max_timeline_episodes, summary)
        plots.append("timeline.png")
    summary["plots"] = plots
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if progress:
        print(format_summary(summary))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A few human-readable lines of the summary."""
    subtask_runs = (f" (true subtask runs {summary['mean_subtask_length']:.1f})"
                    if "mean_subtask_length" in summary else "")
    lines = [
        f"{summary['num_segments']} segments over {summary['num_episodes']} episodes "
        f"({summary['segments_per_episode']:.1f}/episode); skills used {summary['skills_used']}/{summary['k']}",
        f"segment length mean {summary['mean_segment_length']:.1f}{subtask_runs}, "
        f"median {summary['median_segment_length']:.1f}; "
        f"{100 * summary['fraction_steps_kept']:.1f}% of steps in segments",
        f"segments per skill: {summary['segments_per_skill']}",
    ]
    if "silhouette" in summary:
        lines.append(f"silhouette (sample of {summary['silhouette_samples']}): {summary['silhouette']:.3f}")
    if "subtask_ami" in summary:
        lines.append("against the executed subtasks: " + _agreement(summary))
    if "boundary_f1" in summary:
        lines.append(
            f"subtask boundaries within {summary['boundary_tolerance']} steps: F1 {_score(summary['boundary_f1'])}, "
            f"precision {_score(summary['boundary_precision'])}, recall {_score(summary['boundary_recall'])} "
            f"({summary['boundary_hits']} hits, {summary['boundaries_predicted']} predicted, "
            f"{summary['boundaries_true']} true)")
    return "\n".join(lines)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _agreement(summary: dict[str, Any]) -> str:
    """AMI, ARI and purity in one phrase (a summary written before ARI and purity existed has only AMI)."""
    parts = [f"AMI {summary['subtask_ami']:.3f}"]
    parts += [f"{name} {_score(summary[key])}" for name, key in (("ARI", "subtask_ari"), ("purity", "purity"))
              if key in summary]
    return ", ".join(parts)


# -- plots --------------------------------------------------------------------------------------
def _colors(k: int):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(k)]


def _plot_pca(labels: SkillLabels, embeddings: np.ndarray, path: Path, seed: int) -> None:
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    n = len(embeddings)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, PCA_SAMPLES), replace=False))
    x = np.asarray(embeddings[idx], np.float32)
    xy = PCA(n_components=2, random_state=seed).fit_transform(x) if x.shape[1] >= 2 else np.c_[x, np.zeros(len(x))]
    lab = labels.frame_labels[idx]
    fig, ax = plt.subplots(figsize=(6, 5))
    for s, color in enumerate(_colors(labels.num_skills)):
        mask = lab == s
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4, color=color, label=f"skill {s}", alpha=0.7)
    ax.set(title=f"PCA of embedding differences ({len(idx)} of {n} steps)", xlabel="PC 1", ylabel="PC 2")
    ax.legend(markerscale=3, fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_lengths(labels: SkillLabels, path: Path) -> None:
    import matplotlib.pyplot as plt

    seg, k = labels.segments, labels.num_skills
    lengths = seg[:, 2] - seg[:, 1]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6))
    ax1.hist(lengths, bins=min(40, max(5, len(np.unique(lengths)))), color="tab:blue")
    mean = lengths.mean() if len(lengths) else 0
    ax1.set(title=f"segment lengths (n={len(lengths)}, mean {mean:.1f})", xlabel="length (steps)", ylabel="count")
    data = [lengths[seg[:, 3] == s] for s in range(k)]
    ax2.boxplot([d if len(d) else [np.nan] for d in data], tick_labels=[str(s) for s in range(k)])
    ax2.set(xlabel="skill", ylabel="length (steps)", title="segment length per skill")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _can_show_frames(dataset: Any) -> bool:
    return bool(getattr(dataset, "has_frames", False) or getattr(dataset, "frame_size", None))


def _plot_frames(labels: SkillLabels, dataset: Any, path: Path, seed: int) -> None:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    seg, k = labels.segments, labels.num_skills
    rows = []  # (skill, segment row or None)
    for s in range(k):
        mine = seg[seg[:, 3] == s]
        picks = rng.choice(len(mine), size=min(2, len(mine)), replace=False) if len(mine) else []
        rows += [(s, mine[i]) for i in sorted(picks)] or [(s, None)]
    fig, axes = plt.subplots(len(rows), FRAMES_PER_STRIP, figsize=(FRAMES_PER_STRIP * 1.3, len(rows) * 1.45),
                             squeeze=False)
    cache: dict[int, np.ndarray] = {}
    for r, (s, row) in enumerate(rows):
        for c in range(FRAMES_PER_STRIP):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if row is None:
                ax.axis("off")
                continue
            ep, start, end = int(row[0]), int(row[1]), int(row[2])
            if ep not in cache:
                cache = {ep: dataset.episode(ep, frames=True).frames}  # one episode in memory at a time
            t = int(round(start + c * (end - start) / (FRAMES_PER_STRIP - 1)))  # last column = end state
            ax.imshow(cache[ep][t])
            if c == 0:
                ax.set_ylabel(f"skill {s}\nep {ep}\n[{start},{end})", fontsize=7)
            ax.set_title(f"t={t}", fontsize=6)
    fig.suptitle("two random segments per skill (first to last observation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_timeline(labels: SkillLabels, dataset: Any, path: Path, max_episodes: int,
                   summary: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    n_ep = min(labels.num_episodes, max_episodes)
    with_truth = bool(getattr(dataset, "has_subtasks", False))
    width = int(max(np.diff(labels.episode_offsets)[:n_ep])) if n_ep else 1
    grid = np.full((n_ep * (2 if with_truth else 1), width), np.nan)
    for i in range(n_ep):
        lab = labels.episode_labels(i).astype(float)
        kept = np.zeros(len(lab), bool)
        for _, a, b, _ in labels.segments[labels.segments[:, 0] == i]:
            kept[a:b] = True
        lab[~kept] = np.nan  # steps not in any kept segment stay white
        grid[i * (2 if with_truth else 1), : len(lab)] = lab
        if with_truth:
            truth = dataset.episode(i, frames=False).subtasks.astype(float)
            truth[truth < 0] = np.nan
            grid[2 * i + 1, : len(truth)] = labels.num_skills + truth  # separate colour range
    n_tasks = len(dataset.subtask_names()) if with_truth else 0
    colors = _colors(labels.num_skills) + [plt.get_cmap("Pastel1")(j % 9) for j in range(n_tasks)]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(grid) + 1.5))
    ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=ListedColormap(colors),
              vmin=-0.5, vmax=len(colors) - 0.5)
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[s], label=f"skill {s}") for s in range(labels.num_skills)]
    handles += [Patch(color=colors[labels.num_skills + j], label=name)
                for j, name in enumerate(dataset.subtask_names() if with_truth else [])]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    step = 2 if with_truth else 1
    ax.set_yticks(np.arange(0, len(grid), step))
    ax.set_yticklabels([f"ep {i}" for i in range(n_ep)], fontsize=7)
    title = "skills per step" + (" (odd rows: true subtask)" if with_truth else "")
    if "subtask_ami" in summary:  # the scores cover all episodes, not only the rows shown
        title += f"\nall {labels.num_episodes} episodes: {_agreement(summary)}"
        if "boundary_f1" in summary:
            title += f", boundary F1 {_score(summary['boundary_f1'])} (±{summary['boundary_tolerance']} steps)"
    ax.set(xlabel="step", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
