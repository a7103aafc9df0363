"""training/libero_posterior_replay.py on a real scripted recording: every episode found at its recorded start,
and every labelled step decoded on the recorded states."""

import json
import subprocess
import sys
from pathlib import Path

import torch
from libero_support import require_libero

from skillgym.data.dataset import open_dataset
from skillgym.data.libero import LiberoDataArgs, record_libero
from skillgym.extract.labeler import extract_skills
from skillgym.extract.labels import SkillLabels
from skillgym.skills.train import TrainSkillsArgs, train_skills

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "libero_posterior_replay.py"


def test_the_replay_finds_each_recorded_start_and_redoes_the_recorded_actions(tmp_path):
    require_libero()
    torch.set_num_threads(1)
    record_libero(LiberoDataArgs(out=tmp_path / "data", tasks=(0,), episodes=2, seed=0, frames=False))
    assert not open_dataset(tmp_path / "data").has_frames
    extract_skills(open_dataset(tmp_path / "data"), tmp_path / "labels", encoder="state", k=2, report=False,
                   progress=False)
    train_skills(TrainSkillsArgs(labels=str(tmp_path / "labels"), out=str(tmp_path / "library"), steps=5,
                                 batch_size=8, hidden_dim=16, progress=False, threads=1))
    for flags, name in (([], "decoded.json"), (["--recorded-actions"], "recorded.json")):
        subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "library"), "--episodes", "2",
                        "--out", str(tmp_path / name), *flags], check=True, capture_output=True)
    decoded = json.loads((tmp_path / "decoded.json").read_text())["episodes"]
    recorded = json.loads((tmp_path / "recorded.json").read_text())["episodes"]
    assert [(e["task"], e["attempt"]) for e in decoded] == [(0, 0), (0, 1)]
    assert [(e["task"], e["attempt"]) for e in recorded] == [(0, 0), (0, 1)]
    assert any(e["success"] for e in recorded)  # the clean recorded actions redo the scripted pick-and-place

    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "library"), "--episodes", "2", "--recorded-states",
                    "--out", str(tmp_path / "fit.json")], check=True, capture_output=True)
    fit = json.loads((tmp_path / "fit.json").read_text())
    steps = sum(int(end - start) for _, start, end, _ in SkillLabels.load(tmp_path / "labels").segments)
    assert fit["steps"] == steps and len(fit["action_mse_per_dim"]) == 7
    assert 0 <= fit["gripper_sign_agreement"] <= 1 and fit["action_mse"] > 0
