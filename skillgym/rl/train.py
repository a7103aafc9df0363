"""``skillgym train-rl``: SkillSAC on a skill-space env, budgeted in *low-level* env steps.

Papers compare methods at equal low-level steps, so the budget, the evaluation schedule and the
saved curve are all in low-level steps. Evaluation is deterministic (most likely skill, mean
argument) on separately seeded episodes; the return of SkillKitchen is the number of subtasks
completed in order.

    skillgym train-rl SkillKitchen-v0 --steps 300000 --seed 0 --out runs/rl/seed0
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm


@dataclass
class TrainRLArgs:
    env_id: str = "SkillKitchen-v0"
    library: str | None = None  # None: the env's bundled library
    steps: int = 300_000  # low-level env steps
    seed: int = 0
    out: str = "runs/rl"
    alpha_d: float | str = 0.1  # a float, or "auto"/"auto_<init>": tuned towards target_kl_d
    alpha_z: float | str = 0.01  # a float, or "auto"/"auto_<init>": tuned towards target_kl_z
    target_kl_d: float = 0.5
    target_kl_z: float = 2.0
    gamma: float = 0.99  # per skill decision, or per low-level step with gamma_per_step
    gamma_per_step: bool = False  # discount a skill by gamma**skill_steps (the env is made with this gamma)
    prior_uniform_mix: float = 0.0  # KL_d is taken to (1 - mix) * p_d + mix / K (SkillPolicy)
    learning_starts: int = 1000  # skill decisions sampled from the prior first
    eval_every: int = 10_000  # low-level steps between evaluations
    eval_episodes: int = 5
    threads: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)


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
        from stable_baselines3.common.evaluation import evaluate_policy

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
    """Train SkillSAC until ``args.steps`` low-level steps; returns the final evaluation."""
    import gymnasium as gym
    import torch

    import skillgym  # noqa: F401  (registers the envs)
    from skillgym.rl.skill_sac import SkillSAC
    from skillgym.rl.utils import keep_freed_memory

    torch.set_num_threads(args.threads)
    keep_freed_memory()  # a training process: trade held memory for ~25 % faster updates
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(args.env_kwargs)
    if args.library:
        kwargs["library"] = args.library
    if args.gamma_per_step:
        kwargs["gamma"] = args.gamma  # the env's within-skill discount must match SkillSAC's
    env = gym.make(args.env_id, **kwargs)
    eval_env = gym.make(args.env_id, **kwargs)
    eval_env.reset(seed=10_000 + args.seed)  # evaluation episodes never share seeds with training
    model = SkillSAC("SkillPolicy", env, alpha_d=args.alpha_d, alpha_z=args.alpha_z,
                     target_kl_d=args.target_kl_d, target_kl_z=args.target_kl_z,
                     gamma=args.gamma, gamma_per_step=args.gamma_per_step,
                     policy_kwargs={"prior_uniform_mix": args.prior_uniform_mix},
                     learning_starts=args.learning_starts, seed=args.seed, tensorboard_log=str(out / "tb"),
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


def kl_coefficient(text: str) -> float | str:
    """argparse type of --alpha-d/--alpha-z: a non-negative number, ``auto`` or ``auto_<init>``."""
    if text == "auto" or text.startswith("auto_"):
        try:
            if text != "auto" and float(text[5:]) <= 0:
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: the initial value after auto_ must be a number > 0") from None
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor auto / auto_<init>") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a KL coefficient must be >= 0, got {value}")
    return value


def add_skillsac_arguments(p: argparse.ArgumentParser) -> None:
    """The SkillSAC flags of TrainRLArgs (KL weights, discount, prior mix), shared by every RL script."""
    d = TrainRLArgs()
    p.add_argument("--alpha-d", type=kl_coefficient, default=d.alpha_d,
                   help="weight of KL(pi_d || p_d): a number, or auto / auto_<init> to tune it to --target-kl-d")
    p.add_argument("--alpha-z", type=kl_coefficient, default=d.alpha_z,
                   help="weight of KL(pi_z || p_z): a number, or auto / auto_<init> to tune it to --target-kl-z")
    p.add_argument("--target-kl-d", type=float, default=d.target_kl_d, help="nats, for --alpha-d auto")
    p.add_argument("--target-kl-z", type=float, default=d.target_kl_z, help="nats, for --alpha-z auto")
    p.add_argument("--gamma", type=float, default=d.gamma,
                   help="discount per skill decision, or per low-level step with --gamma-per-step")
    p.add_argument("--gamma-per-step", action="store_true",
                   help="discount a skill transition by gamma**(its low-level steps): faster skills pay")
    p.add_argument("--prior-uniform-mix", type=float, default=d.prior_uniform_mix,
                   help="mix the skill prior with uniform by this weight before the KL (0: the prior as is)")


def add_train_rl_parser(subparsers) -> argparse.ArgumentParser:
    d = TrainRLArgs()
    p = subparsers.add_parser("train-rl", help="stage 3: SkillSAC on a skill-space env")
    p.add_argument("env_id", nargs="?", default=d.env_id, help=f"gymnasium id (default {d.env_id})")
    p.add_argument("--library", default=None, help="skill library folder (default: the env's bundled one)")
    p.add_argument("--steps", type=int, default=d.steps, help="budget in low-level env steps")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out)
    add_skillsac_arguments(p)
    p.add_argument("--learning-starts", type=int, default=d.learning_starts)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--eval-episodes", type=int, default=d.eval_episodes)

    def run(ns: argparse.Namespace) -> int:
        for name in ("steps", "eval_every", "eval_episodes"):
            if getattr(ns, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(ns, name)}")
        result = train_rl(TrainRLArgs(env_id=ns.env_id, library=ns.library, steps=ns.steps, seed=ns.seed,
                                      out=ns.out, alpha_d=ns.alpha_d, alpha_z=ns.alpha_z,
                                      target_kl_d=ns.target_kl_d, target_kl_z=ns.target_kl_z,
                                      gamma=ns.gamma, gamma_per_step=ns.gamma_per_step,
                                      prior_uniform_mix=ns.prior_uniform_mix,
                                      learning_starts=ns.learning_starts, eval_every=ns.eval_every,
                                      eval_episodes=ns.eval_episodes))
        print(json.dumps(result["final"], indent=2))
        return 0

    p.set_defaults(func=run)
    return p
