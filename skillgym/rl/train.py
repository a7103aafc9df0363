"""``skillgym train-rl``: SkillSAC on a skill-space env, budgeted in *low-level* env steps.

Papers compare methods at equal low-level steps, so the budget, the evaluation schedule and the
saved curve are all in low-level steps. Evaluation is deterministic (most likely skill, mean
argument) on separately seeded episodes; the return of SkillKitchen is the number of subtasks
completed in order.

    skillgym train-rl SkillKitchen-v0 --steps 300000 --seed 0 --out runs/rl/seed0
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from tqdm import tqdm

import skillgym  # noqa: F401  (registers the skill envs with gymnasium)
from skillgym import outputs
from skillgym.rl.skill_sac import SkillSAC
from skillgym.rl.utils import keep_freed_memory
from skillgym.spaces import check_skill_action_space


def kl_coefficient(text: str) -> float | str:
    """A KL weight as SkillSAC takes it: a non-negative number, ``auto`` or ``auto_<init>``."""
    if text == "auto" or text.startswith("auto_"):
        try:
            if text != "auto" and float(text[5:]) <= 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"{text!r}: the initial value after auto_ must be a number > 0") from None
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a number nor auto / auto_<init>") from None
    if value < 0:
        raise ValueError(f"a KL coefficient must be >= 0, got {value}")
    return value


@dataclass
class TrainRLArgs:
    """Options of ``skillgym train-rl``; the defaults are the documented SkillSAC setting."""

    env_id: str = "SkillKitchen-v0"
    """gymnasium id of a skill-space env"""
    library: str | None = None
    """skill library folder (default: the env's bundled library)"""
    steps: int = 300_000
    """budget in low-level env steps"""
    seed: int = 0
    """seed of SkillSAC and of the training env (evaluation episodes use other seeds)"""
    out: str = "runs/rl"
    """output folder: curve.json, result.json, the model, TensorBoard logs"""
    alpha_d: float | str = field(default=0.1, metadata={"parse": kl_coefficient})
    """weight of KL(pi_d || p_d): a number, or auto / auto_<init> to tune it towards target_kl_d"""
    alpha_z: float | str = field(default="auto_0.01", metadata={"parse": kl_coefficient})
    """weight of KL(pi_z || p_z): a number, or auto / auto_<init> to tune it towards target_kl_z"""
    target_kl_d: float = 0.5
    """nats of KL_d that an auto alpha_d aims at"""
    target_kl_z: float = 2.5
    """nats of KL_z that an auto alpha_z aims at"""
    gamma: float = 0.995
    """discount per low-level step (or per skill decision with --no-gamma-per-step)"""
    gamma_per_step: bool = True
    """discount a skill by gamma ** (its low-level steps), so faster skills pay"""
    learning_starts: int = 1000
    """skill decisions sampled from the priors before the first gradient step"""
    eval_every: int = 10_000
    """low-level steps between evaluations"""
    eval_episodes: int = 5
    """deterministic evaluation episodes per evaluation"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra keyword arguments of gym.make (Python only)"""

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")

    def skillsac_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`SkillSAC` that these options set."""
        return dict(alpha_d=self.alpha_d, alpha_z=self.alpha_z, target_kl_d=self.target_kl_d,
                    target_kl_z=self.target_kl_z, gamma=self.gamma, gamma_per_step=self.gamma_per_step,
                    learning_starts=self.learning_starts)


# What a run writes into --out: the evaluation curve, the final result, the model (and its save's staging
# folders), TensorBoard logs, which are only ever added to.
RUN_LOGS = ("tb/seed*/events.out.tfevents.*",)
RUN_LAYOUT = ("curve.json", "result.json", "skillsac/*", ".skillsac-*", ".skillsac.old-*", *RUN_LOGS)


def is_run_folder(out: Path) -> bool:
    """Whether skillgym wrote ``out`` as a ``train-rl`` run (finished, or cut after its first evaluation)."""
    if (out / "result.json").exists():
        return outputs.is_marker(out / "result.json", ("args", "final", "curve"))
    return _is_curve(out / "curve.json") or outputs.holds_only(out, RUN_LAYOUT, RUN_LOGS)


def check_run_folder(out: Path) -> None:
    """Stop before training if ``out`` holds a curve, result or model that skillgym did not write (an earlier
    run there is replaced; ``tb/`` is only added to)."""
    outputs.check_output_folder(out, [p for p in RUN_LAYOUT if p not in RUN_LOGS], ours=is_run_folder(out))


def _is_curve(path: Path) -> bool:
    points = outputs.read_marker(path)
    return isinstance(points, list) and bool(points) and all(isinstance(p, dict) and "low_level_steps" in p
                                                             for p in points)


class LowLevelBudget(BaseCallback):
    """Stop at a low-level step budget; evaluate every ``eval_every`` low-level steps."""

    def __init__(self, args: TrainRLArgs, eval_env, curve_path: Path):
        super().__init__()
        self.args, self.eval_env, self.curve_path = args, eval_env, curve_path
        self.next_eval = 0
        self.curve: list[dict[str, float]] = []
        self.start = time.time()
        self.bar = tqdm(total=args.steps, desc=f"SkillSAC seed {args.seed}", unit="step", unit_scale=True)

    def _evaluate(self) -> None:
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.args.eval_episodes,
                                     deterministic=True, return_episode_rewards=True)
        low = int(self.model.num_low_level_steps)
        point = {"low_level_steps": low, "skill_decisions": int(self.model.num_timesteps),
                 "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                 "wall_seconds": time.time() - self.start}
        self.curve.append(point)
        self.logger.record("eval/return_mean", point["return_mean"])
        self.logger.record("eval/return_std", point["return_std"])
        self.curve_path.write_text(json.dumps(self.curve, indent=1) + "\n")
        if self.verbose:
            tqdm.write(f"  eval @ {low} low-level steps: return {point['return_mean']:.2f} ± {point['return_std']:.2f}")

    def _on_step(self) -> bool:
        low = int(self.model.num_low_level_steps)
        self.bar.update(min(low, self.args.steps) - self.bar.n)
        if low >= self.next_eval:
            self._evaluate()
            self.next_eval += self.args.eval_every
        return low < self.args.steps

    def _on_training_end(self) -> None:
        if not self.curve or self.curve[-1]["low_level_steps"] < self.model.num_low_level_steps:
            self._evaluate()
        self.bar.close()


def train_rl(args: TrainRLArgs) -> dict[str, Any]:
    """Train SkillSAC until ``args.steps`` low-level steps; returns what ``result.json`` holds: the options
    (``args``), the last evaluation (``final``) and every evaluation (``curve``)."""
    torch.set_num_threads(1)  # batch-256 updates of small MLPs: more threads only add overhead
    keep_freed_memory()  # a training process: trade held memory for faster updates
    out = Path(args.out)
    check_run_folder(out)
    kwargs = dict(args.env_kwargs)
    if args.library:
        kwargs["library"] = args.library
    try:
        env = gym.make(args.env_id, **kwargs)
    except gym.error.Error as e:
        raise ValueError(f"cannot make {args.env_id!r}: {e}") from e
    try:
        check_skill_action_space(env.action_space)
    except ValueError as e:
        env.close()
        raise ValueError(f"{args.env_id} is not a skill-space env, SkillSAC cannot act in it: {e}") from e
    eval_env = gym.make(args.env_id, **kwargs)
    out.mkdir(parents=True, exist_ok=True)
    eval_env.reset(seed=10_000 + args.seed)  # evaluation episodes never share seeds with training
    model = SkillSAC("SkillPolicy", env, **args.skillsac_kwargs(), seed=args.seed, tensorboard_log=str(out / "tb"),
                     verbose=0)
    budget = LowLevelBudget(args, eval_env, out / "curve.json")
    budget.verbose = 1
    # learn() counts skill decisions; a skill runs >= 1 low-level step, so this bound is never hit
    # before the low-level budget stops training.
    model.learn(total_timesteps=args.steps, callback=budget, tb_log_name=f"seed{args.seed}")
    model.save(out / "skillsac")
    result = {"args": asdict(args), "final": budget.curve[-1], "curve": budget.curve}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


