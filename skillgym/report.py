"""``report.html``: one self-contained page that shows what a ``skillgym run kitchen`` produced.

Everything on the page is read from files in the run folder (``summary.json``, the extraction
report, the library's ``eval.json``, the SkillSAC curve, the skill sheet and policy GIF the run
wrote); images are embedded, so the page can be mailed or archived on its own.

Example:
    >>> write_report("runs/kitchen")  # doctest: +SKIP
    PosixPath('runs/kitchen/report.html')
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPORT_FILE = "report.html"
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .6em 0; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f4f4f4; text-align: left; } img { max-width: 100%; border: 1px solid #eee; margin: .4em 0; }
.verdict { background: #f3f8ff; border-left: 4px solid #3b7dd8; padding: .5em 1em; }
code, pre { background: #f6f6f6; padding: .1em .3em; } pre { padding: .6em; overflow-x: auto; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; } .figs figure { margin: 0; flex: 1 1 45%; }
figcaption { font-size: .85em; color: #555; }
"""


def _image(path: Path, caption: str) -> str:
    """An embedded image (PNG or GIF) with its caption, or nothing if the file is missing."""
    if not path.is_file():
        return ""
    kind = "gif" if path.suffix == ".gif" else "png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/{kind};base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def plot_learning_curve(curve: list[dict], prior_levels: dict[str, float], path: Path) -> Path:
    """SkillSAC's evaluation return against low-level steps, with the prior-only levels drawn."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    steps = [p["low_level_steps"] for p in curve]
    mean = [p["return_mean"] for p in curve]
    std = [p["return_std"] for p in curve]
    ax.plot(steps, mean, "o-", color="tab:blue", label="SkillSAC (deterministic evaluation)")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)], color="tab:blue", alpha=0.15)
    for (label, level), style in zip(prior_levels.items(), ("--", ":"), strict=False):
        ax.axhline(level, color="tab:gray", linestyle=style, label=label)
    ax.set(xlabel="low-level env steps", ylabel="subtasks completed (of 4)", ylim=(-0.1, 4.1))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def verdict(library_eval: dict[str, Any], reference: dict[str, Any] | None = None) -> str:
    """One line on the skill library: held-out error, prior accuracy, prior rollouts, and the prior
    rollouts of a ``reference`` library's eval.json (the bundled one) to compare with."""
    held, parts = library_eval.get("heldout") or {}, []
    if "action_mse" in held:
        parts.append(f"held-out action MSE {held['action_mse']:.4f}, progress MAE {held['progress_mae']:.3f}, "
                     f"prior top-1 accuracy {held['prior_accuracy']:.2f}")
    for key, name in (("rollouts", "sampled"), ("rollouts_greedy", "greedy")):
        if key in library_eval:
            parts.append(f"prior-only rollouts ({name}) {library_eval[key]['ordered_mean']:.2f} of 4")
    if reference and all(key in reference for key in ("rollouts", "rollouts_greedy")):
        parts.append(f"(bundled library: {reference['rollouts']['ordered_mean']:.2f} sampled, "
                     f"{reference['rollouts_greedy']['ordered_mean']:.2f} greedy)")
    return "; ".join(parts) or "no evaluation of the library found"


def write_report(run: str | os.PathLike) -> Path:
    """Write ``run/report.html`` from the files of a ``skillgym run kitchen`` folder."""
    run = Path(run)
    summary_file = run / "summary.json"
    if not summary_file.is_file():
        raise FileNotFoundError(f"{run} has no summary.json: run `skillgym run kitchen --out {run}` first")
    summary = json.loads(summary_file.read_text())
    figures = run / "report"
    figures.mkdir(exist_ok=True)
    sections = [f"<h1>skillgym run: {html.escape(str(run))}</h1>"]
    library_eval = summary.get("library", {})
    sections.append(f'<p class="verdict">{html.escape(verdict(library_eval, summary.get("reference")))}</p>')

    data = summary.get("dataset", {})
    sections.append("<h2>1. Data</h2>")
    sections.append(_table([("episodes kept / recorded", f"{data.get('kept')} / {data.get('attempted')}"),
                            ("steps", data.get("total_steps")),
                            ("episodes completing all 4 subtasks", data.get("complete"))]))
    sections.append(_image(figures / "contact_sheet.png", "Episode 0 of the dataset, a row per subtask performed"))

    extraction = summary.get("extraction", {})
    labels_report = run / "labels" / "report"
    sections.append("<h2>2. Skill extraction</h2>")
    rows = [("encoder", extraction.get("settings", {}).get("encoder"))]
    rows += [(k, extraction[k]) for k in ("k", "num_segments", "mean_segment_length", "mean_subtask_length",
                                          "subtask_ami", "subtask_ari", "purity") if k in extraction]
    if "boundary_f1" in extraction:
        rows.append((f"subtask boundaries within {extraction['boundary_tolerance']} steps", {
            k: extraction[f"boundary_{k}"] for k in ("f1", "precision", "recall")}))
    purity = extraction.get("skill_majority_subtask") or []
    if purity:
        rows.append(("purity per skill (main subtask)", ", ".join(
            f"{p['skill']}: {p['subtask']} {p['purity']:.0%}" for p in purity)))
    sections.append(_table(rows))
    sections.append('<div class="figs">' + "".join([
        _image(labels_report / "pca.png", "PCA of the embedding differences, coloured by skill"),
        _image(labels_report / "lengths.png", "Skill (segment) lengths"),
        _image(labels_report / "timeline.png", "Skills along the first episodes, with the executed subtasks"),
        _image(labels_report / "frames.png", "Frames of two segments per skill"),
    ]) + "</div>")

    sections.append("<h2>3. Skill library</h2>")
    held = library_eval.get("heldout") or {}
    sections.append(_table([(k, held[k]) for k in ("action_mse", "progress_mae", "prior_accuracy", "prior_z_nll",
                                                   "num_segments") if k in held]
                           + [(f"prior-only rollouts ({k})", library_eval[k]["ordered_mean"])
                              for k in ("rollouts", "rollouts_greedy") if k in library_eval]))
    sections.append(_image(run / "library" / "show" / "skills.png",
                           "Each skill run with its prior-mean argument from a few start states"))

    rl = summary.get("rl")
    sections.append("<h2>4. SkillSAC</h2>")
    if rl:
        levels = {f"prior-only, {name}": library_eval[key]["ordered_mean"]
                  for key, name in (("rollouts", "sampled"), ("rollouts_greedy", "greedy")) if key in library_eval}
        plot_learning_curve(rl["curve"], levels, figures / "learning_curve.png")
        final, rl_args = rl["final"], rl.get("args", {})
        sections.append(f"<p>SkillSAC trained from scratch on {html.escape(str(rl_args.get('env_id')))} with this "
                        "run's skill library (the bundled library's recipe at this run's scale, not fine-tuned "
                        f"from the bundled library); deterministic evaluation every {rl_args.get('eval_every')} "
                        f"low-level steps over {rl_args.get('eval_episodes')} episodes.</p>")
        sections.append(_table([("low-level steps", final["low_level_steps"]),
                                ("final return", f"{final['return_mean']:.2f} ± {final['return_std']:.2f}")]))
        sections.append('<div class="figs">' + _image(figures / "learning_curve.png", "Evaluation return")
                        + _image(figures / "policy.gif", "One episode of the final policy") + "</div>")
    else:
        sections.append("<p>No agent was trained in this run.</p>")

    sections.append("<h2>How this run was made</h2>")
    run_info = summary.get("run", {})
    sections.append(f"<pre>{html.escape(run_info.get('command', ''))}</pre>")
    sections.append(_table([("seed", run_info.get("seed")), ("scale", run_info.get("scale")),
                            ("versions", run_info.get("versions", {})),
                            ("wall time per stage (s)", {k: round(v) for k, v in summary.get("timings", {}).items()})]))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>skillgym run</title>"
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")
    out = run / REPORT_FILE
    out.write_text(page)
    return out
