"""One comparison run: a method on a kitchen task with one seed, trained for a budget of low-level
env steps, evaluated on fixed episodes, and resumable from its last checkpoint.

Every evaluation happens between two training episodes and is followed by a checkpoint
(:mod:`skillgym.rl.checkpoint`); training episodes are seeded from their number
(:class:`~skillgym.envs.SeedEpisodes`). A run killed at any point therefore continues from its
last evaluation and ends exactly where an uninterrupted run would, and a finished run given a
larger budget continues the same way. Run folder::

    run.json      what the run is (RunSpec, without the budget)
    checkpoint/   the training state at the last evaluation
    result.json   the finished run: its curve and the final policy's executed skill lengths
    tb/           TensorBoard: SB3's training scalars, and eval/* against low-level steps

A folder is continued only by a run with the same settings, except one whose run failed before its
first checkpoint (a library that did not load, wrong data): nothing was trained there, so a run with
other settings may start it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch.utils.tensorboard import SummaryWriter

from skillgym.envs.seed_episodes import SeedEpisodes
from skillgym.envs.skill_kitchen import resolve_library
from skillgym.rl.checkpoint import (
    CheckpointError,
    checkpoint_folder,
    load_training_state,
    policy_digest,
    same_observation,
    save_training_state,
)
from skillgym.skills.library import WEIGHTS_FILE, SkillLibrary

# Evaluation episode i is reset with EVAL_SEED + i: every method and seed meets the same episodes,
# and no training episode (SeedEpisodes: seed * 10**6 + n) has one of these seeds.
EVAL_SEED = 10**9
CHECKPOINT, RESULT, RUN_JSON, PROGRESS = "checkpoint", "result.json", "run.json", "progress.txt"
PROGRESS_EVERY = 2_000  # low-level steps between two progress notes for the parent process


@dataclass(frozen=True)
class RunSpec:
    """One run of ``skillgym compare``."""

    method: str
    """a name from skillgym.compare.methods.METHODS"""
    task: str
    """a task name from TASK_SUITE or subtasks joined by '+'"""
    seed: int
    steps: int
    """budget in low-level env steps"""
    eval_every: int
    """low-level steps between evaluations"""
    eval_episodes: int
    """deterministic episodes per evaluation"""
    out: str
    """the run folder"""
    library: str | None = None
    """the skill library of skill-space methods"""
    dataset: str | None = None
    """the demonstrations of methods that learn from data"""
    bc_steps: int = 20_000
    """behaviour-cloning gradient steps (bc, bc+sac)"""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments replacing the method's agent settings, e.g. {"learning_starts": 100}"""

    def identity(self) -> dict[str, Any]:
        """What must match for a run folder to be continued (the budget may grow).

        Besides the settings, the SHA-256 of the library's weights: a library retrained in the same
        folder, or a new bundled one, must not continue a run that began with another.
        """
        identity = {k: v for k, v in asdict(self).items() if k not in ("steps", "out")}
        if self.library is not None:
            weights = resolve_library(self.library) / WEIGHTS_FILE
            if not weights.is_file():
                SkillLibrary.load(weights.parent)  # says what the folder is missing
            identity["library_weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        return identity


def evaluate(model: BaseAlgorithm, env: gym.Env, episodes: int) -> dict[str, Any]:
    """Deterministic episodes ``EVAL_SEED + i``: mean subtasks completed, success rate, skill lengths.

    ``skills_after_last_subtask`` holds, per episode, the skills a skill-space policy ran after the
    last subtask it completed (empty for an episode that completed them all): where a policy gets stuck.
    """
    completed, skill_lengths, skills_after_last_subtask = [], [], []
    num_tasks = len(env.unwrapped.tasks)
    for i in range(episodes):
        obs, info = env.reset(seed=EVAL_SEED + i)
        done, num_completed, skills_since = False, 0, []
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if "skill_steps" in info:
                skill_lengths.append(int(info["skill_steps"]))
            if info["num_completed"] > num_completed:
                num_completed, skills_since = info["num_completed"], []
            elif "skill" in info:
                skills_since.append(int(info["skill"]))
        completed.append(int(info["num_completed"]))
        skills_after_last_subtask.append(skills_since if completed[-1] < num_tasks else [])
    return {"subtasks_mean": float(np.mean(completed)), "subtasks_std": float(np.std(completed)),
            "success_rate": float(np.mean([c == num_tasks for c in completed])), "completed": completed,
            "skill_lengths": skill_lengths, "skills_after_last_subtask": skills_after_last_subtask}


class EvaluateAndCheckpoint(BaseCallback):
    """Counts low-level steps, stops at the budget, and between episodes evaluates and checkpoints.

    SB3 calls ``on_rollout_start`` after the previous env step was stored and trained on and
    before the next one: when that step ended an episode, nothing of the run is in flight.
    """

    def __init__(self, run: Run, state: dict[str, Any], resumed_obs: np.ndarray | None):
        super().__init__()
        self.run, self.state, self.resumed_obs = run, state, resumed_obs
        # Not at the first step: a few steps noted right after the process's start-up would make the parent's
        # time estimate hours long.
        self.next_note = state["low_level_steps"] + PROGRESS_EVERY
        self.between_episodes = True  # learn() starts with a reset

    def _on_training_start(self) -> None:
        if self.resumed_obs is not None and not same_observation(self.model._last_obs, self.resumed_obs):
            raise RuntimeError(f"{self.run.folder}: the env does not restart where the checkpoint stopped; "
                               "did the env or the skill library change since?")

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self.state["low_level_steps"] += int(info.get("skill_steps", 1))
        self.between_episodes = bool(self.locals["dones"][0])
        if self.state["low_level_steps"] >= self.next_note:
            self.run.note_progress(self.state["low_level_steps"])
            self.next_note = self.state["low_level_steps"] + PROGRESS_EVERY
        return self.state["low_level_steps"] < self.run.settings.steps

    def _on_rollout_start(self) -> None:
        if self.between_episodes and self.state["low_level_steps"] >= self.state["next_eval"]:
            self.run.evaluate(self.model, self.state)
            # The first mark after this evaluation: an episode longer than the interval passes several at once.
            every = self.run.settings.eval_every
            self.state["next_eval"] = (self.state["low_level_steps"] // every + 1) * every
            # The env has already been reset for the coming episode: a resumed run resets it again.
            self.state["episode"] = self.run.seeded_env.episode - 1
            self.state["wall_seconds"] = self.run.wall_seconds()
            save_training_state(self.model, self.run.folder / CHECKPOINT, extra=self.state)


class Run:
    """Trains, evaluates and checkpoints one :class:`RunSpec` (see the module docstring)."""

    def __init__(self, settings: RunSpec):
        self.settings = settings
        self.folder = Path(settings.out)

    def wall_seconds(self) -> float:
        """Seconds of training so far, over all the processes that worked on this run."""
        return self.wall_before + time.time() - self.started

    def note_progress(self, low_level_steps: int) -> None:
        (self.folder / PROGRESS).write_text(f"{low_level_steps}\n")

    def evaluate(self, model: BaseAlgorithm, state: dict[str, Any]) -> dict[str, Any]:
        """Evaluate, add the point to the curve and to TensorBoard; returns the evaluation."""
        result = evaluate(model, self.eval_env, self.settings.eval_episodes)
        point = {"low_level_steps": state["low_level_steps"], "subtasks_mean": result["subtasks_mean"],
                 "subtasks_std": result["subtasks_std"], "success_rate": result["success_rate"],
                 "wall_seconds": self.wall_seconds()}
        state["curve"].append(point)
        for key in ("subtasks_mean", "success_rate"):
            self.writer.add_scalar(f"eval/{key}", point[key], point["low_level_steps"])
        self.writer.flush()
        self.note_progress(state["low_level_steps"])
        return result

    def _claim_folder(self) -> None:
        check_run_folder(self.settings)
        self.folder.mkdir(parents=True, exist_ok=True)
        run_file = self.folder / RUN_JSON
        part = run_file.with_name(run_file.name + ".tmp")  # a kill mid-write leaves the old file or none
        part.write_text(json.dumps(self.settings.identity(), indent=1) + "\n")
        os.replace(part, run_file)

    def finished(self) -> dict[str, Any] | None:
        """The result of a run that already reached this budget, if any."""
        result_file = self.folder / RESULT
        if result_file.is_file():
            result = json.loads(result_file.read_text())
            if result["steps"] >= self.settings.steps:
                return result
        return None

    def train(self) -> dict[str, Any]:
        """Train to the budget (resuming if a checkpoint exists) and write ``result.json``."""
        from skillgym.compare.methods import METHODS

        self._claim_folder()
        done = self.finished()
        if done is not None:
            return done
        torch.set_num_threads(1)  # small MLPs at batch 256: one thread per run, runs in parallel
        method = METHODS[self.settings.method]
        self.eval_env = method.make_env(self.settings)
        self.seeded_env = SeedEpisodes(method.make_env(self.settings), self.settings.seed)
        self.writer = SummaryWriter(str(self.folder / "tb" / "eval"))
        model = method.make_model(self.settings, self.seeded_env, str(self.folder / "tb"))
        state: dict[str, Any] = {"low_level_steps": 0, "next_eval": 0, "episode": 0, "curve": [],
                                 "wall_seconds": 0.0}
        checkpoint = checkpoint_folder(self.folder / CHECKPOINT)
        resumed_obs = None
        if checkpoint is not None:
            try:
                state, resumed_obs = load_training_state(model, checkpoint)
            except CheckpointError as e:
                raise CheckpointError(f"{e}; delete {checkpoint} to start this run over") from e
            self.seeded_env.episode = state["episode"]
        elif method.pretrain is not None:
            method.pretrain(self.settings, model)
        self.wall_before, self.started = state["wall_seconds"], time.time()
        if method.online:
            # learn() counts decisions; the callback stops at the low-level budget long before this.
            model.learn(total_timesteps=10**10, callback=EvaluateAndCheckpoint(self, state, resumed_obs),
                        reset_num_timesteps=checkpoint is None, tb_log_name="train")
        result = self.evaluate(model, state)
        self.writer.close()
        for env in (self.eval_env, self.seeded_env):
            env.close()  # a pixel env's renderer must go before the interpreter tears EGL down
        payload = {"run": asdict(self.settings), "steps": self.settings.steps, "curve": state["curve"],
                   "final": state["curve"][-1], "final_completed": result["completed"],
                   "skill_lengths": result["skill_lengths"],
                   "final_skills_after_last_subtask": result["skills_after_last_subtask"],
                   "policy_sha256": policy_digest(model)}
        (self.folder / RESULT).write_text(json.dumps(payload) + "\n")
        self.note_progress(self.settings.steps)  # offline methods never step the env: count them as done
        return payload


def check_run_folder(settings: RunSpec) -> None:
    """Refuse the run's folder if it holds training of a run with other settings (a checkpoint or a result),
    or files of no comparison run."""
    folder = Path(settings.out)
    run_file = folder / RUN_JSON
    if run_file.is_file():
        identity = settings.identity()
        try:
            saved = json.loads(run_file.read_text())
        except ValueError:  # cut short by a kill while it was written
            saved = {}
        # The library's weights hash names it however its path is written (./lib, lib/, an absolute path).
        changed = sorted(k for k in set(saved) | set(identity) if k != "library" and saved.get(k) != identity.get(k))
        trained = checkpoint_folder(folder / CHECKPOINT) is not None or (folder / RESULT).is_file()
        if changed and trained:
            differ = ", ".join(f"{k} {saved.get(k)!r} -> {identity.get(k)!r}" for k in changed)
            advice = ("pass the run's --eval-every to extend it (the evaluation interval follows --steps unless "
                      "--eval-every is given), or pick another --out" if "eval_every" in changed
                      else "pick another --out")
            raise FileExistsError(f"{folder} holds a run with other settings ({differ}); {advice}")
    elif folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty and holds no comparison run; pick another --out")


def train_run(settings: RunSpec) -> dict[str, Any]:
    """Train one run (a process-pool entry point)."""
    return Run(settings).train()

