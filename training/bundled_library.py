"""Produce the skill library bundled as skillgym/assets/kitchen-state (SkillKitchen-v0).

The whole pipeline (`skillgym run kitchen`: 100 scripted demonstrations, half of them starting
with 1-3 subtasks of the evaluation order as in D4RL kitchen-mixed -> EXTRACT skill extraction
with EfficientNet-Lite0 image embeddings, K=8, median filter 7 -> closed-loop skill VAE + state
priors, 20k steps -> prior rollouts), then only what the env needs (config.json,
model.safetensors, eval.json/png) is copied into the package.

    python training/bundled_library.py --work runs/dart3-prefix1 --seed 3 --threads 1 --eval-episodes 20 \
        --clean-labels --action-noise 0.1 --state-skip --reconstruction mean --eval-prefix-fraction 1.0

is the command of the bundled state library (session 7; skillgym/assets/README.md has its data and
scores). The defaults reproduce the pipeline's recipe instead.

`--observation pixels` then trains the SkillKitchenPixels-v0 library on the same dataset and
labels: priors on 64x64 frames (framestack 4, re-rendered from the stored sim states exactly as
the env renders them), closed-loop decoder on the state vector (``decoder_obs="state"``).

    python training/bundled_library.py --observation pixels --skill-steps 8000   # the bundled one

Stages whose artifact exists under --work are skipped, so the script resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from skillgym.envs.registration import BUNDLED_LIBRARIES
from skillgym.pipeline import PipelineArgs, run_pipeline
from skillgym.skills.train import TrainSkillsArgs, train_skills


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
    parser.add_argument("--work", type=Path, default=Path("runs/bundled"))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--eval-prefix-fraction", type=float, default=0.5)
    parser.add_argument("--skill-steps", type=int, default=20_000)
    parser.add_argument("--prior-obs-noise", type=float, default=0.1)
    parser.add_argument("--window-starts", choices=("inside", "anywhere"), default=PipelineArgs.window_starts)
    parser.add_argument("--prior-z-target", choices=("sample", "mean"), default=PipelineArgs.prior_z_target)
    parser.add_argument("--action-noise", type=float, default=PipelineArgs.action_noise)
    parser.add_argument("--clean-labels", action="store_true", help="DART labels (see `skillgym data kitchen -h`)")
    parser.add_argument("--reconstruction", choices=("sum", "mean"), default=PipelineArgs.reconstruction)
    parser.add_argument("--beta", type=float, default=PipelineArgs.beta, help="KL weight of the skill argument")
    parser.add_argument("--state-skip", action=argparse.BooleanOptionalAction, default=PipelineArgs.state_skip,
                        help="linear state -> action path in the decoder (--no-state-skip: the shipped libraries)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--observation", choices=("state", "pixels"), default="state")
    parser.add_argument("--no-install", action="store_true", help="do not copy into skillgym/assets")
    args = parser.parse_args()
    run_pipeline(PipelineArgs(out=args.work, episodes=args.episodes, seed=args.seed, encoder=args.encoder,
                              eval_prefix_fraction=args.eval_prefix_fraction, action_noise=args.action_noise,
                              clean_labels=args.clean_labels,
                              skill_steps=args.skill_steps, threads=args.threads,
                              prior_obs_noise=args.prior_obs_noise, window_starts=args.window_starts,
                              prior_z_target=args.prior_z_target, state_skip=args.state_skip,
                              reconstruction=args.reconstruction, beta=args.beta,
                              eval_episodes=args.eval_episodes))
    library = args.work / "library"
    if args.observation == "pixels":
        library = args.work / "library-pixels"
        if not (library / "model.safetensors").is_file():
            train_skills(TrainSkillsArgs(labels=str(args.work / "labels"), out=str(library), steps=args.skill_steps,
                                         seed=args.seed, obs="pixels", image_size=64, frame_stack=4,
                                         decoder="closed_loop", decoder_obs="state", threads=args.threads,
                                         window_starts=args.window_starts, prior_z_target=args.prior_z_target,
                                         state_skip=args.state_skip, reconstruction=args.reconstruction,
                                         beta=args.beta, eval_episodes=args.eval_episodes))
    if not args.no_install:
        install(library, BUNDLED_LIBRARIES[args.observation])


if __name__ == "__main__":
    main()
