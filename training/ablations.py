"""What makes a good skill library: the encoder and K ablations, measured twice.

Each variant is one skill library made from the same dataset (a scripted kitchen recording, so the
subtask executed at every step is known): extraction with that encoder and K, then skill training.
It is scored by its extraction's agreement with the executed subtasks (AMI, ARI, purity, boundary
F1 from the extraction report) and by SkillSAC's return with it (`skillgym compare --methods
extract --library <every variant>`), then both go into one table and one figure.

    python training/ablations.py runs/kitchen-agnostic/data --out runs/ablations

The defaults are the encoder ablation at K = 8 (efficientnet-lite0, random-cnn, state, action) and
the K ablation with efficientnet-lite0 (K = 3, 5, 8, 15), SkillSAC on the default order and the
kettle-cabinets order, 2 seeds x 150k low-level steps. Every stage resumes: run the same command
again after an interruption. Writes OUT/ablations.md, OUT/ablations.png and OUT/ablations.json.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from skillgym.cli.options import add_options, command_line, parse_options
from skillgym.compare.compare import CompareArgs, comma_list, compare
from skillgym.compare.page import steps_label
from skillgym.data.dataset import open_dataset
from skillgym.extract.labeler import extract_skills
from skillgym.skills.train import TrainSkillsArgs, train_skills


def comma_ints(text: str) -> tuple[int, ...]:
    """``"3,5"`` -> ``(3, 5)``."""
    return tuple(int(item) for item in comma_list(text))


EXTRACTION_SCORES = ("subtask_ami", "subtask_ari", "purity", "boundary_f1", "mean_segment_length")
LIBRARY_SCORES = ("action_mse", "prior_accuracy")  # on the library's held-out segments (eval.json)
DIGITS = {"action_mse": 4, "mean_segment_length": 1}  # decimals in the tables (others: 2)


@dataclass
class AblationArgs:
    """Options of training/ablations.py."""

    data: str
    """scripted kitchen recording (it records the executed subtask of every step)"""
    out: str = "runs/ablations"
    """folder of the variants' labels and libraries, the RL runs and the page"""
    encoders: tuple[str, ...] = field(default=("efficientnet-lite0", "random-cnn", "state", "action"),
                                      metadata={"parse": comma_list})
    """encoders compared at K = --base-k"""
    ks: tuple[int, ...] = field(default=(3, 5, 8, 15), metadata={"parse": comma_ints})
    """numbers of skills compared with --base-encoder"""
    base_encoder: str = "efficientnet-lite0"
    """encoder of the K ablation"""
    base_k: int = 8
    """K of the encoder ablation"""
    tasks: tuple[str, ...] = field(default=("default", "kettle-cabinets"), metadata={"parse": comma_list})
    """tasks of the RL runs (names of `skillgym compare --tasks`)"""
    seeds: int = 2
    """SkillSAC seeds per variant and task"""
    steps: int = 150_000
    """low-level env steps of every RL run"""
    skill_steps: int = 10_000
    """gradient steps of each variant's skill training"""
    seed: int = 5
    """seed of extraction and skill training"""
    threads: int = 2
    """torch threads of skill training"""
    workers: int = 2
    """RL runs in parallel"""
    eval_every: int | None = None
    """low-level steps between evaluations of an RL run (default: `skillgym compare`'s, steps / 10)"""
    eval_episodes: int = 20
    """deterministic episodes per evaluation of an RL run"""


def variants(args: AblationArgs) -> list[tuple[str, int]]:
    """``(encoder, K)`` of every library: the encoder ablation, then the K ablation (shared variant once)."""
    wanted = [(e, args.base_k) for e in args.encoders] + [(args.base_encoder, k) for k in args.ks]
    return list(dict.fromkeys(wanted))


def variant_name(encoder: str, k: int) -> str:
    """Folder and row name of a variant, e.g. ``efficientnet-lite0-k8``."""
    return f"{encoder}-k{k}"


def make_library(args: AblationArgs, encoder: str, k: int) -> Path:
    """Labels (OUT/labels/<name>) then library (OUT/libraries/<name>) of one variant, each reused when present.

    The library folder is named after the variant because the results page names a library by its folder."""
    name = variant_name(encoder, k)
    labels, library = Path(args.out) / "labels" / name, Path(args.out) / "libraries" / name
    if not (labels / "labels.json").is_file():
        # The K variants of an encoder share its embeddings: labels/<name>/cache links to one cache per encoder.
        shared = Path(args.out) / "embeddings" / encoder
        shared.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        if not (labels / "cache").exists():
            os.symlink(shared.resolve(), labels / "cache", target_is_directory=True)
        extract_skills(open_dataset(args.data), labels, encoder=encoder, k=k, seed=args.seed)
    if not (library / "model.safetensors").is_file():
        checkpoint = (library / "checkpoint" / "state.json").is_file()
        train_skills(TrainSkillsArgs(labels=str(labels), out=str(library), steps=args.skill_steps, seed=args.seed,
                                     threads=args.threads, resume=checkpoint))
    return library


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and std over the finished seeds (None if none finished)."""
    done = [v for v in values if v is not None]
    return (float(np.mean(done)), float(np.std(done))) if done else (None, None)


def collect(args: AblationArgs, results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant: extraction scores and the final return per task."""
    rows = []
    for encoder, k in variants(args):
        name = variant_name(encoder, k)
        summary = json.loads((Path(args.out) / "labels" / name / "report" / "summary.json").read_text())
        heldout = json.loads((Path(args.out) / "libraries" / name / "eval.json").read_text())["heldout"]
        row: dict[str, Any] = {"variant": name, "encoder": encoder, "k": k,
                               **{s: summary.get(s) for s in EXTRACTION_SCORES},
                               **{s: heldout.get(s) for s in LIBRARY_SCORES}}
        for entry in results["results"]:
            if entry["method"] == f"extract[{name}]":
                row[entry["task"]] = mean_std(entry["subtasks"][str(args.steps)])
        rows.append(row)
    return rows


def _cell(value: Any, digits: int = 2) -> str:
    if isinstance(value, tuple):
        return "–" if value[0] is None else f"{value[0]:.2f} ± {value[1]:.2f}"
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_page(args: AblationArgs, rows: list[dict[str, Any]], command: str) -> None:
    """ablations.md (two tables), ablations.png (AMI and return per variant) and ablations.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    header = ["variant", "AMI", "ARI", "purity", "boundary F1", "mean segment", "action MSE", "prior top-1",
              *[f"{t} @ {steps_label(args.steps)}" for t in args.tasks]]
    keys = [*EXTRACTION_SCORES, *LIBRARY_SCORES, *args.tasks]

    def table(selected: list[dict[str, Any]]) -> list[str]:
        return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|",
                *["| " + " | ".join([r["variant"], *[_cell(r.get(key), DIGITS.get(key, 2)) for key in keys]]) + " |" for r in selected]]

    by_encoder = [r for r in rows if r["k"] == args.base_k and r["encoder"] in args.encoders]
    by_k = sorted((r for r in rows if r["encoder"] == args.base_encoder and r["k"] in args.ks), key=lambda r: r["k"])
    lines = ["# Encoder and K ablations", "", f"Made by `{command}`.", "",
             f"Extraction scores against the executed subtask (AMI, ARI, purity, boundary F1 within ±10 steps) and "
             f"the library's held-out action MSE and skill-prior top-1 accuracy; SkillSAC's subtasks completed at "
             f"{args.steps:,} low-level steps (mean ± std over {args.seeds} seeds).",
             "", f"## Encoder (K = {args.base_k})", "", *table(by_encoder), "",
             f"## K ({args.base_encoder})", "", *table(by_k), "", "![ablations](ablations.png)", "",
             "The RL runs' learning curves and where their episodes stop: [rl/results.md](rl/results.md).", ""]
    (out / "ablations.md").write_text("\n".join(lines))
    (out / "ablations.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, selected, title in ((axes[0], by_encoder, f"encoder (K = {args.base_k})"),
                                (axes[1], by_k, f"K ({args.base_encoder})")):
        x = np.arange(len(selected))
        width = 0.8 / (1 + len(args.tasks))
        ax.bar(x, [r["subtask_ami"] or 0 for r in selected], width, label="AMI vs executed subtask", color="grey")
        for i, task in enumerate(args.tasks):
            means = [r.get(task, (None, None))[0] for r in selected]
            stds = [r.get(task, (None, None))[1] for r in selected]
            ax.bar(x + (i + 1) * width, [m / 4 if m is not None else 0 for m in means], width,
                   yerr=[s / 4 if s is not None else 0 for s in stds], label=f"{task}: subtasks / 4")
        ax.set_xticks(x + width * len(args.tasks) / 2, [r["variant"] for r in selected], rotation=20)
        ax.set_title(title)
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ablations.png", dpi=120)
    plt.close(fig)


def main(args: AblationArgs, command: str) -> None:
    libraries = [str(make_library(args, e, k)) for e, k in variants(args)]
    results = compare(CompareArgs(out=str(Path(args.out) / "rl"), methods=("extract",), tasks=args.tasks,
                                  seeds=args.seeds, steps=args.steps, library=tuple(libraries), workers=args.workers,
                                  eval_every=args.eval_every, eval_episodes=args.eval_episodes),
                      command=command)
    write_page(args, collect(args, results), command)
    print(f"wrote {Path(args.out) / 'ablations.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_options(parser, AblationArgs)
    args = parse_options(AblationArgs, parser.parse_args())
    main(args, command_line("python training/ablations.py", args))
