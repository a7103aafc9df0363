"""ExtractArgs: the options of skill extraction (``skillgym extract``), declared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from skillgym.extract.encoders import default_image_encoder
from skillgym.extract.segments import DEFAULT_KERNEL, DEFAULT_MIN_LENGTH


@dataclass
class ExtractArgs:
    """Options of ``skillgym extract``; the defaults are the paper's recipe (K = 8, median filter 7)."""

    dataset: Path
    """Minari dataset folder or D4RL kitchen .hdf5 file"""
    out: Path
    """labels folder to write (labels.npz/json, labeler/, report/, cache/)"""
    encoder: str = "auto"
    """image or vector encoder ('auto': r3m-50 if its checkpoint is on disk, else efficientnet-lite0)"""
    k: int = 8
    """number of skills (K-means clusters)"""
    seed: int = 0
    """seed of K-means and of its sample of steps"""
    weights: Path | None = None
    """R3M checkpoint (model.pt) for the r3m-* encoders"""
    min_length: int = DEFAULT_MIN_LENGTH
    """drop segments shorter than this many steps"""
    kernel: int = DEFAULT_KERNEL
    """width of the median filter over per-step cluster labels (odd)"""
    image_size: int | None = None
    """re-render frames at this size, for datasets that store no frames"""
    progress: bool = True
    """show progress bars"""
    labeler: Path | None = None
    """label with this saved labeler (a labels folder of `skillgym extract`, or its labeler/) instead of fitting
    one, as fine-tuning needs for the target task's data; --encoder, --k, --seed, --kernel and --min-length
    are then the labeler's, and giving another value is refused"""
    engine: Literal["local", "ray"] = "local"
    """where the encoder runs: 'local' (this process) or 'ray' (Ray Data actor pools, one GPU per encoder
    actor if the cluster has GPUs; the cluster at RAY_ADDRESS if set, else a local Ray; same labels; needs
    pip install 'skillgym[ray]')"""

    def __post_init__(self) -> None:
        self.dataset, self.out = Path(self.dataset), Path(self.out)
        self.labeler = None if self.labeler is None else Path(self.labeler)
        if self.k < 2:
            raise ValueError(f"k must be >= 2, got {self.k}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be >= 0 (and < 2**32), got {self.seed}")
        if self.min_length < 1:
            raise ValueError(f"min_length must be >= 1, got {self.min_length}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and >= 1, got {self.kernel}")
        if self.image_size is not None and not 8 <= self.image_size <= 512:
            raise ValueError(f"image_size must be in [8, 512], got {self.image_size}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")
        if self.weights is not None and not self.encoder.startswith("r3m-"):
            raise ValueError(f"weights are for the r3m-* encoders, not {self.encoder}")

    def labeler_conflicts(self, labeler: Any) -> list[str]:
        """The options of this extraction that a saved ``labeler`` (a :class:`SkillLabeler`) fixes otherwise.

        An option counts when it is set away from its default to a value other than the labeler's,
        e.g. ``["--k 5 (the labeler's: 8)"]``; labelling would silently use the labeler's.
        """
        defaults = ExtractArgs(dataset=self.dataset, out=self.out)
        fixed = {"encoder": labeler.encoder_name, "k": labeler.k, "seed": labeler.seed, "kernel": labeler.kernel,
                 "min_length": labeler.min_length}
        return [f"--{name.replace('_', '-')} {getattr(self, name)} (the labeler's: {value})"
                for name, value in fixed.items()
                if getattr(self, name) != getattr(defaults, name) and getattr(self, name) != value]

    def encoder_name(self) -> str:
        """The encoder to use: ``encoder``, with 'auto' resolved on this machine."""
        return default_image_encoder() if self.encoder == "auto" else self.encoder
