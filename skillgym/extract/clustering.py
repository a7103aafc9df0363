"""Embedding differences (paper Eq. 1) on disk, and seeded K-means that streams through them.

Memory stays bounded whatever the dataset size: embeddings are written episode by episode into a
``.npy`` file and read back in row blocks (:class:`NpyRows`), K-means is fitted on a random sample
of at most ``fit_samples`` rows, and labels are assigned ``batch_size`` rows at a time.

Example:
    >>> import tempfile
    >>> from skillgym.data.dataset import Episode, open_dataset, write_minari_dataset
    >>> from skillgym.extract.encoders import make_encoder
    >>> tmp = Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> episodes = [Episode(states=rng.normal(size=(31, 3)), actions=rng.uniform(-1, 1, (30, 2)))
    ...             for _ in range(2)]
    >>> dataset = open_dataset(write_minari_dataset(tmp / "data", [episodes]))
    >>> emb = compute_embeddings(dataset, make_encoder("state"), tmp / "cache" / "state.npy", progress=False)
    >>> emb.shape
    (60, 3)
    >>> centroids = fit_centroids(emb, k=4, seed=0)
    >>> labels = assign_labels(emb, centroids, progress=False)
    >>> labels.shape, int(labels.max()) < 4
    ((60,), True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from skillgym.extract.encoders import Encoder, EncoderInputError

DEFAULT_FIT_SAMPLES = 50_000
DEFAULT_BATCH_SIZE = 8192
ENGINES = ("local", "ray")


class ClusteringError(ValueError):
    """K-means cannot run on these embeddings with these settings."""


class NpyRows:
    """Read-only row access to an ``(N, D)`` ``.npy`` file through ordinary file reads.

    Behaves like a read-only array for what stage 1 needs: ``len``, ``shape``, ``dtype``, slices
    and sorted integer index arrays, each returning a NumPy copy. Unlike ``np.load(mmap_mode="r")``
    it keeps no pages mapped, so the process's resident memory does not grow with the file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "embeddings.npy"
        >>> np.save(path, np.arange(12, dtype=np.float32).reshape(6, 2))
        >>> rows = NpyRows(path)
        >>> rows.shape, rows[1:3].tolist(), rows[np.array([0, 5])].tolist()
        ((6, 2), [[2.0, 3.0], [4.0, 5.0]], [[0.0, 1.0], [10.0, 11.0]])
    """

    BLOCK_ROWS = 4096

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self._offset = f.tell()
        if len(shape) != 2 or fortran:
            raise ValueError(f"{self.path}: expected a C-ordered (N, D) array, got shape {shape}")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._row_bytes = self.shape[1] * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def is_complete(self) -> bool:
        """Whether the file holds exactly the bytes its header announces (an interrupted copy or write does not)."""
        return self.path.stat().st_size == self._offset + len(self) * self._row_bytes

    @property
    def ndim(self) -> int:
        """Always 2: the rows are ``(N, D)``."""
        return 2

    def _read(self, f, start: int, stop: int) -> np.ndarray:
        f.seek(self._offset + start * self._row_bytes)
        out = np.fromfile(f, dtype=self.dtype, count=(stop - start) * self.shape[1])
        return out.reshape(stop - start, self.shape[1])

    def __getitem__(self, key: Any) -> np.ndarray:
        with open(self.path, "rb") as f:
            if isinstance(key, slice):
                start, stop, step = key.indices(len(self))
                rows = self._read(f, start, max(start, stop))
                return rows if step == 1 else rows[::step]
            index = np.asarray(key)
            if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
                raise TypeError("NpyRows supports slices and 1-D integer index arrays")
            out = np.empty((len(index), self.shape[1]), self.dtype)
            order = np.argsort(index, kind="stable")
            sorted_index = index[order]
            # one block read per BLOCK_ROWS-wide window that holds requested rows
            block_ids = sorted_index // self.BLOCK_ROWS
            for block in np.unique(block_ids):
                chosen = block_ids == block
                start = int(block) * self.BLOCK_ROWS
                rows = self._read(f, start, min(start + self.BLOCK_ROWS, len(self)))
                out[order[chosen]] = rows[sorted_index[chosen] - start]
            return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self[0 : len(self)]
        return arr if dtype is None else arr.astype(dtype)


def episode_inputs(episode: Any, kind: str) -> np.ndarray:
    """The ``T`` encoder inputs of an episode: observations ``0..T-1`` (or actions ``0..T-1``).

    Labels are per action step, so the final observation (which has no action) is not used.
    """
    t = episode.num_steps
    if kind == "frames":
        if episode.frames is None:
            raise EncoderInputError("this encoder needs frames but the episode has none "
                                    "(open the dataset with image_size=... to re-render them)")
        return episode.frames[:t]
    if kind == "states":
        return episode.states[:t]
    if kind == "actions":
        return episode.actions[:t]
    raise EncoderInputError(f"unknown encoder input {kind!r}")


def embedding_differences(features: np.ndarray) -> np.ndarray:
    """Paper Eq. 1 for one trajectory: ``e_t = f(s_t) - f(s_1)``, then ``e_1 := e_2``.

    With a single step there is no ``e_2``; its difference is zero.
    """
    diffs = features - features[:1]
    if len(diffs) > 1:
        diffs[0] = diffs[1]
    return diffs


def size_encoder(encoder: Encoder, dataset: Any) -> int:
    """``encoder.dim``, after letting an encoder that sizes itself from the data (``dim`` None)
    encode the first step of the dataset."""
    if encoder.dim is None:
        first = dataset.episode(0, frames=encoder.input == "frames")
        encoder.encode(episode_inputs(first, encoder.input)[:1])
        if encoder.dim is None:
            raise EncoderInputError(f"encoder {encoder.name!r} still has no dim after encoding a step")
    return int(encoder.dim)


CACHE_KEY_FIELDS = ("dataset_fingerprint", "num_frames", "encoder", "dim", "dtype")  # what a cache's .json holds


def _cache_key(dataset: Any, encoder: Encoder, dtype: str) -> dict[str, Any]:
    config = {k: v for k, v in encoder.config().items() if k != "weights"}  # paths may move
    return {"dataset_fingerprint": dataset.fingerprint, "num_frames": int(dataset.total_steps),
            "encoder": encoder.name, "encoder_config": config, "dim": int(encoder.dim), "dtype": dtype,
            "frame_size": getattr(dataset, "frame_size", None)}


def encode_episodes(dataset: Any, encoder: Encoder, first: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """``(T, features)`` of every episode from ``first`` on, in order, its ``T`` inputs encoded in this process."""
    for i in range(first, len(dataset)):
        episode = dataset.episode(i, frames=encoder.input == "frames")
        yield episode.num_steps, np.asarray(encoder.encode(episode_inputs(episode, encoder.input)))


def compute_embeddings(
    dataset: Any,
    encoder: Encoder,
    path: str | os.PathLike,
    dtype: str = "float32",
    progress: bool = True,
    engine: str = "local",
) -> np.ndarray:
    """Embedding differences for every action step of ``dataset``, as ``(N, D)`` :class:`NpyRows`.

    Written to ``path`` (``.npy``) next to a ``.json`` key. If that key matches (same dataset
    fingerprint, encoder and settings), the cached file is reused, which makes re-clustering with
    another K cheap. ``dtype="float16"`` halves the disk size for large datasets.

    ``engine="local"`` encodes episode after episode in this process; ``engine="ray"`` runs the
    encoder on a Ray Data actor pool (:mod:`skillgym.extract.ray_engine`). Both write the same file.
    """
    from tqdm.auto import tqdm

    if dtype not in ("float32", "float16"):
        raise ValueError(f"embedding cache dtype must be float32 or float16, got {dtype}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if encoder.input == "frames" and not getattr(dataset, "has_frames", True) and not getattr(dataset, "frame_size", None):
        raise EncoderInputError(f"{getattr(dataset, 'path', 'the dataset')} stores no frames and encoder "
                                f"{encoder.name!r} needs them; a kitchen dataset re-renders them when opened "
                                "with image_size=64 or 128, others need a 'pixels' entry")
    size_encoder(encoder, dataset)
    path = Path(path)
    key_path = path.with_suffix(".json")
    key = _cache_key(dataset, encoder, dtype)
    if path.is_file() and key_path.is_file():
        cached = _reusable_cache(path, key_path, key)
        if cached is not None:
            return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    key_path.unlink(missing_ok=True)  # the key is written last: a crash leaves no valid cache
    tmp = path.with_name(path.stem + ".tmp.npy")
    tmp_key = tmp.with_suffix(".json")  # what the partial file holds, so an interrupted pass can resume
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (int(dataset.total_steps), int(encoder.dim))}
    first, row = resumable_episodes(tmp, tmp_key, key, dataset.episode_lengths) if engine == "local" else (0, 0)
    if engine == "ray":
        from skillgym.extract.ray_engine import ray_episode_features

        episode_features = ray_episode_features(dataset, encoder, path.with_name(path.stem + ".features.tmp.npy"),
                                                progress=progress)
    else:
        episode_features = encode_episodes(dataset, encoder, first)
    # Plain sequential writes (not a memmap): nothing stays mapped, so memory does not grow with N.
    with open(tmp, "r+b" if first else "wb") as out, tqdm(total=dataset.total_steps, initial=row, unit="frame",
                                                          desc=f"embed ({encoder.name})", disable=not progress) as bar:
        if first:
            out.seek(0, os.SEEK_END)
            print(f"resuming the embedding pass at episode {first} of {len(dataset)} ({tmp})")
        else:
            np.lib.format.write_array_header_1_0(out, header)
            tmp_key.write_text(json.dumps(key, indent=2) + "\n")
        for t, features in episode_features:
            if features.shape != (t, encoder.dim):
                raise EncoderInputError(
                    f"encoder {encoder.name!r} returned shape {features.shape} for {t} inputs; "
                    f"expected ({t}, {encoder.dim})"
                )
            out.write(embedding_differences(features.astype(np.float32)).astype(dtype).tobytes())
            row += t
            bar.update(t)
    if row != dataset.total_steps:
        raise EncoderInputError(f"dataset announced {dataset.total_steps} steps but yielded {row}")
    os.replace(tmp, path)
    tmp_key.unlink(missing_ok=True)
    key_path.write_text(json.dumps(key, indent=2) + "\n")
    return NpyRows(path)


def _reusable_cache(path: Path, key_path: Path, key: dict[str, Any]) -> NpyRows | None:
    """The embedding file ``path`` if ``key_path`` says it was written for ``key`` and it holds what ``key``
    promises: every row, of its size and dtype, all finite. None means compute it again."""
    try:
        if json.loads(key_path.read_text()) != key:
            return None
        cached = NpyRows(path)
        expected = ((key["num_frames"], key["dim"]), np.dtype(key["dtype"]))
        if (cached.shape, cached.dtype) != expected:
            problem = f"holds {cached.shape} {cached.dtype} values instead of {expected[0]} {expected[1]}"
        elif not cached.is_complete():
            problem = "is truncated or has extra bytes"
        elif not _all_finite(cached):
            problem = "holds NaN or infinite values"
        else:
            return cached
    except (ValueError, OSError) as e:
        problem = f"cannot be read ({e})"
    print(f"the embedding cache {path} {problem}; computing it again")
    return None


def _all_finite(rows: NpyRows, block: int = DEFAULT_BATCH_SIZE) -> bool:
    return all(np.isfinite(rows[i : i + block]).all() for i in range(0, len(rows), block))


def resumable_episodes(tmp: Path, tmp_key: Path, key: dict[str, Any], episode_lengths: Any) -> tuple[int, int]:
    """``(episodes, rows)`` already in the partial embedding file ``tmp``, cut back to the last whole episode.

    ``(0, 0)`` unless ``tmp_key`` says the file was started for this very ``key`` (dataset, encoder, dtype).
    Each episode is encoded on its own, so the episodes written before an interruption are exactly those an
    uninterrupted pass writes, and the pass can go on from the next one.
    """
    try:
        if not tmp.is_file() or json.loads(tmp_key.read_text()) != key:
            return 0, 0
        with open(tmp, "rb") as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            data_start = f.tell()
    except (OSError, ValueError):
        return 0, 0
    row_bytes = int(key["dim"]) * np.dtype(key["dtype"]).itemsize
    complete_rows = (tmp.stat().st_size - data_start) // row_bytes
    ends = np.cumsum(np.asarray(episode_lengths, np.int64))
    episodes = int(np.searchsorted(ends, complete_rows, side="right"))
    rows = int(ends[episodes - 1]) if episodes else 0
    if episodes == 0:
        return 0, 0
    os.truncate(tmp, data_start + rows * row_bytes)  # drop a half-written episode
    return episodes, rows


def sample_rows(num_rows: int, fit_samples: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded uniform sample of ``min(num_rows, fit_samples)`` rows."""
    if num_rows <= fit_samples:
        return np.arange(num_rows)
    return np.sort(np.random.default_rng(seed).choice(num_rows, size=fit_samples, replace=False))


def fit_centroids(
    embeddings: np.ndarray,
    k: int = 8,
    seed: int = 0,
    fit_samples: int = DEFAULT_FIT_SAMPLES,
    n_init: int = 3,
) -> np.ndarray:
    """Seeded MiniBatchKMeans on a sample of at most ``fit_samples`` rows -> ``(k, D)`` float32.

    Raises :class:`ClusteringError` if ``k`` is not smaller than the number of rows sampled, or if
    the rows hold fewer than ``k`` distinct points.
    """
    from sklearn.cluster import MiniBatchKMeans

    n = len(embeddings)
    if k < 2:
        raise ClusteringError(f"K must be >= 2, got {k}")
    if fit_samples < k:
        raise ClusteringError(f"fit_samples ({fit_samples}) must be >= K ({k})")
    if k > n:
        raise ClusteringError(f"K={k} is larger than the number of frames in the dataset ({n})")
    sample = np.asarray(embeddings[sample_rows(n, fit_samples, seed)], dtype=np.float32)
    if not np.all(np.isfinite(sample)):
        raise ClusteringError("embeddings contain NaN or inf; check the encoder and the dataset")
    rows_as_bytes = np.ascontiguousarray(sample).view(np.dtype((np.void, sample.itemsize * sample.shape[1])))
    distinct = len(np.unique(rows_as_bytes))
    if distinct < k:
        raise ClusteringError(f"only {distinct} distinct embeddings for K={k} clusters; lower K")
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=2048,
                         max_iter=100, max_no_improvement=20, reassignment_ratio=0.01)
    km.fit(sample)
    return np.asarray(km.cluster_centers_, dtype=np.float32)


def assign_labels(
    embeddings: np.ndarray,
    centroids: np.ndarray,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> np.ndarray:
    """Index of the nearest centroid for every row, ``batch_size`` rows at a time -> ``(N,) int16``.

    This same function labels the fitting dataset and any new dataset (fine-tuning path), so both
    get exactly the same assignment rule. Ties go to the lower index.
    """
    from tqdm.auto import tqdm

    centroids = np.asarray(centroids, np.float64)
    if embeddings.ndim != 2 or embeddings.shape[1] != centroids.shape[1]:
        raise ClusteringError(
            f"embeddings of shape {embeddings.shape} do not match centroids of dimension {centroids.shape[1]} "
            "(was the labeler fitted with another encoder?)"
        )
    c_sq = (centroids**2).sum(1)
    out = np.empty(len(embeddings), np.int16)
    starts = range(0, len(embeddings), batch_size)
    for start in tqdm(starts, desc="assign clusters", unit="batch", disable=not progress):
        x = np.asarray(embeddings[start : start + batch_size], np.float64)
        # ||x - c||^2 without the constant ||x||^2; float64 so ties break identically everywhere
        out[start : start + len(x)] = np.argmin(c_sq[None] - 2.0 * x @ centroids.T, axis=1)
    return out
