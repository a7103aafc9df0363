"""Stage-1 speed and memory on this machine.

1. Encoder throughput (frames/s) for every built-in encoder at 128x128 (R3M with a real
   checkpoint if one is on disk, otherwise a random-weight checkpoint in R3M's exact layout,
   built here, which costs the same compute; the output says which).
2. Peak memory of labelling (embed -> K-means fit on a sample -> batched assignment -> filter ->
   segments) a synthetic on-disk dataset at 1x and 10x the K-means fit sample. Each size runs in
   a fresh process; we report the peak resident set size above the process's baseline and the
   tracemalloc peak (NumPy buffers). Both must stay flat from 1x to 10x.
3. With ``--engines``: the embedding pass (read frames, EfficientNet-Lite0, write the cache) of a
   synthetic on-disk dataset with the local engine (torch's default threads, then one thread, as
   a Ray actor runs) and with the ray engine on a local Ray instance over all cores, in one run:
   frames/s of each, Ray's start-up time apart, and whether the local engine (default threads)
   and the ray engine give the same embeddings and the same K-means labels.

Usage:
    python benchmarks/extraction.py                      # parts 1 and 2 (~3-5 min on 2 cores)
    python benchmarks/extraction.py --skip-encoders      # memory part only
    python benchmarks/extraction.py --frames 32 --fit-samples 1000
    python benchmarks/extraction.py --skip-encoders --skip-memory --engines   # local vs ray (pip install 'skillgym[ray]')
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


# -- part 1: encoder throughput -----------------------------------------------------------------
def encoder_throughput(n_frames: int, size: int, batch: int, tmp: Path) -> list[tuple[str, float, str]]:
    import torch

    from skillgym.extract.encoders import find_r3m_checkpoint, make_encoder, write_random_r3m_checkpoint

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8)
    results = []
    for name in ("r3m-18", "r3m-34", "r3m-50", "efficientnet-lite0"):
        note = ""
        kwargs = {"batch_size": batch}
        if name.startswith("r3m-"):
            model_size = int(name.split("-")[1])
            real = find_r3m_checkpoint(model_size)
            if real is None:
                kwargs["weights"] = str(write_random_r3m_checkpoint(tmp / f"{name}.pt", model_size))
                note = "random weights in R3M layout (no checkpoint on disk); same compute"
            else:
                note = f"checkpoint {real}"
        enc = make_encoder(name, **kwargs)
        enc.encode(frames[: min(batch, 8)])  # warm-up (allocator, oneDNN kernels)
        t0 = time.perf_counter()
        enc.encode(frames)
        results.append((name, n_frames / (time.perf_counter() - t0), note))
    for name, dim in (("state", 59), ("action", 9)):
        x = rng.normal(size=(200_000, dim))
        enc = make_encoder(name)
        t0 = time.perf_counter()
        enc.encode(x)
        results.append((name, len(x) / (time.perf_counter() - t0), "identity on vectors"))
    results.append(("(torch threads)", float(torch.get_num_threads()), ""))
    return results


# -- part 2: memory of labelling -----------------------------------------------------------------
class PooledPixels:
    """A cheap frames encoder (4x4 average pooling -> 768-d for 64x64 frames) so the memory
    run measures the pipeline, not a network; registered as "bench-pool" in the child."""

    name, input = "bench-pool", "frames"

    def __init__(self, size: int):
        self.size = size
        self.dim = (size // 4) ** 2 * 3

    def encode(self, frames: np.ndarray) -> np.ndarray:
        b, h, w, c = frames.shape
        pooled = frames.reshape(b, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))
        return pooled.reshape(b, -1).astype(np.float32)

    def config(self) -> dict:
        return {"size": self.size}


def write_synthetic_dataset(path: Path, steps: int, episode_len: int, size: int, seed: int) -> None:
    """Random-frame episodes, written chunk by chunk (bounded memory while writing too)."""
    from skillgym.data.dataset import Episode, write_minari_dataset

    rng = np.random.default_rng(seed)

    def chunks():
        remaining = steps
        while remaining > 0:
            chunk = []
            for _ in range(10):
                t = min(episode_len, remaining)
                if t <= 0:
                    break
                remaining -= t
                chunk.append(Episode(
                    states=rng.normal(size=(t + 1, 59)), actions=rng.uniform(-1, 1, (t, 9)).astype(np.float32),
                    rewards=np.zeros(t, np.float32), terminations=np.zeros(t, bool),
                    truncations=np.arange(t) == t - 1,
                    frames=rng.integers(0, 256, (t + 1, size, size, 3), dtype=np.uint8),
                    subtasks=rng.integers(0, 7, t).astype(np.int16)))
            yield chunk

    write_minari_dataset(path, chunks(), size)


def memory_child(dataset: str, fit_samples: int, batch_size: int, size: int) -> None:
    """Runs in a fresh process: label ``dataset`` and print peak memory as JSON."""
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.encoders import register_encoder
    from skillgym.extract.labeler import SkillLabeler

    register_encoder("bench-pool", lambda size=size: PooledPixels(size))
    ds = open_dataset(dataset)
    ds.episode(0)  # warm imports and h5py
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        labeler = SkillLabeler.fit(ds, PooledPixels(size), k=8, seed=0, fit_samples=fit_samples,
                                   cache_dir=cache, progress=False)
        labels = labeler.label(ds, cache_dir=cache, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"steps": ds.total_steps, "segments": int(len(labels.segments)), "seconds": seconds,
                      "tracemalloc_peak_mb": peak / 2**20, "rss_growth_mb": (peak_rss - base_rss) / 1024,
                      "peak_rss_mb": peak_rss / 1024}))


def memory_benchmark(fit_samples: int, size: int, batch_size: int, tmp: Path) -> list[dict]:
    rows = []
    for scale in (1, 10):
        path = tmp / f"synthetic-{scale}x"
        steps = scale * fit_samples
        t0 = time.perf_counter()
        write_synthetic_dataset(path, steps, episode_len=200, size=size, seed=scale)
        print(f"  wrote {steps} random {size}x{size} frames in {time.perf_counter() - t0:.0f}s", flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(path), "--fit-samples", str(fit_samples),
             "--batch-size", str(batch_size), "--frames", str(size)],
            check=True, capture_output=True, text=True,
        )
        rows.append({"scale": scale, **json.loads(out.stdout.strip().splitlines()[-1])})
    return rows


# -- part 3: local vs ray engine -----------------------------------------------------------------
def engine_comparison(steps: int, size: int, tmp: Path) -> dict:
    """Embed one synthetic dataset with each engine; frames/s, Ray's start-up, and agreement."""
    import logging
    import os

    import ray
    import torch

    from skillgym.data.dataset import open_dataset
    from skillgym.extract.clustering import assign_labels, compute_embeddings, fit_centroids
    from skillgym.extract.encoders import make_encoder

    write_synthetic_dataset(tmp / "engines", steps, episode_len=150, size=size, seed=0)
    dataset = open_dataset(tmp / "engines")
    _ = dataset.fingerprint  # hashed once here, outside the timings
    encoder = make_encoder("efficientnet-lite0")
    result: dict = {"frames": dataset.total_steps, "episodes": len(dataset), "image_size": size,
                    "load_before": os.getloadavg()[0], "local_torch_threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    local = np.asarray(compute_embeddings(dataset, encoder, tmp / "local" / "e.npy", progress=False))
    result["local_seconds"] = time.perf_counter() - t0
    torch.set_num_threads(1)  # as each encoder actor runs
    t0 = time.perf_counter()
    compute_embeddings(dataset, encoder, tmp / "local-1" / "e.npy", progress=False)
    result["local_1_thread_seconds"] = time.perf_counter() - t0
    torch.set_num_threads(result["local_torch_threads"])
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    result["ray_startup_seconds"] = time.perf_counter() - t0
    result["ray_cpus"] = ray.cluster_resources().get("CPU", 0)
    t0 = time.perf_counter()
    on_ray = np.asarray(compute_embeddings(dataset, encoder, tmp / "ray" / "e.npy", progress=False, engine="ray"))
    result["ray_seconds"] = time.perf_counter() - t0
    ray.shutdown()
    result["load_after"] = os.getloadavg()[0]
    result["embeddings_equal"] = bool(np.array_equal(local, on_ray))
    result["max_abs_difference"] = float(np.abs(local - on_ray).max())
    labels = [assign_labels(e, fit_centroids(e, k=8, seed=0)) for e in (local, on_ray)]
    result["labels_equal"] = bool(np.array_equal(*labels))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder-frames", type=int, default=64, help="frames timed per image encoder")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--encoder-batch", type=int, default=32)
    parser.add_argument("--fit-samples", type=int, default=2000, help="K-means fit sample = the 1x dataset size")
    parser.add_argument("--batch-size", type=int, default=1024, help="assignment batch")
    parser.add_argument("--frames", type=int, default=64, help="frame size of the synthetic memory dataset")
    parser.add_argument("--skip-encoders", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--engines", action="store_true", help="part 3: local vs ray engine")
    parser.add_argument("--engine-frames", type=int, default=1500, help="frames of the engine comparison's dataset")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.fit_samples, args.batch_size, args.frames)
        return
    with tempfile.TemporaryDirectory(prefix="skillgym-bench-") as tmp:
        tmp = Path(tmp)
        if not args.skip_encoders:
            print(f"encoder throughput, {args.image_size}x{args.image_size} uint8 frames, batch {args.encoder_batch}:")
            for name, rate, note in encoder_throughput(args.encoder_frames, args.image_size, args.encoder_batch, tmp):
                if name.startswith("("):
                    print(f"  {name:<20} {int(rate)}")
                else:
                    print(f"  {name:<20} {rate:>12,.1f} frames/s   {note}")
        if not args.skip_memory:
            print(f"labelling memory, K=8, fit sample {args.fit_samples}, assignment batch {args.batch_size}, "
                  f"768-d pooled-pixel encoder:")
            rows = memory_benchmark(args.fit_samples, args.frames, args.batch_size, tmp)
            for r in rows:
                print(f"  {r['scale']:>2}x ({r['steps']:>6} steps): tracemalloc peak {r['tracemalloc_peak_mb']:7.1f} MB, "
                      f"RSS growth {r['rss_growth_mb']:7.1f} MB (peak RSS {r['peak_rss_mb']:.0f} MB), "
                      f"{r['seconds']:.1f}s, {r['segments']} segments")
            one, ten = rows
            print(f"  10x / 1x: tracemalloc peak x{ten['tracemalloc_peak_mb'] / max(one['tracemalloc_peak_mb'], 1e-9):.2f}, "
                  f"RSS growth x{ten['rss_growth_mb'] / max(one['rss_growth_mb'], 1e-9):.2f}")
        if args.engines:
            print(f"embedding pass, efficientnet-lite0, {args.engine_frames} random {args.image_size}x{args.image_size} "
                  "frames on disk:")
            r = engine_comparison(args.engine_frames, args.image_size, tmp)
            print(f"  load average {r['load_before']:.1f} before, {r['load_after']:.1f} after")
            print(f"  local ({r['local_torch_threads']} torch threads): {r['frames'] / r['local_seconds']:8.1f} frames/s "
                  f"({r['local_seconds']:.1f}s)")
            print(f"  local (1 torch thread):  {r['frames'] / r['local_1_thread_seconds']:8.1f} frames/s "
                  f"({r['local_1_thread_seconds']:.1f}s)")
            print(f"  ray ({r['ray_cpus']:.0f} CPUs):             {r['frames'] / r['ray_seconds']:8.1f} frames/s "
                  f"({r['ray_seconds']:.1f}s, plus {r['ray_startup_seconds']:.1f}s to start Ray)")
            print(f"  same embeddings: {r['embeddings_equal']} (largest difference {r['max_abs_difference']:.2g}); "
                  f"same K-means labels (K=8): {r['labels_equal']}")
            print(json.dumps(r))


if __name__ == "__main__":
    main()
