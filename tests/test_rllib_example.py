"""training/rllib_ppo.py: one tiny PPO iteration on SkillKitchen-v0 with a real Ray env runner."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.rllib", reason="the RLlib example needs pip install 'skillgym[ray]'")

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "rllib_ppo.py"


def test_rllib_ppo_runs_an_iteration_in_the_dict_skill_space(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)  # a local Ray of its own
    run = subprocess.run([sys.executable, str(SCRIPT), "--iterations", "1", "--env-runners", "1", "--train-batch", "64",
                          "--minibatch", "32", "--epochs", "1", "--seed", "0", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "iteration 1: return" in run.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    (first,) = result["history"]
    assert first["skill_decisions"] >= 64
    assert math.isfinite(first["episode_return_mean"]) and 0 <= first["episode_return_mean"] <= 4
    assert result["command"].startswith("python training/rllib_ppo.py --iterations 1 --env-runners 1")
