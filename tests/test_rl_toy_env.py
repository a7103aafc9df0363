"""ToySkillEnv: the tiny built-in skill-space env used by the RL tests and benchmark."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch as th
from gymnasium.utils.env_checker import check_env as gym_check_env

from skillgym.envs.toy import ToySkillEnv, ToySkillPrior


def optimal_action(env: ToySkillEnv) -> dict:
    return {"skill": env.optimal_skill(), "arg": np.full(env.arg_dim, env.arg_target, np.float32)}


@pytest.mark.parametrize("obs_type", ["state", "pixels"])
def test_gymnasium_check_env(obs_type: str) -> None:
    gym_check_env(ToySkillEnv(obs_type=obs_type), skip_render_check=True)


def test_sb3_check_env() -> None:
    # SB3's checker warns that Dict action spaces are unsupported by SB3's own algorithms; it must not fail.
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(ToySkillEnv(), warn=True)


def test_optimal_return_and_infos() -> None:
    env = ToySkillEnv(max_decisions=7)
    env.reset(seed=3)
    total, steps = 0.0, 0
    while True:
        skill = env.optimal_skill()
        _, r, terminated, truncated, info = env.step(optimal_action(env))
        total += r
        steps += 1
        assert info["skill_steps"] == skill + 1
        assert info["num_completed"] == steps
        assert not terminated
        if truncated:
            break
    assert steps == 7 and total == pytest.approx(7.0)


def test_wrong_skill_and_terminate_skill() -> None:
    env = ToySkillEnv(terminate_skill=3, n_skills=4, n_states=2)
    env.reset(seed=0)
    wrong = (env.optimal_skill() + 1) % 4
    wrong = wrong if wrong != 3 else (wrong + 1) % 4
    _, r, terminated, truncated, _ = env.step({"skill": wrong, "arg": np.zeros(2, np.float32)})
    assert r == 0.0 and not terminated and not truncated
    _, r, terminated, truncated, _ = env.step({"skill": 3, "arg": np.zeros(2, np.float32)})
    assert r == 0.0 and terminated and not truncated


def test_malformed_action_raises() -> None:
    env = ToySkillEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step({"skill": 9, "arg": np.zeros(2, np.float32)})
    with pytest.raises(ValueError):
        env.step({"skill": 0, "arg": np.zeros(3, np.float32)})
    with pytest.raises(ValueError):
        env.step(np.zeros(3))


@pytest.mark.parametrize("obs_type", ["state", "pixels"])
def test_prior_interface(obs_type: str) -> None:
    env = ToySkillEnv(n_skills=5, arg_dim=3, obs_type=obs_type, prior_skill_probs=[0.1, 0.2, 0.3, 0.2, 0.2])
    prior = env.skill_prior
    assert isinstance(prior, ToySkillPrior)
    obs = th.as_tensor(np.stack([env.reset(seed=i)[0] for i in range(4)]))
    logits, mean, log_std = prior(obs)
    assert logits.shape == (4, 5) and mean.shape == (4, 5, 3) and log_std.shape == (4, 5, 3)
    np.testing.assert_allclose(
        th.softmax(logits, -1)[0].detach().numpy(), [0.1, 0.2, 0.3, 0.2, 0.2], rtol=1e-5
    )
    assert th.all(mean == 0) and th.all(log_std == 0)


def test_the_toy_prior_does_not_depend_on_the_global_torch_seed():
    import torch

    from skillgym.envs.toy import ToySkillEnv

    torch.manual_seed(1)
    first = ToySkillEnv(prior_net_arch=[8]).skill_prior.state_dict()
    torch.manual_seed(2)
    second = ToySkillEnv(prior_net_arch=[8]).skill_prior.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
