"""The ``skillgym`` command: one subcommand per pipeline stage.

    skillgym data kitchen --episodes 600 --out data/kitchen     # scripted demonstrations
    skillgym data show data/kitchen --episode 0 --out sheet.png # contact sheet of an episode
    skillgym extract data/kitchen --encoder efficientnet-lite0 --out runs/labels
    skillgym train-skills runs/labels --out runs/library
    skillgym train-rl SkillKitchen-v0 --library runs/library --steps 300000
    skillgym run kitchen                                        # the whole pipeline, small scale

Wrong arguments give a one-line error and exit code 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from skillgym.tasks.kitchen import ALL_TASKS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _image_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be an integer, got {text!r}") from None
    if not 8 <= value <= 512:
        raise argparse.ArgumentTypeError(f"image size must be in [8, 512], got {value}")
    return value


def _task_name(text: str) -> str:
    if text not in ALL_TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {text!r}; choose from {', '.join(ALL_TASKS)}")
    return text


def _add_data_parser(subparsers) -> None:
    data = subparsers.add_parser("data", help="offline datasets: record scripted demos, show episodes")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    kitchen = data_sub.add_parser("kitchen", help="record scripted Franka Kitchen demonstrations")
    kitchen.add_argument("--episodes", type=_positive_int, default=600)
    kitchen.add_argument("--seed", type=int, default=0)
    kitchen.add_argument("--first-episode", type=int, default=0, metavar="I",
                         help="index of the first episode (episode i depends only on --seed and i; "
                              "recordings of consecutive ranges can be joined with `skillgym data merge`)")
    kitchen.add_argument("--out", type=Path, required=True)
    kitchen.add_argument("--image-size", type=_image_size, default=128)
    kitchen.add_argument("--workers", type=_positive_int, default=2)
    kitchen.add_argument("--subtasks", nargs="+", type=_task_name, default=None, metavar="TASK",
                         help="draw each episode's 4 subtasks from these (default: all but the hinge cabinet)")
    kitchen.add_argument("--include-hinge", action="store_true",
                         help="also draw the hinge cabinet (slow: ~113 steps)")
    kitchen.add_argument("--eval-prefix-fraction", type=float, default=0.0, metavar="F",
                         help="fraction of episodes that start with 1-3 subtasks of the evaluation order "
                              "(D4RL kitchen-mixed-like; the full evaluation order is never recorded)")
    kitchen.add_argument("--eval-windows", action="store_true",
                         help="those 1-3 subtasks may be any consecutive run of the evaluation order, "
                              "e.g. bottom burner -> light switch, not only its beginning")
    kitchen.add_argument("--action-noise", type=float, default=0.05, metavar="STD",
                         help="std of the Gaussian noise added to every executed arm action")
    kitchen.add_argument("--clean-labels", action="store_true",
                         help="DART-style: execute the noisy action, record the controller's action "
                              "without the noise")
    kitchen.add_argument("--follow-through", type=float, default=0.0, metavar="D",
                         help="end each subtask D (joint units) inside the success threshold instead of the "
                              "moment it counts, so imitations that fall a little short still succeed")
    kitchen.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    kitchen.set_defaults(func=_run_data_kitchen)

    merge = data_sub.add_parser("merge", help="join recordings of one recipe (consecutive --first-episode ranges)")
    merge.add_argument("parts", type=Path, nargs="+", help="recordings from `skillgym data kitchen`, in episode order")
    merge.add_argument("--out", type=Path, required=True)
    merge.add_argument("--mixed-recipes", action="store_true",
                       help="join recordings of different recipes (e.g. with and without --eval-windows) "
                            "into one training set; recording.json keeps each part's options")
    merge.set_defaults(func=_run_data_merge)

    show = data_sub.add_parser("show", help="contact sheet of one episode's frames")
    show.add_argument("dataset", type=Path)
    show.add_argument("--episode", type=int, default=0)
    show.add_argument("--out", type=Path, required=True)
    show.add_argument("--frames-per-row", type=_positive_int, default=8)
    show.add_argument("--image-size", type=_image_size, default=None,
                      help="re-render size for datasets that store no frames")
    show.set_defaults(func=_run_data_show)


class UsageError(ValueError):
    """A command-line argument that is wrong; reported in one line, exit code 2."""


def _run_data_kitchen(args: argparse.Namespace) -> int:
    from skillgym.data.record import RecordArgs, record_dataset

    if args.subtasks and len(set(args.subtasks)) < 4:
        raise UsageError(f"--subtasks needs at least 4 distinct subtasks, got {args.subtasks}")
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; pass --overwrite to replace it")
    if args.first_episode < 0:
        raise UsageError(f"--first-episode must be >= 0, got {args.first_episode}")
    report = record_dataset(RecordArgs(out=args.out, episodes=args.episodes, seed=args.seed,
                                       first_episode=args.first_episode,
                                       image_size=args.image_size, workers=args.workers,
                                       subtasks=tuple(args.subtasks) if args.subtasks else None,
                                       include_hinge=args.include_hinge,
                                       eval_prefix_fraction=args.eval_prefix_fraction,
                                       eval_windows=args.eval_windows,
                                       action_noise=args.action_noise, clean_labels=args.clean_labels,
                                       follow_through=args.follow_through))
    print(report.summary())
    print(f"dataset written to {args.out} (open with minari.MinariDataset('{args.out}/data'))")
    return 0


def _run_data_merge(args: argparse.Namespace) -> int:
    from skillgym.data.merge import merge_recordings

    report = merge_recordings(args.parts, args.out, mixed_recipes=args.mixed_recipes)
    print(report.summary())
    print(f"dataset written to {args.out}")
    return 0


def _run_data_show(args: argparse.Namespace) -> int:
    from skillgym.data.dataset import open_dataset
    from skillgym.data.show import contact_sheet

    n = len(open_dataset(args.dataset, image_size=args.image_size))
    if not 0 <= args.episode < n:
        raise UsageError(f"--episode must be in [0, {n}), got {args.episode}")
    out = contact_sheet(args.dataset, args.episode, args.out, args.frames_per_row, args.image_size)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skillgym", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_data_parser(subparsers)
    # Each stage owns its subcommands' arguments.
    from skillgym.envs.show_skills import add_skills_show_parser
    from skillgym.extract.cli import add_download_parser, add_extract_parser
    from skillgym.pipeline import add_run_parser
    from skillgym.rl.train import add_train_rl_parser
    from skillgym.skills.cli import add_train_skills_parser

    for add in (add_extract_parser, add_download_parser, add_train_skills_parser, add_skills_show_parser,
                add_train_rl_parser, add_run_parser):
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point. Errors about the user's input (``ValueError``/``FileNotFoundError`` and their
    subclasses: bad arguments, missing or corrupt files) print one line and exit with code 2;
    set ``SKILLGYM_DEBUG=1`` to see the traceback instead."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("SKILLGYM_DEBUG"):
            raise
        parser.exit(2, f"{parser.prog} {args.command}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
