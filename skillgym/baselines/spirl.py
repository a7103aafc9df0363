"""SPiRL with a closed-loop decoder (SPiRL-cl): fixed-length skills in a continuous latent space.

SPiRL (Pertsch et al., 2020) embeds every ``H``-step action sequence of the offline data (``H = 10``)
into a continuous ``z`` (``R^10``), learns a state-conditioned Gaussian prior ``p(z|s)`` and runs SAC
in ``z``-space with a KL penalty towards that prior. skillgym's skill stack is that method with one
skill and fixed-length segments:

1. :func:`fixed_length_labels` cuts every episode into ``H``-action segments, all of skill 0;
2. :func:`train_spirl` trains skillgym's skill VAE on them (closed-loop decoder, state prior);
3. :func:`make_spirl_env` runs every skill for exactly ``H`` low-level steps, and SkillSAC with
   :data:`SPIRL_SKILLSAC_KWARGS` is SAC on ``z`` with KL to ``p(z|s)`` (the skill-choice KL of a
   one-skill library is identically 0).

Example:
    >>> from skillgym.rl import SkillSAC
    >>> args = SpirlArgs(dataset="runs/kitchen/data", out="runs/spirl")  # doctest: +SKIP
    >>> env = make_spirl_env(train_spirl(args))  # doctest: +SKIP
    >>> model = SkillSAC("SkillPolicy", env, **SPIRL_SKILLSAC_KWARGS, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from skillgym.data.dataset import open_dataset
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.extract.labeler import check_labels_folder
from skillgym.extract.labels import LABELS_JSON, SkillLabels
from skillgym.skills.library import CONFIG_FILE, LibraryError, SkillLibrary
from skillgym.skills.train import CHECKPOINT_DIR, TrainSkillsArgs, train_skills
from skillgym.tasks.kitchen import DEFAULT_TASKS, KitchenTaskEnv

LABELER = "fixed-length"
# SPiRL's kitchen agent aims at 5 nats of KL to the prior for its 10-d z; EXTRACT's default of 2.5 nats
# for a 5-d z is the same 0.5 nats per dimension.
TARGET_KL_PER_Z_DIM = 0.5


def fixed_length_labels(dataset_path: str | os.PathLike, horizon: int = 10, seed: int = 0) -> SkillLabels:
    """Cut every episode of a dataset into consecutive segments of ``horizon`` actions, all skill 0.

    SPiRL trains on ``H``-step windows starting at any step. A fixed tiling from step 0 would only ever
    start skills at multiples of ``H``, so each episode gets its own seeded phase: its first segment has
    ``1..H`` actions, the following ones ``H``, the last one what remains. Every action belongs to exactly
    one segment, and a segment of ``H`` actions is exactly one training window.

    Example (two 35-step episodes; any dataset folder, e.g. ``runs/kitchen/data``):
        >>> import tempfile
        >>> from skillgym.data.dataset import Episode, write_minari_dataset
        >>> episode = Episode(states=np.zeros((36, 2)), actions=np.zeros((35, 2)))
        >>> data = write_minari_dataset(Path(tempfile.mkdtemp()) / "data", [[episode, episode]])
        >>> labels = fixed_length_labels(data, horizon=10)
        >>> labels.num_skills, int((labels.segments[:, 2] - labels.segments[:, 1]).max())
        (1, 10)
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    dataset = open_dataset(dataset_path)
    lengths = np.asarray(dataset.episode_lengths, np.int64)
    rng = np.random.default_rng(seed)
    phases = rng.integers(1, horizon + 1, size=len(lengths))
    segments = []
    for episode, (length, phase) in enumerate(zip(lengths, phases, strict=True)):
        bounds = np.unique(np.concatenate([[0], np.arange(phase, length, horizon), [length]]))
        segments += [(episode, start, end, 0) for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
    labels = SkillLabels(
        frame_labels=np.zeros(int(lengths.sum()), np.int16),
        episode_offsets=np.concatenate([[0], np.cumsum(lengths)]),
        segments=np.asarray(segments, np.int64).reshape(-1, 4),
        num_skills=1,
        dataset_path=str(dataset.path),
        dataset_fingerprint=dataset.fingerprint,
        metadata={"labeler": LABELER, "horizon": horizon, "seed": seed,
                  "frame_labels": "every step is skill 0; segments of `horizon` actions, the first of each "
                                  "episode 1..horizon actions long (a seeded phase)"},
    )
    dataset.close()
    return labels


@dataclass
class SpirlArgs:
    """Options of the SPiRL-cl skill library: fixed-length labels, then skillgym's skill VAE on them."""

    dataset: str
    """skillgym dataset folder to learn the skills from"""
    out: str
    """output folder: labels/ (the fixed-length segments) and library/ (the SkillLibrary)"""
    horizon: int = 10
    """actions per skill, H (SPiRL's best length in the kitchen)"""
    z_dim: int = 10
    """dimension of the continuous skill z"""
    steps: int = 10_000
    """gradient steps of the skill VAE"""
    seed: int = 0
    """seed of the segment phases, the VAE's initialisation, window sampling and validation split"""
    threads: int | None = None
    """torch threads (default: torch's choice); a run repeats exactly for the same seed and thread count"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        for name in ("horizon", "z_dim", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def train_spirl(args: SpirlArgs) -> Path:
    """Write the fixed-length labels to ``<out>/labels`` and train the library in ``<out>/library``.

    Resumable: a finished library with these settings is returned as it is, and an interrupted training
    continues from its checkpoint. Settings that differ from what ``out`` already holds raise
    ``FileExistsError`` rather than mixing two runs.

    Returns:
        The library folder ``<out>/library``.
    """
    out = Path(args.out)
    labels_dir, library_dir = out / "labels", out / "library"
    labels = fixed_length_labels(args.dataset, args.horizon, args.seed)
    if (labels_dir / LABELS_JSON).is_file():
        saved = SkillLabels.load(labels_dir)
        if (saved.dataset_fingerprint != labels.dataset_fingerprint or saved.metadata != labels.metadata
                or not np.array_equal(saved.segments, labels.segments)):
            raise FileExistsError(f"{labels_dir} holds other labels (another dataset, horizon or seed); "
                                  "pick another --out")
    else:
        check_labels_folder(labels_dir)
        labels.save(labels_dir)

    if (library_dir / CONFIG_FILE).is_file() and _library_matches(library_dir, args, labels):
        return library_dir
    checkpoint = library_dir / CHECKPOINT_DIR / "state.json"
    resume = checkpoint.is_file()
    if resume and json.loads(checkpoint.read_text()).get("step", 0) > args.steps:
        raise FileExistsError(f"{library_dir} holds a run past {args.steps} steps; pick another --out")
    train_skills(TrainSkillsArgs(labels=str(labels_dir), out=str(library_dir), window=args.horizon,
                                 z_dim=args.z_dim, steps=args.steps, seed=args.seed, threads=args.threads,
                                 progress=args.progress, resume=resume))
    return library_dir


def _library_matches(library_dir: Path, args: SpirlArgs, labels: SkillLabels) -> bool:
    try:
        config = SkillLibrary.load(library_dir).config
    except LibraryError:
        return False
    trained = config.trained_on
    return (config.num_skills == 1 and config.z_dim == args.z_dim and config.max_skill_steps == args.horizon
            and config.labeler == labels.metadata and trained.get("steps") == args.steps
            and trained.get("seed") == args.seed
            and trained.get("dataset_fingerprint") == labels.dataset_fingerprint)


def make_spirl_env(library: str | os.PathLike | SkillLibrary, tasks: Sequence[str] = DEFAULT_TASKS,
                   low_level_steps: int = 280, record_frames: bool = False, **task_kwargs: Any) -> gym.Env:
    """The kitchen task in a SPiRL library's space: every skill runs exactly ``max_skill_steps`` steps.

    ``Dict(skill=Discrete(1), arg=Box(z_dim))`` actions; a skill ends early only when the episode does.
    ``task_kwargs`` go to :class:`~skillgym.tasks.kitchen.KitchenTaskEnv` (e.g. ``render_mode``).

    Example (an untrained one-skill library; pass the folder :func:`train_spirl` wrote for a real one):
        >>> from skillgym.skills.config import LibraryConfig
        >>> env = make_spirl_env(SkillLibrary.build(LibraryConfig(num_skills=1, z_dim=10, max_skill_steps=10)))
        >>> obs, info = env.reset(seed=0)
        >>> _, _, _, _, info = env.step({"skill": 0, "arg": np.zeros(10, np.float32)})
        >>> info["skill_steps"]
        10
    """
    lib = library if isinstance(library, SkillLibrary) else SkillLibrary.load(library)
    if lib.config.obs_kind == "pixels":
        task_kwargs = {"pixels": True, "image_size": lib.config.image_size,
                       "frame_stack": lib.config.frame_stack, **task_kwargs}
    low = KitchenTaskEnv(tasks=tasks, max_episode_steps=low_level_steps, **task_kwargs)
    # SPiRL's skills have no learnt end: the progress head is ignored, not thresholded.
    env = SkillSpaceEnv(low, lib, max_skill_steps=lib.max_skill_steps, progress_threshold=None,
                        record_frames=record_frames)
    if not isinstance(library, SkillLibrary):
        env.library_path = str(Path(library))
    return env


def spirl_skillsac_kwargs(z_dim: int = 10) -> dict[str, Any]:
    """SkillSAC settings of the SPiRL baseline: EXTRACT's recipe (``skillgym train-rl`` defaults) with the
    KL target scaled to ``z_dim`` and a fixed ``alpha_d = 0``.

    With one skill, KL(pi_d || p_d) is identically 0: an auto-tuned alpha_d would only shrink towards 0
    forever, so the weight is fixed and the objective is SAC on ``z`` with KL to ``p(z|s)``.

    Example:
        >>> spirl_skillsac_kwargs(10)["target_kl_z"]
        5.0
    """
    return {"alpha_d": 0.0, "alpha_z": "auto_0.01", "target_kl_z": TARGET_KL_PER_Z_DIM * z_dim,
            "gamma": 0.995, "gamma_per_step": True}


SPIRL_SKILLSAC_KWARGS: dict[str, Any] = spirl_skillsac_kwargs(10)
"""SkillSAC keyword arguments for a 10-d SPiRL library (see :func:`spirl_skillsac_kwargs`)."""
