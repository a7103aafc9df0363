"""Produce the skill library bundled as skillgym/assets/kitchen-state (SkillKitchen-v0).

The whole pipeline (`skillgym run kitchen`: scripted DART-style demonstrations, each starting
with 1-3 subtasks of the evaluation order -> EXTRACT skill extraction with EfficientNet-Lite0
image embeddings, K=8, median filter 7 -> closed-loop skill VAE + state priors -> prior
rollouts), then only what the env needs (config.json, model.safetensors, eval.json/png) is
copied into the package. The options are those of `skillgym run kitchen`, with the same
defaults except --encoder, --threads and --eval-episodes.

    python training/bundled_library.py --work runs/kitchen-state --seed 5 --episodes 200 --skill-steps 10000 --threads 2

records its own data. `--mixed-from RECORDING...` instead trains on several recordings joined with
`skillgym data merge --mixed-recipes` (written to --work/data); the bundled state library is made by
(skillgym/assets/README.md has its data and scores):

    skillgym data kitchen --out runs/prefix --episodes 200 --seed 5 --eval-windows-fraction 0
    skillgym data kitchen --out runs/windows --episodes 200 --seed 5 --eval-windows-fraction 1
    python training/bundled_library.py --work runs/kitchen-state --mixed-from runs/prefix runs/windows --seed 5 --skill-steps 10000 --threads 2

Keep --threads 2: reproduction is promised for the same seed and thread count on the same machine.

The task-agnostic state library (skillgym/assets/kitchen-agnostic, `library="agnostic"`) is trained on
random orders over all seven subtasks with no start from the evaluation order, the same recipe otherwise:

    python training/bundled_library.py --work runs/kitchen-agnostic --target kitchen-agnostic --seed 5 --episodes 400 \
        --eval-prefix-fraction 0 --eval-windows-fraction 0 --subtasks "bottom burner" "top burner" "light switch" \
        "slide cabinet" "hinge cabinet" microwave kettle --workers 1 --skill-steps 10000 --threads 2

`--observation pixels` then trains a pixel library on the same dataset and labels: priors on 64x64
frames (framestack 4; the stored frames when the recording has them at 64x64, else re-rendered from the
stored sim states exactly as the env renders them), closed-loop decoder on the state vector
(``decoder_obs="state"``). The bundled pixel library (skillgym/assets/kitchen-pixels) is made from
recordings with 64x64 frames by the commands in skillgym/assets/README.md.

Stages whose artifact exists under --work are skipped, so the script resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

from skillgym.cli.options import add_options, parse_options
from skillgym.data.merge import merge_recordings
from skillgym.data.record import RecordArgs
from skillgym.envs.skill_kitchen import ASSETS, BUNDLED_LIBRARIES
from skillgym.extract.config import ExtractArgs
from skillgym.pipeline import PipelineArgs, run_pipeline
from skillgym.skills.train import CHECKPOINT_DIR, TrainSkillsArgs, train_skills

DATA_OPTIONS = ("episodes", "action_noise", "clean_labels", "eval_prefix_fraction", "eval_windows_fraction", "subtasks",
                "workers")


def install(library: Path, target: Path) -> None:
    """Copy only what the env needs (no checkpoints, no logs) into the package."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "eval.json", "eval.png"):
        if (library / name).is_file():
            shutil.copy2(library / name, target / name)
    config = json.loads((target / "config.json").read_text())
    print(f"installed {library} -> {target} ({config['num_skills']} skills, {config['decoder']}, trained on "
          f"{config.get('trained_on', {}).get('dataset_path', '?')})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/kitchen-state"), help="folder of every stage")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skill-steps", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of skill training")
    parser.add_argument("--state-skip", action=argparse.BooleanOptionalAction, default=True)
    add_options(parser, RecordArgs, only=DATA_OPTIONS)
    parser.add_argument("--observation", choices=("state", "pixels"), default="state")
    parser.add_argument("--no-install", action="store_true", help="do not copy into skillgym/assets")
    parser.add_argument("--target", type=str, default=None,
                        help="folder under skillgym/assets to install into (default: the bundled library of "
                             "--observation, kitchen-state or kitchen-pixels)")
    parser.add_argument("--mixed-from", type=Path, nargs="+", metavar="RECORDING",
                        help="train on these recordings joined (`skillgym data merge --mixed-recipes`) instead of "
                             "recording one; the data options are then not used")
    args = parser.parse_args()
    if args.mixed_from and not (args.work / "data" / "recording.json").is_file():
        merge_recordings(args.mixed_from, args.work / "data", mixed_recipes=True)
    skills = TrainSkillsArgs(labels="", out="", steps=args.skill_steps, seed=args.seed, threads=args.threads,
                             state_skip=args.state_skip)
    run_pipeline(PipelineArgs(
        out=args.work, seed=args.seed, rl_steps=0,
        data=parse_options(RecordArgs, args, out=args.work / "data"),  # its --seed is the data seed too
        extract=ExtractArgs(dataset=args.work / "data", out=args.work / "labels", encoder="efficientnet-lite0",
                            seed=args.seed),
        skills=skills))
    library = args.work / "library"
    if args.observation == "pixels":
        library = args.work / "library-pixels"
        if not (library / "model.safetensors").is_file():
            resume = (library / CHECKPOINT_DIR / "state.json").is_file()  # an interrupted run continues
            train_skills(replace(skills, labels=str(args.work / "labels"), out=str(library), obs="pixels", resume=resume))
    if not args.no_install:
        install(library, ASSETS / args.target if args.target else BUNDLED_LIBRARIES[args.observation])


if __name__ == "__main__":
    main()
