"""SkillSAC losses against hand computations: KLs, critic at the stored skill, Eq. 5, targets, critic layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch import nn

from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import SkillSAC
from skillgym.rl.buffers import SkillReplayBuffer, SkillReplayBufferSamples
from skillgym.rl.distributions import SkillDistribution, categorical_kl, diag_gaussian_kl
from skillgym.rl.policies import MlpStateEncoder, SkillCritic

th.set_num_threads(1)


def small_model(**kwargs) -> SkillSAC:
    env = ToySkillEnv(n_skills=4, arg_dim=2, n_states=3, prior_net_arch=[16])
    kwargs.setdefault("policy_kwargs", dict(net_arch=[32, 32]))
    return SkillSAC("SkillPolicy", env, learning_starts=10, batch_size=8, seed=0, **kwargs)


def hand_batch(
    model: SkillSAC, skills: list[int], dones: list[float] | None = None, steps: list[int] | None = None
) -> SkillReplayBufferSamples:
    g = th.Generator().manual_seed(1)
    b = len(skills)
    obs = th.eye(3)[th.arange(b) % 3]
    nxt = th.eye(3)[(th.arange(b) + 1) % 3]
    return SkillReplayBufferSamples(
        observations=obs,
        skills=th.tensor(skills),
        args=th.randn(b, 2, generator=g),
        next_observations=nxt,
        dones=th.tensor(dones or [0.0] * b).view(-1, 1),
        rewards=th.rand(b, 1, generator=g),
        skill_steps=th.tensor(steps or [1] * b, dtype=th.float32).view(-1, 1),
    )


# --------------------------------------------------------------------------------------------- KLs
def test_categorical_kl_closed_form() -> None:
    p = np.array([0.5, 0.25, 0.125, 0.125])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    expected = float(np.sum(p * np.log(p / q)))  # = 0.25 ln 2 ... computed directly
    got = categorical_kl(
        th.log(th.tensor(p)) + 3.0, th.log(th.tensor(q)) - 1.0
    )  # logits need not be normalised
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.25 * math.log(2), abs=1e-12)
    # summed over the support, not averaged: batch of identical rows gives the same per-row value
    both = categorical_kl(th.log(th.tensor([p, p])), th.log(th.tensor([q, q])))
    assert both.shape == (2,) and th.allclose(both, th.tensor([expected, expected], dtype=th.float64))


def test_diag_gaussian_kl_closed_form() -> None:
    mu_p, s_p = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0])
    mu_q, s_q = np.array([1.0, 1.0, 0.0]), np.array([2.0, 0.5, 1.0])
    expected = float(np.sum(np.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5))
    t = lambda x: th.tensor(x)  # noqa: E731
    got = diag_gaussian_kl(t(mu_p), t(np.log(s_p)), t(mu_q), t(np.log(s_q)))
    assert got.item() == pytest.approx(expected, abs=1e-12)
    ref = th.distributions.kl_divergence(
        th.distributions.Normal(t(mu_p), t(s_p)), th.distributions.Normal(t(mu_q), t(s_q))
    ).sum()
    assert got.item() == pytest.approx(ref.item(), abs=1e-12)
    assert diag_gaussian_kl(t(mu_p), t(np.log(s_p)), t(mu_p), t(np.log(s_p))).item() == pytest.approx(
        0.0, abs=1e-12
    )


@pytest.mark.parametrize("share_actor", [True, False])
def test_policy_equals_prior_at_init(share_actor: bool) -> None:
    model = small_model(policy_kwargs=dict(net_arch=[32, 32], share_actor=share_actor))
    obs = th.eye(3)
    pi, p = model.policy.policy_dist(obs), model.policy.prior_dist(obs)
    assert th.allclose(pi.kl_d(p), th.zeros(3)) and th.allclose(pi.kl_z(p), th.zeros(3, 4))
    # the prior copy is frozen, the policy copies are trainable and distinct objects
    assert not any(q.requires_grad for q in model.policy.prior.parameters())
    assert all(q.requires_grad for q in model.policy.actor.parameters())
    assert (model.policy.actor.pi_d is model.policy.actor.pi_z) == share_actor
    assert (
        model.policy.actor.pi_d is not model.policy.prior
        and model.policy.actor.pi_z is not model.policy.prior
    )


# ------------------------------------------------------------------------------------- critic loss
def test_critic_regressed_at_stored_skill() -> None:
    model = small_model()
    alpha_d, alpha_z = model._coefs()
    data = hand_batch(model, skills=[2, 0, 3, 1, 2, 3])
    th.manual_seed(5)
    loss, _ = model._critic_loss(data, alpha_d, alpha_z)

    th.manual_seed(5)  # same z' ~ π_z(·|s') draws
    with th.no_grad():
        nxt = model.policy.policy_dist(data.next_observations)
        prior = model.policy.prior_dist(data.next_observations)
        z = nxt.rsample_args()
        qn = (
            model.critic_target.q_per_skill(model.critic_target.encode(data.next_observations), z)
            .min(0)
            .values
        )
        v = (nxt.probs * (qn - alpha_z * nxt.kl_z(prior))).sum(-1) - alpha_d * nxt.kl_d(prior)
        y = data.rewards.squeeze(1) + model.gamma * v
        heads = model.critic.q_heads(model.critic.encode(data.observations), data.args)  # (E, B, K)
        rows = th.arange(len(data.skills))
        expected = 0.5 * sum(((heads[e, rows, data.skills] - y) ** 2).mean() for e in range(2))
        # the same batch with other skills gives another loss: the stored skill matters
        other = 0.5 * sum(((heads[e, rows, (data.skills + 1) % 4] - y) ** 2).mean() for e in range(2))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(other.item() - expected.item()) > 1e-4


def test_critic_loss_ignores_resampling(monkeypatch: pytest.MonkeyPatch) -> None:
    # If the loss sampled a fresh skill from π_d for s instead of the stored one, making π_d deterministic on another
    # skill would change it. It must not.
    model = small_model()
    alpha_d, alpha_z = model._coefs()
    data = hand_batch(model, skills=[0, 0, 0, 0])
    th.manual_seed(0)
    base, _ = model._critic_loss(data, alpha_d, alpha_z)
    orig = model.policy.policy_dist

    def rigged(obs: th.Tensor) -> SkillDistribution:
        d = orig(obs)
        if obs.data_ptr() == data.observations.data_ptr():
            return SkillDistribution(
                th.full_like(d.logits, -1e9).index_fill(1, th.tensor([3]), 0.0), d.mean, d.log_std
            )
        return d

    monkeypatch.setattr(model.policy, "policy_dist", rigged)
    th.manual_seed(0)
    after, _ = model._critic_loss(data, alpha_d, alpha_z)
    assert after.item() == pytest.approx(base.item(), rel=1e-7)


def test_terminated_cuts_bootstrap_and_gamma_per_step() -> None:
    model = small_model()
    alpha_d, alpha_z = model._coefs()

    def targets(data: SkillReplayBufferSamples, per_step: bool) -> th.Tensor:
        model.gamma_per_step = per_step
        captured = {}
        orig = th.nn.functional.mse_loss

        def spy(a: th.Tensor, b: th.Tensor) -> th.Tensor:
            captured["y"] = b
            return orig(a, b)

        th.nn.functional.mse_loss, saved = spy, th.nn.functional.mse_loss
        try:
            th.manual_seed(0)
            model._critic_loss(data, alpha_d, alpha_z)
        finally:
            th.nn.functional.mse_loss = saved
        return captured["y"]

    data = hand_batch(model, skills=[1, 1], dones=[0.0, 1.0], steps=[3, 3])
    y = targets(data, per_step=False)
    assert y[1].item() == pytest.approx(data.rewards[1].item())  # terminated: no bootstrap
    th.manual_seed(0)
    with th.no_grad():
        nxt = model.policy.policy_dist(data.next_observations)
        v = model._soft_value(
            nxt, model.policy.prior_dist(data.next_observations), data.next_observations, alpha_d, alpha_z
        )
    assert y[0].item() == pytest.approx(data.rewards[0].item() + model.gamma * v[0].item(), rel=1e-6)
    y3 = targets(data, per_step=True)  # the stored reward is already discounted within the skill
    assert y3[0].item() == pytest.approx(data.rewards[0].item() + model.gamma**3 * v[0].item(), rel=1e-6)
    assert y3[1].item() == pytest.approx(data.rewards[1].item())


def test_buffer_truncation_is_not_terminal() -> None:
    space = ToySkillEnv().action_space
    buf = SkillReplayBuffer(10, spaces.Box(0, 1, (3,), np.float32), space, device="cpu", n_envs=2)
    obs = np.zeros((2, 3), np.float32)
    action = np.array([[2, 0.1, -3.0], [1, 0.0, 0.0]], np.float32)
    infos = [{"TimeLimit.truncated": True, "skill_steps": 4}, {"skill_steps": 2}]
    buf.add(obs, obs, action, np.array([1.0, 0.5]), np.array([True, True]), infos)
    s = buf._get_samples(np.zeros(64, dtype=np.int64))
    by_skill = {
        int(k): (float(d), float(n), float(r), a.tolist())
        for k, d, n, r, a in zip(s.skills, s.dones, s.skill_steps, s.rewards, s.args, strict=True)
    }
    assert by_skill[2][:3] == (0.0, 4.0, 1.0)  # truncated: bootstraps
    assert by_skill[2][3] == pytest.approx([0.1, -3.0])  # the unclipped argument is stored as given
    assert by_skill[1][:3] == (1.0, 2.0, 0.5)  # terminated


@pytest.mark.parametrize("gamma_per_step", [False, True])
def test_stored_reward_is_discounted_within_the_skill_by_sacs_gamma(gamma_per_step: bool) -> None:
    model = small_model(gamma=0.9, gamma_per_step=gamma_per_step)
    model._setup_learn(10)
    skill_rewards = np.array([0.5, 0.0, 1.0, 0.25])
    infos = [{"skill_steps": 4, "skill_rewards": skill_rewards}]
    model._store_transition(
        model.replay_buffer, np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32),
        np.array([skill_rewards.sum()], np.float32), np.array([False]), infos,
    )
    expected = 0.5 + 0.9**2 * 1.0 + 0.9**3 * 0.25 if gamma_per_step else 1.75
    assert model.replay_buffer.rewards[0, 0] == pytest.approx(expected, rel=1e-7)
    assert model.replay_buffer.skill_steps[0, 0] == 4


def test_gamma_per_step_needs_skill_rewards() -> None:
    model = small_model(gamma_per_step=True)
    model._setup_learn(10)
    with pytest.raises(ValueError, match="skill_rewards"):
        model._store_transition(
            model.replay_buffer, np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32),
            np.array([1.0], np.float32), np.array([False]), [{"skill_steps": 2}],
        )


# --------------------------------------------------------------------------------------- actor loss
@pytest.mark.parametrize("share_actor", [False, True])
def test_actor_loss_matches_eq5_loop(share_actor: bool) -> None:
    model = small_model(policy_kwargs=dict(net_arch=[32, 32], share_actor=share_actor))
    # move the policy away from the prior so that both KLs are non-zero
    with th.no_grad():
        for p in model.policy.actor.parameters():
            p.add_(0.3 * th.randn_like(p))
    alpha_d, alpha_z = th.tensor(0.3), th.tensor(0.05)
    obs = th.eye(3)[[0, 1, 2, 1]]
    th.manual_seed(11)
    loss, kl_d, kl_z, _ = model._actor_loss(obs, alpha_d, alpha_z)

    th.manual_seed(11)
    pi = model.policy.policy_dist(obs)
    prior = model.policy.prior_dist(obs)
    z = pi.rsample_args()
    feats = model.critic.encode(obs)
    expected = th.zeros(())
    for b in range(len(obs)):
        probs_b = th.softmax(pi.logits[b], -1)
        p_b = th.softmax(prior.logits[b], -1)
        total = alpha_d * (probs_b * (probs_b.log() - p_b.log())).sum()
        for d in range(4):  # an explicit loop over skills, Eq. 5
            q = model.critic.q_heads(feats[b : b + 1], z[b : b + 1, d])[:, 0, d].min()
            kl_zd = th.distributions.kl_divergence(
                th.distributions.Normal(pi.mean[b, d], pi.log_std[b, d].exp()),
                th.distributions.Normal(prior.mean[b, d], prior.log_std[b, d].exp()),
            ).sum()
            total = total + probs_b[d] * (alpha_z * kl_zd - q)
        expected = expected + total / len(obs)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    assert kl_d.shape == (4,) and kl_z.shape == (4,)


def test_actor_loss_does_not_touch_critic_grads() -> None:
    model = small_model()
    loss, *_ = model._actor_loss(th.eye(3), *model._coefs())
    loss.backward()
    assert all(p.grad is None for p in model.critic.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.actor.parameters())


# ---------------------------------------------------------------------------------------- critic net
@pytest.mark.parametrize("arg_layer", [0, 1, -1])
def test_critic_layout_equals_plain_mlp(arg_layer: int) -> None:
    th.manual_seed(0)
    obs_space = spaces.Box(0, 1, (6,), np.float32)
    critic = SkillCritic(
        MlpStateEncoder(obs_space), n_skills=3, arg_dim=2, net_arch=[8, 8, 8], n_critics=2, arg_layer=arg_layer
    )
    obs, z = th.randn(5, 6), th.randn(5, 3, 2)
    layer = arg_layer % 3

    def plain(e: int, o: th.Tensor, a: th.Tensor) -> th.Tensor:  # the same weights as explicit Linear layers
        x = o
        for i in range(3):
            w, b = critic.weights[i][e], critic.biases[i][e]
            if i == layer:
                x = th.cat([x, a], -1)
                w = th.cat([w, critic.w_arg[e]], 0)
            x = th.relu(x @ w + b)
        return x @ critic.w_out[e] + critic.b_out[e]

    per_skill = critic.q_per_skill(obs, z)
    heads = critic.q_heads(obs, z[:, 1])
    for e in range(2):
        for d in range(3):
            assert th.allclose(per_skill[e, :, d], plain(e, obs, z[:, d])[:, d], atol=1e-5)
        assert th.allclose(heads[e], plain(e, obs, z[:, 1]), atol=1e-5)
    with th.no_grad():  # the in-place no-grad path gives the same values
        assert th.allclose(critic.q_per_skill(obs, z), per_skill, atol=1e-6)


def test_critic_rejects_bad_net_arch() -> None:
    enc = MlpStateEncoder(spaces.Box(0, 1, (4,), np.float32))
    with pytest.raises(ValueError):
        SkillCritic(enc, 3, 2, [])
    with pytest.raises(ValueError):
        SkillCritic(enc, 3, 2, [8], arg_layer=1)


def test_prior_shape_mismatch_is_reported() -> None:
    env = ToySkillEnv(n_skills=4, arg_dim=2)
    wrong = ToySkillEnv(n_skills=5, arg_dim=2).skill_prior
    with pytest.raises(ValueError, match="K=5"):
        SkillSAC("SkillPolicy", env, prior=wrong)


def test_prior_must_be_found() -> None:
    env = ToySkillEnv()
    del env.skill_prior
    with pytest.raises(ValueError, match="skill_prior"):
        SkillSAC("SkillPolicy", env)
    # ... unless given explicitly
    SkillSAC("SkillPolicy", env, prior=ToySkillEnv().skill_prior)
    with pytest.raises(ValueError, match="not both"):
        SkillSAC("SkillPolicy", env, prior=nn.Identity(), policy_kwargs=dict(prior=nn.Identity()))
