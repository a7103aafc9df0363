"""The SPiRL-cl and behaviour-cloning baselines on a real two-episode kitchen recording."""

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import SAC

from skillgym.baselines.bc import BCArgs, anchor_entropy, pretrain_actor
from skillgym.baselines.spirl import (
    SPIRL_SKILLSAC_KWARGS,
    SpirlArgs,
    fixed_length_labels,
    make_spirl_env,
    train_spirl,
)
from skillgym.data.dataset import open_dataset
from skillgym.extract.labels import SkillLabels
from skillgym.rl.callbacks import StopAtLowLevelSteps
from skillgym.rl.skill_sac import SkillSAC
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import KitchenTaskEnv

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def spirl_library(kitchen_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("spirl")
    args = SpirlArgs(dataset=str(kitchen_data), out=str(out), steps=20, threads=1, progress=False)
    return args, train_spirl(args)


def test_fixed_length_segments_tile_every_episode(kitchen_data, tmp_path):
    labels = fixed_length_labels(kitchen_data, horizon=10, seed=0)
    labels.validate()
    lengths = open_dataset(kitchen_data).episode_lengths
    assert labels.num_skills == 1 and labels.metadata["labeler"] == "fixed-length"
    assert np.all(labels.frame_labels == 0) and len(labels.frame_labels) == lengths.sum()
    for e, length in enumerate(lengths):
        seg = labels.segments[labels.segments[:, 0] == e]
        starts, ends = seg[:, 1], seg[:, 2]
        assert starts[0] == 0 and ends[-1] == length and np.array_equal(starts[1:], ends[:-1])
        assert np.all(ends - starts <= 10) and np.all(ends[1:-1] - starts[1:-1] == 10)
    assert np.all(labels.segments[:, 3] == 0)
    again = SkillLabels.load(labels.save(tmp_path / "labels"))
    assert np.array_equal(again.segments, fixed_length_labels(kitchen_data, horizon=10, seed=0).segments)
    # The phase is per seed: some seed starts the second segment elsewhere.
    firsts = {int(fixed_length_labels(kitchen_data, 10, seed).segments[0, 2]) for seed in range(5)}
    assert len(firsts) > 1


def test_train_spirl_makes_a_one_skill_library_and_reuses_it(spirl_library, kitchen_data):
    args, folder = spirl_library
    library = SkillLibrary.load(folder)
    c = library.config
    assert (c.num_skills, c.z_dim, c.max_skill_steps, c.decoder) == (1, 10, 10, "closed_loop")
    assert c.labeler["labeler"] == "fixed-length" and c.labeler["horizon"] == 10
    weights = folder / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert train_spirl(args) == folder and weights.stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError):
        train_spirl(SpirlArgs(dataset=str(kitchen_data), out=args.out, horizon=5, steps=20, progress=False))


def test_train_spirl_resumes_an_interrupted_run(kitchen_data, tmp_path):
    args = SpirlArgs(dataset=str(kitchen_data), out=str(tmp_path), steps=10, threads=1, progress=False)
    folder = train_spirl(args)
    (folder / "config.json").unlink()  # killed between the last checkpoint and the library's save
    longer = SpirlArgs(dataset=str(kitchen_data), out=str(tmp_path), steps=20, threads=1, progress=False)
    assert train_spirl(longer) == folder
    assert SkillLibrary.load(folder).config.trained_on["steps"] == 20


def test_spirl_env_runs_every_skill_for_the_horizon(spirl_library):
    _, folder = spirl_library
    env = make_spirl_env(folder)
    assert env.action_space["skill"].n == 1 and env.action_space["arg"].shape == (10,)
    check_env(env, skip_render_check=True)
    env.action_space.seed(0)
    env.reset(seed=0)
    total = 0
    while True:
        *_, terminated, truncated, info = env.step(env.action_space.sample())
        total += info["skill_steps"]
        if terminated or truncated:
            break
        assert info["skill_steps"] == 10
    assert total == 280 and 1 <= info["skill_steps"] <= 10


def test_spirl_skills_ignore_a_saturated_progress_head(spirl_library):
    # float32's sigmoid is exactly 1.0 from a logit of ~17: a threshold of 1.0 would stop skills there.
    library = SkillLibrary.load(spirl_library[1])
    with torch.no_grad():
        library.decoder.head.weight[-1].zero_()
        library.decoder.head.bias[-1] = 30.0
    env = make_spirl_env(library)
    env.reset(seed=0)
    assert env.step({"skill": 0, "arg": np.zeros(10, np.float32)})[-1]["skill_steps"] == 10


def test_skillsac_learns_and_reloads_with_one_skill(spirl_library, tmp_path):
    env = make_spirl_env(spirl_library[1])
    model = SkillSAC("SkillPolicy", env, **SPIRL_SKILLSAC_KWARGS, learning_starts=10, batch_size=32, seed=0)
    model.learn(total_timesteps=10**9, callback=StopAtLowLevelSteps(300))
    assert model.num_low_level_steps >= 300 and model.log_alpha_d is None
    assert np.isfinite(model.logger.name_to_value.get("train/critic_loss", 0.0))
    model.save(tmp_path / "model")
    loaded = SkillSAC.load(tmp_path / "model", env=env)
    obs, _ = env.reset(seed=1)
    a, _ = model.predict(obs, deterministic=True)
    b, _ = loaded.predict(obs, deterministic=True)
    assert a["skill"] == b["skill"] == 0 and np.array_equal(a["arg"], b["arg"])


def bc_model() -> SAC:
    return SAC("MlpPolicy", KitchenTaskEnv(), seed=0, device="cpu")


def test_pretrain_actor_clones_the_actions_and_repeats(kitchen_data):
    # Seed 3 holds out the short episode, whose subtask the long one also performs: a split where
    # cloning can generalise (with two episodes, the other split asks one subtask to predict four).
    args = BCArgs(dataset=str(kitchen_data), steps=200, seed=3, progress=False)
    model = bc_model()
    critic = {k: v.clone() for k, v in model.critic.state_dict().items()}
    metrics = pretrain_actor(model, args)
    assert metrics["heldout_action_mse"] < metrics["untrained_heldout_action_mse"]
    assert np.isfinite(metrics["train_nll"]) and np.isfinite(metrics["entropy"])
    assert all(torch.equal(v, model.critic.state_dict()[k]) for k, v in critic.items())

    twin = bc_model()
    assert pretrain_actor(twin, args) == metrics
    assert all(torch.equal(v, twin.actor.state_dict()[k]) for k, v in model.actor.state_dict().items())


def test_anchor_entropy_aims_sac_at_the_cloned_policy():
    model = bc_model()
    anchor_entropy(model, -12.5, ent_coef=0.01)
    assert model.target_entropy == -12.5
    assert torch.allclose(model.log_ent_coef.exp(), torch.tensor([0.01]))
    with pytest.raises(ValueError, match="ent_coef"):
        anchor_entropy(SAC("MlpPolicy", KitchenTaskEnv(), ent_coef=0.1, device="cpu"), -12.5)
