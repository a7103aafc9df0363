"""CleanRL-style SAC on a skill env's flat action space, written for gymnasium >= 1.0 vector envs.

One env step of ``FlattenSkillAction(gym.make("SkillKitchen-v0"))`` is one skill decision: the budget
counts decisions, and the low-level steps the skills ran are summed from ``infos["skill_steps"]``.
Gymnasium >= 1.0 vector envs autoreset on the step *after* an episode ends (the ``next_obs`` returned
with ``terminated``/``truncated`` is the episode's last one; the next step resets that env and ignores
its action), so the transition of that reset step is not stored: no transition mixes two episodes.

    python examples/cleanrl_sac_skill.py --total-timesteps 20000 --seed 1
"""

import argparse
import copy
import dataclasses
import random
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.buffers import ReplayBuffer
from torch import nn

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.envs import FlattenSkillAction


@dataclass
class Args:
    env_id: str = "SkillKitchen-v0"
    """id of a skill env (action space Dict(skill, arg)); the agent acts on its flat Box view"""
    library: str = ""
    """skill library folder or bundled name for the env (empty: the env's own)"""
    seed: int = 1
    """seed of random, numpy, torch and the envs"""
    torch_deterministic: bool = True
    """sets `torch.backends.cudnn.deterministic`"""
    total_timesteps: int = 20_000
    """budget in env steps (skill decisions), summed over the vector envs"""
    num_envs: int = 1
    """number of envs in the SyncVectorEnv"""
    buffer_size: int = 100_000
    """replay buffer capacity in transitions"""
    gamma: float = 0.99
    """discount per skill decision"""
    tau: float = 0.005
    """target network smoothing coefficient"""
    batch_size: int = 256
    """batch size of the updates"""
    learning_starts: int = 1_000
    """env steps of uniformly random actions before the first update"""
    policy_lr: float = 3e-4
    """learning rate of the actor and of the entropy coefficient"""
    q_lr: float = 1e-3
    """learning rate of the Q networks"""
    alpha: float = 0.2
    """entropy coefficient (its initial value when autotuned)"""
    autotune: bool = True
    """tune the entropy coefficient towards the target entropy -dim(A)"""


def parse_args() -> Args:
    """Args from the command line: one flag per field of `Args`, e.g. `--total-timesteps`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


def make_env(env_id: str, seed: int, library: str = ""):
    def thunk():
        env = FlattenSkillAction(gym.make(env_id, **({"library": library} if library else {})))
        env.action_space.seed(seed)
        return env

    return thunk


def mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, out_dim))


class SoftQNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], 1)).view(-1)


LOG_STD_MIN, LOG_STD_MAX = -5, 2


class Actor(nn.Module):
    def __init__(self, obs_dim: int, space: gym.spaces.Box):
        super().__init__()
        self.net = mlp(obs_dim, 2 * space.shape[0])  # mean and log std
        self.register_buffer("action_scale", torch.as_tensor((space.high - space.low) / 2.0))
        self.register_buffer("action_bias", torch.as_tensor((space.high + space.low) / 2.0))

    def get_action(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A tanh-squashed Gaussian sample in the action box and its log-probability."""
        mean, log_std = self.net(obs).chunk(2, dim=1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        normal = torch.distributions.Normal(mean, log_std.exp())
        x = normal.rsample()
        y = torch.tanh(x)
        log_prob = normal.log_prob(x) - torch.log(self.action_scale * (1 - y.pow(2)) + 1e-6)
        return y * self.action_scale + self.action_bias, log_prob.sum(1)


def main(args: Args) -> dict:
    """Train; returns the finished episodes' returns, the env steps and the low-level steps."""
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    envs = gym.vector.SyncVectorEnv([make_env(args.env_id, args.seed + i, args.library) for i in range(args.num_envs)])
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs.action_space.seed(args.seed)
    obs_dim, act_dim = int(np.prod(envs.single_observation_space.shape)), envs.single_action_space.shape[0]

    actor = Actor(obs_dim, envs.single_action_space).to(device)
    qf1, qf2 = SoftQNetwork(obs_dim, act_dim).to(device), SoftQNetwork(obs_dim, act_dim).to(device)
    qf1_target, qf2_target = copy.deepcopy(qf1), copy.deepcopy(qf2)
    q_optimizer = torch.optim.Adam([*qf1.parameters(), *qf2.parameters()], lr=args.q_lr)
    actor_optimizer = torch.optim.Adam(actor.parameters(), lr=args.policy_lr)
    log_alpha = torch.tensor([np.log(args.alpha)], dtype=torch.float32, device=device, requires_grad=True)
    alpha_optimizer = torch.optim.Adam([log_alpha], lr=args.policy_lr)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)  # stored as float32
    rb = ReplayBuffer(args.buffer_size, obs_space, envs.single_action_space, device,
                      handle_timeout_termination=False)

    env_steps = args.total_timesteps // args.num_envs * args.num_envs
    start_time, low_level_steps, episodic_returns = time.time(), 0, []
    obs, _ = envs.reset(seed=args.seed)
    autoreset = np.zeros(args.num_envs, dtype=bool)  # envs that the coming step resets
    for global_step in range(0, env_steps, args.num_envs):
        if global_step < args.learning_starts:
            actions = envs.action_space.sample()
        else:
            with torch.no_grad():
                actions, _ = actor.get_action(torch.as_tensor(obs, dtype=torch.float32, device=device))
            actions = actions.cpu().numpy()

        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        low_level_steps += int(np.sum(infos.get("skill_steps", 0)))  # 0 for an env that was reset
        for i in np.flatnonzero(infos.get("_episode", [])):
            episodic_returns.append(float(infos["episode"]["r"][i]))
            print(f"env_steps={global_step + args.num_envs}, low_level_steps={low_level_steps}, "
                  f"episodic_return={episodic_returns[-1]:.2f}")
        # An episode's last next_obs is a real observation (it bootstraps truncated episodes); the
        # step after it only resets the env, so its obs -> next_obs would span two episodes.
        for i in np.flatnonzero(~autoreset):
            rb.add(obs[i], next_obs[i], actions[i], rewards[i], terminations[i], [{}])
        obs, autoreset = next_obs, np.logical_or(terminations, truncations)
        if global_step < args.learning_starts:
            continue

        data = rb.sample(args.batch_size)
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            next_actions, next_log_pi = actor.get_action(data.next_observations)
            next_q = torch.min(qf1_target(data.next_observations, next_actions),
                               qf2_target(data.next_observations, next_actions)) - alpha * next_log_pi
            q_target = data.rewards.view(-1) + (1 - data.dones.view(-1)) * args.gamma * next_q
        qf_loss = F.mse_loss(qf1(data.observations, data.actions), q_target) + \
            F.mse_loss(qf2(data.observations, data.actions), q_target)
        q_optimizer.zero_grad()
        qf_loss.backward()
        q_optimizer.step()

        pi, log_pi = actor.get_action(data.observations)
        min_q_pi = torch.min(qf1(data.observations, pi), qf2(data.observations, pi))
        actor_loss = (alpha * log_pi - min_q_pi).mean()
        actor_optimizer.zero_grad()
        actor_loss.backward()
        actor_optimizer.step()
        if args.autotune:  # target entropy -dim(A)
            alpha_loss = -(log_alpha * (log_pi.detach() - act_dim)).mean()
            alpha_optimizer.zero_grad()
            alpha_loss.backward()
            alpha_optimizer.step()

        with torch.no_grad():
            for net, target in ((qf1, qf1_target), (qf2, qf2_target)):
                for param, target_param in zip(net.parameters(), target.parameters(), strict=True):
                    target_param.lerp_(param, args.tau)

    print(f"env_steps={env_steps}, low_level_steps={low_level_steps}, episodes={len(episodic_returns)}, "
          f"SPS={int(env_steps / (time.time() - start_time))}")
    envs.close()
    return {"episodic_returns": episodic_returns, "env_steps": env_steps, "low_level_steps": low_level_steps}


if __name__ == "__main__":
    main(parse_args())
