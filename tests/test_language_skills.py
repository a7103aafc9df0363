"""Language-conditioned skill libraries: training on episodes with instructions, the skill env and SkillSAC
on them, fine-tuning from a library, and labelling new data with a saved labeler (tiny synthetic data)."""

import json

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv
from synthetic import InstructedReachEnv, synthetic_embedding, synthetic_episodes, write_synthetic_labels

from skillgym.cli import main
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.extract.labeler import SkillLabeler
from skillgym.extract.labels import SkillLabels
from skillgym.rl import AsyncSkillVecEnv, SkillSAC
from skillgym.rl.checkpoint import load_training_state, same_observation, save_training_state
from skillgym.skills import SkillLibrary
from skillgym.skills.train import TrainSkillsArgs, train_skills

INSTRUCTIONS = ("go left", "go right")  # episode e carries INSTRUCTIONS[e % 2] and runs skill e % 2


def tiny_args(labels, out, **kw):
    defaults = dict(steps=20, batch_size=16, hidden_dim=32, progress=False, threads=1, prior_obs_noise=0.0)
    defaults.update(kw)
    return TrainSkillsArgs(labels=str(labels), out=str(out), **defaults)


@pytest.fixture(scope="module")
def instructed(tmp_path_factory):
    """(data, labels, library folder, training result) of a conditioned library trained 150 steps."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("instructed")
    data, labels = write_synthetic_labels(root, num_episodes=12, num_skills=2, seed=0, instructions=INSTRUCTIONS)
    result = train_skills(tiny_args(labels, root / "library", steps=150, batch_size=32), embed=synthetic_embedding)
    return data, labels, root / "library", result


def test_the_priors_read_the_instruction(instructed):
    _, _, folder, _ = instructed
    lib = SkillLibrary.load(folder)
    assert lib.config.instruction_dim == 16 and lib.config.trained_on["instructions"] == sorted(INSTRUCTIONS)
    assert set(lib.observation_space.spaces) == {"state", "instruction"}
    # The states do not show the skill, only the instruction does: on the first states of new episodes the
    # prior picks the skill their instruction asks for, and the other one under the other instruction.
    episodes, _ = synthetic_episodes(8, num_skills=2, seed=9, instructions=INSTRUCTIONS)
    states = np.stack([ep.states[0] for ep in episodes])
    skills = np.arange(8) % 2
    for swap in (0, 1):
        logits, _, _ = lib.prior(states, synthetic_embedding([INSTRUCTIONS[(k + swap) % 2] for k in skills]))
        np.testing.assert_array_equal(logits.argmax(-1), (skills + swap) % 2)
    with pytest.raises(ValueError, match="language-conditioned"):
        lib.prior(states)


def test_save_load_round_trip_and_the_numpy_decoder(instructed, tmp_path):
    _, _, folder, _ = instructed
    lib = SkillLibrary.load(folder)
    again = SkillLibrary.load(lib.save(tmp_path / "copy"))
    for key, value in lib.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    instruction = synthetic_embedding(INSTRUCTIONS[:1])
    z, obs = np.full((1, 5), 0.3, np.float32), np.zeros((1, 59))
    fast = lib.start(np.array([1]), z, instruction)
    with torch.inference_mode():
        slow = lib.decoder.start(torch.tensor([1]), torch.from_numpy(z), torch.from_numpy(instruction))
        for _ in range(3):
            action, progress, fast = lib.step(fast, obs)
            slow_action, slow_progress, slow = lib.decoder.step(slow, torch.from_numpy(obs).float())
            np.testing.assert_allclose(action, slow_action.numpy(), atol=1e-5)
            np.testing.assert_allclose(progress, slow_progress.numpy(), atol=1e-5)
    other = lib.start(np.array([1]), z, synthetic_embedding(INSTRUCTIONS[1:]))
    assert not np.allclose(lib.step(other, obs)[0], lib.step(lib.start(np.array([1]), z, instruction), obs)[0])


def test_no_instructions_trains_an_unconditioned_library(instructed, tmp_path):
    _, labels, _, _ = instructed
    train_skills(tiny_args(labels, tmp_path / "plain", steps=2, instructions=False), embed=synthetic_embedding)
    lib = SkillLibrary.load(tmp_path / "plain")
    assert lib.config.instruction_dim == 0 and not any("instruction" in k for k in lib.state_dict())
    with pytest.raises(ValueError, match="not language-conditioned"):
        lib.start(np.array([0]), np.zeros((1, 5), np.float32), synthetic_embedding(INSTRUCTIONS[:1]))


def test_skill_env_passes_the_instruction(instructed):
    _, _, folder, _ = instructed
    env = SkillSpaceEnv(InstructedReachEnv(INSTRUCTIONS), folder)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    low = env.unwrapped
    np.testing.assert_array_equal(obs["instruction"], low.vectors[low.task])
    assert env.observation_space.contains(obs)
    action = {"skill": 0, "arg": np.zeros(5, np.float32)}
    moved = {}
    for task in range(2):
        env.reset(seed=0, options={"task": task})  # the same start state, another instruction
        env.step(action)
        moved[task] = low.state[:9].copy()
    assert not np.allclose(moved[0], moved[1])  # the decoder read the instruction
    with pytest.raises(ValueError, match="instruction"):
        SkillSpaceEnv(InstructedReachEnv(INSTRUCTIONS, dim=8), folder)


@pytest.mark.parametrize("share_prior_encoder", [False, True])
def test_skill_sac_learns_and_round_trips(instructed, tmp_path, share_prior_encoder):
    _, _, folder, _ = instructed
    env = SkillSpaceEnv(InstructedReachEnv(INSTRUCTIONS, max_steps=40), folder)
    model = SkillSAC("SkillPolicy", env, learning_starts=20, batch_size=16, seed=0,
                     policy_kwargs={"net_arch": [32, 32], "share_prior_encoder": share_prior_encoder})
    model.learn(60)
    assert model._n_updates > 0 and model.num_low_level_steps > 60
    critic_features = model.critic.features_extractor
    assert critic_features.features_dim == critic_features.observation_encoder.features_dim + 16
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    # The actor reads the instruction: the other instruction at the same state changes its distribution.
    tensors, _ = model.policy.obs_to_tensor({**obs, "instruction": env.unwrapped.vectors[1 - env.unwrapped.task]})
    same, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        a = model.policy.policy_dist(model.policy.encode_observations(same))
        b = model.policy.policy_dist(model.policy.encode_observations(tensors))
    assert not torch.allclose(a.logits, b.logits)
    model.save(tmp_path / "model")
    loaded = SkillSAC.load(tmp_path / "model", env=env)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    again, _ = loaded.predict(obs, deterministic=True)
    assert again["skill"] == action["skill"] and np.array_equal(again["arg"], action["arg"])


def test_skill_sac_on_an_async_vec_env_stores_instructed_observations_as_on_a_dummy_vec_env(instructed):
    _, _, folder, _ = instructed

    def make() -> SkillSpaceEnv:
        return SkillSpaceEnv(InstructedReachEnv(INSTRUCTIONS, max_steps=40), folder)

    buffers = []
    for venv in (AsyncSkillVecEnv([make], start_method="fork"), DummyVecEnv([make])):
        venv.seed(0)
        model = SkillSAC("SkillPolicy", venv, learning_starts=40, batch_size=16, seed=0,
                         policy_kwargs={"net_arch": [32, 32]})
        model.learn(40)  # several episodes of 40 low-level steps (their last observations are stored too), no update
        venv.close()
        assert model.replay_buffer.dones[:40].sum() >= 2
        buffers.append({f"{name}/{key}": array[:40].copy() for name in ("observations", "next_observations")
                        for key, array in getattr(model.replay_buffer, name).items()})
    for name, values in buffers[1].items():
        np.testing.assert_array_equal(buffers[0][name], values, err_msg=name)


def test_a_checkpoint_keeps_instructed_observations(instructed, tmp_path):
    _, _, folder, _ = instructed

    def model() -> SkillSAC:
        env = SkillSpaceEnv(InstructedReachEnv(INSTRUCTIONS, max_steps=40), folder)
        return SkillSAC("SkillPolicy", env, learning_starts=10, batch_size=8, seed=0,
                        policy_kwargs={"net_arch": [32, 32]})

    trained = model().learn(30)
    save_training_state(trained, tmp_path / "checkpoint")
    restored = model()
    _, last_obs = load_training_state(restored, tmp_path / "checkpoint")
    assert same_observation(last_obs, trained._last_obs) and set(last_obs) == {"state", "instruction"}
    filled = trained.replay_buffer.pos
    assert restored.replay_buffer.pos == filled > 0
    for key, stored in trained.replay_buffer.observations.items():
        assert np.array_equal(restored.replay_buffer.observations[key][:filled], stored[:filled]), key
        assert np.array_equal(restored.replay_buffer.next_observations[key][:filled],
                              trained.replay_buffer.next_observations[key][:filled]), key


def test_fine_tuning_continues_from_the_library(instructed, tmp_path_factory, tmp_path):
    _, _, base, _ = instructed
    root = tmp_path_factory.mktemp("target")
    _, target = write_synthetic_labels(root, num_episodes=4, num_skills=2, seed=3, instructions=INSTRUCTIONS)
    # A learning rate of ~0 keeps the weights where fine-tuning starts: the library's, not a fresh draw.
    train_skills(tiny_args(target, tmp_path / "ft", steps=2, lr=1e-12, init_from=str(base)),
                 embed=synthetic_embedding)
    fresh = train_skills(tiny_args(target, tmp_path / "fresh", steps=2, lr=1e-12), embed=synthetic_embedding)
    ft, b = SkillLibrary.load(tmp_path / "ft"), SkillLibrary.load(base)
    assert fresh.start_step == 0 and ft.config.trained_on["fine_tuned_from"]["labels_path"] == str(b.config.trained_on[
        "labels_path"])
    for key, value in b.state_dict().items():
        torch.testing.assert_close(ft.state_dict()[key], value, rtol=0, atol=1e-6)
    assert not torch.allclose(SkillLibrary.load(tmp_path / "fresh").decoder.head.weight, b.decoder.head.weight)
    # A longer run moves away from the library, and a resumed one repeats it.
    full = train_skills(tiny_args(target, tmp_path / "full", steps=6, init_from=str(base)), embed=synthetic_embedding)
    train_skills(tiny_args(target, tmp_path / "half", steps=3, init_from=str(base)), embed=synthetic_embedding)
    rest = train_skills(tiny_args(target, tmp_path / "half", steps=6, init_from=str(base), resume=True),
                        embed=synthetic_embedding)
    assert rest.history["loss"] == full.history["loss"][3:]
    assert not torch.equal(SkillLibrary.load(tmp_path / "full").decoder.head.weight, b.decoder.head.weight)


def test_fine_tuning_refuses_what_does_not_fit(instructed, tmp_path_factory, tmp_path):
    _, _, base, _ = instructed
    _, plain = write_synthetic_labels(tmp_path_factory.mktemp("plain"), num_episodes=3, num_skills=2, seed=4)
    with pytest.raises(ValueError, match="carry no instruction"):
        train_skills(tiny_args(plain, tmp_path / "a", steps=1, init_from=str(base)), embed=synthetic_embedding)
    _, target = write_synthetic_labels(tmp_path_factory.mktemp("t"), num_episodes=3, num_skills=2, seed=5,
                                       instructions=INSTRUCTIONS)
    with pytest.raises(ValueError, match=r"window: the library's 30, --window 20.*hidden_dim"):
        train_skills(tiny_args(target, tmp_path / "b", steps=1, window=20, hidden_dim=16, init_from=str(base)),
                     embed=synthetic_embedding)
    with pytest.raises(ValueError, match="instruction size"):
        train_skills(tiny_args(target, tmp_path / "c", steps=1, init_from=str(base)),
                     embed=lambda texts: synthetic_embedding(texts, dim=8))


def test_a_saved_labeler_labels_new_data_as_the_extraction_did(instructed, tmp_path_factory, tmp_path, capsys):
    data, _, _, _ = instructed
    assert main(["extract", str(data), "--out", str(tmp_path / "labels"), "--encoder", "state", "--k", "3",
                 "--no-progress"]) == 0
    assert main(["extract", str(data), "--out", str(tmp_path / "again"), "--labeler", str(tmp_path / "labels"),
                 "--no-progress"]) == 0
    assert "with the labeler" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["extract", str(data), "--out", str(tmp_path / "other"), "--labeler", str(tmp_path / "labels"),
              "--k", "5", "--encoder", "state", "--kernel", "3", "--no-progress"])
    assert refused.value.code == 2 and not (tmp_path / "other").exists()
    error = capsys.readouterr().err.strip()
    assert error.endswith("fixes the extraction options; drop --k 5 (the labeler's: 3), --kernel 3 (the labeler's: 7)")
    assert len(error.splitlines()) == 1
    first, again = SkillLabels.load(tmp_path / "labels"), SkillLabels.load(tmp_path / "again")
    np.testing.assert_array_equal(first.frame_labels, again.frame_labels)
    np.testing.assert_array_equal(first.segments, again.segments)
    assert first.metadata == again.metadata
    centroids = SkillLabeler.load(tmp_path / "labels").centroids
    np.testing.assert_array_equal(SkillLabeler.load(tmp_path / "again").centroids, centroids)
    # New data gets the same clusters, and its labels fine-tune a library of the first labels.
    target, _ = write_synthetic_labels(tmp_path_factory.mktemp("new"), num_episodes=4, num_skills=2, seed=6,
                                       instructions=INSTRUCTIONS)
    assert main(["extract", str(target), "--out", str(tmp_path / "target"), "--labeler",
                 str(tmp_path / "labels" / "labeler"), "--no-progress"]) == 0
    labels = SkillLabels.load(tmp_path / "target")
    assert labels.num_skills == 3 and labels.metadata["fit_dataset_fingerprint"] == first.metadata[
        "fit_dataset_fingerprint"]
    train_skills(tiny_args(tmp_path / "labels", tmp_path / "lib", steps=2), embed=synthetic_embedding)
    train_skills(tiny_args(tmp_path / "target", tmp_path / "ft", steps=2, init_from=str(tmp_path / "lib")),
                 embed=synthetic_embedding)
    assert json.loads((tmp_path / "ft" / "config.json").read_text())["instruction_dim"] == 16
    with pytest.raises(ValueError, match="another labeler"):
        train_skills(tiny_args(instructed[1], tmp_path / "bad", steps=1, hidden_dim=32, window=30,
                               init_from=str(tmp_path / "lib")), embed=synthetic_embedding)
