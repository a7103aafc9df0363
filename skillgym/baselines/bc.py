"""Behaviour cloning into a Stable-Baselines3 SAC actor: the ``bc`` and ``bc+sac`` baselines.

:func:`pretrain_actor` fits ``model.actor`` (SB3's tanh-squashed Gaussian, its own network) to the
dataset's ``(state, action)`` pairs by maximum likelihood. The caller then evaluates the actor as it is
(``bc``) or continues with ``model.learn`` (``bc+sac``); :func:`anchor_entropy` makes SAC's entropy
tuning keep the cloned policy's spread instead of widening it to SB3's default target.

Example (three 30-step episodes of kitchen-sized states whose actions follow the state; a recording
such as ``runs/kitchen/data`` is what one clones from):
    >>> import tempfile
    >>> from pathlib import Path
    >>> from stable_baselines3 import SAC
    >>> from skillgym.data.dataset import Episode, write_minari_dataset
    >>> from skillgym.tasks.kitchen import KitchenTaskEnv
    >>> rng = np.random.default_rng(0)
    >>> states = [rng.normal(size=(31, 59)) for _ in range(3)]
    >>> episodes = [Episode(states=s, actions=np.tanh(s[:-1, :9])) for s in states]
    >>> data = write_minari_dataset(Path(tempfile.mkdtemp()) / "data", [episodes])
    >>> model = SAC("MlpPolicy", KitchenTaskEnv(), seed=0)
    >>> metrics = pretrain_actor(model, BCArgs(dataset=str(data), steps=100, progress=False))
    >>> metrics["heldout_action_mse"] < metrics["untrained_heldout_action_mse"]
    True
    >>> anchor_entropy(model, metrics["entropy"])  # bc+sac only
    >>> model.learn(300_000)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.sac.policies import Actor
from tqdm import tqdm

from skillgym.data.dataset import open_dataset

# Dataset actions on the bound (the kitchen gripper is always at +-1) have no finite pre-tanh value.
ACTION_CLIP = 1.0 - 1e-6
HELDOUT_FRACTION = 0.1
EVAL_BATCH = 4096
LOG_EVERY = 100


@dataclass
class BCArgs:
    """Options of behaviour cloning into a SAC actor."""

    dataset: str
    """skillgym dataset folder whose states are the env's observations"""
    steps: int = 20_000
    """gradient steps"""
    batch_size: int = 256
    """(state, action) pairs per gradient step"""
    lr: float = 3e-4
    """Adam learning rate (SAC's own)"""
    seed: int = 0
    """seed of the held-out split, the minibatches and the entropy estimate; with the same model and one
    torch thread, a run repeats exactly"""
    progress: bool = True
    """show a progress bar"""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"steps and batch_size must be >= 1 and lr > 0, got {self.steps}, "
                             f"{self.batch_size}, {self.lr}")


def pretrain_actor(model: SAC, args: BCArgs) -> dict[str, float]:
    """Fit ``model.actor`` to the dataset's actions by maximum likelihood; the critic is left as it is.

    A seeded 10 % of the episodes is held out. Actions are scaled to the actor's
    ``[-1, 1]`` with the model's action space, like SB3 does for its own actions.

    Returns:
        ``train_nll`` and ``heldout_nll`` (mean negative log-likelihood per pair after training),
        ``heldout_action_mse`` of the deterministic action before (``untrained_heldout_action_mse``) and
        after training, and ``entropy``: the trained policy's entropy estimate ``-E[log pi(a|s)]`` on the
        held-out states, in SAC's own units (see :func:`anchor_entropy`). Held-out metrics use the training
        episodes when the dataset has a single episode.
    """
    rng = np.random.default_rng(args.seed)
    generator = th.Generator(device=model.device).manual_seed(args.seed)
    dataset = open_dataset(args.dataset)
    obs_shape = model.observation_space.shape
    if (dataset.state_dim,) != obs_shape:
        raise ValueError(f"{dataset.path} holds {dataset.state_dim}-d states but the model observes {obs_shape}: "
                         "behaviour cloning needs the dataset's states to be the env's observations")
    order = rng.permutation(len(dataset))
    n_heldout = min(max(round(HELDOUT_FRACTION * len(dataset)), 1), len(dataset) - 1)
    train_obs, train_act = _pairs(model, dataset, np.sort(order[n_heldout:]))
    val_obs, val_act = _pairs(model, dataset, np.sort(order[:n_heldout])) if n_heldout else (train_obs, train_act)
    dataset.close()

    actor = model.actor
    optimizer = th.optim.Adam(actor.parameters(), lr=args.lr)
    untrained_mse = _action_mse(actor, val_obs, val_act)
    actor.set_training_mode(True)
    bar = tqdm(range(args.steps), desc="behaviour cloning", disable=not args.progress)
    for step in bar:
        idx = th.from_numpy(rng.integers(0, len(train_obs), size=args.batch_size)).to(model.device)
        nll = -_log_prob(actor, train_obs[idx], train_act[idx]).mean()
        optimizer.zero_grad(set_to_none=True)
        nll.backward()
        optimizer.step()
        if (step + 1) % LOG_EVERY == 0:
            bar.set_postfix(nll=f"{nll.item():.3f}")
    actor.set_training_mode(False)
    return {
        "train_nll": _mean_nll(actor, train_obs, train_act),
        "heldout_nll": _mean_nll(actor, val_obs, val_act),
        "untrained_heldout_action_mse": untrained_mse,
        "heldout_action_mse": _action_mse(actor, val_obs, val_act),
        "entropy": _entropy(actor, val_obs, generator),
    }


def anchor_entropy(model: SAC, entropy: float, ent_coef: float = 0.01) -> None:
    """Prepare a behaviour-cloned SAC for fine-tuning (``bc+sac``): aim the automatic entropy tuning at
    the cloned policy's own ``entropy`` (from :func:`pretrain_actor`) and start its coefficient at
    ``ent_coef``.

    Why: SB3's default target, ``-dim(A)``, lies far above the entropy of a policy cloned from
    near-deterministic demonstrations, so the tuning would raise the coefficient and SAC would widen the
    cloned policy until it no longer does the demonstrated subtasks: the comparison would measure the
    target, not the pretraining. ``ent_coef = 0.01`` is the initial KL weight of SkillSAC (``auto_0.01``),
    so both start from the same regularisation strength against the same 0/1 subtask rewards.
    Needs ``SAC(..., ent_coef="auto")`` (the default).
    """
    if model.ent_coef_optimizer is None or model.log_ent_coef is None:
        raise ValueError("anchor_entropy needs SAC(..., ent_coef='auto' or 'auto_<init>'), the entropy is tuned")
    if not (math.isfinite(entropy) and ent_coef > 0):
        raise ValueError(f"entropy must be finite and ent_coef > 0, got {entropy}, {ent_coef}")
    model.target_entropy = float(entropy)
    with th.no_grad():
        model.log_ent_coef.fill_(math.log(ent_coef))


def _pairs(model: SAC, dataset, episodes: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
    """States ``s_t`` and actions ``a_t`` of ``episodes``, actions scaled to [-1, 1] and clipped inside."""
    states, actions = [], []
    for e in episodes:
        ep = dataset.episode(int(e), frames=False)
        states.append(ep.states[:-1])
        actions.append(ep.actions)
    obs = np.concatenate(states).astype(np.float32)
    act = np.clip(model.policy.scale_action(np.concatenate(actions).astype(np.float32)), -ACTION_CLIP, ACTION_CLIP)
    return th.from_numpy(obs).to(model.device), th.from_numpy(act.astype(np.float32)).to(model.device)


def _log_prob(actor: Actor, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    mean, log_std, kwargs = actor.get_action_dist_params(obs)
    return actor.action_dist.proba_distribution(mean, log_std, **kwargs).log_prob(actions)


@th.no_grad()
def _mean_nll(actor: Actor, obs: th.Tensor, actions: th.Tensor) -> float:
    total = sum(-_log_prob(actor, obs[i:i + EVAL_BATCH], actions[i:i + EVAL_BATCH]).sum().item()
                for i in range(0, len(obs), EVAL_BATCH))
    return total / len(obs)


@th.no_grad()
def _action_mse(actor: Actor, obs: th.Tensor, actions: th.Tensor) -> float:
    total = 0.0
    for i in range(0, len(obs), EVAL_BATCH):
        predicted = actor(obs[i:i + EVAL_BATCH], deterministic=True)
        total += ((predicted - actions[i:i + EVAL_BATCH]) ** 2).mean(1).sum().item()
    return total / len(obs)


@th.no_grad()
def _entropy(actor: Actor, obs: th.Tensor, generator: th.Generator) -> float:
    mean, log_std, kwargs = actor.get_action_dist_params(obs)
    gaussian = mean + th.exp(log_std) * th.randn(mean.shape, generator=generator, device=mean.device)
    dist = actor.action_dist.proba_distribution(mean, log_std, **kwargs)
    return -dist.log_prob(th.tanh(gaussian), gaussian).mean().item()

