"""A language-conditioned library from LIBERO-layout demonstrations, in the LIBERO skill env: the instruction the
env observes is the one the library was trained with."""

import gymnasium as gym
import numpy as np
import torch
from libero_support import require_libero
from test_libero_data import write_demo_file

import skillgym  # noqa: F401
from skillgym.data.dataset import open_dataset
from skillgym.data.libero import convert_libero_demos
from skillgym.extract.labeler import SkillLabeler, extract_skills, label_dataset
from skillgym.language import embed_instruction
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import TrainSkillsArgs, train_skills
from skillgym.tasks.libero import LiberoTaskEnv


def test_a_conditioned_library_reads_the_task_instruction_in_skill_libero(tmp_path):
    require_libero()
    torch.set_num_threads(1)
    low = LiberoTaskEnv("libero_spatial", task=0, pixels=False, embed_instruction=False)
    texts = []
    for task in (0, 1):
        low.set_task(task)
        texts.append(low.instruction)
    low.close()
    files = [tmp_path / f"task{i}_demo.hdf5" for i in range(2)]
    for file, text in zip(files, texts, strict=True):
        write_demo_file(file, [40, 36, 44], instruction=text)
    convert_libero_demos(files, tmp_path / "data")
    extract_skills(open_dataset(tmp_path / "data"), tmp_path / "labels", encoder="state", k=2, report=False,
                   progress=False)
    train_skills(TrainSkillsArgs(labels=str(tmp_path / "labels"), out=str(tmp_path / "library"), steps=5,
                                 batch_size=8, hidden_dim=16, progress=False, threads=1))
    library = SkillLibrary.load(tmp_path / "library")
    assert library.config.instruction_dim == 384 and library.config.trained_on["instructions"] == sorted(texts)

    env = gym.make("SkillLibero-Spatial-v0", library=str(tmp_path / "library"), task=1)
    obs, info = env.reset(seed=0)
    assert info["instruction"] == texts[1] and env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["instruction"], embed_instruction(texts[1]))
    obs, reward, terminated, truncated, info = env.step({"skill": 1, "arg": np.zeros(5, np.float32)})
    assert 1 <= info["skill_steps"] <= library.max_skill_steps and env.observation_space.contains(obs)
    logits = [library.prior(obs["state"][None], embed_instruction(text)[None])[0] for text in texts]
    assert not np.allclose(logits[0], logits[1])
    env.close()


def test_a_pixel_library_at_libero_frame_size_trains_fine_tunes_and_acts(tmp_path):
    """The guide's pixel sequence: LIBERO's 84x84 frames, a frame stack of 2, fine-tuned on other files."""
    require_libero()
    torch.set_num_threads(1)
    for part, tasks in (("pre", (0, 1)), ("target", (2,))):
        files = [tmp_path / part / f"task{t}_demo.hdf5" for t in tasks]
        files[0].parent.mkdir()
        for file in files:
            write_demo_file(file, [30, 34])
        convert_libero_demos(files, tmp_path / part / "data")
    extract_skills(open_dataset(tmp_path / "pre" / "data"), tmp_path / "pre" / "labels", encoder="state", k=2,
                   report=False, progress=False)
    label_dataset(open_dataset(tmp_path / "target" / "data"), tmp_path / "target" / "labels",
                  SkillLabeler.load(tmp_path / "pre" / "labels" / "labeler"), progress=False)
    pixels = dict(obs="pixels", image_size=84, frame_stack=2, window=10, steps=2, batch_size=4, hidden_dim=16,
                  progress=False, threads=1)
    train_skills(TrainSkillsArgs(labels=str(tmp_path / "pre" / "labels"), out=str(tmp_path / "library"), **pixels))
    train_skills(TrainSkillsArgs(labels=str(tmp_path / "target" / "labels"), out=str(tmp_path / "fine-tuned"),
                                 init_from=str(tmp_path / "library"), **pixels))
    library = SkillLibrary.load(tmp_path / "fine-tuned")
    assert library.config.obs_shape == (2, 84, 84, 3)

    env = gym.make("SkillLibero-Spatial-v0", library=str(tmp_path / "fine-tuned"), task=0)
    obs, _ = env.reset(seed=0)
    obs, _, _, _, info = env.step({"skill": 0, "arg": np.zeros(5, np.float32)})
    assert obs["pixels"].shape == (2, 84, 84, 3) and 1 <= info["skill_steps"] <= 10
    env.close()
