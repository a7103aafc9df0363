"""Data-parallel skill training under a real torchrun (gloo on CPU): one process trains like a plain
run, two processes agree on their weights and write one library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from synthetic import write_synthetic_labels

from skillgym.skills.train import TrainSkillsArgs, train_skills

TINY = ["--steps", "6", "--batch-size", "16", "--hidden-dim", "32", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    return write_synthetic_labels(tmp_path_factory.mktemp("synthetic"), num_episodes=8, num_skills=4, seed=0)[1]


def torchrun(processes: int, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(processes), *command],
                          capture_output=True, text=True, timeout=300, env=env)


def test_torchrun_with_one_process_trains_exactly_like_a_plain_run(labels, tmp_path, one_torch_thread):
    plain = train_skills(TrainSkillsArgs(labels=str(labels), out=str(tmp_path / "plain"), steps=6, batch_size=16,
                                         hidden_dim=32, threads=1, progress=False))
    run = torchrun(1, "-m", "skillgym.skills.train", str(labels), "--out", str(tmp_path / "ddp"), *TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout[run.stdout.index("{"):])["library"] == str(tmp_path / "ddp")
    ddp = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    expected = load_file(str(plain.library / "model.safetensors"))
    assert ddp.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(ddp[name], value), name


def test_two_processes_agree_and_write_one_library(labels, tmp_path):
    # Each rank saves the weights it ended with, so that the test can compare them; the library is rank 0's.
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import os
        from safetensors.torch import save_file
        from skillgym.skills.train import TrainSkillsArgs, train_skills

        result = train_skills(TrainSkillsArgs(labels={str(labels)!r}, out={str(tmp_path / "library")!r}, steps=6,
                                              batch_size=16, hidden_dim=32, threads=1, progress=False))
        state = {{k: v.contiguous() for k, v in result.model.state_dict().items()}}
        save_file(state, os.path.join({str(tmp_path)!r}, f"rank{{result.rank}}.safetensors"))
        with open(os.path.join({str(tmp_path)!r}, f"rank{{result.rank}}.txt"), "w") as f:  # two ranks' prints interleave
            f.write("eval" if result.eval else "no eval")
    """))
    run = torchrun(2, str(script))
    assert run.returncode == 0, run.stderr[-3000:]
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == ["eval", "no eval"]
    rank0, rank1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for name, value in rank0.items():
        assert torch.equal(rank1[name], value), name
    library = tmp_path / "library"
    assert sorted(p.name for p in library.iterdir()) == ["checkpoint", "config.json", "eval.json", "eval.png",
                                                         "model.safetensors", "tb"]
    for name, value in load_file(str(library / "model.safetensors")).items():  # rank 0's trained weights
        assert torch.equal(rank0[name], value), name
    assert json.loads((library / "checkpoint" / "state.json").read_text())["step"] == 6
