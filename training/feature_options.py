"""Which per-frame features make skill clusters follow what the robot is doing now.

EXTRACT clusters first-frame embedding differences e_t = f(s_t) - f(s_1): they say what has
changed since the episode began, not what is being done at step t. This study re-clusters the
embeddings an extraction already computed (its cache, so no frame is embedded again) under other
feature options and scores each against the subtask a scripted recording executed at every step:

- ``first-frame``: the method's recipe, as `skillgym extract` runs it;
- ``first-frame-pca``: the same, projected on its first principal components (a seeded PCA);
- ``forward-diff``: e_{t+H} - e_t, the change over the next H steps (in the PCA space);
- ``lookahead``: [e_t, e_{t+H}], where the episode is now and where it is H steps later;
- ``lookahead-wide``: ``lookahead`` with a wider median filter.

Each is clustered with the same K-means (:func:`skillgym.extract.clustering.fit_centroids`) for
every seed, median-filtered and cut into segments as `skillgym extract` does, then scored with
:mod:`skillgym.extract.quality` (AMI, ARI, purity, boundary F1):

    skillgym extract runs/cmp/data --out runs/cmp/same-data-labels --seed 0
    python training/feature_options.py runs/cmp/same-data-labels

Writes OUT/feature_options.md and OUT/feature_options.json (OUT defaults to the extraction folder).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skillgym.cli.options import add_options, command_line, parse_options
from skillgym.data.dataset import open_dataset
from skillgym.extract.clustering import assign_labels, fit_centroids
from skillgym.extract.labels import SkillLabels
from skillgym.extract.quality import subtask_quality
from skillgym.extract.segments import DEFAULT_KERNEL, find_segments, median_filter


@dataclass
class FeatureOptionsArgs:
    """Options of training/feature_options.py."""

    extraction: str
    """folder of a `skillgym extract` run on a scripted recording (its cache holds the embeddings)"""
    out: str = ""
    """where the table goes (default: the extraction folder)"""
    k: int = 8
    """number of skills"""
    seeds: int = 3
    """K-means seeds per option (0 .. seeds-1)"""
    pca_dim: int = 64
    """principal components kept by the PCA options"""
    horizon: int = 30
    """H of forward-diff and lookahead, in low-level steps"""
    wide_kernel: int = 21
    """median filter of lookahead-wide (the recipe's is 7)"""


Features = Callable[[np.ndarray], np.ndarray]  # one episode's (T, D) embeddings -> (T, D') features


def ahead(episode: np.ndarray, steps: int) -> np.ndarray:
    """Row t is row min(t + steps, T - 1): where the episode is ``steps`` later (its end at most)."""
    return episode[np.minimum(np.arange(len(episode)) + steps, len(episode) - 1)]


def episodes(rows: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """``rows`` cut into its episodes: ``rows[offsets[i]:offsets[i + 1]]`` for every ``i``."""
    return [rows[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def options(args: FeatureOptionsArgs) -> dict[str, tuple[bool, Features, int]]:
    """Name -> (uses the PCA space, per-episode features, median kernel)."""
    h = args.horizon
    return {
        "first-frame": (False, lambda e: e, DEFAULT_KERNEL),
        "first-frame-pca": (True, lambda e: e, DEFAULT_KERNEL),
        "forward-diff": (True, lambda e: ahead(e, h) - e, DEFAULT_KERNEL),
        "lookahead": (True, lambda e: np.hstack([e, ahead(e, h)]), DEFAULT_KERNEL),
        "lookahead-wide": (True, lambda e: np.hstack([e, ahead(e, h)]), args.wide_kernel),
    }


def read_extraction(folder: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], dict[str, Any]]:
    """(embeddings, episode offsets, executed subtasks per episode, settings) of an extraction run."""
    settings = json.loads((folder / "report" / "summary.json").read_text())["settings"]
    dataset = open_dataset(settings["fit_dataset_path"])
    if not dataset.has_subtasks:
        raise SystemExit(f"{settings['fit_dataset_path']} does not record the executed subtask; "
                         "record one with `skillgym data kitchen`")
    subtasks = [np.asarray(dataset.episode(i, frames=False).subtasks) for i in range(len(dataset))]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in subtasks])])
    cache = folder / "cache" / f"embeddings-{settings['encoder']}.npy"
    key = json.loads(cache.with_suffix(".json").read_text())
    if key["dataset_fingerprint"] != settings["fit_dataset_fingerprint"] or key["num_frames"] != offsets[-1]:
        raise SystemExit(f"{cache} does not hold the embeddings of {settings['fit_dataset_path']}")
    return np.load(cache, mmap_mode="r"), offsets, subtasks, settings


def principal_components(embeddings: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """The embeddings projected on ``dim`` principal components fitted on a seeded sample of rows."""
    from sklearn.decomposition import PCA

    rows = np.sort(np.random.default_rng(seed).choice(len(embeddings), min(len(embeddings), 20_000), replace=False))
    pca = PCA(dim, random_state=seed).fit(np.asarray(embeddings[rows], np.float32))
    return np.concatenate([pca.transform(np.asarray(embeddings[i:i + 20_000], np.float32))
                           for i in range(0, len(embeddings), 20_000)]).astype(np.float32)


def score(features: np.ndarray, offsets: np.ndarray, subtasks: list[np.ndarray], k: int, kernel: int,
          seed: int) -> dict[str, float]:
    """Cluster, median-filter and segment as `skillgym extract` does, then score against the subtasks."""
    clusters = assign_labels(features, fit_centroids(features, k=k, seed=seed))
    labels = np.concatenate([median_filter(episode, kernel) for episode in episodes(clusters, offsets)])
    segments = find_segments(labels, offsets)
    quality = subtask_quality(SkillLabels(labels, offsets, segments, k, "", ""), subtasks)
    return {"ami": quality["subtask_ami"], "ari": quality["subtask_ari"], "purity": quality["purity"],
            "boundary_f1": quality["boundary_f1"] or 0.0,
            "mean_segment_length": float(np.mean(segments[:, 2] - segments[:, 1]))}


def main(args: FeatureOptionsArgs, command: str) -> None:
    folder = Path(args.extraction)
    embeddings, offsets, subtasks, settings = read_extraction(folder)
    print(f"{len(subtasks)} episodes, {offsets[-1]:,} steps of {settings['encoder']} embeddings; "
          f"K = {args.k}, seeds 0-{args.seeds - 1}")
    reduced = principal_components(embeddings, args.pca_dim, seed=0)
    rows = []
    for name, (use_pca, features_of, kernel) in options(args).items():
        source = reduced if use_pca else embeddings
        features = np.concatenate([features_of(np.asarray(episode, np.float32)) for episode in episodes(source, offsets)])
        per_seed = [score(features, offsets, subtasks, args.k, kernel, seed) for seed in range(args.seeds)]
        row = {"option": name, "kernel": kernel,
               **{m: (float(np.mean([s[m] for s in per_seed])), float(np.std([s[m] for s in per_seed])))
                  for m in per_seed[0]}}
        rows.append(row)
        print(f"{name:16s} AMI {row['ami'][0]:.3f} ± {row['ami'][1]:.3f}  purity {row['purity'][0]:.3f}  "
              f"boundary F1 {row['boundary_f1'][0]:.3f}", flush=True)
    write_table(Path(args.out or folder), rows, command)


def write_table(out: Path, rows: list[dict[str, Any]], command: str) -> None:
    """feature_options.md (one table, mean ± std over seeds) and feature_options.json."""
    metrics = ("ami", "ari", "purity", "boundary_f1", "mean_segment_length")
    lines = ["| option | median filter | AMI | ARI | purity | boundary F1 | mean segment |", "|---" * 7 + "|"]
    lines += ["| " + " | ".join([r["option"], str(r["kernel"]), *(f"{r[m][0]:.2f} ± {r[m][1]:.2f}" for m in metrics)])
              + " |" for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "feature_options.md").write_text(f"Made by `{command}`.\n\n" + "\n".join(lines) + "\n")
    (out / "feature_options.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out / 'feature_options.md'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_options(parser, FeatureOptionsArgs)
    args = parse_options(FeatureOptionsArgs, parser.parse_args())
    main(args, command_line("python training/feature_options.py", args))
