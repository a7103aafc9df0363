"""Extraction quality against the executed subtasks: AMI, ARI, purity, boundary F1, run lengths."""

from __future__ import annotations

import doctest
import json
from math import comb
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score

import skillgym.extract.quality as quality
from skillgym.cli import main
from skillgym.data.dataset import Episode, OfflineDataset, open_dataset, write_minari_dataset
from skillgym.extract.labels import SkillLabels
from skillgym.extract.quality import (
    BOUNDARY_TOLERANCE,
    boundary_scores,
    match_boundaries,
    purity,
    segment_boundaries,
    subtask_boundaries,
    subtask_quality,
    subtask_run_lengths,
)
from skillgym.extract.report import format_summary, summarize, write_report

# Two episodes of 20 steps, 3 skills, 3 subtasks.
#
# episode 0  subtask  0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1     true boundary: 8
#            skill    0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1     segments [0,10) [10,20)
# episode 1  subtask  1 1 1 1 1 2 2 2 2 2 2 2 2 2 2 0 0 0 0 0     true boundaries: 5, 15
#            skill    1 1 1 1 2 2 2 2 2 2 0 0 2 2 2 2 0 0 0 0     segments [0,4) [4,10) [12,16) [16,20);
#                                                                  steps 10-11 are in no segment
SUBTASKS = [np.array([0] * 8 + [1] * 12), np.array([1] * 5 + [2] * 10 + [0] * 5)]
SKILLS = [np.array([0] * 10 + [1] * 10), np.array([1] * 4 + [2] * 6 + [0] * 2 + [2] * 4 + [0] * 4)]
SEGMENTS = [(0, 0, 10, 0), (0, 10, 20, 1), (1, 0, 4, 1), (1, 4, 10, 2), (1, 12, 16, 2), (1, 16, 20, 0)]
def make_labels(skills: list[np.ndarray] = SKILLS, segments: list[tuple] = SEGMENTS, k: int = 3) -> SkillLabels:
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in skills])])
    return SkillLabels(frame_labels=np.concatenate(skills), episode_offsets=offsets, segments=segments,
                       num_skills=k, dataset_path="toy", dataset_fingerprint="toy")


def dataset_with(subtasks: list[np.ndarray], folder: Path) -> OfflineDataset:
    """A real dataset whose episodes carry ``subtasks`` step by step (states and actions are zeros)."""
    episodes = [Episode(states=np.zeros((len(s) + 1, 2)), actions=np.zeros((len(s), 2)), subtasks=s) for s in subtasks]
    return open_dataset(write_minari_dataset(folder, [episodes]))


def test_the_module_examples_run():
    assert doctest.testmod(quality, raise_on_error=True).attempted >= 4


def test_scores_of_the_hand_labelled_example():
    q = subtask_quality(make_labels(), SUBTASKS)
    # Skill x subtask counts, read off the table above:
    #   skill 0: 8 (ep 0) + 4 (ep 1, steps 16-19) of subtask 0, 2 of subtask 1, 2 of subtask 2 -> 16 steps
    #   skill 1: 10 + 4 of subtask 1                                                           -> 14 steps
    #   skill 2: 1 of subtask 0 (step 15), 1 of subtask 1 (step 4), 8 of subtask 2             -> 10 steps
    # purity: 12/16, 14/14, 8/10 per skill; overall (12 + 14 + 8) / 40.
    assert q["purity_per_skill"] == [0.75, 1.0, 0.8]
    assert q["purity"] == pytest.approx(34 / 40)
    per_skill, overall = purity(np.concatenate(SKILLS), np.concatenate(SUBTASKS))
    assert per_skill.tolist() == q["purity_per_skill"] and overall == q["purity"]
    # ARI from pair counts (Hubert & Arabie): index = sum C(n_ij, 2) over cells, expected =
    # sum C(a_i, 2) * sum C(b_j, 2) / C(n, 2), maximum = mean of the two marginal sums.
    cells = sum(comb(n, 2) for n in (12, 2, 2, 14, 1, 1, 8))  # 187
    rows, cols = sum(comb(n, 2) for n in (16, 14, 10)), sum(comb(n, 2) for n in (13, 17, 10))  # 256, 259
    expected = rows * cols / comb(40, 2)
    assert q["subtask_ari"] == pytest.approx((cells - expected) / ((rows + cols) / 2 - expected))
    assert q["subtask_ari"] == pytest.approx(0.59129, abs=1e-5)
    truth, pred = np.concatenate(SUBTASKS), np.concatenate(SKILLS)
    assert q["subtask_ami"] == pytest.approx(adjusted_mutual_info_score(truth, pred))
    # Boundaries: predicted 10 | 4, 12, 16; true 8 | 5, 15. Within 10 steps: 10-8, 4-5 and 16-15
    # (or 12-15) match, one predicted boundary is left over: 3 hits of 4 predicted and 3 true.
    assert (q["boundary_hits"], q["boundaries_predicted"], q["boundaries_true"]) == (3, 4, 3)
    assert (q["boundary_precision"], q["boundary_recall"]) == (0.75, 1.0)
    assert q["boundary_f1"] == pytest.approx(2 * 0.75 * 1.0 / 1.75)  # 6/7
    assert q["boundary_tolerance"] == BOUNDARY_TOLERANCE == 10
    # True runs: 8, 12 | 5, 10, 5.
    assert q["mean_subtask_length"] == 8.0


def test_tolerance_decides_which_boundaries_hit():
    # Within 1 step only 4-5 and 16-15 match (10 is 2 steps from 8).
    q = subtask_quality(make_labels(), SUBTASKS, tolerance=1)
    assert (q["boundary_hits"], q["boundary_precision"], q["boundary_recall"]) == (2, 0.5, 2 / 3)


def test_matching_is_one_to_one_and_finds_the_most_hits():
    # Pairing the closest first (10-11) would leave 21 and 0 apart by 21: one hit. 10-0 and 21-11
    # are both within 10 steps: two hits.
    assert match_boundaries(np.array([10, 21]), np.array([0, 11])) == 2
    # Two predicted boundaries next to one true boundary: only one of them hits.
    assert match_boundaries(np.array([14, 16]), np.array([15])) == 1
    assert match_boundaries(np.array([14]), np.array([15, 16])) == 1
    assert match_boundaries(np.array([], np.int64), np.array([5])) == 0
    # Boundaries of different episodes never match.
    scores = boundary_scores([np.array([5]), np.array([], np.int64)], [np.array([], np.int64), np.array([5])])
    assert (scores["hits"], scores["precision"], scores["recall"], scores["f1"]) == (0, 0.0, 0.0, 0.0)


def test_boundaries_come_from_segment_starts_and_known_subtask_changes():
    # Unordered segment rows, and a gap (steps 10-11) before the third segment.
    rows = np.array([(0, 12, 20, 1), (0, 0, 10, 0), (1, 0, 5, 2), (0, 10, 12, 0)])
    assert [b.tolist() for b in segment_boundaries(rows, 3)] == [[10, 12], [], []]
    assert [b.tolist() for b in segment_boundaries(np.array([(0, 0, 8, 0), (0, 11, 20, 1)]), 1)] == [[11]]
    # Unknown steps (-1) neither start nor end a run: 0 -> unknown -> 1 is one change, at the
    # first step of 1; 0 -> unknown -> 0 is none.
    subtasks = np.array([-1, 0, 0, -1, -1, 1, 1, -1, 1, -1, 0])
    assert subtask_boundaries(subtasks).tolist() == [5, 10]
    assert subtask_run_lengths(subtasks).tolist() == [2, 3, 1]
    assert subtask_boundaries(np.array([0, -1, 0, 0])).tolist() == []
    assert subtask_run_lengths(np.array([-1, -1])).tolist() == []


def test_unknown_steps_are_left_out():
    # Steps 16-19 of episode 1 unknown: the predicted boundary at 16 cannot be judged, and those
    # steps no longer count for purity (skill 0 keeps 8 of subtask 0, 2 of 1, 2 of 2).
    subtasks = [SUBTASKS[0], np.r_[SUBTASKS[1][:16], [-1] * 4]]
    q = subtask_quality(make_labels(), subtasks)
    assert q["purity_per_skill"] == [8 / 12, 1.0, 0.8]
    assert q["purity"] == pytest.approx(30 / 36)
    # Predicted 10 | 4, 12; true 8 | 5, 15 (the run of subtask 0 now is step 15 alone).
    assert (q["boundary_hits"], q["boundaries_predicted"], q["boundaries_true"]) == (3, 3, 3)
    assert q["mean_subtask_length"] == pytest.approx((8 + 12 + 5 + 10 + 1) / 5)


def test_no_boundaries_at_all(tmp_path):
    labels = make_labels([np.zeros(20, np.int64)], [(0, 0, 20, 0)], k=2)
    q = subtask_quality(labels, [np.full(20, 1)])
    assert (q["boundaries_predicted"], q["boundaries_true"], q["boundary_hits"]) == (0, 0, 0)
    assert q["boundary_precision"] is q["boundary_recall"] is q["boundary_f1"] is None
    assert q["purity"] == 1.0 and q["purity_per_skill"] == [1.0, None] and q["mean_subtask_length"] == 20
    # Predicted boundaries where nothing changes: precision 0, recall undefined, F1 0.
    scores = boundary_scores([np.array([7])], [np.array([], np.int64)])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, None, 0.0)
    lines = format_summary({**summarize(labels, dataset_with([np.full(20, 1)], tmp_path / "data"))})
    assert "F1 n/a, precision n/a, recall n/a" in lines


def test_all_steps_unknown_leaves_the_scores_out(tmp_path):
    labels = make_labels()
    unknown = [np.full(20, -1), np.full(20, -1)]
    assert subtask_quality(labels, unknown) is None
    summary = summarize(labels, dataset_with(unknown, tmp_path / "data"))
    assert not {"subtask_ami", "subtask_ari", "purity", "boundary_f1", "confusion"} & set(summary)
    assert "AMI" not in format_summary(summary) and "boundaries" not in format_summary(summary)


def test_one_skill():
    # Every step skill 0, one segment per episode: no better than chance (ARI, AMI 0), purity is
    # the share of the commonest subtask (subtask 1: 12 + 5 of 40 steps), no predicted boundary.
    labels = make_labels([np.zeros(20, np.int64)] * 2, [(0, 0, 20, 0), (1, 0, 20, 0)], k=1)
    q = subtask_quality(labels, SUBTASKS)
    assert q["subtask_ari"] == pytest.approx(0.0) and q["subtask_ami"] == pytest.approx(0.0, abs=1e-9)
    assert q["purity"] == pytest.approx(17 / 40) and q["purity_per_skill"] == [pytest.approx(17 / 40)]
    assert (q["boundary_precision"], q["boundary_recall"], q["boundary_f1"]) == (None, 0.0, 0.0)


def test_mismatched_episodes_are_refused():
    with pytest.raises(ValueError, match="1 episodes of subtasks for 2"):
        subtask_quality(make_labels(), SUBTASKS[:1])
    with pytest.raises(ValueError, match="episode 1 has 19 subtask ids but 20"):
        subtask_quality(make_labels(), [SUBTASKS[0], SUBTASKS[1][:19]])


def test_report_carries_the_scores(tmp_path):
    summary = write_report(make_labels(), dataset_with(SUBTASKS, tmp_path / "data"), tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert saved["boundary_f1"] == pytest.approx(6 / 7) and saved["purity"] == pytest.approx(0.85)
    assert saved["confusion"]["counts"] == [[12, 2, 2], [0, 14, 0], [1, 1, 8]]
    assert [(m["subtask"], m["purity"]) for m in saved["skill_majority_subtask"]] == \
        [("subtask 0", 0.75), ("subtask 1", 1.0), ("subtask 2", 0.8)]
    assert "timeline.png" in summary["plots"]
    text = format_summary(saved)
    # Segments 10, 10, 4, 6, 4, 4: mean 38 / 6; true subtask runs: mean 8.
    assert "segment length mean 6.3 (true subtask runs 8.0)" in text
    assert "AMI" in text and "ARI 0.591, purity 0.850" in text
    assert "within 10 steps: F1 0.857, precision 0.750, recall 1.000 (3 hits, 4 predicted, 3 true)" in text


@pytest.mark.parametrize("progress", [True, False])
def test_cli_extract_prints_the_scores(kitchen_data, tmp_path, capsys, progress):
    out = tmp_path / "labels"
    flag = "--progress" if progress else "--no-progress"
    assert main(["extract", str(kitchen_data), "--out", str(out), "--encoder", "state", "--k", "3", flag]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert printed.count("against the executed subtasks: AMI") == 1
    for key in ("subtask_ami", "subtask_ari", "purity", "boundary_f1", "boundary_precision", "boundary_recall",
                "mean_segment_length", "mean_subtask_length"):
        assert key in summary, key
    # The scripted recorder labels every step with the subtask it is executing.
    assert summary["boundaries_true"] > 0
    assert f"ARI {summary['subtask_ari']:.3f}, purity {summary['purity']:.3f}" in printed
    assert f"F1 {summary['boundary_f1']:.3f}, precision {summary['boundary_precision']:.3f}, " \
           f"recall {summary['boundary_recall']:.3f}" in printed
    assert f"segment length mean {summary['mean_segment_length']:.1f} " \
           f"(true subtask runs {summary['mean_subtask_length']:.1f})" in printed
