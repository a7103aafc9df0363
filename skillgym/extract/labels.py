"""The artifact of stage 1: per-frame skill labels and the segments cut from them.

A labels folder holds ``labels.npz`` (arrays) and ``labels.json`` (what produced them). Stage 2
reads it with :meth:`SkillLabels.load`; nothing here is pickled.

Conventions: episode ``i`` has ``T_i`` actions; label ``t`` belongs to the step from observation
``t`` with action ``t``. A segment ``(episode, start, end, skill)`` covers actions
``start .. end-1`` and observations ``start .. end`` (so ``states[start]`` is its first state).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LABELS_NPZ = "labels.npz"
LABELS_JSON = "labels.json"
FORMAT_VERSION = 1


class LabelsError(ValueError):
    """A labels folder is missing, corrupt or inconsistent."""


@dataclass
class SkillLabels:
    frame_labels: np.ndarray  # (N,) int16, concatenated over episodes, N = sum(T_i)
    episode_offsets: np.ndarray  # (E+1,) int64, episode i owns frame_labels[off[i]:off[i+1]]
    segments: np.ndarray  # (S, 4) int64 rows (episode, start, end, skill), end exclusive
    num_skills: int
    dataset_path: str
    dataset_fingerprint: str
    metadata: dict[str, Any] = field(default_factory=dict)  # encoder, k-means, filter settings

    def __post_init__(self) -> None:
        self.frame_labels = np.asarray(self.frame_labels, np.int16)
        self.episode_offsets = np.asarray(self.episode_offsets, np.int64)
        self.segments = np.asarray(self.segments, np.int64).reshape(-1, 4)
        self.validate()

    @property
    def num_episodes(self) -> int:
        return len(self.episode_offsets) - 1

    def episode_labels(self, episode: int) -> np.ndarray:
        return self.frame_labels[self.episode_offsets[episode] : self.episode_offsets[episode + 1]]

    def validate(self) -> None:
        off, seg = self.episode_offsets, self.segments
        if off.ndim != 1 or len(off) < 2 or off[0] != 0 or np.any(np.diff(off) < 0):
            raise LabelsError("episode_offsets must start at 0 and never decrease")
        if off[-1] != len(self.frame_labels):
            raise LabelsError(f"episode_offsets end at {off[-1]} but there are {len(self.frame_labels)} labels")
        if len(seg):
            lengths = np.diff(off)[seg[:, 0]] if np.all((seg[:, 0] >= 0) & (seg[:, 0] < self.num_episodes)) else None
            if lengths is None:
                raise LabelsError("a segment names an episode that does not exist")
            if np.any(seg[:, 1] < 0) or np.any(seg[:, 2] <= seg[:, 1]) or np.any(seg[:, 2] > lengths):
                raise LabelsError("a segment's [start, end) lies outside its episode or is empty")
            if np.any(seg[:, 3] < 0) or np.any(seg[:, 3] >= self.num_skills):
                raise LabelsError(f"a segment's skill is outside [0, {self.num_skills})")

    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / LABELS_NPZ, frame_labels=self.frame_labels,
                 episode_offsets=self.episode_offsets, segments=self.segments)
        payload = {
            "format_version": FORMAT_VERSION,
            "num_skills": self.num_skills,
            "dataset_path": self.dataset_path,
            "dataset_fingerprint": self.dataset_fingerprint,
            "num_segments": int(len(self.segments)),
            "metadata": self.metadata,
        }
        (directory / LABELS_JSON).write_text(json.dumps(payload, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SkillLabels:
        directory = Path(directory)
        npz, meta = directory / LABELS_NPZ, directory / LABELS_JSON
        if not npz.is_file() or not meta.is_file():
            raise LabelsError(
                f"{directory} is not a labels folder (needs {LABELS_NPZ} and {LABELS_JSON}); "
                "make one with `skillgym extract DATASET --out DIR`"
            )
        try:
            payload = json.loads(meta.read_text())
            with np.load(npz, allow_pickle=False) as arrays:
                data = {k: arrays[k] for k in ("frame_labels", "episode_offsets", "segments")}
        except (ValueError, KeyError, OSError) as e:
            raise LabelsError(f"{directory}: corrupt labels ({e}); re-run `skillgym extract`") from e
        if payload.get("format_version") != FORMAT_VERSION:
            raise LabelsError(
                f"{directory}: labels format {payload.get('format_version')} != {FORMAT_VERSION}"
            )
        return cls(num_skills=int(payload["num_skills"]), dataset_path=payload["dataset_path"],
                   dataset_fingerprint=payload["dataset_fingerprint"],
                   metadata=payload.get("metadata", {}), **data)
