"""The artifact of stage 1: per-frame skill labels and the segments cut from them.

A labels folder holds ``labels.npz`` (arrays) and ``labels.json`` (what produced them). Stage 2
reads it with :meth:`SkillLabels.load`; nothing here is pickled.

Conventions: episode ``i`` has ``T_i`` actions; label ``t`` belongs to the step from observation
``t`` with action ``t``. A segment ``(episode, start, end, skill)`` covers actions
``start .. end-1`` and observations ``start .. end`` (so ``states[start]`` is its first state).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LABELS_NPZ = "labels.npz"
LABELS_JSON = "labels.json"
FORMAT_VERSION = 1
MAX_JSON_BYTES = 16 * 2**20


class LabelsError(ValueError):
    """A labels folder is missing, corrupt or inconsistent."""


@dataclass
class SkillLabels:
    """Stage 1's output: a skill id per step of every episode and the segments cut from them.

    Saved as ``labels.npz`` (arrays) + ``labels.json`` (skill count, dataset path and
    fingerprint, the labeler's settings); :meth:`load` checks both before anything reads them.
    """

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
        """Number of labelled episodes ``E``."""
        return len(self.episode_offsets) - 1

    def skills_without_segments(self, segments: np.ndarray | None = None) -> list[int]:
        """The skills that no row of ``segments`` (default: all of this labelling's) is labelled with."""
        segments = self.segments if segments is None else segments
        return sorted(set(range(self.num_skills)) - set(segments[:, 3].tolist()))

    def content_digest(self) -> str:
        """SHA-256 of what training reads from these labels (the arrays, the skill count and the dataset's
        fingerprint), not of where they are stored: the same labels moved elsewhere keep it."""
        digest = hashlib.sha256(f"{self.num_skills}:{self.dataset_fingerprint}".encode())
        for array in (self.frame_labels, self.episode_offsets, self.segments):
            digest.update(array.tobytes())
        return digest.hexdigest()

    def episode_labels(self, episode: int) -> np.ndarray:
        """Skill id of every step of ``episode``: ``(T_i,) int16``."""
        return self.frame_labels[self.episode_offsets[episode] : self.episode_offsets[episode + 1]]

    def validate(self) -> None:
        """Raise :class:`LabelsError` unless the offsets cover ``frame_labels`` exactly and every
        segment is a non-empty ``[start, end)`` inside its episode with a skill in ``[0, num_skills)``."""
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
        """Write ``labels.npz`` and ``labels.json``. Each file is written under a temporary name and
        renamed; the old ``labels.json`` goes first and the new one comes last, so an interrupted save
        leaves a folder that does not load rather than a mix of two runs."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "format_version": FORMAT_VERSION,
            "num_skills": self.num_skills,
            "dataset_path": self.dataset_path,
            "dataset_fingerprint": self.dataset_fingerprint,
            "num_segments": int(len(self.segments)),
            "content_digest": self.content_digest(),
            "metadata": self.metadata,
        }
        write_npz_json(directory / LABELS_NPZ, directory / LABELS_JSON, payload, frame_labels=self.frame_labels,
                       episode_offsets=self.episode_offsets, segments=self.segments)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SkillLabels:
        """Read a labels folder; :class:`LabelsError` if its format, a field or :meth:`validate` fails."""
        directory = Path(directory)
        npz, meta = directory / LABELS_NPZ, directory / LABELS_JSON
        if not npz.is_file() or not meta.is_file():
            raise LabelsError(
                f"{directory} is not a labels folder (needs {LABELS_NPZ} and {LABELS_JSON}); "
                "make one with `skillgym extract DATASET --out DIR`"
            )
        fix = "re-run `skillgym extract` to write the labels again"
        payload = read_json_object(meta, LabelsError, fix)
        if payload.get("format_version") != FORMAT_VERSION:
            raise LabelsError(
                f"{directory}: labels format {payload.get('format_version')!r} != {FORMAT_VERSION}; {fix}"
            )
        missing = [k for k in ("num_skills", "dataset_path", "dataset_fingerprint") if k not in payload]
        if missing:
            raise LabelsError(f"{meta} lacks {missing}; {fix}")
        num_skills = payload["num_skills"]
        if not isinstance(num_skills, int) or isinstance(num_skills, bool) or not 1 <= num_skills <= 2**15:
            raise LabelsError(f"{meta}: num_skills must be an int in [1, 32768], got {num_skills!r}; {fix}")
        if not all(isinstance(payload[k], str) for k in ("dataset_path", "dataset_fingerprint")):
            raise LabelsError(f"{meta}: dataset_path and dataset_fingerprint must be strings; {fix}")
        metadata = payload.get("metadata", {})
        if not isinstance(metadata, dict):
            raise LabelsError(f"{meta}: metadata must be a JSON object; {fix}")
        data = read_npz(npz, ("frame_labels", "episode_offsets", "segments"), LabelsError, fix)
        for name, array in data.items():
            if not np.issubdtype(array.dtype, np.integer):
                raise LabelsError(f"{npz}: {name} must hold integers, got {array.dtype}; {fix}")
        if data["frame_labels"].ndim != 1 or data["episode_offsets"].ndim != 1:
            raise LabelsError(f"{npz}: frame_labels and episode_offsets must be 1-d; {fix}")
        labels = data["frame_labels"]
        if labels.size and (labels.min() < -1 or labels.max() >= num_skills):
            raise LabelsError(f"{npz}: frame labels must lie in [-1, {num_skills}); {fix}")
        if data["segments"].size % 4:
            raise LabelsError(f"{npz}: segments must be rows of 4 (episode, start, end, skill); {fix}")
        try:
            loaded = cls(num_skills=num_skills, dataset_path=payload["dataset_path"],
                         dataset_fingerprint=payload["dataset_fingerprint"], metadata=metadata, **data)
        except LabelsError as e:
            raise LabelsError(f"{directory}: {e}; {fix}") from e
        # Labels written before the digest was stored have none to check.
        digest = loaded.content_digest()
        if payload.get("content_digest", digest) != digest:
            raise LabelsError(f"{npz} does not hold the labels {meta} describes (changed or from another run); {fix}")
        return loaded


def read_json_object(path: Path, error: type[Exception], fix: str) -> dict[str, Any]:
    """A JSON object from ``path``, or ``error`` saying what is wrong and ``fix``."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise error(f"{path} is larger than {MAX_JSON_BYTES} bytes, not a skillgym settings file; {fix}")
    try:
        payload = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise error(f"{path} is not valid JSON ({type(e).__name__}); the file is corrupt, {fix}") from e
    if not isinstance(payload, dict):
        raise error(f"{path} must hold a JSON object, got {type(payload).__name__}; {fix}")
    return payload


def read_npz(path: Path, keys: tuple[str, ...], error: type[Exception], fix: str) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of an ``.npz`` file, never unpickled; ``error`` for anything that is not an intact
    NPZ with those arrays (an empty, truncated or overwritten file)."""
    if not zipfile.is_zipfile(path):
        raise error(f"{path} is not an NPZ archive (empty, truncated or overwritten); {fix}")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [k for k in keys if k not in arrays.files]
            if missing:
                raise error(f"{path} lacks the arrays {missing}; {fix}")
            return {k: arrays[k] for k in keys}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        if "pickle" in str(e):  # an object array: not something skillgym writes
            raise error(f"{path} holds Python objects, not plain arrays; {fix}") from e
        raise error(f"{path} is corrupt ({type(e).__name__}: {str(e)[:200]}); {fix}") from e


def write_npz_json(npz: Path, meta: Path, payload: dict[str, Any], **arrays: np.ndarray) -> None:
    """Write an NPZ + JSON pair atomically enough that a reader never sees a half or mixed pair: the old
    JSON is removed first, both files are written under temporary names and renamed, the JSON last."""
    tmp_npz, tmp_json = npz.with_name(npz.name + ".tmp"), meta.with_name(meta.name + ".tmp")
    with open(tmp_npz, "wb") as f:
        np.savez(f, **arrays)
    tmp_json.write_text(json.dumps(payload, indent=2) + "\n")
    meta.unlink(missing_ok=True)
    os.replace(tmp_npz, npz)
    os.replace(tmp_json, meta)
