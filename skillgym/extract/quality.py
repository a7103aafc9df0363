"""How well extracted skills agree with the subtasks a dataset says were executed.

Everything here compares per-step skill labels and segments with per-step subtask ids, where a
subtask id of ``-1`` means unknown; steps with an unknown subtask are left out of every score.

- **AMI / ARI**: adjusted mutual information and adjusted Rand index between the skill of every
  step and its subtask (0 = chance, 1 = the same partition of the steps).
- **purity**: per skill, the fraction of its steps spent in its most frequent subtask; overall,
  the same fraction over all steps (each skill weighted by its number of steps).
- **boundary precision / recall / F1**: a predicted boundary is the start of every segment but
  the first in its episode; a true boundary is a step whose subtask differs from the previous
  known step of the same episode (a change into or out of unknown is no boundary). Predicted and
  true boundaries of one episode are matched one to one when at most ``BOUNDARY_TOLERANCE`` steps
  apart, with the most matches possible (and, among those, the smallest total distance).
- **mean subtask length**: the mean length of the runs of one subtask, to compare with the mean
  segment length.

Example:
    >>> subtasks = np.array([2, 2, 2, 2, 5, 5, 5, 5, 5, 5])
    >>> subtask_boundaries(subtasks).tolist(), subtask_run_lengths(subtasks).tolist()
    ([4], [4, 6])
    >>> scores = boundary_scores([np.array([7, 30])], [subtask_boundaries(subtasks)])
    >>> scores["hits"], scores["precision"], scores["recall"], round(scores["f1"], 3)
    (1, 0.5, 1.0, 0.667)
    >>> per_skill, overall = purity(np.array([0, 0, 0, 1, 1]), np.array([3, 3, 4, 4, 4]))
    >>> per_skill.tolist(), overall
    ([0.6666666666666666, 1.0], 0.8)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

from skillgym.extract.labels import SkillLabels

# Steps between a predicted and a true boundary that still count as a hit. 10 kitchen steps
# (0.8 s) cover a cut displaced by the 7-wide median filter, yet stay short of a scripted kitchen
# subtask (a chain of four takes 200-350 steps), so a hit still marks the right change.
BOUNDARY_TOLERANCE = 10


def contingency(skills: np.ndarray, subtasks: np.ndarray, num_skills: int | None = None,
                num_subtasks: int | None = None) -> np.ndarray:
    """Skill x subtask table of step counts over the steps where both are known (``>= 0``)."""
    skills, subtasks = np.asarray(skills, np.int64), np.asarray(subtasks, np.int64)
    known = (skills >= 0) & (subtasks >= 0)
    skills, subtasks = skills[known], subtasks[known]
    rows = max(num_skills or 0, int(skills.max(initial=-1)) + 1)
    cols = max(num_subtasks or 0, int(subtasks.max(initial=-1)) + 1)
    table = np.zeros((rows, cols), np.int64)
    np.add.at(table, (skills, subtasks), 1)
    return table


def purity(skills: np.ndarray, subtasks: np.ndarray, num_skills: int | None = None) -> tuple[np.ndarray, float | None]:
    """Per-skill purity (NaN for a skill without known steps; ``num_skills`` entries at least) and
    the overall purity, both over the steps where skill and subtask are known; the overall purity
    is ``None`` if there are none."""
    table = contingency(skills, subtasks, num_skills)
    steps = table.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_skill = np.where(steps > 0, table.max(1, initial=0) / steps, np.nan)
    total = int(steps.sum())
    return per_skill, (float(table.max(1, initial=0).sum() / total) if total else None)


def _known_changes(subtasks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the known steps, and a mask of those that start a new run among known steps."""
    subtasks = np.asarray(subtasks)
    known = np.flatnonzero(subtasks >= 0)
    values = subtasks[known]
    starts = np.ones(len(known), bool)
    starts[1:] = values[1:] != values[:-1]
    return known, starts


def subtask_boundaries(subtasks: np.ndarray) -> np.ndarray:
    """Steps of one episode where the subtask changes, comparing each known step with the previous
    known one (so unknown steps neither start nor end a run)."""
    known, starts = _known_changes(subtasks)
    return known[starts][1:].astype(np.int64)


def subtask_run_lengths(subtasks: np.ndarray) -> np.ndarray:
    """Lengths, in known steps, of the runs of one subtask in one episode (unknown steps skipped)."""
    known, starts = _known_changes(subtasks)
    return np.diff(np.append(np.flatnonzero(starts), len(known))).astype(np.int64)


def segment_boundaries(segments: np.ndarray, num_episodes: int) -> list[np.ndarray]:
    """Per episode, the start of every segment but its first (rows ``(episode, start, end, skill)``).

    Steps in no segment are not boundaries themselves: a gap between two segments puts the
    boundary at the start of the later one, and a gap after the last segment adds none.
    """
    segments = np.asarray(segments, np.int64).reshape(-1, 4)
    return [np.sort(segments[segments[:, 0] == e, 1])[1:] for e in range(num_episodes)]


def match_boundaries(predicted: np.ndarray, true: np.ndarray, tolerance: int = BOUNDARY_TOLERANCE) -> int:
    """Number of one-to-one pairs (predicted, true) at most ``tolerance`` steps apart, as many as
    possible; among equally many, the assignment with the smallest total distance is taken."""
    predicted, true = np.asarray(predicted, np.int64), np.asarray(true, np.int64)
    if not len(predicted) or not len(true):
        return 0
    distance = np.abs(predicted[:, None] - true[None, :])
    # A pair out of tolerance costs more than any set of pairs within it, so the assignment
    # first maximises the number of hits and only then minimises their distances.
    too_far = (tolerance + 1) * (min(distance.shape) + 1)
    cost = np.where(distance <= tolerance, distance, too_far)
    rows, cols = linear_sum_assignment(cost)
    return int((distance[rows, cols] <= tolerance).sum())


def boundary_scores(predicted: Sequence[np.ndarray], true: Sequence[np.ndarray],
                    tolerance: int = BOUNDARY_TOLERANCE) -> dict[str, Any]:
    """Boundary precision, recall and F1 over all episodes (``predicted[i]``, ``true[i]``: episode
    ``i``'s boundaries; boundaries of different episodes never match).

    ``precision = hits / predicted``, ``recall = hits / true`` and ``f1 = 2 hits / (predicted +
    true)`` (their harmonic mean); a score whose denominator is 0 is ``None``.
    """
    if len(predicted) != len(true):
        raise ValueError(f"{len(predicted)} episodes of predicted boundaries but {len(true)} of true ones")
    hits = sum(match_boundaries(p, t, tolerance) for p, t in zip(predicted, true, strict=True))
    n_pred, n_true = sum(len(p) for p in predicted), sum(len(t) for t in true)
    return {
        "tolerance": tolerance, "hits": hits, "predicted": n_pred, "true": n_true,
        "precision": hits / n_pred if n_pred else None,
        "recall": hits / n_true if n_true else None,
        "f1": 2 * hits / (n_pred + n_true) if n_pred + n_true else None,
    }


def subtask_quality(labels: SkillLabels, subtasks: Sequence[np.ndarray],
                    tolerance: int = BOUNDARY_TOLERANCE) -> dict[str, Any] | None:
    """Every score of the module docstring for ``labels`` against ``subtasks[i]``, episode ``i``'s
    executed subtask per step; ``None`` when no step has both a known subtask and a skill.

    AMI, ARI and purity use ``labels.frame_labels`` (every step, also those in no segment);
    the boundaries use ``labels.segments``. Predicted boundaries on steps whose subtask is unknown
    are left out, as they cannot be judged.
    """
    if len(subtasks) != labels.num_episodes:
        raise ValueError(f"{len(subtasks)} episodes of subtasks for {labels.num_episodes} labelled episodes")
    lengths = np.diff(labels.episode_offsets)
    for i, (episode, length) in enumerate(zip(subtasks, lengths, strict=True)):
        if len(episode) != length:
            raise ValueError(f"episode {i} has {len(episode)} subtask ids but {length} skill labels")
    truth = np.concatenate([np.asarray(s, np.int64) for s in subtasks])
    skills = labels.frame_labels.astype(np.int64)
    known = (truth >= 0) & (skills >= 0)
    if not known.any():
        return None
    per_skill, overall = purity(skills, truth, labels.num_skills)
    predicted = [p[np.asarray(s)[p] >= 0] for p, s in
                 zip(segment_boundaries(labels.segments, labels.num_episodes), subtasks, strict=True)]
    scores = boundary_scores(predicted, [subtask_boundaries(s) for s in subtasks], tolerance)
    runs = np.concatenate([subtask_run_lengths(s) for s in subtasks])
    return {
        "subtask_ami": float(adjusted_mutual_info_score(truth[known], skills[known])),
        "subtask_ari": float(adjusted_rand_score(truth[known], skills[known])),
        "purity": overall,
        "purity_per_skill": [None if np.isnan(p) else float(p) for p in per_skill],
        "boundary_tolerance": tolerance,
        "boundary_precision": scores["precision"],
        "boundary_recall": scores["recall"],
        "boundary_f1": scores["f1"],
        "boundaries_predicted": scores["predicted"],
        "boundaries_true": scores["true"],
        "boundary_hits": scores["hits"],
        "mean_subtask_length": float(runs.mean()),
    }
