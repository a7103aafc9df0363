"""SkillLabeler: fitted clusters that label any dataset the same way (paper Alg. 2; Alg. 1 l.5).

The labeler is the saved half of stage 1: the encoder (name + settings), the K-means centroids,
the median-filter kernel and the minimum segment length. Fit it once on the pre-training data,
then label a new (target) dataset with the *same* clusters before fine-tuning.

On disk (``<labels>/labeler/``): ``labeler.npz`` (centroids) + ``labeler.json`` (everything
else). No pickles.

Example (a tiny dataset whose actions switch between two phases; an image encoder such as
``"efficientnet-lite0"`` works the same on datasets with frames):
    >>> import tempfile
    >>> from skillgym.data.dataset import Episode, open_dataset, write_minari_dataset
    >>> tmp = Path(tempfile.mkdtemp())
    >>> phases = np.repeat([[0.5, 0.0], [0.0, -0.5]], 20, axis=0)
    >>> episodes = [Episode(states=np.cumsum(np.r_[np.zeros((1, 2)), phases], 0), actions=phases)] * 3
    >>> ds = open_dataset(write_minari_dataset(tmp / "data", [episodes]))
    >>> labeler = SkillLabeler.fit(ds, encoder="action", k=2, seed=0, progress=False)
    >>> labels = labeler.label(ds, progress=False)          # SkillLabels
    >>> labels.segments[:2].tolist()                        # (episode, start, end, skill)
    [[0, 0, 20, 0], [0, 20, 40, 1]]
    >>> _ = labeler.save(tmp / "labels" / "labeler")
    >>> again = SkillLabeler.load(tmp / "labels" / "labeler").label(ds, progress=False)
    >>> bool((again.frame_labels == labels.frame_labels).all())
    True

Or everything at once (what ``skillgym extract`` runs):
    >>> labels = extract_skills(ds, tmp / "labels", encoder="action", k=2, seed=0, progress=False)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from skillgym import outputs
from skillgym.extract.clustering import (
    CACHE_KEY_FIELDS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FIT_SAMPLES,
    NpyRows,
    assign_labels,
    compute_embeddings,
    fit_centroids,
    size_encoder,
)
from skillgym.extract.encoders import (
    Encoder,
    EncoderError,
    available_encoders,
    check_encoder,
    check_encoder_settings,
    make_encoder,
)
from skillgym.extract.labels import (
    LABELS_JSON,
    LABELS_NPZ,
    SkillLabels,
    read_json_object,
    read_npz,
    write_npz_json,
)
from skillgym.extract.segments import DEFAULT_KERNEL, DEFAULT_MIN_LENGTH, find_segments, median_filter
from skillgym.version import __version__

LABELER_NPZ = "labeler.npz"
LABELER_JSON = "labeler.json"
LABELER_FORMAT = 1
# The smallest value of each integer setting in labeler.json.
LOWEST_SETTINGS = {"k": 2, "embedding_dim": 1, "seed": 0, "median_kernel": 1, "min_length": 1, "fit_samples": 1}


class LabelerError(ValueError):
    """A labeler folder is missing, corrupt, or does not fit the data it is asked to label."""


class SkillLabeler:
    """Encoder + K-means centroids + smoothing settings; see the module docstring.

    Build one with :meth:`fit` or :meth:`load`, not with the constructor.
    """

    def __init__(
        self,
        centroids: np.ndarray,
        encoder_name: str,
        encoder_config: dict[str, Any],
        seed: int,
        kernel: int = DEFAULT_KERNEL,
        min_length: int = DEFAULT_MIN_LENGTH,
        fit_samples: int = DEFAULT_FIT_SAMPLES,
        dataset_fingerprint: str = "",
        dataset_path: str = "",
        frame_size: int | None = None,
        encoder: Encoder | None = None,
    ):
        self.centroids = np.asarray(centroids, np.float32)
        if self.centroids.ndim != 2 or len(self.centroids) < 2:
            raise LabelerError(f"centroids must be (K >= 2, D), got {self.centroids.shape}")
        if kernel < 1 or kernel % 2 == 0:
            raise LabelerError(f"median filter kernel must be a positive odd number, got {kernel}")
        if min_length < 1:
            raise LabelerError(f"min_length must be >= 1, got {min_length}")
        self.encoder_name, self.encoder_config = encoder_name, dict(encoder_config)
        self.seed, self.kernel, self.min_length = int(seed), int(kernel), int(min_length)
        self.fit_samples = int(fit_samples)
        self.dataset_fingerprint, self.dataset_path = dataset_fingerprint, dataset_path
        self.frame_size = frame_size
        self._encoder = encoder

    @property
    def k(self) -> int:
        """Number of skills ``K`` (one centroid each)."""
        return len(self.centroids)

    @property
    def encoder(self) -> Encoder:
        """The encoder, rebuilt from its registry name and saved settings on first use."""
        if self._encoder is None:
            self._encoder = make_encoder(self.encoder_name, **self.encoder_config)
        return self._encoder

    # -- fitting --------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        dataset: Any,
        encoder: str | Encoder = "efficientnet-lite0",
        k: int = 8,
        seed: int = 0,
        kernel: int = DEFAULT_KERNEL,
        min_length: int = DEFAULT_MIN_LENGTH,
        fit_samples: int = DEFAULT_FIT_SAMPLES,
        cache_dir: str | os.PathLike | None = None,
        cache_dtype: str = "float32",
        encoder_kwargs: dict[str, Any] | None = None,
        progress: bool = True,
        engine: str = "local",
    ) -> SkillLabeler:
        """Fit K-means (seeded) on the dataset's embedding differences.

        Args:
            dataset: an :class:`~skillgym.data.dataset.OfflineDataset` (anything with ``len``,
                ``episode(i, frames=...)``, ``total_steps``, ``fingerprint``).
            encoder: a registered encoder name or an :class:`Encoder` instance.
            k: number of skills (clusters).
            seed: seeds the fit sample and K-means; same seed + data -> same labels.
            kernel: median filter window (odd; 1 disables smoothing).
            min_length: shortest segment kept, in action steps.
            fit_samples: K-means is fitted on at most this many randomly chosen frames.
            cache_dir: where the embedding file is kept (reused on the next call with the same
                dataset and encoder); default: a temporary folder, deleted afterwards.
            engine: where the encoder runs: ``"local"`` (this process) or ``"ray"`` (a Ray Data
                actor pool, :mod:`skillgym.extract.ray_engine`); the embeddings are the same.
        """
        encoder = _resolve_encoder(encoder, encoder_kwargs)
        with tempfile.TemporaryDirectory(prefix="skillgym-emb-") as tmp:
            emb = compute_embeddings(dataset, encoder, _embedding_path(cache_dir or tmp, encoder),
                                     dtype=cache_dtype, progress=progress, engine=engine)
            if progress:
                print(f"fitting K-means (K={k}, seed={seed}) on {min(len(emb), fit_samples)} of {len(emb)} frames")
            centroids = fit_centroids(emb, k=k, seed=seed, fit_samples=fit_samples)
        return cls(centroids, encoder.name, encoder.config(), seed, kernel, min_length, fit_samples,
                   dataset.fingerprint, str(getattr(dataset, "path", "")),
                   getattr(dataset, "frame_size", None), encoder=encoder)

    # -- labelling ------------------------------------------------------------------------------
    def label(
        self,
        dataset: Any,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dtype: str = "float32",
        progress: bool = True,
        engine: str = "local",
    ) -> SkillLabels:
        """Label every action step of ``dataset`` with these clusters -> :class:`SkillLabels`.

        ``frame_labels`` hold the median-filtered cluster id of every step (also steps in runs
        shorter than ``min_length``); ``segments`` hold only the runs that were kept. ``engine``
        says where the encoder runs, as in :meth:`fit`.
        """
        encoder = self.encoder
        if size_encoder(encoder, dataset) != self.centroids.shape[1]:
            raise LabelerError(f"encoder {encoder.name!r} gives {encoder.dim}-d embeddings but the centroids "
                               f"are {self.centroids.shape[1]}-d")
        size = getattr(dataset, "frame_size", None)
        if encoder.input == "frames" and self.frame_size and size and size != self.frame_size:
            warnings.warn(f"labeler was fitted on {self.frame_size}px frames, this dataset has {size}px; "
                          "clusters may not transfer", stacklevel=2)
        with tempfile.TemporaryDirectory(prefix="skillgym-emb-") as tmp:
            emb = compute_embeddings(dataset, encoder, _embedding_path(cache_dir or tmp, encoder),
                                     dtype=cache_dtype, progress=progress, engine=engine)
            raw = assign_labels(emb, self.centroids, batch_size=batch_size, progress=progress)
        return self.labels_from_raw(raw, dataset)

    def labels_from_raw(self, raw: np.ndarray, dataset: Any) -> SkillLabels:
        """Median-filter per episode and cut segments: raw cluster ids -> :class:`SkillLabels`."""
        offsets = np.concatenate([[0], np.cumsum(dataset.episode_lengths)]).astype(np.int64)
        if offsets[-1] != len(raw):
            raise LabelerError(f"{len(raw)} labels for a dataset of {offsets[-1]} steps")
        smooth = np.empty_like(raw)
        for i in range(len(offsets) - 1):
            smooth[offsets[i] : offsets[i + 1]] = median_filter(raw[offsets[i] : offsets[i + 1]], self.kernel)
        segments = find_segments(smooth, offsets, self.min_length)
        return SkillLabels(
            frame_labels=smooth, episode_offsets=offsets, segments=segments, num_skills=self.k,
            dataset_path=str(getattr(dataset, "path", "")), dataset_fingerprint=dataset.fingerprint,
            metadata={**self.settings(), **_absolute_path(dataset), "frame_labels": "median-filtered cluster id of every step; "
                      "steps in runs shorter than min_length keep their id but are in no segment, except that "
                      "an episode's first segment starts at step 0 (absorbs the lead-in)"},
        )

    # -- persistence ----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Everything except the centroids, JSON-serialisable."""
        return {
            "encoder": self.encoder_name, "encoder_config": self.encoder_config,
            "embedding_dim": int(self.centroids.shape[1]), "k": self.k, "seed": self.seed,
            "median_kernel": self.kernel, "min_length": self.min_length, "fit_samples": self.fit_samples,
            "clustering": "sklearn MiniBatchKMeans on embedding differences e_t = f(s_t) - f(s_1), e_1 := e_2",
            "fit_dataset_fingerprint": self.dataset_fingerprint, "fit_dataset_path": self.dataset_path,
            "frame_size": self.frame_size,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``labeler.npz`` (centroids) and ``labeler.json`` (settings) into ``directory``, returned."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"format_version": LABELER_FORMAT, "skillgym_version": __version__, **self.settings()}
        write_npz_json(directory / LABELER_NPZ, directory / LABELER_JSON, payload, centroids=self.centroids)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, **encoder_overrides: Any) -> SkillLabeler:
        """Load a saved labeler. ``encoder_overrides`` replace saved encoder settings, e.g.
        ``weights="/new/place/model.pt"`` when the R3M checkpoint moved (its sha256 is checked)."""
        directory = Path(directory)
        if (directory / "labeler").is_dir() and not (directory / LABELER_JSON).is_file():
            directory = directory / "labeler"  # accept the labels folder too
        npz, meta = directory / LABELER_NPZ, directory / LABELER_JSON
        if not npz.is_file() or not meta.is_file():
            raise LabelerError(f"{directory} is not a labeler folder (needs {LABELER_NPZ} and {LABELER_JSON}); "
                               "make one with `skillgym extract DATASET --out DIR` (it is DIR/labeler)")
        fix = "re-run `skillgym extract` to fit the labeler again"
        payload = read_json_object(meta, LabelerError, fix)
        if payload.get("format_version") != LABELER_FORMAT:
            raise LabelerError(f"{directory}: labeler format {payload.get('format_version')!r} != {LABELER_FORMAT}; "
                               f"{fix}")
        keys = ("encoder", "encoder_config", "k", "embedding_dim", "seed", "median_kernel", "min_length",
                "fit_samples", "fit_dataset_fingerprint", "fit_dataset_path")
        missing = [k for k in keys if k not in payload]
        if missing:
            raise LabelerError(f"{meta} lacks {missing}; {fix}")
        if not isinstance(payload["encoder_config"], dict) or not isinstance(payload["encoder"], str):
            raise LabelerError(f"{meta}: encoder must be a name and encoder_config an object; {fix}")
        wrong = _settings_problems(payload)
        if wrong:
            raise LabelerError(f"{meta}: {'; '.join(wrong)}; {fix}")
        if payload["encoder"] in available_encoders():  # an unregistered one is reported when it is needed
            try:
                check_encoder_settings(payload["encoder"], payload["encoder_config"])
            except EncoderError as e:
                raise LabelerError(f"{meta}: {e}; {fix}") from e
        centroids = read_npz(npz, ("centroids",), LabelerError, fix)["centroids"]
        if not np.issubdtype(centroids.dtype, np.floating) or not np.all(np.isfinite(centroids)):
            raise LabelerError(f"{npz}: centroids must be finite floats; {fix}")
        if centroids.shape != (payload["k"], payload["embedding_dim"]):
            raise LabelerError(f"{directory}: centroids {centroids.shape} do not match "
                               f"K={payload['k']}, D={payload['embedding_dim']}; {fix}")
        return cls(centroids, payload["encoder"], {**payload["encoder_config"], **encoder_overrides},
                   payload["seed"], payload["median_kernel"], payload["min_length"], payload["fit_samples"],
                   payload["fit_dataset_fingerprint"], payload["fit_dataset_path"], payload.get("frame_size"))


def _settings_problems(payload: dict[str, Any]) -> list[str]:
    """Every setting of a ``labeler.json`` of the wrong type or out of range."""
    wrong = [f"{key} must be an int >= {low}, got {payload[key]!r}" for key, low in LOWEST_SETTINGS.items()
             if not _is_int(payload[key]) or payload[key] < low]
    if not wrong and payload["median_kernel"] % 2 == 0:
        wrong.append(f"median_kernel must be odd, got {payload['median_kernel']}")
    if not wrong and payload["seed"] >= 2**32:
        wrong.append(f"seed must be < 2**32, got {payload['seed']}")
    size = payload.get("frame_size")
    if size is not None and not (_is_int(size) and size >= 1):
        wrong.append(f"frame_size must be a positive int or null, got {size!r}")
    return wrong + [f"{key} must be a string, got {payload[key]!r}"
                    for key in ("fit_dataset_fingerprint", "fit_dataset_path") if not isinstance(payload[key], str)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _absolute_path(dataset: Any) -> dict[str, str]:
    """``{"dataset_absolute_path": ...}`` for a dataset with a path: train-skills finds the dataset there when the
    path as given (relative to where extract ran) does not lead to it."""
    path = getattr(dataset, "path", None)
    return {"dataset_absolute_path": str(Path(path).resolve())} if path else {}


def _resolve_encoder(encoder: str | Encoder, encoder_kwargs: dict[str, Any] | None) -> Encoder:
    if isinstance(encoder, str):
        return make_encoder(encoder, **(encoder_kwargs or {}))
    check_encoder(encoder)
    return encoder


def _embedding_path(cache_dir: str | os.PathLike, encoder: Encoder) -> Path:
    return Path(cache_dir) / f"embeddings-{encoder.name}.npy"


# What labelling writes into its output folder; a folder holding any of them must be one skillgym wrote.
LABELS_LAYOUT = (LABELS_NPZ, LABELS_JSON, f"{LABELS_NPZ}.tmp", f"{LABELS_JSON}.tmp", "labeler/*", "report/*",
                 "cache/embeddings-*", "feature_options.*")  # the last: training/feature_options.py's tables


def is_labels_folder(out: str | os.PathLike) -> bool:
    """Whether skillgym wrote ``out`` as a labels folder, or began to: its ``labels.json`` is a labels file,
    or (none yet) its ``labeler/`` is a saved labeler or its ``cache/`` holds an embedding cache's key."""
    out = Path(out)
    if (out / LABELS_JSON).exists():
        return outputs.is_marker(out / LABELS_JSON, ("format_version", "num_skills", "dataset_fingerprint"))
    return (outputs.is_marker(out / "labeler" / "labeler.json", ("format_version", "encoder", "k"))
            or any(outputs.is_marker(key, CACHE_KEY_FIELDS) for key in (out / "cache").glob("embeddings-*.json")))


def check_labels_folder(out: str | os.PathLike) -> None:
    """Stop before any work if ``out`` holds entries of a labels folder that skillgym did not write."""
    outputs.check_output_folder(Path(out), LABELS_LAYOUT, ours=is_labels_folder(out))


RELABELLING_SETTINGS = ("encoder", "k", "seed", "median_kernel", "min_length", "fit_dataset_fingerprint")


def _say_what_is_replaced(out: Path, labels: SkillLabels) -> None:
    """Relabelling a folder with another K or seed (which reuses its embedding cache) replaces its labels: say so."""
    before = outputs.read_marker(out / LABELS_JSON)
    if not isinstance(before, dict) or not isinstance(before.get("metadata"), dict):
        return
    old, new = before["metadata"], labels.metadata
    changed = [f"{k} {old.get(k)} -> {new.get(k)}" for k in RELABELLING_SETTINGS if old.get(k) != new.get(k)]
    if before.get("dataset_fingerprint") != labels.dataset_fingerprint:
        changed.append("another dataset")
    if changed:
        warnings.warn(f"replacing the labels in {out}, made with other settings ({', '.join(changed)})", stacklevel=3)


def extract_skills(
    dataset: Any,
    out: str | os.PathLike,
    encoder: str | Encoder = "efficientnet-lite0",
    k: int = 8,
    seed: int = 0,
    kernel: int = DEFAULT_KERNEL,
    min_length: int = DEFAULT_MIN_LENGTH,
    fit_samples: int = DEFAULT_FIT_SAMPLES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dtype: str = "float32",
    encoder_kwargs: dict[str, Any] | None = None,
    report: bool = True,
    progress: bool = True,
    engine: str = "local",
) -> SkillLabels:
    """Stage 1 end to end: fit, label, and write ``out/`` =
    ``labels.npz`` + ``labels.json`` (:class:`SkillLabels`), ``labeler/``, ``report/``, and the
    embedding cache ``cache/`` (reused when you re-run with another K or seed). ``engine="ray"``
    embeds the frames on a Ray cluster (:mod:`skillgym.extract.ray_engine`); the labels are the same."""
    check_labels_folder(out)
    longest = max(dataset.episode_lengths, default=0)
    for name, value in (("kernel", kernel), ("min_length", min_length)):
        if value > longest:  # every episode would be one label, or no segment at all: found before embedding
            raise LabelerError(f"{name}={value} is longer than every episode of the dataset (the longest has "
                               f"{longest} steps)")
    labeler = SkillLabeler.fit(dataset, encoder, k=k, seed=seed, kernel=kernel, min_length=min_length,
                               fit_samples=fit_samples, cache_dir=Path(out) / "cache", cache_dtype=cache_dtype,
                               encoder_kwargs=encoder_kwargs, progress=progress, engine=engine)
    return label_dataset(dataset, out, labeler, batch_size=batch_size, cache_dtype=cache_dtype, report=report,
                         progress=progress, engine=engine)


def label_dataset(
    dataset: Any,
    out: str | os.PathLike,
    labeler: SkillLabeler,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache_dtype: str = "float32",
    report: bool = True,
    progress: bool = True,
    engine: str = "local",
) -> SkillLabels:
    """Label ``dataset`` with an existing ``labeler`` and write ``out/`` as :func:`extract_skills` does
    (``labels.npz``, ``labels.json``, a copy of the labeler in ``labeler/``, ``report/``, ``cache/``).

    Fine-tuning (Alg. 1 l.5) labels the target task's demonstrations with the pre-training labeler
    (``skillgym extract TARGET --out DIR --labeler PRETRAIN_LABELS``), so that skill d means the same
    behaviour in both datasets.
    """
    out = Path(out)
    check_labels_folder(out)
    cache = out / "cache"
    labels = labeler.label(dataset, cache_dir=cache, batch_size=batch_size, cache_dtype=cache_dtype,
                           progress=progress, engine=engine)
    if not len(labels.segments):
        runs = find_segments(labels.frame_labels, labels.episode_offsets, 1, absorb_lead_in=False)
        raise LabelerError(
            f"{out}: no segment to write, no skill lasts min_length={labeler.min_length} steps in a row in "
            f"{labels.dataset_path} (the longest run lasts {int(np.max(runs[:, 2] - runs[:, 1], initial=0))}); "
            f"the labels in {out} are left as they were. Extract again with a lower --min-length"
        )
    _say_what_is_replaced(out, labels)
    # The labels go last and the old ones first: a run cut in between leaves a folder that does not load as
    # labels, never new labels next to the old labeler or report.
    (out / LABELS_JSON).unlink(missing_ok=True)
    labeler.save(out / "labeler")
    if report:
        from skillgym.extract.report import write_report

        embeddings = NpyRows(_embedding_path(cache, labeler.encoder))
        write_report(labels, dataset, out / "report", embeddings=embeddings, seed=labeler.seed, progress=progress)
    labels.save(out)
    return labels
