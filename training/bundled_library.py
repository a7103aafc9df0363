"""Produce the skill library bundled as skillgym/assets/kitchen-state (SkillKitchen-v0).

Reads top to bottom: record scripted demonstrations, extract skills with the EXTRACT recipe
(EfficientNet-Lite0 image embeddings, differences to the first frame, K-means K=8, median filter
7), train the skill VAE + state priors, evaluate prior rollouts, copy the library (config.json +
model.safetensors + eval.json) into the package.

    python training/bundled_library.py --episodes 100 --seed 0 --skill-steps 20000

Every stage is skipped when its artifact exists under --work, so the script resumes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from skillgym.envs.registration import BUNDLED_LIBRARIES


@dataclass
class Args:
    work: Path = Path("runs/bundled")
    episodes: int = 100
    seed: int = 0
    image_size: int = 128
    workers: int = 2
    encoder: str = "efficientnet-lite0"
    k: int = 8
    skill_steps: int = 20_000
    threads: int = 1
    eval_episodes: int = 20
    install: bool = True  # copy the result into skillgym/assets/kitchen-state


def main(args: Args) -> None:
    from skillgym.data.dataset import open_dataset
    from skillgym.data.record import RecordArgs, record_dataset
    from skillgym.extract.labeler import extract_skills
    from skillgym.skills.train import TrainSkillsArgs, train_skills

    data, labels, library = args.work / "data", args.work / "labels", args.work / "library"
    if not (data / "recording.json").is_file():
        report = record_dataset(RecordArgs(out=data, episodes=args.episodes, seed=args.seed,
                                           image_size=args.image_size, workers=args.workers))
        print(report.summary())
    if not (labels / "labels.json").is_file():
        extract_skills(open_dataset(data), labels, encoder=args.encoder, k=args.k, seed=args.seed)
    if not (library / "model.safetensors").is_file():
        train_skills(TrainSkillsArgs(labels=str(labels), out=str(library), steps=args.skill_steps,
                                     seed=args.seed, threads=args.threads, eval_episodes=args.eval_episodes))
    if args.install:
        install(library, BUNDLED_LIBRARIES["state"])


def install(library: Path, target: Path) -> None:
    """Copy only what the env needs (no checkpoints, no logs) into the package."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "eval.json", "eval.png"):
        if (library / name).is_file():
            shutil.copy2(library / name, target / name)
    config = json.loads((target / "config.json").read_text())
    print(f"installed {library} -> {target} ({config['num_skills']} skills, trained on "
          f"{config.get('trained_on', {}).get('dataset_path', '?')})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Args()
    for name, value in vars(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    main(Args(**vars(parser.parse_args())))
