"""EXTRACT on SkillKitchen-v0: SkillSAC with the bundled skill library, several seeds.

Budget and curves are in low-level env steps (300k by default, as in the paper's kitchen plots).
Each seed logs to TensorBoard under --out/seed<N>/tb and writes curve.json; the script then writes
the mean ± std curve to --out/curves.png and a summary to --out/summary.json.

    python training/kitchen_extract.py --seeds 0 1 2 --steps 300000 --parallel 3 --diagnose 20 --out runs/skillsac_kitchen

Each seed runs SkillSAC with the settings of ``skillgym train-rl`` given no other flag.
``--summarize-only --diagnose N`` redoes the summary and the diagnosis of finished runs.
``--out/results.json`` (summary, diagnosis, curves) and ``--out/curves.png`` are what
docs/results_skillsac_kitchen.{json,png} are copies of (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np

from skillgym.cli.options import add_options
from skillgym.rl.train import TrainRLArgs

# SkillSAC options this script passes through to every seed (flags of the same names).
SAC_OPTIONS = ("alpha_d", "target_kl_d", "alpha_z", "target_kl_z", "gamma", "gamma_per_step")


def run_seed(seed: int, steps: int, out: str, library: str | None, eval_every: int, eval_episodes: int,
             progress_threshold: float | None = None, sac_options: dict | None = None) -> dict:
    """Train one seed; ``sac_options`` overrides TrainRLArgs' KL weights, prior mix and discount (keys from SAC_OPTIONS)."""
    from skillgym.rl.train import train_rl

    env_kwargs = {} if progress_threshold is None else {"progress_threshold": progress_threshold}
    return train_rl(TrainRLArgs(env_id="SkillKitchen-v0", library=library, steps=steps, seed=seed,
                                out=str(Path(out) / f"seed{seed}"), eval_every=eval_every,
                                eval_episodes=eval_episodes, env_kwargs=env_kwargs, **(sac_options or {})))


def _trained_library(out: Path, seed: int) -> str | None:
    """The skill library a seed was trained with (None: the bundled one), from its result.json."""
    return json.loads((out / f"seed{seed}" / "result.json").read_text())["args"]["library"]


def summarize(out: Path, seeds: list[int], library: str | None = None) -> dict:
    """Mean ± std over seeds of the evaluation return, on a common low-level-step grid.

    Works on interrupted runs too (only each seed's curve.json is read); ``library`` names the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {s: json.loads((out / f"seed{s}" / "curve.json").read_text()) for s in seeds
              if (out / f"seed{s}" / "curve.json").is_file()}
    if not curves:
        raise FileNotFoundError(f"no curve.json under {out}/seed*/")
    grid = np.unique(np.concatenate([[p["low_level_steps"] for p in c] for c in curves.values()]))
    common = grid[grid <= min(c[-1]["low_level_steps"] for c in curves.values())]
    table = np.array([np.interp(common, [p["low_level_steps"] for p in c], [p["return_mean"] for p in c])
                      for c in curves.values()])
    mean, std = table.mean(0), table.std(0)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for s, c in curves.items():
        ax.plot([p["low_level_steps"] for p in c], [p["return_mean"] for p in c], lw=0.8, alpha=0.4,
                label=f"seed {s}")
    ax.plot(common, mean, color="k", lw=2, label="mean")
    ax.fill_between(common, mean - std, mean + std, color="k", alpha=0.15)
    ax.set_xlabel("low-level env steps")
    ax.set_ylabel("subtasks completed (of 4)")
    ax.set_ylim(-0.1, 4.1)
    ax.set_title(f"SkillSAC on SkillKitchen-v0 ({'bundled library' if library is None else Path(library).name})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)
    summary = {"seeds": list(curves), "final_low_level_steps": int(common[-1]),
               "final_return_mean": float(mean[-1]), "final_return_std": float(std[-1]),
               "best_return_mean": float(mean.max()),
               "per_seed_final": {s: c[-1] for s, c in curves.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def diagnose(out: Path, seeds: list[int], episodes: int, progress_threshold: float | None,
             max_episode_steps: int | None = None) -> dict:
    """Where the final policies stop: deterministic episodes of each seed's saved model, in the env
    with the skill library that seed was trained with (its result.json). Also when: the low-level
    step at which each subtask got done. ``max_episode_steps`` (default: the task's 280) gives the
    same policies more time; that report goes to diagnosis_<steps>_steps.json."""
    from collections import Counter

    import gymnasium as gym

    import skillgym  # noqa: F401
    from skillgym.rl.skill_sac import SkillSAC
    from skillgym.tasks.kitchen import DEFAULT_TASKS

    kwargs = {} if progress_threshold is None else {"progress_threshold": progress_threshold}
    if max_episode_steps is not None:
        kwargs["low_level_steps"] = max_episode_steps
    report: dict = {"episodes_per_seed": episodes, "tasks": list(DEFAULT_TASKS), "seeds": {},
                    "max_episode_steps": max_episode_steps or 280}
    for seed in seeds:
        model = SkillSAC.load(out / f"seed{seed}" / "skillsac")
        library = _trained_library(out, seed)
        env = gym.make("SkillKitchen-v0", **kwargs, **({"library": library} if library else {}))
        counts, stalled, skills, lengths, done_at, episode_steps = [], Counter(), Counter(), [], [], []
        for i in range(episodes):
            obs, _ = env.reset(seed=20_000 + 100 * seed + i)
            done, steps, done_at_episode = False, 0, []
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                skills[int(action["skill"])] += 1
                obs, _, terminated, truncated, info = env.step(action)
                lengths.append(info["skill_steps"])
                steps += info["skill_steps"]
                # a subtask counts as done at the end of the skill that did it
                done_at_episode += [steps] * (info["num_completed"] - len(done_at_episode))
                done = terminated or truncated
            counts.append(info["num_completed"])
            done_at.append(done_at_episode)
            episode_steps.append(steps)
            stalled[DEFAULT_TASKS[info["num_completed"]] if info["num_completed"] < 4 else "none"] += 1
        env.close()
        report["seeds"][seed] = {"mean": float(np.mean(counts)), "counts": counts,
                                 "stalled_at": dict(stalled), "skill_histogram": dict(sorted(skills.items())),
                                 "mean_skill_length": float(np.mean(lengths)), "library": library or "bundled",
                                 "subtask_done_at_step": done_at, "episode_steps": episode_steps,
                                 "median_step_done": {task: float(np.median([e[k] for e in done_at if len(e) > k]))
                                                      for k, task in enumerate(DEFAULT_TASKS)
                                                      if any(len(e) > k for e in done_at)}}
    name = "diagnosis.json" if max_episode_steps is None else f"diagnosis_{max_episode_steps}_steps.json"
    (out / name).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300_000, help="low-level env steps per seed")
    parser.add_argument("--out", type=Path, default=Path("runs/kitchen_extract"))
    parser.add_argument("--library", default=None, help="skill library (default: the bundled one)")
    parser.add_argument("--parallel", type=int, default=1, help="seeds trained at once (1 core each)")
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--progress-threshold", type=float, default=None,
                        help="SkillSpaceEnv progress threshold (default: the env's)")
    add_options(parser, TrainRLArgs, only=SAC_OPTIONS)
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--diagnose", type=int, default=0, metavar="N",
                        help="afterwards, run N deterministic episodes of each final model: where does it stall?")
    parser.add_argument("--diagnose-max-steps", type=int, default=None, metavar="T",
                        help="run the diagnosis with a time limit of T low-level steps instead of the task's 280")
    args = parser.parse_args()
    if not args.summarize_only:
        jobs = [(s, args.steps, str(args.out), args.library, args.eval_every, args.eval_episodes,
                 args.progress_threshold, {k: getattr(args, k) for k in SAC_OPTIONS}) for s in args.seeds]
        if args.parallel > 1:
            with mp.get_context("spawn").Pool(args.parallel) as pool:
                pool.starmap(run_seed, jobs)
        else:
            for job in jobs:
                run_seed(*job)
    print(json.dumps(summarize(args.out, args.seeds, args.library), indent=2))
    if args.diagnose:
        print(json.dumps(diagnose(args.out, args.seeds, args.diagnose, args.progress_threshold,
                                  args.diagnose_max_steps), indent=2))
    write_results(args.out, args.seeds, vars(args))


def write_results(out: Path, seeds: list[int], args: dict) -> None:
    """One file with the summary, the diagnosis (if run) and every seed's curve: docs copy it."""
    if args.get("summarize_only") and (out / "results.json").is_file():
        args = json.loads((out / "results.json").read_text())["args"]  # keep the training run's flags
    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()},
               "summary": json.loads((out / "summary.json").read_text())}
    if (out / "diagnosis.json").is_file():
        results["diagnosis"] = json.loads((out / "diagnosis.json").read_text())
    results["curves"] = {s: json.loads((out / f"seed{s}" / "curve.json").read_text()) for s in seeds}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out / 'results.json'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
