"""training/ablations.py end to end on a real scripted recording: libraries, RL runs, tables, figure, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "ablations.py"


def run_ablations(data: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(data), "--out", str(out), "--encoders", "state,action",
                           "--ks", "3,4", "--base-encoder", "state", "--base-k", "3", "--skill-steps", "20",
                           "--steps", "300", "--seeds", "1", "--tasks", "default", "--eval-episodes", "1",
                           "--workers", "1", "--threads", "1"], capture_output=True, text=True, timeout=600)


def test_each_variant_gets_its_extraction_scores_and_return_and_a_rerun_resumes(kitchen_data, tmp_path):
    out = tmp_path / "ablations"
    run = run_ablations(kitchen_data, out)
    assert run.returncode == 0, run.stderr[-3000:]

    rows = {row["variant"]: row for row in json.loads((out / "ablations.json").read_text())["rows"]}
    assert list(rows) == ["state-k3", "action-k3", "state-k4"]  # the shared variant once
    for name, row in rows.items():
        summary = json.loads((out / "labels" / name / "report" / "summary.json").read_text())
        assert row["subtask_ami"] == pytest.approx(summary["subtask_ami"])
        assert row["purity"] == pytest.approx(summary["purity"])
        heldout = json.loads((out / "libraries" / name / "eval.json").read_text())["heldout"]
        assert row["action_mse"] == pytest.approx(heldout["action_mse"]) and 0 <= row["prior_accuracy"] <= 1
        mean, std = row["default"]
        assert 0 <= mean <= 4 and std == 0  # one seed
        assert (out / "libraries" / name / "model.safetensors").is_file()
    # The encoders share one embedding cache each, however many K they are clustered with.
    assert sorted(p.name for p in (out / "embeddings").iterdir()) == ["action", "state"]

    page = (out / "ablations.md").read_text()
    assert "## Encoder (K = 3)" in page and "## K (state)" in page
    encoder_table = page.split("## Encoder")[1].split("## K")[0]
    assert "| state-k3 |" in encoder_table and "| action-k3 |" in encoder_table and "state-k4" not in encoder_table
    assert "| state-k4 |" in page.split("## K")[1]
    assert (out / "ablations.png").stat().st_size > 0
    assert "(rl/results.md)" in page and (out / "rl" / "results.md").is_file()  # the curves' page it links

    made = {p: p.stat().st_mtime_ns for folder in ("embeddings", "labels", "libraries", "rl/runs")
            for p in (out / folder).rglob("*") if p.is_file() and p.name != "run.json"}
    rerun = run_ablations(kitchen_data, out)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((out / "ablations.json").read_text())["rows"] == list(rows.values())
    assert {p: p.stat().st_mtime_ns for p in made} == made  # nothing extracted, trained or run again
