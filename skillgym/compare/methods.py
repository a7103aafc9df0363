"""The methods ``skillgym compare`` runs: how each builds its env and its agent.

All of them act in the same kitchen task (an ordered list of subtasks, 280 low-level steps, +1 per
subtask completed in order) and are budgeted in low-level env steps:

=================  ===================================================================================
``extract``        SkillSAC in a skill library's space (``SkillKitchen-v0``; any ``--library``)
``spirl``          SPiRL-style fixed 10-step skills, z in R^10, closed-loop decoder, Gaussian prior
                   p(z|s), trained on the comparison's data; SkillSAC with one skill = SAC in z with
                   KL to that prior (:mod:`skillgym.baselines.spirl`)
``sac``            stock SB3 SAC on the low-level task (9-d actions)
``bc``             SB3 SAC's actor trained on the data by maximum likelihood, evaluated as it is
``bc+sac``         SAC whose actor starts from ``bc``
``flat-skill-sac`` stock SB3 SAC on ``FlattenSkillAction(SkillKitchen-v0)``: the same skills, no priors
``flat-skill-tqc`` sb3-contrib TQC on the same flat skill space
=================  ===================================================================================
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from skillgym.baselines.bc import BCArgs, anchor_entropy, pretrain_actor
from skillgym.baselines.spirl import make_spirl_env, spirl_skillsac_kwargs
from skillgym.compare.run import RunSpec
from skillgym.envs.flatten import FlattenSkillAction
from skillgym.envs.skill_kitchen import make_skill_kitchen
from skillgym.rl.skill_sac import SkillSAC
from skillgym.rl.train import TrainRLArgs, short_warm_up
from skillgym.tasks.kitchen import KitchenTaskEnv, task_order


@dataclass(frozen=True)
class Method:
    """How a method builds its env and agent; ``pretrain`` runs before the first env step."""

    make_env: Callable[[RunSpec], gym.Env]
    make_model: Callable[[RunSpec, gym.Env, str], BaseAlgorithm]
    uses: str | None = None
    """what it needs besides the task: "library" (a skill library), "spirl" (the SPiRL library trained
    on the data) or "data" (the demonstrations)"""
    pretrain: Callable[[RunSpec, BaseAlgorithm], None] | None = None
    online: bool = True
    """False: never steps the env to learn (evaluated once)"""


def skill_kitchen(settings: RunSpec) -> gym.Env:
    """``SkillKitchen-v0`` on the run's task, in the run's library ("default": the bundled one)."""
    return make_skill_kitchen(library=settings.library, tasks=task_order(settings.task))


def flat_skill_kitchen(settings: RunSpec) -> gym.Env:
    """The same skill space as one flat ``Box``, for stock agents."""
    return FlattenSkillAction(skill_kitchen(settings))


def spirl_kitchen(settings: RunSpec) -> gym.Env:
    """The task in the SPiRL library's space: every skill runs its 10 steps."""
    assert settings.library is not None
    return make_spirl_env(settings.library, tasks=task_order(settings.task))


def low_level_kitchen(settings: RunSpec) -> gym.Env:
    """The low-level task: 9-d joint actions, 280 steps."""
    return KitchenTaskEnv(tasks=task_order(settings.task))


def agent_kwargs(settings: RunSpec) -> dict[str, Any]:
    """A copy of the run's agent settings: SB3 adds keys to a ``policy_kwargs`` it is given, which would make the
    same settings look changed to the next run of this process."""
    return copy.deepcopy(settings.agent_kwargs)


def _skillsac(settings: RunSpec, env: gym.Env, tensorboard_log: str, **method_kwargs) -> SkillSAC:
    kwargs = {**TrainRLArgs().skillsac_kwargs(), **method_kwargs}
    kwargs["learning_starts"] = short_warm_up(settings.steps, env.get_wrapper_attr("max_skill_steps"),
                                              kwargs["learning_starts"])
    return SkillSAC("SkillPolicy", env, **{**kwargs, **agent_kwargs(settings)}, seed=settings.seed,
                    tensorboard_log=tensorboard_log)


def skillsac(settings: RunSpec, env: gym.Env, tensorboard_log: str) -> BaseAlgorithm:
    """SkillSAC with ``skillgym train-rl``'s settings (its warm-up shortened for small budgets)."""
    return _skillsac(settings, env, tensorboard_log)


def spirl_skillsac(settings: RunSpec, env: gym.Env, tensorboard_log: str) -> BaseAlgorithm:
    """SkillSAC with one skill: SAC in z with KL to p(z|s), the target scaled to the size of z."""
    return _skillsac(settings, env, tensorboard_log, **spirl_skillsac_kwargs(env.action_space["arg"].shape[0]))


def sac(settings: RunSpec, env: gym.Env, tensorboard_log: str) -> BaseAlgorithm:
    """Stock SB3 SAC."""
    return SAC("MlpPolicy", env, **agent_kwargs(settings), seed=settings.seed, tensorboard_log=tensorboard_log)


def tqc(settings: RunSpec, env: gym.Env, tensorboard_log: str) -> BaseAlgorithm:
    """Stock sb3-contrib TQC."""
    return TQC("MlpPolicy", env, **agent_kwargs(settings), seed=settings.seed, tensorboard_log=tensorboard_log)


def behaviour_cloning(settings: RunSpec, model: BaseAlgorithm) -> dict[str, float]:
    """Train the SAC actor on the demonstrations; returns the BC metrics."""
    assert settings.dataset is not None and isinstance(model, SAC)
    return pretrain_actor(model, BCArgs(dataset=settings.dataset, steps=settings.bc_steps, seed=settings.seed, progress=False))


def behaviour_cloning_for_sac(settings: RunSpec, model: BaseAlgorithm) -> None:
    """BC, then SAC's entropy tuning aimed at the cloned policy's entropy (see ``anchor_entropy``)."""
    anchor_entropy(model, behaviour_cloning(settings, model)["entropy"])


METHODS: dict[str, Method] = {
    "extract": Method(skill_kitchen, skillsac, uses="library"),
    "spirl": Method(spirl_kitchen, spirl_skillsac, uses="spirl"),
    "sac": Method(low_level_kitchen, sac),
    "bc": Method(low_level_kitchen, sac, uses="data", pretrain=behaviour_cloning, online=False),
    "bc+sac": Method(low_level_kitchen, sac, uses="data", pretrain=behaviour_cloning_for_sac),
    "flat-skill-sac": Method(flat_skill_kitchen, sac, uses="library"),
    "flat-skill-tqc": Method(flat_skill_kitchen, tqc, uses="library"),
}
# Shorthands a user may name in --methods.
METHOD_GROUPS = {"flat-skill": ("flat-skill-sac", "flat-skill-tqc"),
                 "all": tuple(METHODS)}
