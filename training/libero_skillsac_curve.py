"""Plot a SkillSAC run on a LIBERO skill env: evaluation success against low-level steps.

Reads the ``curve.json`` that ``skillgym train-rl`` writes after every evaluation (so a running
job can be plotted), and draws the prior-only success rates of training/libero_prior_rollouts.py
as levels:

    python training/libero_skillsac_curve.py runs/libero-rl/curve.json \
        --priors docs/guides/libero-spatial-prior-rollouts.json --out docs/guides/libero-spatial-skillsac.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("curve", type=Path, help="curve.json of `skillgym train-rl`")
    parser.add_argument("--priors", type=Path, default=None, help="JSON of training/libero_prior_rollouts.py")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="SkillSAC on SkillLibero-Spatial-v0 (a task per reset), seed 0")
    args = parser.parse_args()
    curve = json.loads(args.curve.read_text())
    steps = [p["low_level_steps"] for p in curve]
    mean = [p["return_mean"] for p in curve]
    std = [p["return_std"] for p in curve]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(steps, mean, "o-", color="tab:blue", label="SkillSAC (deterministic evaluation)")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std, strict=True)],
                    [m + s for m, s in zip(mean, std, strict=True)], color="tab:blue", alpha=0.15)
    if args.priors:
        levels = json.loads(args.priors.read_text())["mean_success"]
        for (mode, level), style in zip(levels.items(), ("--", ":"), strict=True):
            ax.axhline(level, color="tab:gray", linestyle=style, label=f"priors alone ({mode}), mean over tasks")
    ax.set(xlabel="low-level env steps", ylabel="return = goal predicates (success)", ylim=(-0.05, 1.05),
           title=args.title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(curve)} evaluations, last at {steps[-1]} low-level steps: {mean[-1]:.2f})")


if __name__ == "__main__":
    main()
