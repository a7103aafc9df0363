"""``skillgym run kitchen``: the whole pipeline at a small default scale, stage after stage.

scripted dataset -> skill extraction -> skill library (+ prior rollouts) [-> SkillSAC].
Each stage writes its artifact under ``--out`` and is skipped when that artifact already exists,
so an interrupted run picks up where it stopped. An existing artifact made with other options
(another seed, data recipe, encoder or skill-training setting) is refused, never silently reused.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass
class PipelineArgs:
    out: Path = Path("runs/kitchen")
    episodes: int = 100
    image_size: int = 128
    workers: int = 2
    # Data recipe of the bundled state library (session 7, made the default in session 8; docs/skills.md):
    eval_prefix_fraction: float = 1.0  # episodes that start with 1-3 evaluation subtasks (0.5: kitchen-mixed-like)
    eval_windows: bool = False  # ... any consecutive 1-3 of them, not only the order's beginning
    action_noise: float = 0.1  # std of the noise on the scripted arm actions
    clean_labels: bool = True  # DART: record the scripted actions without that noise
    follow_through: float = 0.0  # end each scripted subtask this far inside the success threshold
    encoder: str = "auto"  # r3m-50 if its checkpoint is on disk, else efficientnet-lite0
    k: int = 8
    skill_steps: int = 20_000
    decoder: str = "closed_loop"  # scripted demos are closed-loop: open-loop replays drift off target
    prior_obs_noise: float = 0.1  # noise on the priors' state input in skill training (state stds)
    window_starts: str = "inside"  # where skill-training windows start in a segment (see make_batch)
    prior_z_target: str = "sample"  # what p(z|s,d) is fitted to: the encoder's z sample or its mean
    reconstruction: str = "mean"  # skill loss over a window's steps: "mean" (sampled priors steadier) or "sum" (Eq. 2)
    beta: float = 1e-3  # weight of the skill argument's KL to N(0, I) (Eq. 2)
    state_skip: bool = True  # closed-loop decoder: linear path from the state to the action (docs/skills.md)
    threads: int | None = None  # torch threads for skill training (None: torch's default)
    eval_episodes: int = 10
    rl_steps: int = 0  # low-level env steps of SkillSAC on SkillKitchen-v0 with the new library
    seed: int = 0


def run_pipeline(args: PipelineArgs) -> dict:
    from skillgym.data.dataset import open_dataset
    from skillgym.data.record import RecordArgs, record_dataset, recorded_args
    from skillgym.extract.encoders import default_image_encoder
    from skillgym.extract.labeler import extract_skills
    from skillgym.skills.train import TrainSkillsArgs, train_skills

    out = Path(args.out)
    data_dir, labels_dir, library_dir = out / "data", out / "labels", out / "library"
    summary: dict = {}

    print(f"[1/4] dataset -> {data_dir}")
    if (data_dir / "recording.json").is_file():
        recording = json.loads((data_dir / "recording.json").read_text())
        if recording.get("mixed_recipes"):  # put there by `skillgym data merge --mixed-recipes`
            print(f"      using the mixed training set at {data_dir} (merged from {', '.join(recording['merged_from'])}); "
                  "the data options are not used")
        else:
            _refuse_other_options("dataset", data_dir, recorded_args(recording["args"]),
                                  {name: getattr(args, name) for name in DATA_OPTIONS})
    else:
        print(f"      recording {args.episodes} scripted episodes")
        report = record_dataset(RecordArgs(out=data_dir, episodes=args.episodes, seed=args.seed,
                                           image_size=args.image_size, workers=args.workers,
                                           eval_prefix_fraction=args.eval_prefix_fraction,
                                           eval_windows=args.eval_windows,
                                           action_noise=args.action_noise, clean_labels=args.clean_labels,
                                           follow_through=args.follow_through))
        print("      " + report.summary())
    summary["dataset"] = json.loads((data_dir / "recording.json").read_text())["report"]

    encoder = default_image_encoder() if args.encoder == "auto" else args.encoder
    print(f"[2/4] skill extraction: {encoder}, K={args.k} -> {labels_dir}")
    if (labels_dir / "labels.json").is_file():
        _refuse_other_options("labels folder", labels_dir,
                              json.loads((labels_dir / "labels.json").read_text())["metadata"],
                              {"encoder": encoder, "k": args.k, "seed": args.seed})
    else:
        extract_skills(open_dataset(data_dir), labels_dir, encoder=encoder, k=args.k, seed=args.seed)
    summary_path = labels_dir / "report" / "summary.json"
    if summary_path.is_file():
        summary["extraction"] = json.loads(summary_path.read_text())

    print(f"[3/4] skill learning: {args.skill_steps} steps -> {library_dir}")
    skill_options = dict(steps=args.skill_steps, seed=args.seed, decoder=args.decoder,
                         prior_obs_noise=args.prior_obs_noise, window_starts=args.window_starts,
                         prior_z_target=args.prior_z_target, reconstruction=args.reconstruction, beta=args.beta,
                         state_skip=args.state_skip and args.decoder == "closed_loop")
    checkpoint = library_dir / "checkpoint" / "state.json"
    if (library_dir / "model.safetensors").is_file():
        if checkpoint.is_file():
            _refuse_other_options("skill library", library_dir, json.loads(checkpoint.read_text())["args"],
                                  skill_options)
    else:
        train_skills(TrainSkillsArgs(labels=str(labels_dir), out=str(library_dir), threads=args.threads,
                                     eval_episodes=args.eval_episodes, **skill_options))
    eval_path = library_dir / "eval.json"
    if eval_path.is_file():
        summary["library"] = json.loads(eval_path.read_text())

    if args.rl_steps > 0:
        print(f"[4/4] SkillSAC on SkillKitchen-v0 with the new library: {args.rl_steps} low-level steps")
        from skillgym.rl.train import TrainRLArgs, train_rl

        summary["rl"] = train_rl(TrainRLArgs(env_id="SkillKitchen-v0", library=str(library_dir),
                                             steps=args.rl_steps, seed=args.seed, out=str(out / "rl")))
    else:
        print("[4/4] RL skipped (pass --rl-steps N to train SkillSAC on SkillKitchen-v0 with this library)")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"done: {out / 'summary.json'}")
    return summary


# PipelineArgs fields that make the dataset (recorded in its recording.json).
DATA_OPTIONS = ("episodes", "seed", "image_size", "eval_prefix_fraction", "eval_windows", "action_noise",
                "clean_labels", "follow_through")


def _refuse_other_options(stage: str, folder: Path, recorded: dict, wanted: dict) -> None:
    """Reuse an existing artifact only if it was made with the options asked for now."""
    differ = [f"{name}={recorded[name]!r} there, {value!r} now" for name, value in wanted.items()
              if name in recorded and recorded[name] != value]
    if differ:
        raise ValueError(
            f"{folder} holds a {stage} made with other options ({'; '.join(differ)}). Pass another --out, "
            f"or delete {folder} (and the stages after it) to redo it with these options."
        )


def add_pipeline_options(p: argparse.ArgumentParser, out_flag: str = "--out") -> None:
    """Add one option per PipelineArgs field (shared by `skillgym run` and training/bundled_library.py)."""
    d = PipelineArgs()
    p.add_argument(out_flag, dest="out", type=Path, default=d.out, metavar="DIR", help="folder of every stage's artifact")
    p.add_argument("--episodes", type=int, default=d.episodes)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--action-noise", type=float, default=d.action_noise,
                   help="std of the noise on the scripted arm actions")
    p.add_argument("--clean-labels", action=argparse.BooleanOptionalAction, default=d.clean_labels,
                   help="DART: execute the noisy scripted action, record it without the noise")
    p.add_argument("--follow-through", type=float, default=d.follow_through,
                   help="end each scripted subtask this far (joint units) inside the success threshold")
    p.add_argument("--eval-prefix-fraction", type=float, default=d.eval_prefix_fraction,
                   help="fraction of episodes that start with 1-3 subtasks of the evaluation order")
    p.add_argument("--eval-windows", action="store_true",
                   help="those subtasks may be any consecutive run of the evaluation order, not only its start")
    p.add_argument("--encoder", default=d.encoder)
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--skill-steps", type=int, default=d.skill_steps)
    p.add_argument("--decoder", choices=["open_loop", "closed_loop"], default=d.decoder)
    p.add_argument("--prior-obs-noise", type=float, default=d.prior_obs_noise,
                   help="noise on the priors' state input during skill training (in state stds)")
    p.add_argument("--window-starts", choices=["inside", "anywhere"], default=d.window_starts,
                   help="where skill-training windows start in a segment (see `skillgym train-skills -h`)")
    p.add_argument("--prior-z-target", choices=["sample", "mean"], default=d.prior_z_target,
                   help="fit p(z|s,d) to the encoder's z sample or its mean (see `skillgym train-skills -h`)")
    p.add_argument("--reconstruction", choices=["sum", "mean"], default=d.reconstruction,
                   help="skill loss summed (Eq. 2) or averaged over a window's steps (see `skillgym train-skills -h`)")
    p.add_argument("--beta", type=float, default=d.beta,
                   help="KL weight of the skill argument (see `skillgym train-skills -h`)")
    p.add_argument("--state-skip", action=argparse.BooleanOptionalAction, default=d.state_skip,
                   help="closed-loop decoder: linear path from the state to the action (see `skillgym train-skills -h`)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads for skill training")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes)
    p.add_argument("--rl-steps", type=int, default=d.rl_steps)
    p.add_argument("--seed", type=int, default=d.seed)


def pipeline_args(ns: argparse.Namespace) -> PipelineArgs:
    """PipelineArgs from options added by add_pipeline_options, with the sizes checked."""
    for name in ("episodes", "image_size", "workers", "k", "skill_steps"):
        if getattr(ns, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(ns, name)}")
    return PipelineArgs(**{f.name: getattr(ns, f.name) for f in fields(PipelineArgs)})


def add_run_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="the whole pipeline at a small default scale")
    p.add_argument("benchmark", choices=["kitchen"], help="which pipeline to run")
    add_pipeline_options(p)

    def run(ns: argparse.Namespace) -> int:
        run_pipeline(pipeline_args(ns))
        return 0

    p.set_defaults(func=run)
    return p
