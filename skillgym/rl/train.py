"""``skillgym train-rl``: SkillSAC on a skill-space env, budgeted in *low-level* env steps.

Papers compare methods at equal low-level steps, so the budget, the evaluation schedule and the
saved curve are all in low-level steps. Evaluation is deterministic (most likely skill, mean
argument) on separately seeded episodes; the return of SkillKitchen is the number of subtasks
completed in order.

At the end of the episode in which an evaluation falls, the whole training state goes to
``checkpoint/`` (:mod:`skillgym.rl.checkpoint`, with the env's last reset from
:class:`~skillgym.envs.RepeatableReset`). The same command run again continues from there, to the
result an uninterrupted run gives, a larger ``--steps`` takes a finished run further, and a finished
run asked for again is left as it is. A run with other options, or another library, is never replaced:
the command stops and says so.

    skillgym train-rl SkillKitchen-v0 --steps 300000 --seed 0 --out runs/rl/seed0
"""

from __future__ import annotations

import json
import math
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
from skillgym.envs.repeatable_reset import RepeatableReset, generator_states, restore_generators
from skillgym.rl.checkpoint import (
    CheckpointError,
    checkpoint_folder,
    load_training_state,
    policy_digest,
    same_observation,
    save_training_state,
    saved_extra,
)
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
    if not 0 <= value < math.inf:
        raise ValueError(f"a KL coefficient must be a finite number >= 0, got {value}")
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
    """output folder: curve.json, result.json, the model, TensorBoard logs, the checkpoint a rerun continues from"""
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
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be >= 0 (and < 2**32), got {self.seed}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        for name in ("target_kl_d", "target_kl_z"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a finite number of nats >= 0, got {getattr(self, name)}")

    def skillsac_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`SkillSAC` that these options set."""
        return dict(alpha_d=self.alpha_d, alpha_z=self.alpha_z, target_kl_d=self.target_kl_d,
                    target_kl_z=self.target_kl_z, gamma=self.gamma, gamma_per_step=self.gamma_per_step,
                    learning_starts=self.learning_starts)


# The most of a small budget that SkillSAC's warm-up (decisions sampled from the priors before the first
# gradient step) may take, counted at the library's longest skill, so that a short run still trains its agent.
# At 300k steps and 30-step skills it is the documented 1000 decisions.
WARM_UP_SHARE = 0.1


def short_warm_up(steps: int, longest_skill: int, learning_starts: int = TrainRLArgs.learning_starts) -> int:
    """``learning_starts`` decisions, or fewer if they would take more than ``WARM_UP_SHARE`` of ``steps``
    low-level steps at ``longest_skill`` steps each.

    Example:
        >>> short_warm_up(300_000, 30), short_warm_up(50_000, 30), short_warm_up(20_000, 30)
        (1000, 166, 66)
    """
    return min(learning_starts, int(WARM_UP_SHARE * steps / longest_skill))


# What a run writes into --out: the evaluation curve, the final result, the model (and its save's staging
# folders), the checkpoint (and its swap's), TensorBoard logs, which are only ever added to.
RUN_CHECKPOINT = "checkpoint"
RUN_LOGS = ("tb/seed*/events.out.tfevents.*",)
RUN_LAYOUT = ("curve.json", "result.json", "skillsac/*", ".skillsac-*", ".skillsac.old-*",
              f"{RUN_CHECKPOINT}/*", f"{RUN_CHECKPOINT}.new/*", f"{RUN_CHECKPOINT}.old/*", *RUN_LOGS)
# Options that may differ between a run and its continuation. The library may be spelled another way: the
# policy it gives the model is compared instead.
CONTINUABLE_CHANGES = ("steps", "out", "library")


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
    """Stop at a low-level step budget; evaluate every ``eval_every`` low-level steps and checkpoint at
    the end of that episode.

    SB3 calls ``on_rollout_start`` after the previous env step was stored and trained on and before
    the next one: when that step ended an episode, nothing of the run is in flight.
    """

    def __init__(self, args: TrainRLArgs, train_env: RepeatableReset, eval_env: gym.Env, initial_policy: str,
                 resumed: dict[str, Any] | None = None, resumed_obs: Any = None):
        super().__init__()
        self.args, self.train_env, self.eval_env = args, train_env, eval_env
        self.out, self.initial_policy, self.resumed_obs = Path(args.out), initial_policy, resumed_obs
        self.curve: list[dict[str, float]] = resumed["curve"] if resumed else []
        self.next_eval = resumed["next_eval"] if resumed else 0
        self.wall_before, self.start = (resumed["wall_seconds"] if resumed else 0.0), time.time()
        self.between_episodes, self.checkpoint_due = True, False  # learn() starts with a reset
        done = resumed["low_level_steps"] if resumed else 0
        self.bar = tqdm(total=args.steps, initial=min(done, args.steps), desc=f"SkillSAC seed {args.seed}",
                        unit="step", unit_scale=True)

    def _evaluate(self) -> None:
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.args.eval_episodes,
                                     deterministic=True, return_episode_rewards=True)
        low = int(self.model.num_low_level_steps)
        point = {"low_level_steps": low, "skill_decisions": int(self.model.num_timesteps),
                 "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                 "wall_seconds": self.wall_before + time.time() - self.start}
        self.curve.append(point)
        self.logger.record("eval/return_mean", point["return_mean"])
        self.logger.record("eval/return_std", point["return_std"])
        (self.out / "curve.json").write_text(json.dumps(self.curve, indent=1) + "\n")
        if self.verbose:
            tqdm.write(f"  eval @ {low} low-level steps: return {point['return_mean']:.2f} ± {point['return_std']:.2f}")

    def _checkpoint(self) -> None:
        save_training_state(self.model, self.out / RUN_CHECKPOINT, extra={
            "args": asdict(self.args), "initial_policy": self.initial_policy,
            "low_level_steps": int(self.model.num_low_level_steps), "curve": self.curve,
            "next_eval": self.next_eval, "wall_seconds": self.wall_before + time.time() - self.start,
            "train_reset": self.train_env.last_reset, "eval_generators": generator_states(self.eval_env)})

    def _on_training_start(self) -> None:
        if self.resumed_obs is not None and not same_observation(self.model._last_obs, self.resumed_obs):
            raise RuntimeError(f"{self.out}: the env does not restart where the checkpoint stopped; did the env "
                               "change since?")

    def _on_step(self) -> bool:
        low = int(self.model.num_low_level_steps)
        self.bar.update(min(low, self.args.steps) - self.bar.n)
        self.between_episodes = bool(self.locals["dones"][0])
        if low >= self.next_eval:
            self._evaluate()
            self.next_eval += self.args.eval_every
            self.checkpoint_due = True
        return low < self.args.steps

    def _on_rollout_start(self) -> None:
        if self.checkpoint_due and self.between_episodes:
            self._checkpoint()
            self.checkpoint_due = False

    def _on_training_end(self) -> None:
        if not self.curve or self.curve[-1]["low_level_steps"] < self.model.num_low_level_steps:
            self._evaluate()
        self.bar.close()


def _start_over(out: Path) -> str:
    return f"delete {out / RUN_CHECKPOINT} to start the run over"


def _not_replaced(out: Path, what: str) -> FileExistsError:
    return FileExistsError(f"{out} holds a train-rl run {what}; pick another --out, or delete {out} to start "
                           "that run over")


def _earlier_run(args: TrainRLArgs) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The run in ``args.out`` that these options continue or ask for again: its checkpoint's ``extra``
    (None if it has none) and its ``result.json`` (None if unfinished). :class:`FileExistsError` for a
    run they would replace, :class:`CheckpointError` for a checkpoint that cannot be read."""
    out = Path(args.out)
    saved = None
    if checkpoint_folder(out / RUN_CHECKPOINT) is not None:
        try:
            saved = saved_extra(out / RUN_CHECKPOINT)
            saved["low_level_steps"] = int(saved["low_level_steps"])
            dict(saved["args"])
        except (CheckpointError, KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint in {out} cannot be read ({e}); {_start_over(out)}") from e
    finished = outputs.read_marker(out / "result.json") if (out / "result.json").is_file() else None
    wanted = json.loads(json.dumps(asdict(args), default=float))  # as the checkpoint stores them
    for earlier in (saved, finished):
        before = earlier["args"] if earlier else {}
        changed = [f"{k} {before.get(k)!r} -> {wanted.get(k)!r}" for k in sorted(set(before) | set(wanted))
                   if earlier and k not in CONTINUABLE_CHANGES and before.get(k) != wanted.get(k)]
        if changed:
            raise _not_replaced(out, f"made with other options ({', '.join(changed)}); give its options to continue it")
    trained_to = finished["args"]["steps"] if finished else saved["low_level_steps"] if saved else 0
    if trained_to > args.steps:
        raise _not_replaced(out, f"already trained to {trained_to} low-level steps, past --steps {args.steps}")
    return saved, finished


def train_rl(args: TrainRLArgs) -> dict[str, Any]:
    """Train SkillSAC until ``args.steps`` low-level steps, continuing the run in ``args.out`` if it has a
    checkpoint of these options; returns what ``result.json`` holds: the options (``args``), the last
    evaluation (``final``) and every evaluation (``curve``)."""
    torch.set_num_threads(1)  # batch-256 updates of small MLPs: more threads only add overhead
    keep_freed_memory()  # a training process: trade held memory for faster updates
    out = Path(args.out)
    check_run_folder(out)
    saved, finished = _earlier_run(args)
    kwargs = dict(args.env_kwargs)
    if args.library:
        kwargs["library"] = args.library
    try:
        env = RepeatableReset(gym.make(args.env_id, **kwargs))
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
    try:
        curve, initial_policy = _learn(args, env, eval_env, saved, finished)
    finally:
        for opened in (env, eval_env):
            opened.close()  # a pixel env's renderer must go before the interpreter tears EGL down
    result = {"args": asdict(args), "final": curve[-1], "curve": curve, "initial_policy": initial_policy}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _learn(args: TrainRLArgs, env: RepeatableReset, eval_env: gym.Env, resumed: dict[str, Any] | None,
           finished: dict[str, Any] | None) -> tuple[list[dict[str, float]], str]:
    """Build SkillSAC, continue ``resumed`` (or leave ``finished`` as it is) if it began the same way, train to
    the budget and save the model; returns the evaluation curve and the digest of the initial policy."""
    out = Path(args.out)
    model = SkillSAC("SkillPolicy", env, **args.skillsac_kwargs(), seed=args.seed, tensorboard_log=str(out / "tb"),
                     verbose=0)
    initial_policy, resumed_obs = policy_digest(model), None
    if initial_policy != (resumed or finished or {}).get("initial_policy", initial_policy):
        raise _not_replaced(out, "that began with another skill library or env")
    if finished is not None and finished["args"]["steps"] == args.steps:
        print(f"the run in {out} is finished; its result stays as it is")
        return finished["curve"], initial_policy
    if resumed is not None:
        print(f"continuing the run in {out} from {resumed['low_level_steps']} low-level steps")
        try:
            _, resumed_obs = load_training_state(model, out / RUN_CHECKPOINT)
        except CheckpointError as e:
            raise CheckpointError(f"{e}; {_start_over(out)}") from e
        env.repeat(resumed["train_reset"])
        restore_generators(eval_env, resumed["eval_generators"])
    budget = LowLevelBudget(args, env, eval_env, initial_policy, resumed, resumed_obs)
    budget.verbose = 1
    # learn() counts skill decisions; a skill runs >= 1 low-level step, so this bound is never hit
    # before the low-level budget stops training.
    model.learn(total_timesteps=args.steps, callback=budget, tb_log_name=f"seed{args.seed}",
                reset_num_timesteps=resumed is None)
    model.save(out / "skillsac")
    return budget.curve, initial_policy
