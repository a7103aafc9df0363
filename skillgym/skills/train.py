"""Train the skill VAE + priors (paper §4.2, Eq. 2) on labelled segments -> a SkillLibrary.

CleanRL-style: :func:`train_skills` reads top to bottom. Output folder ``args.out``::

    config.json, model.safetensors   the SkillLibrary (decoder + priors + the VAE encoder)
    eval.json, eval.png              held-out metrics and prior rollouts (evaluate.py)
    checkpoint/                      everything --resume needs (weights, AdamW moments, RNG states)
    tb/                              TensorBoard scalars

No pickles: weights and optimizer moments are safetensors, the rest JSON.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from skillgym.data.dataset import open_dataset
from skillgym.extract.labels import SkillLabels
from skillgym.skills.config import LibraryConfig
from skillgym.skills.data import load_segments, make_batch, split_episodes, state_statistics
from skillgym.skills.library import SkillLibrary, current_versions
from skillgym.skills.model import SkillVAE

CHECKPOINT_DIR = "checkpoint"
# Arguments that may differ between an interrupted run and its --resume.
RESUMABLE_CHANGES = {"steps", "resume", "eval_episodes", "progress_bar", "threads", "checkpoint_every",
                     "log_every", "val_every"}


@dataclass
class TrainSkillsArgs:
    labels: str
    """labels folder written by `skillgym extract`"""
    out: str
    """output folder: the SkillLibrary, checkpoints, TensorBoard logs, eval.json"""
    steps: int = 20_000
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01  # AdamW's default
    window: int = 30
    """maximum actions per training window = max_skill_steps of the library"""
    window_starts: str = "inside"
    """where random windows start: "inside" (a full window fits in the segment) or "anywhere" in it
    (also covers the states the env re-plans from after a capped skill); see make_batch"""
    z_dim: int = 5
    beta: float = 1e-3
    """weight of KL(q || N(0, I)), the KL summed over the z dims"""
    prior_obs_noise: float = 0.0
    """std (in units of each state dim's std) of Gaussian noise added to the priors' state input in
    training: the priors then tolerate the small drift of executed skills off the demonstrations"""
    prior_z_target: str = "sample"
    """what p(z|s,d) is fitted to: the encoder's z sample ("sample") or its mean ("mean"); see SkillVAE.loss_terms"""
    reconstruction: str = "sum"
    """action/progress errors summed over a window's steps ("sum", Eq. 2) or averaged ("mean"); see SkillVAE.loss_terms"""
    detach_progress: bool = False
    """the progress loss trains the decoder but not the encoder; see SkillVAE.loss_terms"""
    obs: str = "state"  # "state" | "pixels"
    decoder: str = "open_loop"  # "open_loop" | "closed_loop"
    decoder_obs: str = "prior"
    """what a closed-loop decoder observes: the priors' observation ("prior") or the state vector ("state")"""
    autoregressive: bool = False
    """feed the previous action and progress into the decoder"""
    state_skip: bool = False
    """closed-loop state decoders: a linear path from the state to the action (LibraryConfig.state_skip)"""
    image_size: int = 64
    frame_stack: int = 4
    hidden_dim: int = 128
    """LSTM width of the skill encoder and decoder"""
    decoder_obs_dim: int = 64
    """width of the closed-loop decoder's observation features (one ReLU layer into the LSTM)"""
    arg_bound: float = 3.0
    val_fraction: float = 0.1
    dataset: str | None = None
    """dataset path if it moved since labelling (default: the path stored in the labels)"""
    init_from: str | None = None
    """fine-tune a trained library (same labeler / number of skills) instead of starting fresh"""
    resume: bool = False
    eval_episodes: int = 10
    """prior-rollout episodes in the kitchen after training (0: skip the rollouts)"""
    log_every: int = 50
    val_every: int = 1000
    checkpoint_every: int = 1000
    threads: int | None = None
    """torch threads (None: torch's default)"""
    progress_bar: bool = True


@dataclass
class TrainResult:
    library: Path
    start_step: int
    steps: int
    history: dict[str, list[float]] = field(default_factory=dict)  # per step of *this* invocation
    eval: dict[str, Any] = field(default_factory=dict)


# -- checkpoints (exact resume, no pickles) ---------------------------------------------------
def save_checkpoint(path: Path, step: int, model: SkillVAE, optimizer: torch.optim.Optimizer,
                    rng: np.random.Generator, args: TrainSkillsArgs, split: dict[str, list[int]]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # AdamW state flattened to plain tensors: state.<param index>.<exp_avg|exp_avg_sq|step>.
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "step": step,
        "args": asdict(args),
        "numpy_rng": rng.bit_generator.state,  # PCG64 state: plain ints, JSON-safe
        "python_rng": list(random.getstate()[1]),
        "config": model.config.to_dict(),
        "split": split,
    }
    save_file(tensors, str(path / "state.safetensors.tmp"))
    (path / "state.json.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.safetensors.tmp", path / "state.safetensors")
    os.replace(path / "state.json.tmp", path / "state.json")


def load_checkpoint(path: Path, model: SkillVAE, optimizer: torch.optim.Optimizer,
                    rng: np.random.Generator) -> dict[str, Any]:
    if not (path / "state.json").is_file() or not (path / "state.safetensors").is_file():
        raise FileNotFoundError(f"--resume: no checkpoint in {path} (state.json + state.safetensors)")
    meta = json.loads((path / "state.json").read_text())
    tensors = load_file(str(path / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, key = k.split(".", 2)
            state.setdefault(int(i), {})[key] = v
    optim_state = optimizer.state_dict()
    optim_state["state"] = state
    optimizer.load_state_dict(optim_state)
    torch.set_rng_state(tensors["rng.torch"])
    rng.bit_generator.state = meta["numpy_rng"]
    random.setstate((3, tuple(meta["python_rng"]), None))
    return meta


def _check_resume_args(saved: dict[str, Any], args: TrainSkillsArgs) -> None:
    current = asdict(args)
    defaults = asdict(TrainSkillsArgs(labels=args.labels, out=args.out))  # for arguments added since
    changed = {k: (saved.get(k, defaults[k]), v) for k, v in current.items()
               if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != v}
    if changed:
        raise ValueError(
            "--resume with different arguments would not continue the same run: "
            + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        )


# -- training ---------------------------------------------------------------------------------
def train_skills(args: TrainSkillsArgs) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    out = Path(args.out)
    ckpt_dir = out / CHECKPOINT_DIR
    if args.threads:
        torch.set_num_threads(args.threads)
    # Seeding: python, numpy (window sampling, its own Generator), torch (z samples, init).
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # Data: every segment of the labelled dataset in memory; ~10 % of episodes held out.
    labels = SkillLabels.load(args.labels)
    dataset = open_dataset(args.dataset or labels.dataset_path)
    if labels.dataset_fingerprint and dataset.fingerprint != labels.dataset_fingerprint:
        raise ValueError(
            f"{dataset.path} (fingerprint {dataset.fingerprint}) is not the dataset these labels were made "
            f"from (fingerprint {labels.dataset_fingerprint}); pass the right one with --dataset"
        )
    train_eps, val_eps = split_episodes(labels, args.val_fraction, args.seed)
    train = load_segments(labels, dataset, train_eps, args.obs, args.image_size)
    val = load_segments(labels, dataset, val_eps, args.obs, args.image_size)
    split = {"train": train_eps.tolist(), "val": val_eps.tolist()}
    trained_on = {"dataset_path": str(dataset.path), "dataset_fingerprint": dataset.fingerprint,
                  "labels_path": str(Path(args.labels)), "num_segments": int(train.num_segments),
                  "num_val_segments": int(val.num_segments), "train_episodes": len(train_eps),
                  "val_episodes": len(val_eps), "steps": args.steps, "seed": args.seed}

    # Model: fresh, or fine-tuned from a library (Alg. 1 l.4-7: same labeler, same skills).
    if args.init_from:
        base = SkillLibrary.load(args.init_from)
        if base.encoder is None:
            raise ValueError(f"{args.init_from} holds no VAE encoder weights, so it cannot be fine-tuned")
        if base.num_skills != labels.num_skills or base.config.obs_kind != args.obs:
            raise ValueError(
                f"--init-from {args.init_from}: library has {base.num_skills} skills / {base.config.obs_kind} "
                f"observations, these labels {labels.num_skills} skills / --obs {args.obs}"
            )
        config = LibraryConfig.from_dict(base.config.to_dict())
        config.trained_on = {**trained_on, "fine_tuned_from": base.config.trained_on}
        config.versions = current_versions()
        model = SkillVAE(config)
        model.encoder.load_state_dict(base.encoder.state_dict())
        model.decoder.load_state_dict(base.decoder.state_dict())
        # The library's state normalisation is kept: the priors/decoder were trained on that scale.
        model.priors.load_state_dict(base.priors.state_dict())
    else:
        config = LibraryConfig(
            num_skills=labels.num_skills, z_dim=args.z_dim, max_skill_steps=args.window, obs_kind=args.obs,
            state_dim=train.states.shape[1], action_dim=train.actions.shape[1], image_size=args.image_size,
            frame_stack=args.frame_stack, decoder=args.decoder, decoder_obs=args.decoder_obs,
            autoregressive=args.autoregressive, state_skip=args.state_skip, arg_bound=args.arg_bound,
            hidden_dim=args.hidden_dim, decoder_obs_dim=args.decoder_obs_dim, labeler=labels.metadata, trained_on=trained_on,
            versions=current_versions(),
        )
        model = SkillVAE(config)
        mean, std = state_statistics(train)
        model.set_normalisation(torch.from_numpy(mean), torch.from_numpy(std))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    start_step = 0
    if args.resume:
        meta = load_checkpoint(ckpt_dir, model, optimizer, rng)
        _check_resume_args(meta["args"], args)
        start_step = meta["step"]
        if meta["split"] != split:
            raise ValueError("--resume: the train/validation split differs from the interrupted run")
    elif (ckpt_dir / "state.json").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or pick another --out")

    writer = SummaryWriter(str(out / "tb"), purge_step=start_step if args.resume else None)
    closed_loop = args.decoder == "closed_loop"
    history: dict[str, list[float]] = {}
    bar = tqdm(range(start_step, args.steps), initial=start_step, total=args.steps,
               disable=not args.progress_bar, desc="train-skills")
    t0 = time.perf_counter()
    for step in bar:
        seg_index = rng.integers(0, train.num_segments, size=args.batch_size)
        batch = make_batch(train, seg_index, args.window, rng=rng, obs_kind=args.obs,
                           frame_stack=args.frame_stack, closed_loop=closed_loop,
                           step_obs_kind=model.config.decoder_obs_kind, window_starts=args.window_starts)
        if args.prior_obs_noise > 0 and args.obs == "state":
            noise = rng.standard_normal(batch.prior_obs.shape).astype(np.float32) * args.prior_obs_noise
            batch.prior_obs = batch.prior_obs + torch.from_numpy(noise) * model.priors.encoder.obs_std
        loss, terms = model.loss(batch, beta=args.beta, prior_z_target=args.prior_z_target,
                                 reconstruction=args.reconstruction, detach_progress=args.detach_progress)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        for k, v in terms.items():
            history.setdefault(k, []).append(float(v))
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            for k, v in terms.items():
                writer.add_scalar(f"train/{k}", float(v), done)
            writer.add_scalar("perf/steps_per_second", (done - start_step) / (time.perf_counter() - t0), done)
            bar.set_postfix(loss=f"{float(terms['loss']):.3f}", act=f"{float(terms['action_mse']):.4f}",
                            prog=f"{float(terms['progress_mae']):.3f}", acc=f"{float(terms['prior_acc']):.2f}")
        if val.num_segments and (done % args.val_every == 0 or done == args.steps):
            for k, v in validation_terms(model, val, args).items():
                writer.add_scalar(f"val/{k}", v, done)
        if done % args.checkpoint_every == 0 or done == args.steps:
            save_checkpoint(ckpt_dir, done, model, optimizer, rng, args, split)
    writer.flush()

    # The library: decoder + priors (+ the encoder, for fine-tuning), then the built-in evaluation.
    # Copies: the library freezes its modules, the training model must stay trainable.
    library = SkillLibrary(config, copy.deepcopy(model.priors), copy.deepcopy(model.decoder),
                           copy.deepcopy(model.encoder))
    library.save(out)
    library = SkillLibrary.load(out)  # evaluate exactly what was written
    results: dict[str, Any] = {"steps": args.steps, "seed": args.seed}
    if val.num_segments:
        model.eval()
        from skillgym.skills.evaluate import evaluate_heldout

        results["heldout"] = evaluate_heldout(model, library, val, args.window)
        model.train()
    if args.eval_episodes > 0:
        from skillgym.skills.evaluate import prior_rollouts

        results["rollouts"] = prior_rollouts(library, episodes=args.eval_episodes, seed=args.seed)
        results["rollouts_greedy"] = prior_rollouts(library, episodes=args.eval_episodes, seed=args.seed,
                                                    greedy=True)
        replayable = library.config.decoder == "open_loop" or library.config.decoder_obs_kind == "state"
        if replayable and dataset.has_sim_states:
            from skillgym.skills.evaluate import posterior_replay

            # The decoder alone on its own data: tells a decoder that cannot reproduce the
            # demonstrations from priors that choose badly (docs/skills.md, "Evaluation").
            results["replay"] = posterior_replay(library, episodes=min(10, args.eval_episodes),
                                                 labels_path=args.labels, dataset_path=dataset.path)
    from skillgym.skills.evaluate import write_eval

    write_eval(out, results)
    for k, v in _flat_numbers(results).items():
        writer.add_scalar(f"eval/{k}", v, args.steps)
    writer.close()
    return TrainResult(library=out, start_step=start_step, steps=args.steps, history=history, eval=results)


@torch.no_grad()
def validation_terms(model: SkillVAE, val, args: TrainSkillsArgs, max_segments: int = 1024) -> dict[str, float]:
    """Loss terms on held-out segments from their first action, z = mean: no RNG is consumed,
    so validation never changes the training run (needed for exact --resume)."""
    n = min(val.num_segments, max_segments)
    sums: dict[str, float] = {}
    for lo in range(0, n, 256):
        idx = np.arange(lo, min(lo + 256, n))
        batch = make_batch(val, idx, args.window, obs_kind=args.obs, frame_stack=args.frame_stack,
                           closed_loop=args.decoder == "closed_loop", step_obs_kind=model.config.decoder_obs_kind)
        _, terms = model.loss(batch, beta=args.beta, sample=False, reconstruction=args.reconstruction)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(idx)
    return {k: v / n for k, v in sums.items()}


def _flat_numbers(results: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat = {}
    for k, v in results.items():
        if isinstance(v, dict):
            flat.update(_flat_numbers(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            flat[f"{prefix}{k}"] = float(v)
    return flat
