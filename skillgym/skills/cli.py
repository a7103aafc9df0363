"""``skillgym train-skills``: the command-line face of :func:`skillgym.skills.train.train_skills`.

The main ``skillgym`` parser calls :func:`add_train_skills_parser`; this module also runs on its
own: ``python -m skillgym.skills.cli LABELS --out DIR --steps N``.
"""

from __future__ import annotations

import argparse
import json
import sys

from skillgym.skills.train import TrainSkillsArgs, train_skills


def _configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainSkillsArgs(labels="", out="")
    p.add_argument("labels", help="labels folder from `skillgym extract`")
    p.add_argument("--out", required=True, help="output folder (the SkillLibrary, checkpoints, logs)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"gradient steps (default {d.steps})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--window", type=int, default=d.window,
                   help="max actions per training window = max skill length (30 kitchen, 40 LIBERO)")
    p.add_argument("--window-starts", choices=("inside", "anywhere"), default=d.window_starts,
                   help="where random training windows start in a segment: so that a full window fits "
                        "(inside), or at any action (anywhere: also the states after a capped skill)")
    p.add_argument("--z-dim", type=int, default=d.z_dim)
    p.add_argument("--beta", type=float, default=d.beta, help="KL weight (KL summed over z dims)")
    p.add_argument("--prior-obs-noise", type=float, default=d.prior_obs_noise,
                   help="Gaussian noise (in state stds) on the priors' state input during training")
    p.add_argument("--reconstruction", choices=("sum", "mean"), default=d.reconstruction,
                   help="action/progress errors summed over a window's steps (Eq. 2) or averaged (the "
                        "pre-session-5 loss: beta*KL weighs ~20x more)")
    p.add_argument("--prior-z-target", choices=("sample", "mean"), default=d.prior_z_target,
                   help="fit p(z|s,d) to the encoder's z sample or to its mean (a prior without the encoder's noise)")
    p.add_argument("--detach-progress", action="store_true",
                   help="the progress loss trains the decoder only, so z need not encode where a skill ends "
                        "(not in Eq. 2; docs/skills.md)")
    p.add_argument("--obs", choices=("state", "pixels"), default=d.obs, help="what the priors observe")
    p.add_argument("--decoder", choices=("open_loop", "closed_loop"), default=d.decoder)
    p.add_argument("--decoder-obs", choices=("prior", "state"), default=d.decoder_obs,
                   help="what a closed-loop decoder observes: the priors' observation, or the state vector "
                        "(cheap; for pixel priors)")
    p.add_argument("--autoregressive", action="store_true",
                   help="feed the previous action and progress back into the decoder")
    p.add_argument("--state-skip", action="store_true",
                   help="closed-loop decoders on the state vector: add a linear path from the state to "
                        "the action (kitchen actions are linear in the observed joints)")
    p.add_argument("--hidden-dim", type=int, default=d.hidden_dim,
                   help=f"LSTM width of the skill encoder and decoder (default {d.hidden_dim})")
    p.add_argument("--decoder-obs-dim", type=int, default=d.decoder_obs_dim,
                   help=f"closed-loop decoder: width of its observation features (default {d.decoder_obs_dim})")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--frame-stack", type=int, default=d.frame_stack)
    p.add_argument("--dataset", default=None, help="dataset path, if it moved since labelling")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out exactly")
    p.add_argument("--init-from", default=None, metavar="LIBRARY",
                   help="fine-tune this library on LABELS (labelled with the same labeler)")
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                   help="prior-rollout episodes after training (0 to skip)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.set_defaults(func=run_train_skills)
    return p


def add_train_skills_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``train-skills`` to the ``skillgym`` command's subparsers."""
    p = subparsers.add_parser("train-skills", help="train skill decoder + priors -> SkillLibrary",
                              description="Train the EXTRACT skill VAE and priors on labelled segments.")
    return _configure(p)


def args_from_namespace(ns: argparse.Namespace) -> TrainSkillsArgs:
    return TrainSkillsArgs(
        labels=ns.labels, out=ns.out, steps=ns.steps, seed=ns.seed, batch_size=ns.batch_size, lr=ns.lr,
        window=ns.window, window_starts=ns.window_starts, z_dim=ns.z_dim, beta=ns.beta, prior_obs_noise=ns.prior_obs_noise, prior_z_target=ns.prior_z_target, reconstruction=ns.reconstruction, detach_progress=ns.detach_progress, obs=ns.obs, decoder=ns.decoder, decoder_obs=ns.decoder_obs,
        autoregressive=ns.autoregressive, state_skip=ns.state_skip, hidden_dim=ns.hidden_dim,
        decoder_obs_dim=ns.decoder_obs_dim,
        image_size=ns.image_size, frame_stack=ns.frame_stack, dataset=ns.dataset, resume=ns.resume,
        init_from=ns.init_from, eval_episodes=ns.eval_episodes, checkpoint_every=ns.checkpoint_every,
        threads=ns.threads, progress_bar=not ns.no_progress,
    )


def run_train_skills(ns: argparse.Namespace) -> int:
    result = train_skills(args_from_namespace(ns))
    summary = {"library": str(result.library), **{k: result.eval[k] for k in ("heldout",) if k in result.eval}}
    for key in ("rollouts", "rollouts_greedy"):
        if key in result.eval:
            r = result.eval[key]
            summary[key] = {k: r[k] for k in ("ordered_mean", "unordered_mean", "any_of_7_mean")}
    summary["heldout"] = {k: v for k, v in summary.get("heldout", {}).items() if not isinstance(v, list)}
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _configure(argparse.ArgumentParser(prog="skillgym train-skills"))
    ns = parser.parse_args(argv)
    return ns.func(ns)


if __name__ == "__main__":
    sys.exit(main())
