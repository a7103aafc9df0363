"""``skillgym data merge``: concatenate scripted recordings made with one recipe.

Episode ``i`` of a recording depends only on ``(seed, i)``, so ``skillgym data kitchen --episodes
100 --seed 5`` and ``... --episodes 100 --seed 5 --first-episode 100``, merged in that order,
hold exactly the episodes of ``--episodes 200 --seed 5``. That lets a larger dataset be recorded
in pieces, on several machines, or grown from an existing one without re-recording it.

    >>> merge_recordings(["data/part0", "data/part1"], "data/kitchen200")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path

from skillgym.data.dataset import DatasetError, Episode, open_dataset, write_json, write_minari_dataset
from skillgym.data.record import RecordArgs, RecordReport, eval_task_ceiling, eval_transitions

# Recipe fields that may differ between the parts (everything else must match).
PER_PART = {"out", "episodes", "first_episode", "workers", "chunk_size"}


def _recording(path: Path) -> dict:
    file = path / "recording.json"
    if not file.is_file():
        raise DatasetError(f"{path} has no recording.json: only `skillgym data kitchen` recordings can be merged")
    return json.loads(file.read_text())


def merge_recordings(parts: Sequence[str | os.PathLike], out: str | os.PathLike) -> RecordReport:
    """Write the episodes of ``parts`` (in that order) as one dataset at ``out``; returns its report.

    The parts must share every recipe option (seed, image size, noise, subtask pool...) and cover
    consecutive episode index ranges, so that the result equals one recording of them all.
    """
    paths, out = [Path(p) for p in parts], Path(out)
    if len(paths) < 2:
        raise ValueError("merge needs at least two recordings")
    if out.exists():
        raise FileExistsError(f"{out} exists; pick another --out (merging never overwrites)")
    recordings = [_recording(p) for p in paths]
    recipe = [{k: v for k, v in r["args"].items() if k not in PER_PART} for r in recordings]
    for path, other in zip(paths[1:], recipe[1:], strict=True):
        differ = sorted(k for k in set(recipe[0]) | set(other) if recipe[0].get(k) != other.get(k))
        if differ:
            raise ValueError(f"{paths[0]} and {path} were recorded with different options ({', '.join(differ)}); "
                             "only parts of one recipe can be merged")
    expected = recordings[0]["args"].get("first_episode", 0)
    for path, rec in zip(paths, recordings, strict=True):
        first = rec["args"].get("first_episode", 0)
        if first != expected:
            raise ValueError(f"{path} starts at episode {first}, expected {expected}: give the parts in order, "
                             "with consecutive --first-episode ranges")
        expected = first + rec["args"]["episodes"]

    datasets = [open_dataset(p) for p in paths]
    image_size = datasets[0].frame_size if datasets[0].has_frames else None

    def chunks(size: int = 10) -> Iterator[list[Episode]]:
        for dataset in datasets:
            for lo in range(0, len(dataset), size):
                yield [dataset.episode(i) for i in range(lo, min(lo + size, len(dataset)))]

    args = RecordArgs(**{f.name: recordings[0]["args"][f.name] for f in fields(RecordArgs)
                         if f.name in recordings[0]["args"]})
    args.out, args.episodes = out, sum(r["args"]["episodes"] for r in recordings)
    write_minari_dataset(out, chunks(), image_size, description=(
        f"skillgym scripted Franka Kitchen demonstrations: episodes {args.first_episode}-"
        f"{args.first_episode + args.episodes - 1} of seed {args.seed}, merged from {len(paths)} recordings."))

    report, failures = RecordReport(), Counter()
    for rec in recordings:
        for name in ("attempted", "kept", "complete", "complete_within_280", "dropped", "trimmed", "total_steps"):
            setattr(report, name, getattr(report, name) + rec["report"][name])
        failures.update(rec["report"]["subtask_failures"])
    outcomes = [episode for rec in recordings for episode in rec["episodes"]]
    report.subtask_failures = dict(failures)
    report.eval_task_ceiling = eval_task_ceiling(outcomes)
    report.eval_transitions = eval_transitions(outcomes)
    write_json(out / "recording.json", {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "report": asdict(report),
        "subtask_names": recordings[0]["subtask_names"],
        "episodes": outcomes,
        "merged_from": [str(p) for p in paths],
    })
    return report
