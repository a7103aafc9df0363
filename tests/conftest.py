import os
import tempfile

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
# Stock SB3 creates a fresh /tmp/SB3-<time> folder for every model without a log dir; keep the
# test run's in one place.
os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="skillgym-tests-sb3-"))


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
