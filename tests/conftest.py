import functools
import os
import re
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
# Stock SB3 creates a fresh /tmp/SB3-<time> folder for every model without a log dir; keep the
# test run's in one place.
os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="skillgym-tests-sb3-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n N` gives each worker a core: torch's own threads would oversubscribe them.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Under `pytest -n N`, each of these groups of test files runs on one worker: the files that use a
# costly session fixture (a scripted recording, a whole pipeline run), so it is built once, and the
# files that start a local Ray, so only one runs at a time. Every other file is a group of its own.
WORKER_GROUPS = {"tiny_run": r"\btiny_run\b", "kitchen_data": r"\bkitchen_data\b", "ray": r"importorskip\(\"ray"}


@functools.cache  # asked once per test, read once per file
def worker_group(test_file: Path) -> str:
    """The group of a test file (see ``WORKER_GROUPS``)."""
    text = test_file.read_text()
    return next((group for group, pattern in WORKER_GROUPS.items() if re.search(pattern, text)), test_file.name)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist's scope scheduling with a test file's scope being its group."""
    from xdist.scheduler import LoadScopeScheduling

    root = Path(config.rootpath)

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(root / nodeid.split("::", 1)[0])

    return FileGroupScheduling(config, log)


@pytest.fixture
def one_torch_thread():
    """Torch on one thread, as training runs use it: results repeat exactly, and tests share 2 cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_pipeline(out, **skills):
    """PipelineArgs of a tiny `skillgym run kitchen`: 2 episodes, state encoder, 20 skill steps, 300 RL steps."""
    from skillgym.data.record import RecordArgs
    from skillgym.extract.config import ExtractArgs
    from skillgym.pipeline import PipelineArgs
    from skillgym.rl.train import TrainRLArgs
    from skillgym.skills.train import TrainSkillsArgs

    return PipelineArgs(
        out=out, data=RecordArgs(out=out / "data", episodes=2, image_size=32, workers=1),
        extract=ExtractArgs(dataset=out / "data", out=out / "labels", encoder="state", k=3),
        skills=TrainSkillsArgs(labels="", out="", **{"steps": 20, "threads": 1, "progress": False, **skills}),
        rl=TrainRLArgs(steps=300, learning_starts=10, eval_every=150, eval_episodes=1),
    )


@pytest.fixture(scope="session")
def few_prior_rollouts():
    """The pipeline's prior rollouts at 2 episodes instead of 10 (the tests only need them to run)."""
    import skillgym.pipeline

    skillgym.pipeline.PRIOR_ROLLOUT_EPISODES, saved = 2, skillgym.pipeline.PRIOR_ROLLOUT_EPISODES
    yield
    skillgym.pipeline.PRIOR_ROLLOUT_EPISODES = saved


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, few_prior_rollouts):
    """One tiny `skillgym run kitchen` shared by the pipeline and report tests: (folder, summary)."""
    from skillgym.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("run")
    return out, run_pipeline(tiny_pipeline(out, beta=0.02))


@pytest.fixture(scope="session")
def kitchen_data(tmp_path_factory):
    """A real scripted kitchen recording of 2 episodes (32x32 frames) shared by the tests."""
    from skillgym.data.record import RecordArgs, record_dataset

    out = tmp_path_factory.mktemp("kitchen") / "data"
    record_dataset(RecordArgs(out=out, episodes=2, image_size=32, workers=1))
    return out
