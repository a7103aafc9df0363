"""Produce the skill library bundled as skillgym/assets/libero-spatial (SkillLibero-Spatial-v0).

The kitchen recipe of training/bundled_library.py on LIBERO data, with what LIBERO's grasps need:
skill extraction (K=8, median filter 7) from state embeddings of scripted demonstrations that see
the objects' positions, then a language-conditioned closed-loop skill library whose priors and
decoder read that state and the instruction embedding (so the skill env renders no frames), with
skills of at most 40 steps (the paper's LIBERO length) and Gaussian noise of 0.5 state stds on the
decoder's state input in training (without it a skill's small gripper error puts the fingers several
of the data's stds away and the skill loses its way; docs/guides/libero.md). Only what the env needs
(config.json, model.safetensors, eval.json/png) is copied into the package. The bundled library is
made by (skillgym/assets/README.md has its data and scores):

    skillgym data libero --out runs/libero-spatial-data --episodes 50 --seed 0 --object-positions --no-frames
    python training/bundled_libero_library.py runs/libero-spatial-data --work runs/libero-bundled \
        --seed 0 --threads 1

`--encoder efficientnet-lite0` extracts skills from the agentview frames instead (the method's recipe;
the data must then be recorded with frames).
Keep --threads 1: reproduction is promised for the same seed and thread count on the same machine.
Stages whose artifact exists under --work are skipped, so the script resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bundled_library import install

from skillgym.cli.commands import extract
from skillgym.envs.skill_libero import BUNDLED_LIBERO_LIBRARIES
from skillgym.extract.config import ExtractArgs
from skillgym.skills.train import TrainSkillsArgs, train_skills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path, help="LIBERO dataset of `skillgym data libero` (with instructions)")
    parser.add_argument("--work", type=Path, default=Path("runs/libero-bundled"), help="folder of every stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default="state",
                        help="embedding of the extraction (efficientnet-lite0 needs a recording with frames)")
    parser.add_argument("--k", type=int, default=8, help="number of skills")
    parser.add_argument("--kernel", type=int, default=7, help="median filter over per-step cluster labels")
    parser.add_argument("--window", type=int, default=40, help="max skill length")
    parser.add_argument("--skill-steps", type=int, default=20_000)
    parser.add_argument("--decoder-obs-noise", type=float, default=0.5,
                        help="noise (state stds) on the decoder's state input in training")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of skill training")
    parser.add_argument("--no-install", action="store_true", help="do not copy into skillgym/assets")
    args = parser.parse_args()
    labels, library = args.work / "labels", args.work / "library"
    if not (labels / "labels.npz").is_file():
        extract(ExtractArgs(dataset=args.dataset, out=labels, encoder=args.encoder, k=args.k,
                            seed=args.seed, kernel=args.kernel, progress=False))
    if not (library / "model.safetensors").is_file():
        result = train_skills(TrainSkillsArgs(labels=str(labels), out=str(library), steps=args.skill_steps,
                                              seed=args.seed, threads=args.threads, window=args.window,
                                              obs="state", decoder_obs_noise=args.decoder_obs_noise,
                                              progress=False))
        print(f"held-out: {result.eval.get('heldout')}")
    if not args.no_install:
        install(library, BUNDLED_LIBERO_LIBRARIES["libero_spatial"])


if __name__ == "__main__":
    main()
