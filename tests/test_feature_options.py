"""training/feature_options.py on a real scripted recording: its ``first-frame`` option is `skillgym extract`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "feature_options.py"


def test_first_frame_option_reproduces_the_extraction_scores(kitchen_data, tmp_path):
    from skillgym.data.dataset import open_dataset
    from skillgym.extract.labeler import extract_skills

    extract_skills(open_dataset(kitchen_data), tmp_path / "labels", encoder="state", k=3, seed=0, progress=False)
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "labels"), "--k", "3", "--seeds", "1",
                          "--pca-dim", "4", "--horizon", "5", "--wide-kernel", "9", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {row["option"]: row for row in json.loads((tmp_path / "out" / "feature_options.json").read_text())["rows"]}
    assert list(rows) == ["first-frame", "first-frame-pca", "forward-diff", "lookahead", "lookahead-wide"]
    assert rows["lookahead-wide"]["kernel"] == 9
    summary = json.loads((tmp_path / "labels" / "report" / "summary.json").read_text())
    recipe = rows["first-frame"]
    assert recipe["ami"][0] == pytest.approx(summary["subtask_ami"], abs=1e-9)
    assert recipe["purity"][0] == pytest.approx(summary["purity"], abs=1e-9)
    assert recipe["boundary_f1"][0] == pytest.approx(summary["boundary_f1"] or 0.0, abs=1e-9)
    assert all(np.isfinite(row["ami"][0]) for row in rows.values())
    assert "| lookahead-wide | 9 |" in (tmp_path / "out" / "feature_options.md").read_text()
