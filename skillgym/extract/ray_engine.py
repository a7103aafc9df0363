"""Stage 1's encoder on a Ray cluster: episodes read and embedded by Ray Data actor pools.

``compute_embeddings(..., engine="ray")`` (``skillgym extract --engine ray``) calls
:func:`ray_episode_features`. The driver holds only the dataset's index. A first actor pool
opens the dataset file itself (so it must be at the same path on every node), reads one episode
per call and cuts its encoder inputs into the chunks the local engine's encoder runs one pass
on; a second pool builds the encoder once per actor and embeds ``batch_size`` inputs per call,
on one GPU per actor when the cluster has GPUs, else on one CPU thread. The driver writes the
features at their rows in a scratch file and hands them back episode by episode, so the
embedding cache, the K-means sample and the labels are made exactly as by the local engine.
On CPU the features are bit for bit the local engine's when it also runs torch on one thread;
other thread counts (and GPUs) change their last digits, which in our tests changed no label.

Which Ray: the cluster at ``RAY_ADDRESS`` if it is set (``ray start --head`` prints the
address), else a local Ray instance started for the call and shut down after it; a Ray already
initialised in this process is used as it is.

Example (needs ``pip install 'skillgym[ray]'``):
    >>> from skillgym.extract import extract_skills
    >>> extract_skills(dataset, "runs/labels", encoder="efficientnet-lite0", engine="ray")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from skillgym.extract.clustering import NpyRows, episode_inputs
from skillgym.extract.encoders import Encoder, TorchImageEncoder, make_encoder

BATCH_SIZE = 256  # inputs per encoder actor call, in passes of the encoder's own batch_size
INSTALL_HINT = "pip install 'skillgym[ray]'"


class EngineError(ValueError):
    """The Ray engine cannot run here: Ray is missing, or the dataset or encoder cannot go to workers."""


def import_ray() -> Any:
    """``ray`` with Ray Data, or :class:`EngineError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the extra that brings pyarrow and pandas)
    except ImportError as e:
        raise EngineError(f"the ray engine needs Ray Data: {INSTALL_HINT} ({e})") from e
    return ray


def pool_sizes(cpus: float, gpus: float) -> tuple[int, int]:
    """``(readers, encoders)``: one encoder per GPU, else a quarter of the CPUs read and the rest encode.

    Example:
        >>> pool_sizes(cpus=2, gpus=0), pool_sizes(cpus=16, gpus=0), pool_sizes(cpus=16, gpus=4)
        ((1, 1), (4, 12), (12, 4))
    """
    if gpus >= 1:
        return max(1, int(cpus) - int(gpus)), int(gpus)
    readers = max(1, int(cpus) // 4)
    return readers, max(1, int(cpus) - readers)


def actor_config(encoder: Encoder) -> dict[str, Any]:
    """What rebuilds ``encoder`` in an actor: its saved settings, and an image encoder's batch size."""
    config = dict(encoder.config())
    if isinstance(encoder, TorchImageEncoder):
        config["batch_size"] = encoder.batch_size
    return config


class ReadInputs:
    """Ray Data actor: opens the dataset once, then turns episode ids into chunks of encoder inputs.

    A chunk is ``chunk`` consecutive inputs of one episode starting at a multiple of ``chunk``
    (zero-padded at the episode's end, ``count`` of them real): what one pass of the local
    engine's encoder sees, so the features come out the same.
    """

    def __init__(self, path: str, image_size: int | None, kind: str, chunk: int):
        from skillgym.data.dataset import open_dataset

        self.dataset = open_dataset(path, image_size=image_size)
        self.offsets = np.concatenate([[0], np.cumsum(self.dataset.episode_lengths)])
        self.kind, self.chunk = kind, chunk

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        for i in batch["episode"]:
            inputs = episode_inputs(self.dataset.episode(int(i), frames=self.kind == "frames"), self.kind)
            starts = np.arange(0, len(inputs), self.chunk)
            padded = np.zeros((len(starts) * self.chunk, *inputs.shape[1:]), inputs.dtype)
            padded[: len(inputs)] = inputs
            yield {"row": self.offsets[i] + starts, "count": np.minimum(self.chunk, len(inputs) - starts),
                   "inputs": padded.reshape(len(starts), self.chunk, *inputs.shape[1:])}


class EmbedRows:
    """Ray Data actor: builds the encoder once (on its GPU if it was given one), then embeds chunks."""

    def __init__(self, name: str, config: dict[str, Any]):
        import torch

        self.encoder = make_encoder(name, **config)
        if torch.cuda.is_available() and hasattr(self.encoder, "to"):
            self.encoder.to("cuda")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs, counts = batch["inputs"], batch["count"]
        features = np.zeros((*inputs.shape[:2], self.encoder.dim), np.float32)
        for j, count in enumerate(counts):
            # A copy: Ray hands read-only views of its object store, and torch warns on those.
            features[j, :count] = self.encoder.encode(np.array(inputs[j, :count]))
        return {"row": batch["row"], "count": counts, "features": features}


def ray_episode_features(dataset: Any, encoder: Encoder, scratch: str | os.PathLike,
                         batch_size: int = BATCH_SIZE, progress: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    """``(T, features)`` of every episode in order, like :func:`~skillgym.extract.clustering.encode_episodes`,
    computed on Ray; ``scratch`` holds the ``(N, D)`` float32 features meanwhile and is deleted after."""
    ray = import_ray()
    if encoder.dim is None:
        raise EngineError(f"encoder {encoder.name!r} has no size yet; encode one step first (size_encoder)")
    path = getattr(dataset, "path", None)
    if path is None or not hasattr(dataset, "episode_lengths"):
        raise EngineError("the ray engine reads the dataset file in its workers: pass a dataset opened with "
                          "skillgym.data.dataset.open_dataset")
    lengths = np.asarray(dataset.episode_lengths, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    scratch = Path(scratch)
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS", "local")
        ray.init(address=address, logging_level=logging.WARNING,
                 **({"include_dashboard": False} if address == "local" else {}))
    try:
        _write_features(ray, dataset, encoder, scratch, offsets, batch_size, progress)
    finally:
        if started:
            ray.shutdown()
    try:
        rows = NpyRows(scratch)
        for t, start in zip(lengths, offsets[:-1], strict=True):
            yield int(t), rows[int(start) : int(start + t)]
    finally:
        scratch.unlink(missing_ok=True)


def _write_features(ray: Any, dataset: Any, encoder: Encoder, scratch: Path, offsets: np.ndarray,
                    batch_size: int, progress: bool) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    readers, encoders = pool_sizes(resources.get("CPU", 1), gpus)
    chunk = int(getattr(encoder, "batch_size", batch_size))
    read = ray.data.from_items([{"episode": i} for i in range(len(offsets) - 1)]).map_batches(
        ReadInputs, batch_size=1, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=readers),
        fn_constructor_kwargs={"path": str(dataset.path), "kind": encoder.input, "chunk": chunk,
                               "image_size": None if dataset.has_frames else dataset.frame_size})
    embed = read.map_batches(
        EmbedRows, batch_size=max(1, batch_size // chunk), batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=encoders),
        fn_constructor_kwargs={"name": encoder.name, "config": actor_config(encoder)},
        **({"num_gpus": 1} if gpus >= 1 else {"num_cpus": 1}))

    total, dim = int(offsets[-1]), int(encoder.dim)
    written = np.zeros(total, bool)
    with open(scratch, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (total, dim)})
        header = f.tell()
        for batch in embed.iter_batches(batch_size=None, batch_format="numpy"):
            for start, count, features in zip(batch["row"], batch["count"], batch["features"], strict=True):
                rows = slice(int(start), int(start + count))
                if features.shape[-1] != dim or written[rows].any():
                    raise EngineError(f"Ray returned rows {rows.start}-{rows.stop} twice or with "
                                      f"{features.shape[-1]} features instead of {dim}")
                written[rows] = True
                f.seek(header + rows.start * dim * 4)
                f.write(np.ascontiguousarray(features[:count], np.float32).tobytes())
    if not written.all():
        raise EngineError(f"Ray returned {int(written.sum())} of the dataset's {total} rows")
