"""``skillgym data merge``: concatenate scripted recordings.

Episode ``i`` of a recording depends only on ``(seed, i)``, so ``skillgym data kitchen --episodes
100 --seed 5`` and ``... --episodes 100 --seed 5 --first-episode 100``, merged in that order,
hold exactly the episodes of ``--episodes 200 --seed 5``. That lets a larger dataset be recorded
in pieces, on several machines, or grown from an existing one without re-recording it.

    >>> merge_recordings(["data/part0", "data/part1"], "data/kitchen200")  # doctest: +SKIP

``mixed_recipes=True`` (``--mixed-recipes``) joins recordings of *different* recipes into one
training set, e.g. evaluation-order prefixes and windows (docs/datasets.md). The result is not any
single recording: its ``recording.json`` keeps every part's options under ``"parts"`` and gives
each option that differs as the list of the parts' values.

    >>> merge_recordings(["runs/prefix/data", "runs/windows/data"], "runs/mixed/data",
    ...                  mixed_recipes=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from skillgym.data.dataset import (
    DatasetError,
    Episode,
    holds_nothing,
    open_dataset,
    write_json,
    write_minari_dataset,
)
from skillgym.data.record import RecordArgs, RecordReport, recorded_args


@dataclass
class MergeArgs:
    """Options of ``skillgym data merge``."""

    parts: tuple[str, ...]
    """recordings from `skillgym data kitchen`, in episode order"""
    out: Path
    """dataset folder to write (must not exist, or be empty)"""
    mixed_recipes: bool = False
    """join recordings of different recipes into one training set; recording.json keeps each part's options"""


# Recipe fields that may differ between the parts (everything else must match).
PER_PART = {"out", "episodes", "first_episode", "workers", "overwrite"}


# What merging reads from a part's recording.json, with its type.
RECORDING_FIELDS = {"args": dict, "episodes": list, "subtask_names": list}
OUTCOME_FIELDS = {"order": list, "failed": list, "raw_steps": int, "kept_steps": int}


def _recording(path: Path) -> dict:
    """A part's recording.json, checked to hold everything merging reads, so a bad part stops the merge
    before anything is written."""
    file = path / "recording.json"
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    if not file.is_file():
        raise DatasetError(f"{path} has no recording.json: only `skillgym data kitchen` recordings can be merged")
    try:
        recording = json.loads(file.read_text())
    except (ValueError, OSError) as e:
        raise DatasetError(f"{file} is not readable JSON ({e}); re-record that part") from None
    problem = _recording_problem(recording)
    if problem:
        raise DatasetError(f"{file} is not the recording.json of a `skillgym data kitchen` recording: {problem}")
    return recording


def _recording_problem(recording: Any) -> str | None:
    """What in a parsed recording.json is missing or of the wrong type (None if nothing)."""
    if not isinstance(recording, dict):
        return f"it holds a {type(recording).__name__}, not an object"
    wrong = [f"'{key}' ({kind.__name__})" for key, kind in RECORDING_FIELDS.items()
             if not isinstance(recording.get(key), kind)]
    if wrong:
        return f"{', '.join(wrong)} missing or of another type"
    args = recording["args"]
    for key, value in (("episodes", args.get("episodes")), ("first_episode", args.get("first_episode", 0))):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"args.{key} is {value!r}, not a number of episodes"
    for i, outcome in enumerate(recording["episodes"]):
        fields_fit = isinstance(outcome, dict) and all(isinstance(outcome.get(key), kind)
                                                       for key, kind in OUTCOME_FIELDS.items())
        if not fields_fit or not all(isinstance(task, str) for task in outcome["order"] + outcome["failed"]):
            return f"episodes[{i}] is not an episode outcome with {', '.join(OUTCOME_FIELDS)}"
    return None


def merge_recordings(parts: Sequence[str | os.PathLike], out: str | os.PathLike,
                     mixed_recipes: bool = False) -> RecordReport:
    """Write the episodes of ``parts`` (in that order) as one dataset at ``out``; returns its report.

    The parts must share every recipe option (seed, image size, noise, subtask pool...) and cover
    consecutive episode index ranges, so that the result equals one recording of them all. With
    ``mixed_recipes`` only the image size must match (frames are stored at one size).
    """
    paths, out = [Path(p) for p in parts], Path(out)
    if len(paths) < 2:
        raise ValueError("merge needs at least two recordings")
    if not holds_nothing(out):
        raise FileExistsError(f"{out} exists; pick another --out (merging never overwrites)")
    recordings = [_recording(p) for p in paths]
    recipe = [{k: v for k, v in recorded_args(r["args"]).items() if k not in PER_PART} for r in recordings]
    differ = sorted({k for other in recipe[1:] for k in set(recipe[0]) | set(other) if recipe[0].get(k) != other.get(k)})
    if "image_size" in differ:
        raise ValueError(f"the parts store frames of different sizes ({[r.get('image_size') for r in recipe]}); "
                         "re-record them at one --image-size")
    if differ and not mixed_recipes:
        raise ValueError(f"the parts were recorded with different options ({', '.join(differ)}); only parts of one "
                         "recipe can be merged into one recording (pass --mixed-recipes to join them as a mixed "
                         "training set)")
    if mixed_recipes:
        _check_no_episode_twice(paths, recordings)
    else:
        _check_consecutive(paths, recordings)

    datasets = [open_dataset(p) for p in paths]
    image_size = datasets[0].frame_size if datasets[0].has_frames else None

    def chunks(size: int = 10) -> Iterator[list[Episode]]:
        for dataset in datasets:
            for lo in range(0, len(dataset), size):
                yield [dataset.episode(i) for i in range(lo, min(lo + size, len(dataset)))]

    first = recorded_args(recordings[0]["args"])
    try:
        args = RecordArgs(**{**{f.name: first[f.name] for f in fields(RecordArgs) if f.name in first}, "out": out,
                             "episodes": sum(r["args"]["episodes"] for r in recordings)})
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{paths[0] / 'recording.json'}: its args are not options of `skillgym data kitchen` "
                           f"({e}); re-record that part") from None
    report = RecordReport()
    outcomes = [episode for rec in recordings for episode in rec["episodes"]]
    for outcome in outcomes:
        report.count(outcome)
    stored_args = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()}
    extra = {}
    if mixed_recipes:
        for name in differ:  # a mixed set has no single value for these
            stored_args[name] = [r.get(name) for r in recipe]
        extra = {"mixed_recipes": True, "parts": [part for r in recordings for part in _part_args(r)]}
    recording = {
        "args": stored_args,
        "report": asdict(report),
        "subtask_names": recordings[0]["subtask_names"],
        "episodes": outcomes,
        "merged_from": [str(p) for p in paths],
        **extra,
    }
    if mixed_recipes:
        description = (f"skillgym scripted Franka Kitchen demonstrations of {len(paths)} recipes (differing in "
                       f"{', '.join(differ) or 'nothing'}), merged from {', '.join(map(str, paths))}.")
    else:
        description = (f"skillgym scripted Franka Kitchen demonstrations: episodes {args.first_episode}-"
                       f"{args.first_episode + args.episodes - 1} of seed {args.seed}, merged from {len(paths)} recordings.")
    write_minari_dataset(out, chunks(), image_size, description=description, dataset_id=datasets[0].dataset_id,
                         finalize=lambda folder: write_json(folder / "recording.json", recording))
    return report


def _check_consecutive(paths: list[Path], recordings: list[dict]) -> None:
    expected = recordings[0]["args"].get("first_episode", 0)
    for path, rec in zip(paths, recordings, strict=True):
        first = rec["args"].get("first_episode", 0)
        if first != expected:
            raise ValueError(f"{path} starts at episode {first}, expected {expected}: give the parts in order, "
                             "with consecutive --first-episode ranges")
        expected = first + rec["args"]["episodes"]


def _part_args(recording: dict) -> list[dict]:
    """The options of each recording a recording is made of: its own, or each part's for a mixed one."""
    parts = recording.get("parts") if recording.get("mixed_recipes") else None
    if not isinstance(parts, list) or not parts:
        return [recording["args"]]
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or _recording_problem({**recording, "args": part}):
            raise DatasetError(f"parts[{i}] of a mixed recording.json is not a recording's options; re-merge it")
    return parts


def _check_no_episode_twice(paths: list[Path], recordings: list[dict]) -> None:
    """Refuse parts (or parts of mixed parts) of one recipe whose episode ranges overlap: the merged set would
    hold those episodes twice, and a held-out episode could have its copy among the training ones."""
    seen: list[tuple[dict, range, Path]] = []
    for path, recording in zip(paths, recordings, strict=True):
        for part in _part_args(recording):
            args = recorded_args(part)
            recipe = {k: v for k, v in args.items() if k not in PER_PART}
            episodes = range(args["first_episode"], args["first_episode"] + args["episodes"])
            for other_recipe, other_episodes, other_path in seen:
                both = range(max(episodes.start, other_episodes.start), min(episodes.stop, other_episodes.stop))
                if recipe == other_recipe and len(both):
                    raise ValueError(f"episodes {both.start}-{both.stop - 1} of one recipe (seed {recipe['seed']}) are "
                                     f"in {other_path} and in {path}: the merged set would hold them twice; leave "
                                     "one of them out")
            seen.append((recipe, episodes, path))
