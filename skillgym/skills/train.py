"""Train the skill VAE + priors (paper §4.2, Eq. 2) on labelled segments -> a SkillLibrary.

CleanRL-style: :func:`train_skills` reads top to bottom. Output folder ``args.out``::

    config.json, model.safetensors   the SkillLibrary (decoder + priors + the VAE encoder)
    eval.json, eval.png              held-out decoder and prior metrics (evaluate.py)
    checkpoint/                      everything --resume needs (weights, AdamW moments, RNG states)
    tb/                              TensorBoard scalars

No pickles: weights and optimizer moments are safetensors, the rest JSON.

When every episode of the dataset carries a language instruction (LIBERO), the library is
language-conditioned: the instructions are embedded (:func:`skillgym.language.embed_instructions`,
or the ``embed`` function given to :func:`train_skills`) and the priors and the decoder take them.

``torchrun --nproc-per-node N -m skillgym.skills.train LABELS --out DIR`` trains data-parallel on N
processes (:mod:`skillgym.skills.distributed`); ``python -m skillgym.skills.train`` is
``skillgym train-skills``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from skillgym import outputs
from skillgym.data.dataset import OfflineDataset, open_dataset
from skillgym.extract.labels import SkillLabels, read_json_object
from skillgym.language import embed_instructions
from skillgym.skills.config import LibraryConfig
from skillgym.skills.data import load_segments, make_batch, split_episodes, state_statistics, window_offsets
from skillgym.skills.distributed import join_torchrun
from skillgym.skills.evaluate import evaluate_heldout, write_eval
from skillgym.skills.library import CONFIG_FILE, WEIGHTS_FILE, SkillLibrary, current_versions
from skillgym.skills.model import SkillVAE

CHECKPOINT_DIR = "checkpoint"
# What training writes into --out; a folder holding any of them must be a library or a run skillgym wrote.
LIBRARY_LAYOUT = (CONFIG_FILE, WEIGHTS_FILE, f"{CONFIG_FILE}.tmp", f"{WEIGHTS_FILE}.tmp", "eval.json", "eval.png",
                  f"{CHECKPOINT_DIR}/state.json", f"{CHECKPOINT_DIR}/state.safetensors", f"{CHECKPOINT_DIR}/state.*.tmp",
                  "tb/events.out.tfevents.*")
# What a run cut before its first checkpoint was complete leaves.
EARLY_RUN_LAYOUT = (f"{CHECKPOINT_DIR}/state.*.tmp", "tb/events.out.tfevents.*")
LIBRARY_CONFIG_KEYS = ("num_skills", "format_version")  # what tells a library's config.json from another one
# Arguments that may differ between an interrupted run and its --resume.
RESUMABLE_CHANGES = {"steps", "resume", "progress", "threads", "overwrite", "out"}
# Folders a resume compares by what they hold: the same data moved elsewhere continues the run.
PATH_ARGS = {"labels", "dataset", "init_from"}
WEIGHT_DECAY = 0.01  # AdamW's default
VAL_FRACTION = 0.1  # episodes held out for validation
DECODER_OBS_DIM = 64  # width of a closed-loop decoder's observation features
ARG_BOUND = 3.0  # |z| bound of the skill env's argument box
LOG_EVERY, VAL_EVERY, CHECKPOINT_EVERY = 50, 1000, 1000
# Action and progress errors averaged over a window's steps, not summed as in Eq. 2: with the sum,
# beta * KL weighs ~20x less and sampled prior rollouts are less steady (docs/skills.md).
RECONSTRUCTION = "mean"


@dataclass
class TrainSkillsArgs:
    """Options of ``skillgym train-skills``; the defaults are the recipe of the bundled state library."""

    labels: str
    """labels folder written by `skillgym extract`"""
    out: str
    """output folder: the SkillLibrary, checkpoints, TensorBoard logs, eval.json"""
    steps: int = 20_000
    """gradient steps"""
    seed: int = 0
    """seed of initialisation, window sampling and the train/validation split"""
    batch_size: int = 128
    """training windows per gradient step"""
    lr: float = 1e-3
    """AdamW learning rate"""
    window: int = 30
    """maximum actions per training window = the library's max_skill_steps"""
    z_dim: int = 5
    """dimension of the skill argument z"""
    beta: float = 1e-3
    """weight of KL(q(z|a,d) || N(0, I)), summed over the z dims"""
    prior_obs_noise: float = 0.1
    """Gaussian noise (in state stds) on the priors' state input in training, so they tolerate the small
    drift of executed skills off the demonstrations"""
    decoder_obs_noise: float = 0.0
    """Gaussian noise (in state stds) on a closed-loop decoder's state input in training, so a skill tolerates the
    states its own small errors lead to (in LIBERO a slightly wrong gripper command moves the fingers by several
    of the data's stds)"""
    obs: Literal["state", "pixels"] = "state"
    """what the priors observe: the state vector or frame stacks"""
    decoder: Literal["closed_loop", "open_loop"] = "closed_loop"
    """closed-loop decoders see the state at every step (pixel libraries: the state vector); open-loop ones
    emit a whole skill from (d, z)"""
    state_skip: bool = True
    """closed-loop decoders: add a linear path from the state to the action"""
    hidden_dim: int = 128
    """LSTM width of the skill encoder and decoder"""
    image_size: int = 64
    """frame size the pixel priors see"""
    frame_stack: int = 4
    """frames per pixel observation"""
    dataset: str | None = None
    """dataset path if it moved since labelling (default: the path stored in the labels)"""
    instructions: bool = True
    """condition the priors and the decoder on the episodes' language instructions when the dataset carries
    them (embedded with all-MiniLM-L6-v2, needs pip install 'skillgym[libero]')"""
    init_from: str | None = None
    """fine-tune this library instead of starting fresh: labels made with its labeler (`skillgym extract
    --labeler`), the same observation, skill and network options, the same state and action sizes"""
    resume: bool = False
    """continue an interrupted run in --out exactly"""
    overwrite: bool = False
    """replace the skill library (and run) already in --out"""
    threads: int | None = None
    """torch threads (default: torch's choice). A run repeats exactly for the same seed and thread count on
    the same machine; another thread count sums floats in another order, so the weights differ in their
    last digits and the runs drift apart"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "window", "z_dim", "hidden_dim", "image_size", "frame_stack"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.obs == "pixels" and self.image_size < 16:
            raise ValueError(f"--image-size must be >= 16 for a pixel library (its conv encoder halves the frame "
                             f"4 times), got {self.image_size}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be >= 0 (and < 2**32), got {self.seed}")
        if not 0 < self.lr < math.inf:  # written so that NaN fails too
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        for name in ("beta", "prior_obs_noise", "decoder_obs_noise"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def decoder_obs(self) -> str:
        """A closed-loop decoder of a pixel library observes the state vector: a per-step conv would
        dominate the env's cost, and the low-level env has the state anyway."""
        return "state" if self.obs == "pixels" and self.decoder == "closed_loop" else "prior"

    @property
    def uses_state_skip(self) -> bool:
        """Whether the decoder gets the state skip: ``state_skip`` only applies to a closed-loop decoder."""
        return self.state_skip and self.decoder == "closed_loop"


@dataclass
class TrainResult:
    """What :func:`train_skills` returns: the library folder, the steps, the loss history, the evaluation, the model."""

    library: Path
    start_step: int
    steps: int
    history: dict[str, list[float]] = field(default_factory=dict)  # per step of *this* invocation
    eval: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # under torchrun: the process's rank; only rank 0 wrote the library
    model: SkillVAE | None = None  # the trained encoder, decoder and priors, as training left them


# -- checkpoints (exact resume, no pickles) ---------------------------------------------------
RESTART = ("to start the run over, delete its checkpoint folder (with train-skills: pass --overwrite instead of "
           "--resume)")
CHECKPOINT_FIELDS = {"step": int, "args": dict, "numpy_rng": dict, "python_rng": list, "config": dict, "split": dict}


class CheckpointError(ValueError):
    """A --resume checkpoint is unreadable, incomplete, or does not fit the run being resumed."""


def save_checkpoint(path: Path, step: int, model: SkillVAE, optimizer: torch.optim.Optimizer,
                    rng: np.random.Generator, args: TrainSkillsArgs, split: dict[str, list[int]],
                    inputs: dict[str, str]) -> None:
    """Write a resumable checkpoint to the folder ``path``: ``state.safetensors`` (model, AdamW state,
    torch RNG) and ``state.json`` (step, options, numpy and Python RNG states, config, episode split,
    the :func:`input_digests` of the data)."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # AdamW state flattened to plain tensors: state.<param index>.<exp_avg|exp_avg_sq|step>.
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().clone().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "step": step,
        # Folders as absolute paths: a resume from another working directory finds the same ones.
        "args": {**asdict(args), **{k: str(Path(getattr(args, k)).resolve()) for k in PATH_ARGS if getattr(args, k)}},
        "numpy_rng": rng.bit_generator.state,  # PCG64 state: plain ints, JSON-safe
        "python_rng": list(random.getstate()[1]),
        "config": model.config.to_dict(),
        "split": split,
        "inputs": inputs,
    }
    outputs.write_tensors(tensors, path / "state.safetensors.tmp", metadata={"step": str(step)})
    (path / "state.json.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.safetensors.tmp", path / "state.safetensors")
    os.replace(path / "state.json.tmp", path / "state.json")


def read_checkpoint_state(path: Path) -> dict[str, Any]:
    """The ``state.json`` of a :func:`save_checkpoint` folder, checked to hold every field a resume needs;
    :class:`CheckpointError` naming the file otherwise."""
    file = path / "state.json"
    if not file.is_file() or not (path / "state.safetensors").is_file():
        raise FileNotFoundError(f"--resume: no checkpoint in {path} (state.json + state.safetensors)")
    meta = _checked_state(file)
    weights_step = _weights_step(path / "state.safetensors")
    if weights_step not in (None, meta["step"]):
        # Killed between save_checkpoint's two renames: the state of these weights is still state.json.tmp.
        pending = path / "state.json.tmp"
        pending_meta = _checked_state(pending) if pending.is_file() else None
        if pending_meta is None or pending_meta["step"] != weights_step:
            raise CheckpointError(f"{file} is of step {meta['step']} but {path / 'state.safetensors'} of step "
                                  f"{weights_step}; {RESTART}")
        meta = pending_meta
    return meta


def _checked_state(file: Path) -> dict[str, Any]:
    meta = read_json_object(file, CheckpointError, RESTART)
    wrong = [key for key, kind in CHECKPOINT_FIELDS.items()
             if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool)]
    if wrong or meta["step"] < 0:
        raise CheckpointError(f"{file} is incomplete or damaged ({', '.join(wrong) or 'step'} missing or of the "
                              f"wrong type); {RESTART}")
    return meta


def _weights_step(file: Path) -> int | None:
    """The step recorded in a checkpoint's weights; None if they record none or are unreadable (which
    loading them reports)."""
    try:
        with safe_open(str(file), "pt") as weights:
            step = (weights.metadata() or {}).get("step", "")
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None
    return int(step) if step.isdigit() else None


def load_checkpoint(path: Path, model: SkillVAE, optimizer: torch.optim.Optimizer,
                    rng: np.random.Generator) -> dict[str, Any]:
    """Restore a :func:`save_checkpoint` folder into ``model``, ``optimizer``, ``rng`` and the global
    torch and Python RNGs; returns the ``state.json`` contents. :class:`CheckpointError` naming the
    file if the checkpoint is unreadable, incomplete or made for other network sizes."""
    meta = read_checkpoint_state(path)
    file = path / "state.safetensors"
    try:
        tensors = load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{file} cannot be read as safetensors ({e}); the checkpoint is corrupt or "
                              f"truncated, {RESTART}") from e
    if "rng.torch" not in tensors:
        raise CheckpointError(f"{file} lacks the tensor rng.torch: not a complete checkpoint; {RESTART}")
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    expected = model.state_dict()
    wrong = [f"{k} {tuple(weights[k].shape)} instead of {tuple(v.shape)}" for k, v in expected.items()
             if k in weights and weights[k].shape != v.shape]
    missing = [k for k in expected if k not in weights]
    if wrong or missing:
        found = f"{len(wrong)} weights of other shapes, e.g. {wrong[0]}" if wrong else f"no weights {missing[:3]}"
        raise CheckpointError(f"{file} holds {found}: it was made for other network sizes; give the options of "
                              f"the interrupted run, or {RESTART}")
    try:
        model.load_state_dict(weights)
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
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint in {path} does not fit this run ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:300]}); {RESTART}") from e
    return meta


def input_digests(labels: SkillLabels, dataset: OfflineDataset, init_from: str | None) -> dict[str, str]:
    """What the folder options hold, by content: the labels' digest, the dataset's fingerprint and the
    SHA-256 of the fine-tuned library's weights."""
    weights = hashlib.sha256(Path(init_from, WEIGHTS_FILE).read_bytes()).hexdigest() if init_from else ""
    return {"labels": labels.content_digest(), "dataset": dataset.fingerprint, "init_from": weights}


def _check_resume_args(checkpoint: dict[str, Any], args: TrainSkillsArgs) -> None:
    """Refuse a resume whose options differ from the interrupted run's; the folder options are compared
    later, by content (:func:`_check_resume_inputs`), unless the checkpoint predates that."""
    saved, by_content = checkpoint["args"], "inputs" in checkpoint
    current = asdict(args)
    defaults = asdict(TrainSkillsArgs(labels=args.labels, out=args.out))  # for arguments a checkpoint predates

    def same(key: str, before: Any, now: Any) -> bool:
        if key in PATH_ARGS and by_content:
            return True
        if key in PATH_ARGS and before is not None and now is not None:  # ./labels and labels are one folder
            return Path(before).resolve() == Path(now).resolve()
        return before == now

    changed = {k: (saved.get(k, defaults[k]), v) for k, v in current.items()
               if k not in RESUMABLE_CHANGES and not same(k, saved.get(k, defaults[k]), v)}
    if changed:
        raise ValueError(
            "--resume with different arguments would not continue the same run: "
            + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            + f"; give the options of the interrupted run, or {RESTART}"
        )


def _check_resume_inputs(checkpoint: dict[str, Any], inputs: dict[str, str], args: TrainSkillsArgs) -> None:
    saved = checkpoint.get("inputs")
    if saved is None:
        return  # an older checkpoint: its folders were compared by path
    what = {"labels": f"the labels in {args.labels}", "init_from": f"the library {args.init_from}",
            "dataset": f"the dataset {args.dataset or 'the labels name'}"}
    changed = [what[k] for k in ("labels", "dataset", "init_from") if saved.get(k) != inputs[k]]
    if changed:
        before = ", ".join(f"{k} {checkpoint['args'].get(k)}" for k in sorted(PATH_ARGS) if checkpoint["args"].get(k))
        raise ValueError(f"--resume: {' and '.join(changed)} differ from what the interrupted run trained on "
                         f"(its folders: {before}); give the same data, or {RESTART}")


# -- language and fine-tuning ------------------------------------------------------------------
EmbedInstructions = Callable[[Sequence[str]], np.ndarray]


def instruction_embeddings(dataset: OfflineDataset, embed: EmbedInstructions = embed_instructions) -> np.ndarray:
    """One instruction embedding per episode of ``dataset``: ``(len(dataset), D)`` float32."""
    texts = dataset.instructions()
    missing = [i for i, text in enumerate(texts) if text is None]
    if missing:
        raise ValueError(f"episodes {missing[:5]} of {dataset.path} carry no instruction, and a language-conditioned "
                         "library needs one for every episode; train without them with --no-instructions")
    vectors = np.asarray(embed(texts), np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts) or not np.all(np.isfinite(vectors)):
        raise ValueError(f"the instruction embedding gave {vectors.shape} values for {len(texts)} instructions; "
                         "expected (N, D) finite numbers")
    return vectors


def fine_tuning_mismatches(config: LibraryConfig, args: TrainSkillsArgs, labels: SkillLabels,
                           train) -> list[str]:
    """Every way the library ``config`` does not fit the options ``args``, the ``labels`` and the
    loaded training data ``train`` (a :class:`~skillgym.skills.data.SegmentData`); empty if it fits."""
    found = []
    pairs = [("skills", config.num_skills, labels.num_skills, "these labels"),
             ("state size", config.state_dim, train.states.shape[1], "the dataset"),
             ("action size", config.action_dim, train.actions.shape[1], "the dataset"),
             ("observation", config.obs_kind, args.obs, "--obs"),
             ("decoder", config.decoder, args.decoder, "--decoder"),
             ("window", config.max_skill_steps, args.window, "--window"),
             ("z_dim", config.z_dim, args.z_dim, "--z-dim"),
             ("hidden_dim", config.hidden_dim, args.hidden_dim, "--hidden-dim"),
             ("state_skip", config.state_skip, args.uses_state_skip, "--state-skip")]
    if config.obs_kind == "pixels":
        pairs += [("image_size", config.image_size, args.image_size, "--image-size"),
                  ("frame_stack", config.frame_stack, args.frame_stack, "--frame-stack")]
    if config.language_conditioned and train.instructions is not None:
        pairs.append(("instruction size", config.instruction_dim, train.instructions.shape[1],
                      "the instruction embedding"))
    for what, library_value, value, source in pairs:
        if library_value != value:
            found.append(f"the library has {library_value} {what}, {source} {value}" if what == "skills"
                         else f"{what}: the library's {library_value!r}, {source} {value!r}")
    for key in ("encoder", "k", "seed", "fit_dataset_fingerprint"):
        if key in config.labeler and key in labels.metadata and config.labeler[key] != labels.metadata[key]:
            found.append(f"the labels were made by another labeler ({key} {labels.metadata[key]!r}, the library's "
                         f"{config.labeler[key]!r}); label the data with `skillgym extract DATA --out DIR --labeler "
                         "LABELS_OF_THE_LIBRARY`")
            break
    return found


# -- training ---------------------------------------------------------------------------------
class NonFiniteLossError(ValueError):
    """Skill training produced a NaN or infinite loss."""


def holds_library_or_run(out: Path) -> bool:
    """Whether ``out`` holds a skill library or a skill-training checkpoint skillgym wrote."""
    return (outputs.is_marker(out / CONFIG_FILE, LIBRARY_CONFIG_KEYS)
            or outputs.is_marker(out / CHECKPOINT_DIR / "state.json", CHECKPOINT_FIELDS)
            # a run killed between its first checkpoint's two renames
            or outputs.is_marker(out / CHECKPOINT_DIR / "state.json.tmp", CHECKPOINT_FIELDS))


def is_library_folder(out: Path) -> bool:
    """Whether ``out`` may be written as a skill library: it holds one or a run, or only what a run cut before
    its first checkpoint leaves (TensorBoard events are then added to, never deleted)."""
    return holds_library_or_run(out) or outputs.holds_only(out, LIBRARY_LAYOUT, EARLY_RUN_LAYOUT)


def labelled_dataset(labels: SkillLabels, labels_folder: str | os.PathLike) -> str:
    """The path of the dataset ``labels`` were made from: as extract was given it (relative to where it ran), or
    else its absolute path then. :class:`FileNotFoundError` if neither leads to it."""
    for path in (labels.dataset_path, labels.metadata.get("dataset_absolute_path")):
        if isinstance(path, str) and path and Path(path).exists():
            return path
    relative = "," if Path(labels.dataset_path).is_absolute() else ", a path relative to where extract ran,"
    raise FileNotFoundError(f"the labels in {labels_folder} were made from the dataset {labels.dataset_path}"
                            f"{relative} which is not there (moved?); pass its place with --dataset")


def check_library_folder(args: TrainSkillsArgs) -> None:
    """Refuse to replace what is in ``--out`` unless asked: a finished library needs ``--overwrite``,
    an interrupted run ``--resume`` (or ``--overwrite``), and a ``config.json`` that is not a skill
    library's is never replaced."""
    out = Path(args.out)
    config = out / CONFIG_FILE
    has_run = (out / CHECKPOINT_DIR / "state.json").is_file()
    if config.exists() and not outputs.is_marker(config, LIBRARY_CONFIG_KEYS):
        raise FileExistsError(f"{out} holds a {CONFIG_FILE} that is not a skill library's; it is never replaced, "
                              "pick another --out")
    # Without --overwrite tb/ is only added to, as after a run cut before its first checkpoint.
    replaced = LIBRARY_LAYOUT if args.overwrite else tuple(p for p in LIBRARY_LAYOUT if not p.startswith("tb/"))
    outputs.check_output_folder(out, replaced, ours=is_library_folder(out))
    # --overwrite deletes the old run's checkpoint/ and tb/ once the new run is ready to start; every run writes
    # into tb/, so a later --overwrite would delete it: it may hold TensorBoard events only.
    for folder in (CHECKPOINT_DIR, "tb") if args.overwrite else ("tb",):
        if (out / folder).is_dir():
            outputs.check_whole_folder(out / folder, outputs.inside(LIBRARY_LAYOUT, folder))
    if args.resume or args.overwrite:
        return
    if has_run:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it, --overwrite to start "
                              "over, or pick another --out")
    if config.exists():
        raise FileExistsError(f"{out} already holds a skill library; pass --overwrite to replace it or pick "
                              "another --out")


def train_skills(args: TrainSkillsArgs, embed: EmbedInstructions = embed_instructions) -> TrainResult:
    """Train the skill VAE and priors on labelled segments and write a SkillLibrary to ``args.out``.

    Seeded and deterministic; checkpoints go to ``args.out/checkpoint/`` (``args.resume``
    continues one exactly, ``args.init_from`` fine-tunes a library). The library is saved,
    reloaded and evaluated on the held-out segments (``eval.json``, ``eval.png``). Launched by
    torchrun, the processes share each step's batch (:mod:`skillgym.skills.distributed`).

    ``embed`` turns the episodes' instructions into vectors for a language-conditioned library
    (``(N,)`` texts -> ``(N, D)`` float array); the default is the all-MiniLM-L6-v2 embedding the
    LIBERO envs put in their observations, and another one must match what the env will observe.

    Returns:
        The library folder, the steps run, the per-step loss history of this invocation and
        the held-out evaluation.
    """
    out = Path(args.out)
    ckpt_dir = out / CHECKPOINT_DIR
    ranks = join_torchrun()  # a single rank unless torchrun started this process
    mine = ranks.shard(args.batch_size)  # this process's rows of every step's batch (all rows in a plain run)
    if ranks.is_main:
        check_library_folder(args)
    ranks.wait()
    checkpoint = read_checkpoint_state(ckpt_dir) if args.resume else {}
    if args.resume:  # a changed option is refused before the data is read
        _check_resume_args(checkpoint, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Seeding: python, numpy (window sampling, its own Generator), torch (z samples, init).
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    # Data: every segment of the labelled dataset in memory; VAL_FRACTION of the episodes held out.
    labels = SkillLabels.load(args.labels)
    if not len(labels.segments):
        raise ValueError(f"the labels in {args.labels} hold no segments: nothing to train on; extract them again "
                         "with a lower --min-length")
    dataset = open_dataset(args.dataset or labelled_dataset(labels, args.labels))
    if labels.dataset_fingerprint and not dataset.matches_fingerprint(labels.dataset_fingerprint):
        raise ValueError(
            f"{dataset.path} (fingerprint {dataset.fingerprint}) is not the dataset these labels were made "
            f"from (fingerprint {labels.dataset_fingerprint}); pass the right one with --dataset"
        )
    train_eps, val_eps = split_episodes(labels, VAL_FRACTION, args.seed)
    if not len(val_eps) and ranks.is_main:
        warnings.warn(f"the segments of {args.labels} all lie in one episode: none is held out, so eval.json will "
                      "hold no held-out scores; record more episodes", stacklevel=2)
    # Model: fresh, or fine-tuned from a library (Alg. 1 l.4-7: same labeler, same skills).
    base = SkillLibrary.load(args.init_from) if args.init_from else None
    inputs = input_digests(labels, dataset, args.init_from)
    if args.resume:
        _check_resume_inputs(checkpoint, inputs, args)
    if base is not None:
        if base.encoder is None:
            raise ValueError(f"{args.init_from} holds no VAE encoder weights, so it cannot be fine-tuned")
        conditioned = base.config.language_conditioned
    else:
        conditioned = args.instructions and dataset.has_instructions
    instructions = instruction_embeddings(dataset, embed) if conditioned else None
    train = load_segments(labels, dataset, train_eps, args.obs, args.image_size, instructions)
    val = load_segments(labels, dataset, val_eps, args.obs, args.image_size, instructions)
    dataset.close()  # frees the renderer used for pixel observations
    # A fine-tuned library keeps its labeler's skills, so target data showing only some of them is expected.
    unused = labels.skills_without_segments(train.segments)
    if unused and not args.init_from and ranks.is_main:
        fix = ("extract again with a lower --k" if set(labels.skills_without_segments()) & set(unused)
               else "their segments are all in the held-out episodes; record more episodes")
        warnings.warn(f"{len(unused)} of the {labels.num_skills} skills of {args.labels} have no training segment "
                      f"(skills {_first(unused)}): the library keeps them, but the decoder never learns them and the "
                      f"priors learn never to choose them; {fix}", stacklevel=2)
    split = {"train": train_eps.tolist(), "val": val_eps.tolist()}
    trained_on = {"dataset_path": str(dataset.path), "dataset_fingerprint": dataset.fingerprint,
                  "labels_path": str(Path(args.labels)), "num_segments": int(train.num_segments),
                  "num_val_segments": int(val.num_segments), "train_episodes": len(train_eps),
                  "val_episodes": len(val_eps), "steps": args.steps, "seed": args.seed}
    if conditioned:
        trained_on["instructions"] = sorted({text for text in dataset.instructions() if text is not None})
    model = _build_model(args, labels, train, dataset, instructions, trained_on, base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY)
    trainer = ranks.data_parallel(model)  # the model itself in a plain run

    start_step = 0
    if args.resume:
        meta = load_checkpoint(ckpt_dir, model, optimizer, rng)
        start_step = meta["step"]
        if meta["split"] != split:
            raise ValueError("--resume: the train/validation split differs from the interrupted run")

    if args.overwrite and not args.resume and ranks.is_main and holds_library_or_run(out):
        # The replaced library, its config first: a new run cut before it ends must not leave the old library
        # loadable next to its own checkpoint.
        for name in (CONFIG_FILE, WEIGHTS_FILE, "eval.json", "eval.png"):
            (out / name).unlink(missing_ok=True)
        for folder in (ckpt_dir, out / "tb"):  # the replaced run's own files
            shutil.rmtree(folder, ignore_errors=True)
    writer = SummaryWriter(str(out / "tb"), purge_step=start_step if args.resume else None) if ranks.is_main \
        else None
    closed_loop = args.decoder == "closed_loop"
    history: dict[str, list[float]] = {}
    bar = tqdm(range(start_step, args.steps), initial=start_step, total=args.steps,
               disable=not (args.progress and ranks.is_main), desc="train-skills")
    t0 = time.perf_counter()
    for step in bar:
        # The whole batch's random draws are made on every process, each then keeps its rows.
        seg_index = rng.integers(0, train.num_segments, size=args.batch_size)
        offsets = window_offsets(train, seg_index, args.window, rng)
        batch = make_batch(train, seg_index[mine], args.window, offsets=offsets[mine], obs_kind=args.obs,
                           frame_stack=args.frame_stack, closed_loop=closed_loop,
                           step_obs_kind=model.config.decoder_obs_kind)
        _add_observation_noise(batch, model, args, rng, mine)
        z_noise = torch.randn(args.batch_size, model.config.z_dim)
        loss, terms = trainer(batch, beta=args.beta, reconstruction=RECONSTRUCTION, z_noise=z_noise[mine])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(_non_finite_message(step, terms, args, ckpt_dir))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        for k, v in terms.items():
            history.setdefault(k, []).append(float(v))
        done = step + 1
        if not ranks.is_main:
            continue
        if done % LOG_EVERY == 0 or done == args.steps:
            for k, v in terms.items():
                writer.add_scalar(f"train/{k}", float(v), done)
            writer.add_scalar("perf/steps_per_second", (done - start_step) / (time.perf_counter() - t0), done)
            bar.set_postfix(loss=f"{float(terms['loss']):.3f}", act=f"{float(terms['action_mse']):.4f}",
                            prog=f"{float(terms['progress_mae']):.3f}", acc=f"{float(terms['prior_acc']):.2f}")
        if val.num_segments and (done % VAL_EVERY == 0 or done == args.steps):
            for k, v in validation_terms(model, val, args).items():
                writer.add_scalar(f"val/{k}", v, done)
        if done % CHECKPOINT_EVERY == 0 or done == args.steps:
            save_checkpoint(ckpt_dir, done, model, optimizer, rng, args, split, inputs)
    if not ranks.is_main:
        ranks.wait()  # until rank 0 has written the library
        ranks.leave()
        return TrainResult(library=out, start_step=start_step, steps=args.steps, history=history, rank=ranks.rank,
                           model=model)
    writer.flush()

    # The library: decoder + priors (+ the encoder, for fine-tuning), then the built-in evaluation.
    # Copies: the library freezes its modules, the training model must stay trainable.
    library = SkillLibrary(model.config, copy.deepcopy(model.priors), copy.deepcopy(model.decoder),
                           copy.deepcopy(model.encoder))
    library.save(out)
    library = SkillLibrary.load(out)  # evaluate exactly what was written
    results: dict[str, Any] = {"steps": args.steps, "seed": args.seed}
    if val.num_segments:
        model.eval()
        results["heldout"] = evaluate_heldout(model, library, val, args.window)
        model.train()
    write_eval(out, results)
    for k, v in _flat_numbers(results).items():
        writer.add_scalar(f"eval/{k}", v, args.steps)
    writer.close()
    ranks.wait()
    ranks.leave()
    return TrainResult(library=out, start_step=start_step, steps=args.steps, history=history, eval=results,
                       model=model)


def _build_model(args: TrainSkillsArgs, labels: SkillLabels, train, dataset: OfflineDataset,
                 instructions: np.ndarray | None, trained_on: dict[str, Any], base: SkillLibrary | None) -> SkillVAE:
    """A fresh VAE sized by the data, or one that fine-tunes the library ``base`` (same labeler, same skills)."""
    if base is not None:
        mismatches = fine_tuning_mismatches(base.config, args, labels, train)
        if mismatches:
            raise ValueError(f"--init-from {args.init_from} cannot be fine-tuned with these labels and options: "
                             + "; ".join(mismatches))
        config = LibraryConfig.from_dict(base.config.to_dict())
        config.trained_on = {**trained_on, "fine_tuned_from": base.config.trained_on}
        config.versions = current_versions()
        model = SkillVAE(config)
        model.encoder.load_state_dict(base.encoder.state_dict())
        model.decoder.load_state_dict(base.decoder.state_dict())
        # The library's state normalisation is kept: the priors/decoder were trained on that scale.
        model.priors.load_state_dict(base.priors.state_dict())
        return model
    config = LibraryConfig(
        num_skills=labels.num_skills, z_dim=args.z_dim, max_skill_steps=args.window, obs_kind=args.obs,
        state_dim=train.states.shape[1], action_dim=train.actions.shape[1], image_size=args.image_size,
        action_low=_bounds(dataset.action_low), action_high=_bounds(dataset.action_high),
        frame_stack=args.frame_stack, decoder=args.decoder, decoder_obs=args.decoder_obs,
        state_skip=args.uses_state_skip, arg_bound=ARG_BOUND, hidden_dim=args.hidden_dim,
        decoder_obs_dim=DECODER_OBS_DIM, instruction_dim=0 if instructions is None else instructions.shape[1],
        labeler=labels.metadata, trained_on=trained_on, versions=current_versions(),
    )
    model = SkillVAE(config)
    mean, std = state_statistics(train)
    model.set_normalisation(torch.from_numpy(mean), torch.from_numpy(std))
    return model


def _add_observation_noise(batch, model: SkillVAE, args: TrainSkillsArgs, rng: np.random.Generator,
                           mine: slice) -> None:
    """Gaussian noise, in units of the state's std, on what the priors and the decoder observe (their
    ``--*-obs-noise``). Drawn for the whole batch on every process, each then keeps its rows."""
    if args.prior_obs_noise > 0 and args.obs == "state":
        noise = rng.standard_normal((args.batch_size, *batch.prior_obs.shape[1:])).astype(np.float32)
        batch.prior_obs = batch.prior_obs + torch.from_numpy(noise[mine] * args.prior_obs_noise) \
            * model.priors.encoder.obs_std
    if args.decoder_obs_noise > 0 and batch.step_obs is not None and model.config.decoder_obs_kind == "state":
        noise = rng.standard_normal((args.batch_size, *batch.step_obs.shape[1:])).astype(np.float32)
        batch.step_obs = batch.step_obs + torch.from_numpy(noise[mine] * args.decoder_obs_noise) \
            * model.decoder.obs_encoder[0].obs_std


def _non_finite_message(step: int, terms: dict[str, Any], args: TrainSkillsArgs, ckpt_dir: Path) -> str:
    bad = [k for k, v in terms.items() if k != "loss" and not math.isfinite(float(v))]
    cause = f"the terms {bad} are" if bad else "the total is"
    saved = (f"; the last good checkpoint in {ckpt_dir} is kept" if (ckpt_dir / "state.json").exists()
             else "; no checkpoint was saved")
    return (f"training stopped at step {step + 1}: the loss is not finite ({cause} NaN or infinite). "
            f"The weights diverged (lower --lr, now {args.lr}) or the data holds extreme values "
            f"(check the dataset's states and actions){saved}")


def _first(ids: list[int], n: int = 10) -> str:
    return ", ".join(map(str, ids[:n])) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _bounds(values) -> list[float] | None:
    """A dataset's declared action bound as LibraryConfig takes it (None: the default [-1, 1])."""
    return None if values is None else np.asarray(values, np.float64).tolist()


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
        _, terms = model.loss(batch, beta=args.beta, sample=False, reconstruction=RECONSTRUCTION)
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


if __name__ == "__main__":
    from skillgym.cli import main

    sys.exit(main(["train-skills", *sys.argv[1:]]))
