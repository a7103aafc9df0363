"""Subcommands of ``skillgym``: each parses its stage's config dataclass and calls the stage."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skillgym.cli.options import add_options, parse_options
from skillgym.compare.compare import CompareArgs
from skillgym.data.libero import LiberoDataArgs
from skillgym.data.merge import MergeArgs
from skillgym.data.record import RecordArgs
from skillgym.envs.show_skills import ShowSkillsArgs
from skillgym.extract.config import ExtractArgs
from skillgym.extract.download import DownloadError
from skillgym.extract.labels import SkillLabels
from skillgym.notices import quiet_third_party_notices
from skillgym.pipeline import PipelineArgs
from skillgym.rl.checkpoint import checkpoint_folder
from skillgym.rl.train import RUN_CHECKPOINT, TrainRLArgs
from skillgym.skills.train import CHECKPOINT_DIR, TrainSkillsArgs
from skillgym.version import __version__

RERENDER_SIZE = 128  # frames of kitchen datasets that store none are rendered at this size to be shown

@dataclass
class ShowEpisodeArgs:
    """Options of ``skillgym data show``."""

    dataset: Path
    """dataset folder or D4RL kitchen .hdf5 file"""
    out: Path
    """PNG to write"""
    episode: int = 0
    """episode index"""


@dataclass
class DownloadArgs:
    """Options of ``skillgym download``."""

    name: str
    """checkpoint name, e.g. r3m-50"""
    url: str | None = None
    """download from this URL instead (a mirror)"""
    dest: Path | None = None
    """write the file here instead of skillgym's cache"""
    force: bool = False
    """download again even if the file exists"""


# -- handlers: each takes its config and returns the exit code -----------------------------------
def record(args: RecordArgs) -> int:
    """``skillgym data kitchen``: record scripted Franka Kitchen demonstrations and print their summary."""
    from skillgym.data.record import record_dataset

    print(record_dataset(args).summary())
    print(f"dataset written to {args.out} (open with skillgym.data.dataset.open_dataset('{args.out}'))")
    return 0


def merge(args: MergeArgs) -> int:
    """``skillgym data merge``: join recordings into one dataset and print its summary."""
    from skillgym.data.merge import merge_recordings

    print(merge_recordings(args.parts, args.out, mixed_recipes=args.mixed_recipes).summary())
    print(f"dataset written to {args.out}")
    return 0


def libero_data(args: LiberoDataArgs) -> int:
    """``skillgym data libero``: record scripted LIBERO demonstrations (or convert LIBERO's files) and print a summary."""
    from skillgym.data.libero import convert_libero_demos, record_libero

    report = convert_libero_demos(args.demos, args.out, overwrite=args.overwrite) if args.demos else record_libero(args)
    print(report.summary())
    print(f"dataset written to {args.out} (open with skillgym.data.dataset.open_dataset('{args.out}'))")
    return 0


def show_episode(args: ShowEpisodeArgs) -> int:
    """``skillgym data show``: write a contact sheet (PNG) of one episode's frames."""
    from skillgym.data.dataset import open_dataset
    from skillgym.data.show import contact_sheet

    n = len(open_dataset(args.dataset, image_size=RERENDER_SIZE))
    if not 0 <= args.episode < n:
        raise ValueError(f"--episode must be in [0, {n}), got {args.episode}")
    print(f"wrote {contact_sheet(args.dataset, args.episode, args.out, image_size=RERENDER_SIZE)}")
    return 0


def extract(args: ExtractArgs) -> int:
    """``skillgym extract``: check the options against the dataset, then label it with skills."""
    from skillgym.extract.labeler import check_labels_folder
    from skillgym.extract.report import format_summary

    check_labels_folder(args.out)  # before anything is read or said
    labels = _label_with_saved_labeler(args) if args.labeler is not None else _extract_new_skills(args)
    summary = args.out / "report" / "summary.json"
    if summary.is_file() and not args.progress:  # with progress on, the report has just printed these lines
        print(format_summary(json.loads(summary.read_text())))
    print(f"wrote {args.out / 'labels.npz'}, {args.out / 'labeler'}, {args.out / 'report'} "
          f"(every number in {summary.name})")
    unused = labels.skills_without_segments()
    if unused:
        used = labels.num_skills - len(unused)
        fix = "the labeler fixes K" if args.labeler else f"extract again with a lower --k (e.g. --k {max(used, 2)})"
        warnings.warn(f"only {used} of the {labels.num_skills} skills occur in the segments; skills "
                      f"{', '.join(map(str, unused[:10]))}{' ...' if len(unused) > 10 else ''} have none, and "
                      f"train-skills would train a library with them all; {fix}", stacklevel=1)
    return 0


def _label_with_saved_labeler(args: ExtractArgs) -> SkillLabels:
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.labeler import SkillLabeler, label_dataset

    labeler = SkillLabeler.load(args.labeler, **({"weights": args.weights} if args.weights else {}))
    conflicts = args.labeler_conflicts(labeler)
    if conflicts:
        raise ValueError(f"--labeler {args.labeler} fixes the extraction options; drop {', '.join(conflicts)}")
    dataset = open_dataset(args.dataset, image_size=args.image_size)
    _check_frames(labeler.encoder, dataset, args)
    print(f"labelling {args.dataset} ({len(dataset)} episodes, {dataset.total_steps} steps) with the labeler "
          f"{args.labeler}: encoder {labeler.encoder.name}, K={labeler.k}")
    return label_dataset(dataset, args.out, labeler, progress=args.progress, engine=args.engine)


def _extract_new_skills(args: ExtractArgs) -> SkillLabels:
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.clustering import size_encoder
    from skillgym.extract.encoders import available_encoders, make_encoder
    from skillgym.extract.labeler import extract_skills

    name = args.encoder_name()
    if name not in available_encoders():
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(available_encoders())}")
    dataset = open_dataset(args.dataset, image_size=args.image_size)
    encoder = make_encoder(name, **({"weights": args.weights} if name.startswith("r3m-") else {}))
    _check_frames(encoder, dataset, args)
    if args.k > dataset.total_steps:
        raise ValueError(f"--k {args.k} is larger than the number of steps in the dataset ({dataset.total_steps})")
    print(f"extracting skills from {args.dataset}: {len(dataset)} episodes, {dataset.total_steps} steps, "
          f"encoder {encoder.name} ({size_encoder(encoder, dataset)}-d), K={args.k}, seed={args.seed}")
    return extract_skills(dataset, args.out, encoder=encoder, k=args.k, seed=args.seed, kernel=args.kernel,
                          min_length=args.min_length, progress=args.progress, engine=args.engine)


def _check_frames(encoder, dataset, args: ExtractArgs) -> None:
    if args.image_size is not None and dataset.has_frames and args.image_size != dataset.frame_size:
        raise ValueError(f"{args.dataset} stores its frames at {dataset.frame_size} px; --image-size only sets the "
                         "size of re-rendered frames, for datasets that store none: leave it out")
    if encoder.input == "frames" and not dataset.has_frames and not dataset.frame_size:
        fix = "pass --image-size 64 or 128 to re-render them, or " if dataset.is_kitchen else ""
        raise ValueError(f"{args.dataset} stores no frames; {fix}use --encoder state or action")


def download(args: DownloadArgs) -> int:
    """``skillgym download``: fetch a pretrained checkpoint and print where it is."""
    from skillgym.extract.download import DOWNLOADABLE, download_weights

    if args.name not in DOWNLOADABLE:
        raise ValueError(f"unknown checkpoint {args.name!r}; choose one of {', '.join(sorted(DOWNLOADABLE))}")
    path = download_weights(args.name, url=args.url, dest=args.dest, overwrite=args.force)
    print(f"{args.name}: {path}")
    return 0


def train_skills(args: TrainSkillsArgs) -> int:
    """``skillgym train-skills``: train a skill library and print its path and held-out metrics."""
    from skillgym.skills.train import train_skills as train

    result = train(args)
    heldout = {k: v for k, v in result.eval.get("heldout", {}).items() if not isinstance(v, list)}
    if result.rank == 0:  # under torchrun, one process reports
        print(json.dumps({"library": str(result.library), "heldout": heldout}, indent=2))
    return 0


def show_skills(args: ShowSkillsArgs) -> int:
    """``skillgym skills show``: write a GIF of every skill and a contact sheet of them all."""
    from skillgym.envs.show_skills import write_skill_sheets

    summary = write_skill_sheets(args.library, args.out, start_states=args.start_states, seed=args.seed)
    print("mean executed length per skill: "
          + ", ".join(f"{d}: {v:.1f}" for d, v in summary["mean_length"].items()))
    print(f"wrote {args.out / 'skills.png'} and {len(summary['mean_length'])} GIFs")
    return 0


def train_rl(args: TrainRLArgs) -> int:
    """``skillgym train-rl``: train SkillSAC and print its final evaluation."""
    from skillgym.rl.train import train_rl as train

    print(json.dumps(train(args)["final"], indent=2))
    return 0


def run(args: PipelineArgs) -> int:
    """``skillgym run kitchen``: run the whole pipeline, stage after stage, in one folder."""
    from skillgym.pipeline import run_pipeline

    run_pipeline(args)
    return 0


def compare(args: CompareArgs) -> int:
    """``skillgym compare``: methods x tasks x seeds, then the results page."""
    from skillgym.compare import compare as run_comparison
    from skillgym.compare.compare import RunsFailed

    page = Path(args.out) / "results.md"
    try:
        run_comparison(args, command=" ".join(shlex.quote(word) for word in ["skillgym", *sys.argv[1:]]))
    except RunsFailed as e:
        print(f"skillgym compare: {e}\nresults page of the others: {page}", file=sys.stderr)
        return 1
    print(f"results page: {page}")
    return 0


# -- the parser ----------------------------------------------------------------------------------
def _command(subparsers, name: str, config: type, handler: Callable[..., int], help_text: str,
             required: tuple[str, ...] = ("out",), positional: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
    add_options(parser, config, required=required, positional=positional)
    parser.set_defaults(config=config, handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``skillgym`` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="skillgym", description="Offline robot data in, a skill space any "
                                     "RL agent can act in out (EXTRACT).")
    parser.add_argument("--version", action="version", version=f"skillgym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="offline datasets: record, merge and look at them")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    _command(data_commands, "kitchen", RecordArgs, record, "record scripted Franka Kitchen demonstrations")
    _command(data_commands, "libero", LiberoDataArgs, libero_data,
             "record scripted LIBERO demonstrations, or convert LIBERO's HDF5 demonstrations")
    _command(data_commands, "merge", MergeArgs, merge, "join recordings into one dataset")
    _command(data_commands, "show", ShowEpisodeArgs, show_episode, "contact sheet of one episode's frames")

    _command(commands, "extract", ExtractArgs, extract,
             "stage 1: label a dataset with skills (encoder, K-means, median filter)")
    _command(commands, "download", DownloadArgs, download, "fetch pretrained encoder weights (R3M)", required=())
    _command(commands, "train-skills", TrainSkillsArgs, train_skills,
             "stage 2: train the skill decoder and priors into a skill library")
    skills = commands.add_parser("skills", help="look at a skill library")
    skills_commands = skills.add_subparsers(dest="skills_command", required=True, metavar="COMMAND")
    _command(skills_commands, "show", ShowSkillsArgs, show_skills, "GIFs and a contact sheet of every skill")
    _command(commands, "train-rl", TrainRLArgs, train_rl, "stage 3: SkillSAC on a skill-space env, budget in "
             "low-level steps", required=(), positional=("env_id",))
    _command(commands, "compare", CompareArgs, compare, "evaluate skill libraries and baselines on kitchen tasks "
             "at equal low-level budgets, then write a results page")
    pipeline = commands.add_parser("run", help="the whole method, stage after stage, in one folder",
                                   description="The whole method, stage after stage, in one folder.")
    pipeline.add_argument("benchmark", choices=["kitchen"], help="which pipeline to run")
    add_options(pipeline, PipelineArgs)
    pipeline.set_defaults(config=PipelineArgs, handler=run)
    return parser


def after_interrupt(command: str, config: object | None) -> str:
    """What running ``command`` again after Ctrl-C does: the commands that keep their progress continue."""
    if command == "train-skills" and config is not None and (Path(config.out) / CHECKPOINT_DIR / "state.json").is_file():
        return "add --resume to the same command to continue from its last checkpoint"
    if command == "train-rl" and config is not None and checkpoint_folder(Path(config.out) / RUN_CHECKPOINT):
        return "run the same command again to continue from its last checkpoint"
    if command == "extract":
        return "run the same command again to continue where it stopped"
    if command in ("compare", "run"):
        return "run the same command again to continue where it stopped (a recording of demonstrations cut short starts over)"
    return "run the same command again to start it over"


def stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (kill, a job scheduler) stops the command as Ctrl-C in a terminal does: its worker processes
    end (each keeps what it checkpointed), and this process gets the KeyboardInterrupt that says what to do."""
    for child in multiprocessing.active_children():
        child.terminate()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skillgym`` command."""
    quiet_third_party_notices()
    parser = build_parser()
    ns = parser.parse_args(argv)
    command = " ".join(x for x in (ns.command, getattr(ns, "data_command", None),
                                   getattr(ns, "skills_command", None)) if x)
    show_warning = warnings.showwarning
    if not os.environ.get("SKILLGYM_DEBUG"):  # a warning is one line for a user, as an error is
        warnings.showwarning = lambda message, *_, **__: print(f"skillgym {command}: warning: {message}",
                                                                file=sys.stderr)
    config = None
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers can be set
    previous_sigterm = signal.signal(signal.SIGTERM, stop_like_ctrl_c) if in_main_thread else None
    try:
        config = parse_options(ns.config, ns)
        return int(ns.handler(config) or 0)
    except (ValueError, OSError, DownloadError) as e:  # bad input, missing or protected files, a full disk
        if os.environ.get("SKILLGYM_DEBUG"):
            raise
        parser.exit(2, f"skillgym {command}: error: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"skillgym {command}: interrupted; {after_interrupt(command, config)}\n")
    finally:
        warnings.showwarning = show_warning  # main() called from Python leaves the caller's warnings as they were
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    sys.exit(main())
