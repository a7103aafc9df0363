"""The results page of ``skillgym compare``: a Markdown table, learning curves and skill lengths.

``results.md`` (link it from the docs), ``curves.png`` (mean ± std over seeds of the subtasks
completed against low-level steps, one panel per task), ``skill_lengths.png`` (low-level steps of
the skills the final policies executed, per skill-space method: the paper's Fig. 13) and
``results.json`` (the numbers of the table, and every seed's evaluations).
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skillgym.compare.run import RESULT, RunSpec  # noqa: E402
from skillgym.tasks.kitchen import task_order  # noqa: E402

# Budgets the table reports when a run reaches them (the paper's 100k / 300k / 1M), then the run's own.
TABLE_BUDGETS = (100_000, 300_000, 1_000_000)
# What the page is made of, all written into the comparison's output folder.
PAGE_FILES = ("results.md", "results.json", "curves.png", "skill_lengths.png")
# What results.json keeps of every seed's evaluations.
CURVE_KEYS = ("low_level_steps", "subtasks_mean", "success_rate")
# The keys of results.json: what marks a folder as a comparison's output.
SUMMARY_KEYS = ("command", "steps", "eval_every", "results")
PACKAGES = ("skillgym", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "gymnasium-robotics", "mujoco",
            "numpy")


def value_at(curve: list[dict[str, Any]], steps: int, key: str = "subtasks_mean") -> float | None:
    """The first evaluation at or after ``steps`` low-level steps (evaluations wait for an episode's end).

    A method that learns offline has one evaluation, at 0 steps, which holds at every budget.
    """
    if len(curve) == 1 and curve[0]["low_level_steps"] == 0:
        return float(curve[0][key])
    for point in curve:
        if point["low_level_steps"] >= steps:
            return float(point[key])
    return None


def steps_label(steps: int) -> str:
    """``300`` -> "300", ``20_000`` -> "20k", ``1_000_000`` -> "1M"."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if steps >= size and steps % (size // 10) == 0:
            return f"{steps / size:g}{unit}"
    return f"{steps:,}"


def _mean_std(values: list[float | None]) -> str:
    done = [v for v in values if v is not None]
    if not done:
        return "–"
    text = f"{np.mean(done):.2f} ± {np.std(done):.2f}"
    return text if len(done) == len(values) else f"{text} ({len(done)} of {len(values)} seeds)"


def mean_over_tasks(per_task: list[list[float | None]]) -> list[float | None]:
    """Each seed's mean over the tasks, None where one of its tasks has no value.

    Example:
        >>> mean_over_tasks([[1.0, 2.0, None], [3.0, 3.0, 3.0]])
        [2.0, 2.5, None]
    """
    return [None if None in values else float(np.mean(values)) for values in zip(*per_task, strict=True)]


def stopped_before(task: str, completed: list[int]) -> str:
    """``"kettle 3, light switch 5, all done 12"``: how many episodes stopped before each subtask."""
    order = task_order(task)
    counts = np.bincount(completed, minlength=len(order) + 1)
    parts = [f"{name} {counts[i]}" for i, name in enumerate(order) if counts[i]]
    if counts[len(order)]:
        parts.append(f"all done {counts[len(order)]}")
    return ", ".join(parts)


def skills_tried(skill_lists: list[list[int]], top: int = 3) -> str:
    """``"skill 3 62 %, skill 5 20 %"``: the skills most run after the last completed subtask, as shares."""
    counts = np.bincount([d for skills in skill_lists for d in skills]) if any(skill_lists) else np.zeros(0)
    if not counts.sum():
        return "–"
    order = np.argsort(-counts, kind="stable")[:top]
    return ", ".join(f"skill {d} {100 * counts[d] / counts.sum():.0f} %" for d in order if counts[d])


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def _load(runs: list[tuple[str, RunSpec]]) -> dict[tuple[str, str], list[dict[str, Any] | None]]:
    """Results by (method label, task): one entry per seed, None for runs not finished."""
    grouped: dict[tuple[str, str], list[dict[str, Any] | None]] = {}
    for label, settings in runs:
        file = Path(settings.out) / RESULT
        result = json.loads(file.read_text()) if file.is_file() else None
        if result is not None and result["steps"] < settings.steps:
            result = None
        grouped.setdefault((label, settings.task), []).append(result)
    return grouped


def _colors(grouped: dict) -> dict[str, str]:
    """One colour per method, the same in every figure."""
    labels = list(dict.fromkeys(label for label, _ in grouped))
    return {label: f"C{i % 10}" for i, label in enumerate(labels)}


# Curves that lie on top of each other (every method at 0 early on) stay apart by their line and markers.
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _line_styles(grouped: dict) -> dict[str, dict[str, str]]:
    labels = list(dict.fromkeys(label for label, _ in grouped))
    return {label: {"linestyle": LINE_STYLES[i % len(LINE_STYLES)], "marker": MARKERS[i % len(MARKERS)]}
            for i, label in enumerate(labels)}


def evaluations_by_mark(curves: list[list[dict[str, Any]]], eval_every: int, steps: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The seeds' curves on common x: ``(steps (M,), subtasks_mean (seeds, M))``, one column per mark of
    ``eval_every`` that has an evaluation, at the mean step of the seeds' evaluations for it.

    Evaluations happen at the first episode end at or after a mark, so seeds evaluate at slightly different
    steps; an episode longer than ``eval_every`` passes marks that get no evaluation of their own.

    Example:
        >>> curve = [{"low_level_steps": s, "subtasks_mean": 0.0} for s in (0, 280, 560, 600)]
        >>> evaluations_by_mark([curve], eval_every=60, steps=600)[0].tolist()
        [0.0, 280.0, 560.0, 600.0]
    """
    marks = sorted({min(p["low_level_steps"] // eval_every * eval_every, steps) for c in curves for p in c})
    points = [[next(p for p in c if p["low_level_steps"] >= mark) for mark in marks] for c in curves]
    xs = np.mean([[p["low_level_steps"] for p in row] for row in points], axis=0)
    return xs, np.array([[p["subtasks_mean"] for p in row] for row in points])


def _plot_curves(grouped: dict, tasks: list[str], steps: int, eval_every: int, out: Path) -> None:
    colors, styles = _colors(grouped), _line_styles(grouped)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)  # own y: subtask counts
    for ax, task in zip(axes[0], tasks, strict=True):
        for (label, run_task), results in grouped.items():
            done = [r for r in results if r is not None]
            if run_task != task or not done:
                continue
            curves = [r["curve"] for r in done]
            if len(curves[0]) == 1:  # learns offline: one evaluation, drawn across the budget
                values = [c[0]["subtasks_mean"] for c in curves]
                ax.axhline(np.mean(values), linestyle="--", color=colors[label], label=f"{label} (n={len(done)})")
                ax.axhspan(np.mean(values) - np.std(values), np.mean(values) + np.std(values),
                           color=colors[label], alpha=0.15)
                continue
            xs, ys = evaluations_by_mark(curves, eval_every, steps)
            mean, std = ys.mean(0), ys.std(0)
            ax.plot(xs, mean, color=colors[label], label=f"{label} (n={len(done)})", markersize=4,
                    markevery=max(1, len(xs) // 20), **styles[label])
            ax.fill_between(xs, mean - std, mean + std, color=colors[label], alpha=0.2)
        ax.set_title(f"{task}: {' → '.join(task_order(task))}", fontsize=9)
        ax.set_xlabel("low-level env steps")
        ax.set_ylim(-0.1, len(task_order(task)) + 0.1)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no finished runs yet", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_ylabel("subtasks completed (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _plot_skill_lengths(grouped: dict, out: Path) -> bool:
    lengths: dict[str, list[int]] = {}
    for (label, _), results in grouped.items():
        for r in results:
            if r is not None and r["skill_lengths"]:
                lengths.setdefault(label, []).extend(r["skill_lengths"])
    if not lengths:
        return False
    colors = _colors(grouped)
    longest = max(max(values) for values in lengths.values())
    fig, axes = plt.subplots(1, len(lengths), figsize=(4 * len(lengths), 3.2), squeeze=False, sharex=True)
    for ax, (label, values) in zip(axes[0], lengths.items(), strict=True):
        ax.hist(values, bins=np.arange(0.5, longest + 1.5), color=colors[label])
        ax.set_title(f"{label}: mean {np.mean(values):.1f} steps", fontsize=9)
        ax.set_xlabel("low-level steps per executed skill")
    axes[0][0].set_ylabel("skills (final policies, all tasks and seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def write_results_page(out: Path, runs: list[tuple[str, RunSpec]], command: str) -> dict[str, Any]:
    """Write ``results.md``, ``curves.png``, ``skill_lengths.png`` and ``results.json`` into ``out``."""
    grouped = _load(runs)
    tasks = list(dict.fromkeys(settings.task for _, settings in runs))
    steps, eval_every = runs[0][1].steps, runs[0][1].eval_every
    budgets = [b for b in TABLE_BUDGETS if b < steps] + [steps]
    rows: dict[str, list[str]] = {}
    numbers = []
    by_label: dict[str, list[tuple[dict[int, list[float | None]], list[float | None]]]] = {}
    for (label, task), results in grouped.items():
        curves = [r["curve"] if r else None for r in results]
        at = {b: [value_at(c, b) if c else None for c in curves] for b in budgets}
        success = [value_at(c, steps, "success_rate") if c else None for c in curves]
        rows.setdefault(label, []).append(f"| {label} | {task} | " + " | ".join(_mean_std(at[b]) for b in budgets)
                                          + f" | {_mean_std(success)} |")
        numbers.append({"method": label, "task": task, "seeds": len(results),
                        "finished": sum(r is not None for r in results),
                        "subtasks": {str(b): at[b] for b in budgets}, "success_rate": success,
                        "curves": [[{k: p[k] for k in CURVE_KEYS} for p in c] if c else None for c in curves]})
        by_label.setdefault(label, []).append((at, success))
    for label, per_task in by_label.items():
        if len(per_task) > 1:  # the paper's summary over several tasks: each seed's mean over them
            at = {b: mean_over_tasks([a[b] for a, _ in per_task]) for b in budgets}
            success = mean_over_tasks([s for _, s in per_task])
            rows[label].append(f"| {label} | mean of {len(per_task)} tasks | "
                               + " | ".join(_mean_std(at[b]) for b in budgets) + f" | {_mean_std(success)} |")
            numbers.append({"method": label, "task": f"mean of {len(per_task)} tasks", "seeds": len(success),
                            "finished": sum(v is not None for v in success),
                            "subtasks": {str(b): at[b] for b in budgets}, "success_rate": success})
    stops = []
    for (label, task), results in grouped.items():
        done = [r for r in results if r is not None]
        if done:
            where = stopped_before(task, [c for r in done for c in r["final_completed"]])
            tried = skills_tried([skills for r in done for skills in r.get("final_skills_after_last_subtask", [])])
            stops.append(f"| {label} | {task} | {where} | {tried} |")
    _plot_curves(grouped, tasks, steps, eval_every, out / "curves.png")
    has_lengths = _plot_skill_lengths(grouped, out / "skill_lengths.png")

    header = " | ".join(f"subtasks @ {steps_label(b)}" for b in budgets)
    lines = [
        "# Comparison results",
        "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d')} "
        f"({platform.machine()}, {os.cpu_count()} CPU cores).",
        "",
        f"Each run: {steps:,} low-level env steps; evaluated every {eval_every:,} steps (at the first episode "
        f"end after each mark) on {runs[0][1].eval_episodes} fixed episode(s) with the deterministic policy. "
        "Subtasks completed in order, mean ± std over seeds of each seed's evaluation mean; "
        "full-sequence success = share of evaluation episodes that complete every subtask, at the end.",
        "",
        f"| method | task | {header} | full-sequence success |",
        "|---" * (3 + len(budgets)) + "|",
        *(row for label_rows in rows.values() for row in label_rows),
        "",
        "![learning curves](curves.png)",
        "",
    ]
    if stops:
        lines += ["Where the final policies' evaluation episodes stop (the subtask not completed; all seeds), and "
                  "which skills a skill-space policy keeps running there (share of its decisions after the last "
                  "completed subtask):", "",
                  "| method | task | episodes stopping before each subtask | skills run after the last subtask |",
                  "|---|---|---|---|", *stops, ""]
    if has_lengths:
        lines += ["Low-level steps of the skills executed by the final policies:", "",
                  "![skill lengths](skill_lengths.png)", ""]
    lines += ["Tasks: " + "; ".join(f"`{t}` = {' → '.join(task_order(t))}" for t in tasks) + ".", "",
              f"Versions: {_versions()}.", ""]
    (out / "results.md").write_text("\n".join(lines))
    summary = {"command": command, "steps": steps, "eval_every": eval_every, "results": numbers}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
