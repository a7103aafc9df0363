"""``skillgym extract --engine ray``: the encoder on a real local Ray instance gives the local engine's labels."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from synthetic import synthetic_episodes

from skillgym.cli import main
from skillgym.data.dataset import open_dataset, write_minari_dataset
from skillgym.extract.labeler import extract_skills
from skillgym.extract.labels import SkillLabels

ray = pytest.importorskip("ray", reason="the ray engine needs pip install 'skillgym[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_ray_engine_gives_the_local_engines_labels(tmp_path, one_torch_thread, local_ray, capsys):
    # Episodes of 40-130 frames: several encoder chunks each, the last one partial.
    episodes, _ = synthetic_episodes(5, num_skills=3, seed=0, image_size=32, min_len=15, max_len=45)
    dataset = open_dataset(write_minari_dataset(tmp_path / "data", [episodes], image_size=32))
    local = extract_skills(dataset, tmp_path / "local", encoder="efficientnet-lite0", k=3, seed=1, report=False,
                           progress=False)

    assert main(["extract", str(dataset.path), "--out", str(tmp_path / "ray"), "--encoder", "efficientnet-lite0",
                 "--k", "3", "--seed", "1", "--engine", "ray", "--no-progress"]) == 0
    on_ray = SkillLabels.load(tmp_path / "ray")
    np.testing.assert_array_equal(on_ray.frame_labels, local.frame_labels)
    np.testing.assert_array_equal(on_ray.segments, local.segments)
    cache = "cache/embeddings-efficientnet-lite0.npy"
    # Same chunks and one torch thread on both sides: the features agree to the bit.
    np.testing.assert_array_equal(np.load(tmp_path / "ray" / cache), np.load(tmp_path / "local" / cache))
    assert len(np.unique(local.frame_labels)) == 3
    assert not list((tmp_path / "ray" / "cache").glob("*.tmp.npy"))  # the scratch file is gone


def test_without_ray_the_engine_says_how_to_install_it():
    code = ("import sys; sys.modules['ray'] = None\n"  # what Python does for a package that is not installed
            "from skillgym.extract.ray_engine import EngineError, import_ray\n"
            "try:\n    import_ray()\nexcept EngineError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pip install 'skillgym[ray]'" in result.stdout
