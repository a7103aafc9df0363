"""SkillSAC end to end on ToySkillEnv: learning, prior regularisation, save/load, VecEnvs, evaluation, logging."""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import SkillActions, SkillFeatureReplayBuffer, SkillReplayBuffer, SkillSAC
from skillgym.rl.checkpoint import load_training_state, save_training_state
from skillgym.rl.distributions import SkillDistribution

th.set_num_threads(1)

FAST = dict(
    learning_starts=100, batch_size=64, gamma=0.5, learning_rate=1e-3, policy_kwargs=dict(net_arch=[64, 64])
)


def toy(**kwargs) -> ToySkillEnv:
    kwargs.setdefault("max_decisions", 5)
    return ToySkillEnv(**kwargs)


def test_learns_optimal_skill_and_argument() -> None:
    env = toy()
    model = SkillSAC("SkillPolicy", env, seed=0, **FAST).learn(600)
    actions, _ = model.predict(np.eye(3, dtype=np.float32), deterministic=True)
    assert isinstance(actions, SkillActions)
    assert actions["skill"].tolist() == [
        env.optimal_skill(s) for s in range(3)
    ]  # [1, 2, 3]; the prior prefers 0
    np.testing.assert_allclose(actions["arg"], 0.5, atol=0.35)
    mean_return, _ = evaluate_policy(model, Monitor(toy()), n_eval_episodes=5, deterministic=True)
    assert mean_return > 4.0  # optimum 5, the prior alone gets ~0.15 x 0.8 per decision


def test_huge_alpha_keeps_the_prior() -> None:
    model = SkillSAC("SkillPolicy", toy(), seed=0, alpha_d=100.0, alpha_z=100.0, **FAST).learn(400)
    obs = th.eye(3)
    with th.no_grad():
        pi, prior = model.policy.policy_dist(obs), model.policy.prior_dist(obs)
    assert pi.kl_d(prior).max() < 1e-3 and pi.kl_z(prior).max() < 1e-3
    np.testing.assert_allclose(pi.probs.numpy(), prior.probs.numpy(), atol=0.01)
    # ... while the critic did learn something
    assert model._n_updates > 250


def test_auto_alpha_moves_the_coefficients() -> None:
    model = SkillSAC(
        "SkillPolicy", toy(), seed=0, alpha_d="auto_0.1", alpha_z="auto", target_kl_d=0.01, **FAST
    )
    model.learn(200)
    alpha_d, alpha_z = model._coefs()
    assert alpha_d.item() != pytest.approx(0.1) and alpha_z.item() != pytest.approx(1.0)
    with pytest.raises(ValueError):
        SkillSAC("SkillPolicy", toy(), alpha_d="sometimes")


@pytest.mark.parametrize("target_kl, moves", [(100.0, "down"), (1e-4, "up")])
def test_auto_alpha_moves_toward_its_target_kl(target_kl, moves) -> None:
    # Far above the KL there is room to follow the reward: α falls. Far below it the policy must be pulled
    # back to the prior: α rises.
    model = SkillSAC("SkillPolicy", toy(), seed=0, alpha_d="auto_0.1", alpha_z="auto_0.1", target_kl_d=target_kl,
                     target_kl_z=target_kl, **FAST)
    model.learn(200)
    for alpha in model._coefs():
        assert (alpha.item() < 0.1) if moves == "down" else (alpha.item() > 0.1)


def test_target_critics_take_a_tau_step_toward_the_critics() -> None:
    model = SkillSAC("SkillPolicy", toy(), seed=0, tau=0.05, **FAST)
    model.learn(FAST["learning_starts"] + 10)
    before = [p.detach().clone() for p in model.critic_target.parameters()]
    model.train(gradient_steps=1, batch_size=FAST["batch_size"])
    for target, old, critic in zip(model.critic_target.parameters(), before, model.critic.parameters(), strict=True):
        assert th.allclose(target, 0.95 * old + 0.05 * critic, atol=1e-6)
    assert not all(th.equal(target, old) for target, old in zip(model.critic_target.parameters(), before, strict=True))


def test_warmup_samples_from_the_prior() -> None:
    env = toy(prior_skill_probs=[0.0, 0.0, 1.0, 0.0])  # a prior that only ever picks skill 2
    model = SkillSAC("SkillPolicy", env, seed=0, learning_starts=50, batch_size=16)
    model.learn(50)
    skills = model.replay_buffer.actions[: model.replay_buffer.pos, 0, 0]
    assert len(skills) == 50 and np.all(skills == 2)


def test_prior_uniform_mix_bounds_the_skill_kl() -> None:
    p = np.array([0.001, 0.001, 0.997, 0.001])
    env = toy(prior_skill_probs=p.tolist())
    obs = th.eye(3)
    plain = SkillSAC("SkillPolicy", env, seed=0).policy
    mixed = SkillSAC("SkillPolicy", env, seed=0, policy_kwargs=dict(prior_uniform_mix=0.2)).policy
    q = 0.8 * p + 0.05
    np.testing.assert_allclose(mixed.prior_dist(obs).probs.numpy(), [q] * 3, rtol=1e-5)
    with th.no_grad():
        pi = mixed.policy_dist(obs)  # starts as the unmixed prior p
        # closed form: KL(p ‖ 0.8 p + 0.2 / K); to the unmixed prior it is 0
        np.testing.assert_allclose(pi.kl_d(mixed.prior_dist(obs)).numpy(), np.sum(p * np.log(p / q)), rtol=1e-4)
        assert pi.kl_d(plain.prior_dist(obs)).max().item() < 1e-6
        # all mass on a skill the prior all but excludes costs -log q_1 < log(K / ε) nats
        one_hot = pi._replace(logits=th.tensor([[0.0, 50.0, 0.0, 0.0]]).expand(3, -1))
        kl = one_hot.kl_d(mixed.prior_dist(obs)).numpy()
        np.testing.assert_allclose(kl, -np.log(q[1]), rtol=1e-4)
        assert kl.max() < np.log(4 / 0.2) < one_hot.kl_d(plain.prior_dist(obs)).min().item()
    with pytest.raises(ValueError, match="prior_uniform_mix"):
        SkillSAC("SkillPolicy", env, policy_kwargs=dict(prior_uniform_mix=1.0))


def test_arg_clipped_for_env_unclipped_in_buffer() -> None:
    seen: list[np.ndarray] = []

    class Spy(ToySkillEnv):
        def step(self, action):  # type: ignore[override]
            seen.append(np.asarray(action["arg"]))
            return super().step(action)

    env = Spy(max_decisions=5, arg_bound=0.1)  # N(0, 1) samples mostly fall outside [-0.1, 0.1]
    model = SkillSAC("SkillPolicy", env, seed=0, learning_starts=40, batch_size=16)
    model.learn(40)
    sent = np.stack(seen)
    stored = model.replay_buffer.actions[:40, 0, 1:]
    assert np.all(np.abs(sent) <= 0.1 + 1e-7)
    assert np.abs(stored).max() > 0.5
    np.testing.assert_allclose(sent, np.clip(stored, -0.1, 0.1), atol=1e-6)


def test_predict_single_and_batch() -> None:
    model = SkillSAC("SkillPolicy", toy(), seed=0)
    single, _ = model.predict(np.eye(3, dtype=np.float32)[0])
    assert (
        set(single) == {"skill", "arg"} and single["arg"].dtype == np.float32 and single["arg"].shape == (2,)
    )
    assert model.env is not None and model.env.action_space.contains(single)
    batch, _ = model.predict(np.eye(3, dtype=np.float32))
    assert len(batch) == 3 and batch["skill"].dtype == np.int64 and batch["arg"].shape == (3, 2)
    assert [a["skill"] for a in batch] == batch["skill"].tolist()
    # deterministic = most likely skill (the prior prefers 0) and its mean argument (0)
    det, _ = model.predict(np.eye(3, dtype=np.float32), deterministic=True)
    assert det["skill"].tolist() == [0, 0, 0] and np.all(det["arg"] == 0)


def test_save_load_reproduces_predict(tmp_path: Path) -> None:
    model = SkillSAC("SkillPolicy", toy(), seed=0, alpha_d="auto", **FAST).learn(150)
    obs = np.eye(3, dtype=np.float32)
    model.save(tmp_path / "model")
    loaded = SkillSAC.load(tmp_path / "model")  # no env: the prior travels with the model
    for deterministic in (True, False):
        th.manual_seed(3)
        a, _ = model.predict(obs, deterministic=deterministic)
        th.manual_seed(3)
        b, _ = loaded.predict(obs, deterministic=deterministic)
        np.testing.assert_array_equal(a["skill"], b["skill"])
        np.testing.assert_array_equal(a["arg"], b["arg"])
    for key, value in model.policy.state_dict().items():
        assert th.equal(value, loaded.policy.state_dict()[key]), key
    assert loaded.log_alpha_d is not None and th.equal(loaded.log_alpha_d, model.log_alpha_d)
    assert loaded.num_low_level_steps == model.num_low_level_steps
    # continue training with an env after loading
    loaded.set_env(toy())
    loaded.learn(20, reset_num_timesteps=False)
    # a folder named like a zip (as CheckpointCallback names its saves) is not an SB3 zip
    model.save(tmp_path / "model_150_steps.zip")
    with pytest.raises(ValueError, match="a folder that SkillSAC.save wrote.*SkillSAC.load"):
        SkillSAC.load_sb3_zip(tmp_path / "model_150_steps.zip")


def test_subproc_vecenv_two_envs_and_evaluate() -> None:
    venv = make_vec_env(toy, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        model = SkillSAC("SkillPolicy", venv, seed=0, learning_starts=40, batch_size=32, gradient_steps=2)
        model.learn(100)
        assert model.num_timesteps == 100 and model.replay_buffer.n_envs == 2
        assert model.num_low_level_steps >= 100
        mean, std = evaluate_policy(model, venv, n_eval_episodes=4)
        assert np.isfinite(mean) and np.isfinite(std)
    finally:
        venv.close()


def test_callbacks_and_train_freq() -> None:
    class Count(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def _on_step(self) -> bool:
            self.calls += 1
            return self.n_calls < 30  # stops training early

    cb = Count()
    model = SkillSAC(
        "SkillPolicy", DummyVecEnv([toy]), seed=0, learning_starts=10, batch_size=8, train_freq=(2, "episode")
    )
    model.learn(1000, callback=cb)
    assert cb.calls == 30 and model.num_timesteps == 30


def test_deterministic_given_seed() -> None:
    def run(seed: int = 123) -> dict[str, th.Tensor]:
        model = SkillSAC("SkillPolicy", toy(), seed=seed, learning_starts=30, batch_size=16)
        model.learn(60)
        return model.policy.state_dict()

    a, b, other_seed = run(), run(), run(124)
    assert all(th.equal(a[k], b[k]) for k in a)
    assert not all(th.equal(a[k], other_seed[k]) for k in a)


def test_pixels_and_gamma_per_step(tmp_path: Path) -> None:
    env = toy(obs_type="pixels", frame_size=36, frame_stack=2)
    model = SkillSAC(
        "SkillPolicy",
        env,
        seed=0,
        learning_starts=20,
        batch_size=8,
        gamma_per_step=True,
        policy_kwargs=dict(net_arch=[32], features_extractor_kwargs=dict(features_dim=32)),
    )
    model.learn(40)
    assert model.replay_buffer.observations.dtype == np.uint8
    assert model.replay_buffer.skill_steps[:40, 0].max() > 1
    frame = env.reset(seed=0)[0]
    action, _ = model.predict(frame)
    assert env.action_space.contains(action)


def test_shared_prior_encoder_on_frames_trains_heads_not_the_encoder(tmp_path: Path) -> None:
    from skillgym.skills.config import LibraryConfig
    from skillgym.skills.library import SkillLibrary

    env = toy(n_skills=3, arg_dim=2, obs_type="pixels", frame_size=32, frame_stack=2)
    prior = SkillLibrary.build(LibraryConfig(num_skills=3, z_dim=2, obs_kind="pixels", image_size=32, frame_stack=2,
                                             pixel_feature_dim=16, prior_hidden_dim=16, prior_layers=2),
                               seed=0).priors
    # Frames and a prior with an encoder: shared by default.
    model = SkillSAC("SkillPolicy", env, prior=prior, seed=0, learning_starts=20, batch_size=8,
                     policy_kwargs=dict(net_arch=[16]))
    policy = model.policy
    assert policy.share_prior_encoder
    encoder_before = {k: v.clone() for k, v in policy.observation_encoder.state_dict().items()}
    heads_before = [p.detach().clone() for p in policy.actor.parameters()]
    # One encoder, frozen; the critics have no conv layers; π starts equal to the prior.
    assert not any(isinstance(m, th.nn.Conv2d) for m in [*policy.actor.modules(), *policy.critic.modules()])
    frames = th.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(3)]))
    features = policy.encode_observations(frames)
    assert features.shape == (3, 16) and not features.requires_grad
    with th.no_grad():
        expected = SkillDistribution.from_module_output(prior(frames))
    assert th.allclose(policy.prior_dist(features).logits, expected.logits, atol=1e-6)
    assert th.allclose(policy.policy_dist(features).logits, expected.logits, atol=1e-6)

    model.learn(60)
    # The buffer holds the frozen encoder's features of what the env returned, not the frames.
    buffer = model.replay_buffer
    assert isinstance(buffer, SkillFeatureReplayBuffer) and buffer.observations.shape[1:] == (1, 16)
    first = th.as_tensor(env.reset(seed=0)[0][None])
    assert np.allclose(buffer.observations[0], policy.encode_observations(first).numpy(), atol=1e-6)
    for k, v in policy.observation_encoder.state_dict().items():
        assert th.equal(v, encoder_before[k]), k
    assert any(not th.equal(a, b) for a, b in zip(policy.actor.parameters(), heads_before, strict=True))
    action, _ = model.predict(env.reset(seed=0)[0])
    assert env.action_space.contains(action)

    # Saved and loaded, still shared, the same actions.
    model.save(tmp_path / "shared")
    loaded = SkillSAC.load(tmp_path / "shared", env=env)
    obs = env.reset(seed=5)[0]
    assert loaded.policy.share_prior_encoder
    assert loaded.predict(obs, deterministic=True)[0]["skill"] == model.predict(obs, deterministic=True)[0]["skill"]

    # Asked not to share, the critics get conv encoders of their own and frames go to the buffer.
    own = SkillSAC("SkillPolicy", env, prior=prior, seed=0, policy_kwargs=dict(share_prior_encoder=False))
    assert any(isinstance(m, th.nn.Conv2d) for m in own.policy.critic.modules())
    assert own.replay_buffer.observations.dtype == np.uint8


def test_stored_features_learn_what_stored_frames_learn(tmp_path: Path) -> None:
    from skillgym.skills.config import LibraryConfig
    from skillgym.skills.library import SkillLibrary

    prior = SkillLibrary.build(LibraryConfig(num_skills=3, z_dim=2, obs_kind="pixels", image_size=32, frame_stack=2,
                                             pixel_feature_dim=16, prior_hidden_dim=16, prior_layers=2),
                               seed=0).priors
    models = {}
    for buffer_class in (SkillFeatureReplayBuffer, SkillReplayBuffer):
        env = toy(n_skills=3, arg_dim=2, obs_type="pixels", frame_size=32, frame_stack=2)
        models[buffer_class] = SkillSAC("SkillPolicy", env, prior=prior, seed=0, learning_starts=20, batch_size=8,
                                        replay_buffer_class=buffer_class,
                                        policy_kwargs=dict(net_arch=[16], share_prior_encoder=True)).learn(60)
    features, frames = models[SkillFeatureReplayBuffer], models[SkillReplayBuffer]
    assert frames.replay_buffer.observations.dtype == np.uint8 and features._n_updates == frames._n_updates > 0
    for key, value in features.policy.state_dict().items():
        assert th.allclose(value, frames.policy.state_dict()[key], atol=1e-5), key
    # A checkpoint keeps the stored features as they are.
    save_training_state(features, tmp_path / "checkpoint")
    again = SkillSAC("SkillPolicy", toy(n_skills=3, arg_dim=2, obs_type="pixels", frame_size=32, frame_stack=2),
                     prior=prior, seed=0, learning_starts=20, batch_size=8,
                     policy_kwargs=dict(net_arch=[16], share_prior_encoder=True))
    load_training_state(again, tmp_path / "checkpoint")
    assert np.array_equal(again.replay_buffer.observations, features.replay_buffer.observations)
    # So does SB3's own (pickled) buffer file, and the buffer it loads stores features again.
    features.save_replay_buffer(tmp_path / "buffer.pkl")
    again.load_replay_buffer(tmp_path / "buffer.pkl")
    assert np.array_equal(again.replay_buffer.observations, features.replay_buffer.observations)
    again.learn(10, reset_num_timesteps=False)
    with pytest.raises(ValueError, match="needs policy_kwargs share_prior_encoder=True"):
        SkillSAC("SkillPolicy", toy(n_skills=3, arg_dim=2, obs_type="pixels", frame_size=32, frame_stack=2),
                 prior=prior, replay_buffer_class=SkillFeatureReplayBuffer, policy_kwargs=dict(share_prior_encoder=False))


def test_shared_prior_encoder_needs_an_encoder_module() -> None:
    with pytest.raises(ValueError, match="share_prior_encoder needs a prior with an `encoder` module"):
        SkillSAC("SkillPolicy", toy(), policy_kwargs=dict(share_prior_encoder=True))


def test_tensorboard_logs_both_axes(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = SkillSAC(
        "SkillPolicy", toy(), seed=0, learning_starts=20, batch_size=16, tensorboard_log=str(tmp_path)
    )
    model.learn(100, log_interval=2)
    files = glob.glob(str(tmp_path / "SkillSAC_1" / "events.*"))
    assert files
    acc = EventAccumulator(str(tmp_path / "SkillSAC_1"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in [
        "rollout/ep_rew_mean",
        "rollout/ep_num_completed_mean",
        "rollout/skill_len_mean",
        "rollout/ep_low_level_len_mean",
        "rollout/skill_freq/0",
        "rollout/low_level_steps",
        "time/low_level_steps",
        "train/kl_d",
        "train/kl_z",
        "train/q_taken",
        "train/actor_loss",
        "train/critic_loss",
        "low_level_steps/rollout/ep_rew_mean",
    ]:
        assert tag in tags, tag
    assert "rollout/skill_hist" in acc.Tags()["histograms"]
    # the mirrored tags use low-level steps as x: larger than skill decisions (skills run 1-4 steps)
    decision_steps = [e.step for e in acc.Scalars("rollout/ep_rew_mean")]
    low_level_steps = [e.step for e in acc.Scalars("low_level_steps/rollout/ep_rew_mean")]
    assert low_level_steps[-1] > decision_steps[-1]


@pytest.mark.parametrize("obs_kind", ["state", "pixels"])
def test_library_skill_priors_module(obs_kind: str) -> None:
    # The library's own prior module (LayerNorm MLPs over a state normaliser / conv encoder) as the prior.
    model_mod = pytest.importorskip("skillgym.skills.model")
    config_mod = pytest.importorskip("skillgym.skills.config")
    if obs_kind == "state":
        env = toy(n_skills=8, arg_dim=5, obs_dim=59, obs_dtype=np.float64)
        config = config_mod.LibraryConfig(
            num_skills=8, z_dim=5, state_dim=59, prior_hidden_dim=32, prior_layers=2
        )
    else:
        env = toy(n_skills=8, arg_dim=5, obs_type="pixels", frame_size=32, frame_stack=2)
        config = config_mod.LibraryConfig(
            num_skills=8,
            z_dim=5,
            obs_kind="pixels",
            image_size=32,
            frame_stack=2,
            prior_hidden_dim=32,
            prior_layers=2,
            pixel_feature_dim=32,
        )
    prior = model_mod.SkillPriors(config)
    model = SkillSAC(
        "SkillPolicy",
        env,
        prior=prior,
        seed=0,
        learning_starts=16,
        batch_size=8,
        policy_kwargs=dict(net_arch=[32, 32]),
    )
    model.learn(32)
    obs = th.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(3)]))
    with th.no_grad():
        assert th.allclose(model.policy.prior_dist(model.policy.encode_observations(obs)).logits, prior(obs)[0])
    action, _ = model.predict(obs.numpy()[0])
    assert env.action_space.contains(action)


def test_stop_at_low_level_steps() -> None:
    from skillgym.rl import StopAtLowLevelSteps

    model = SkillSAC("SkillPolicy", toy(), seed=0, learning_starts=10, batch_size=8)
    model.learn(total_timesteps=10**9, callback=StopAtLowLevelSteps(150))
    assert 150 <= model.num_low_level_steps < 150 + model.env.get_attr("n_skills")[0]
    with pytest.raises(ValueError):
        StopAtLowLevelSteps(0)


def test_learn_warns_when_no_gradient_step_was_made() -> None:
    model = SkillSAC("SkillPolicy", toy(), seed=0, learning_starts=50, batch_size=8)
    with pytest.warns(UserWarning, match="learning_starts=50"):
        model.learn(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(60, reset_num_timesteps=False)
