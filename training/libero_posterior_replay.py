"""Replay a LIBERO library's scripted training episodes with its decoder alone: can its skills do the task?

Each episode that ``skillgym data libero`` recorded is reset exactly as it was (task and reset seed follow
from the recording's seed, task and attempt number), then every labelled window is decoded with z = the
encoder's mean for that window's recorded actions, closed loop on the state the env gives; steps outside
the segments replay the recorded actions. Success is LIBERO's own check. If the replays succeed where the
priors alone do not (training/libero_prior_rollouts.py), the priors' choices of skill and argument are what
fails; if the replays fail too, the decoder does. With ``--recorded-states`` nothing is simulated: each
window is decoded on the states the recording saw, step by step, which tells a decoder that does not fit its
data apart from one whose small errors add up once its own actions move the robot.

    python training/libero_posterior_replay.py runs/libero-objpos/library --episodes 10
    python training/libero_posterior_replay.py runs/libero-objpos/library --episodes 10 --recorded-states

Run it in the LIBERO environment; the library must keep its encoder (every ``skillgym train-skills``
library does) and its labels and data must be where ``config.trained_on`` says.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from skillgym.data.dataset import open_dataset
from skillgym.data.libero import REPORT_FILE, SCRIPTED_SUITE
from skillgym.extract.labels import SkillLabels
from skillgym.language import INSTRUCTION_KEY, embed_instructions
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.libero import LiberoTaskEnv


def attempts(recording: dict) -> list[tuple[int, int]]:
    """``(task, attempt)`` of every attempt the recording made, in its order."""
    args = recording["args"]
    tasks = args["tasks"] if args["tasks"] is not None else list(range(10))
    return [(task, index) for task in tasks for index in range(args["episodes"])]


def reset_seed(seed: int, task: int, index: int) -> int:
    """The reset seed ``record_libero_episode`` drew for this attempt (its first draw)."""
    return int(np.random.default_rng(np.random.SeedSequence([seed, task, index])).integers(2**31))


def skill_windows(labels: SkillLabels, episode: int, cap: int) -> dict[int, tuple[int, int]]:
    """``{first step: (steps, skill)}`` of the decoder windows of an episode: its segments cut every ``cap`` steps."""
    windows = {}
    for _, start, end, skill in labels.segments[labels.segments[:, 0] == episode]:
        for a in range(int(start), int(end), cap):
            windows[a] = (min(cap, int(end) - a), int(skill))
    return windows


def encoder_mean(library: SkillLibrary, actions: np.ndarray, skill: int) -> np.ndarray:
    """The encoder's mean z for one window's recorded ``actions``: ``(1, z_dim)``."""
    with torch.no_grad():
        z, _ = library.encoder(torch.from_numpy(actions[None].astype(np.float32)), torch.tensor([skill]),
                               torch.tensor([len(actions)]))
    return z.numpy()


def decode_on_recorded_states(library: SkillLibrary, dataset, labels: SkillLabels, episodes: int) -> dict:
    """Decode every window of the first ``episodes`` on the recorded states: per-dimension action MSE and how
    often the gripper command has the recorded sign (over the steps whose recorded command is not 0)."""
    instructions = embed_instructions(dataset.instructions()) if library.config.instruction_dim else None
    squared, gripper = [], []
    for e in range(min(episodes, len(dataset))):
        ep = dataset.episode(e, frames=False)
        for t, (n, skill) in skill_windows(labels, e, library.config.max_skill_steps).items():
            actions = ep.actions[t:t + n]
            state = library.start(np.array([skill]), encoder_mean(library, actions, skill),
                                  None if instructions is None else instructions[e][None])
            for i, recorded in enumerate(actions):
                action, _, state = library.step(state, np.asarray(ep.states[t + i], np.float32)[None])
                squared.append((action[0] - recorded) ** 2)
                if recorded[-1] != 0:
                    gripper.append(np.sign(action[0, -1]) == np.sign(recorded[-1]))
    return {"steps": len(squared), "action_mse_per_dim": np.mean(squared, axis=0).tolist(),
            "action_mse": float(np.mean(squared)),
            "gripper_sign_agreement": float(np.mean(gripper)) if gripper else None}


def decode_window(library: SkillLibrary, env: LiberoTaskEnv, obs: dict, actions: np.ndarray, skill: int):
    """Run one window's skill with z = the encoder mean of its recorded ``actions``."""
    instruction = obs[INSTRUCTION_KEY][None] if library.config.instruction_dim else None
    state = library.start(np.array([skill]), encoder_mean(library, actions, skill), instruction)
    info: dict = {}
    for _ in range(len(actions)):
        action, _, state = library.step(state, np.asarray(obs["state"], np.float32)[None])
        obs, _, terminated, truncated, info = env.step(action[0])
        if terminated or truncated:
            break
    return obs, info


def main(argv: list[str] | None = None) -> list[dict]:
    """Replay the episodes; returns one ``{"episode", "task", "attempt", "success"}`` per episode (none with
    ``--recorded-states``, which only prints and writes the action errors)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("library", help="a library trained on `skillgym data libero` data")
    parser.add_argument("--episodes", type=int, default=10, help="the data's first N episodes")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the per-episode results")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--recorded-actions", action="store_true",
                      help="replay the recorded actions alone, open loop (the reference for the decoder's replay)")
    mode.add_argument("--recorded-states", action="store_true",
                      help="simulate nothing: decode every window on the recorded states and print the action errors")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    library = SkillLibrary.load(args.library)
    if library.encoder is None:
        raise SystemExit(f"{args.library} was saved without its encoder q(z|a,d); replaying needs it")
    labels = SkillLabels.load(library.config.trained_on["labels_path"])
    dataset = open_dataset(library.config.trained_on["dataset_path"])
    if args.recorded_states:
        fit = decode_on_recorded_states(library, dataset, labels, args.episodes)
        agreement = fit["gripper_sign_agreement"]
        print(f"decoded on the recorded states of {args.episodes} episodes ({fit['steps']} steps): action MSE "
              f"{fit['action_mse']:.4f}, per dimension {np.round(fit['action_mse_per_dim'], 4).tolist()}; "
              "gripper command of the recorded sign in "
              f"{'n/a' if agreement is None else f'{agreement:.1%}'} of the steps that open or close it")
        if args.out is not None:
            args.out.write_text(json.dumps({"library": args.library, **fit}, indent=1))
        return []
    recording = json.loads((Path(dataset.path) / REPORT_FILE).read_text())
    seed, object_positions = recording["args"]["seed"], recording["args"]["object_positions"]
    cap = library.config.max_skill_steps
    env, env_task, results = None, None, []
    pending = iter(attempts(recording))
    for e in range(min(args.episodes, len(dataset))):
        ep = dataset.episode(e, frames=False)
        # Failed attempts were not kept: the next attempt whose reset matches the episode's first state is it.
        for task, index in pending:
            if env_task != task:
                if env is not None:
                    env.close()
                env, env_task = LiberoTaskEnv(SCRIPTED_SUITE, task=task, pixels=False,
                                              object_positions=object_positions), task
            obs, info = env.reset(seed=reset_seed(seed, task, index))
            if np.allclose(obs["state"], ep.states[0], atol=1e-6):
                break
        else:
            raise SystemExit(f"episode {e}: no attempt of the recording starts where it does")
        windows = {} if args.recorded_actions else skill_windows(labels, e, cap)
        t, success = 0, False
        while t < len(ep.actions) and not success:
            if t in windows:
                n, skill = windows[t]
                obs, info = decode_window(library, env, obs, ep.actions[t:t + n], skill)
                t += n
            else:
                obs, _, _, _, info = env.step(ep.actions[t])
                t += 1
            success = bool(info.get("success", False))
        results.append({"episode": e, "task": env_task, "attempt": index, "success": success})
        print(f"episode {e:3d}  task {env_task}  attempt {index}: {'success' if success else 'failure'}", flush=True)
    if env is not None:
        env.close()
    rate = float(np.mean([r["success"] for r in results])) if results else 0.0
    what = "recorded actions" if args.recorded_actions else "decoder replay"
    print(f"{what} of {len(results)} training episodes: {rate:.0%} succeed")
    if args.out is not None:
        args.out.write_text(json.dumps({"library": args.library, "success_rate": rate, "episodes": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
