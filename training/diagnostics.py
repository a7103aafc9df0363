"""Diagnostics of a skill library in the kitchen: where it fails and why.

Not part of the package: these answer research questions about a library and its data.

- prior rollouts with options (greedy, scaled z noise, another progress threshold);
- ``posterior_replay``: the decoder alone replays labelled training episodes from their recorded
  start, each segment decoded from the encoder's z of its own actions;
- ``window_errors``: every training window decoded from the data's own state, distance to where
  the data ended;
- ``subtask_replay``: one subtask decoded from the data's state where it starts;
- ``z_statistics``: spread of q(z|a,d) and p(z|s,d) per z dim;
- ``data_report``: the training data's subtask orders scored against the evaluation order;
- ``stall_search``: can any (skill, z) do the next subtask where the greedy chain stops.

    python training/diagnostics.py skillgym/assets/kitchen-state --episodes 20 --greedy
    python training/diagnostics.py skillgym/assets/kitchen-state --replay 10 --data
    python training/diagnostics.py skillgym/assets/kitchen-state --stall-search 2 --samples 16
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skillgym.data.dataset import open_dataset
from skillgym.envs.prior_rollouts import prior_rollouts
from skillgym.envs.skill_kitchen import kitchen_env_for
from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv
from skillgym.extract.labels import SkillLabels
from skillgym.rl.skill_sac import SkillSAC
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import ALL_TASKS, BONUS_THRESH, DEFAULT_TASKS, KitchenTaskEnv, task_order


def eval_task_ceiling(outcomes: list[dict]) -> float:
    """Mean evaluation-task score of the kept episodes if they were replayed perfectly.

    An ordered kitchen task counts subtask i once subtasks 0..i are all done, whenever each was
    done, so an episode scores the longest prefix of the evaluation order inside the subtasks it
    kept. This bounds what priors trained on the data can score without RL.
    """
    scores = []
    for outcome in outcomes:
        kept = set(_kept_subtasks(outcome))
        if not kept:
            continue  # dropped episode
        score = 0
        while score < len(DEFAULT_TASKS) and DEFAULT_TASKS[score] in kept:
            score += 1
        scores.append(score)
    return float(np.mean(scores)) if scores else 0.0


def _kept_subtasks(outcome: dict) -> list[str]:
    """The subtasks an episode's stored data show, in order: recording stops at the first failure."""
    kept = []
    for task in outcome["order"]:
        if task not in outcome["completed"]:
            break
        kept.append(task)
    return kept


def eval_transitions(outcomes: list[dict]) -> dict[str, int]:
    """How many kept episodes show each step of the evaluation order (``"kettle -> bottom burner"``)
    as consecutive subtasks: a policy over skills learnt from them has seen those hand-overs."""
    pairs = list(zip(DEFAULT_TASKS[:-1], DEFAULT_TASKS[1:], strict=True))
    counts = dict.fromkeys((f"{a} -> {b}" for a, b in pairs), 0)
    for outcome in outcomes:
        kept = _kept_subtasks(outcome)
        shown = set(zip(kept[:-1], kept[1:], strict=True))
        for a, b in pairs:
            counts[f"{a} -> {b}"] += (a, b) in shown
    return counts


def _replay_inputs(library: SkillLibrary, labels_path, dataset_path):
    """Checks shared by the replay diagnostics; returns the labels and the dataset they replay."""

    cfg = library.config
    if library.encoder is None:
        raise ValueError("replaying the data needs the encoder q(z|a,d); this library was saved without it")
    if cfg.decoder == "closed_loop" and cfg.decoder_obs_kind != "state":
        raise ValueError("replaying the data supports decoders that see the state vector (decoder_obs='state')")
    labels = SkillLabels.load(labels_path or cfg.trained_on.get("labels_path", ""))
    dataset = open_dataset(dataset_path or cfg.trained_on.get("dataset_path", ""))
    if not dataset.has_sim_states:
        raise ValueError(f"{dataset.path} stores no simulator states; replaying it needs them")
    return labels, dataset


def _windows(library: SkillLibrary, labels, episode: int) -> dict[int, tuple[int, int]]:
    """Start step -> (length, skill) of every labelled window of ``episode``: segments cut into
    pieces of at most ``max_skill_steps``, as the env caps a skill."""
    cap = library.config.max_skill_steps
    windows = {}
    for _, start, end, skill in labels.segments[labels.segments[:, 0] == episode]:
        for a in range(int(start), int(end), cap):
            windows[a] = (min(cap, int(end) - a), int(skill))
    return windows


def _run_window(library: SkillLibrary, env, obs, actions: np.ndarray, skill: int):
    """Decode one window in ``env`` from ``obs`` with z = the encoder mean of its ``actions``."""
    with torch.no_grad():
        z, _ = library.encoder(torch.from_numpy(actions[None].astype(np.float32)), torch.tensor([skill]),
                               torch.tensor([len(actions)]))
    state = library.start(np.array([skill]), z.numpy())
    for _ in range(len(actions)):
        action, _, state = library.step(state, np.asarray(obs, np.float32)[None])
        obs, *_ = env.step(action[0])
    return obs


def _replay_span(library: SkillLibrary, env, ep, windows: dict[int, tuple[int, int]], start: int, end: int) -> None:
    """Steps ``start..end`` of ``ep`` in ``env`` (already at the state of step ``start``): labelled
    windows decoded with the encoder's z of their actions, unlabelled steps replaying the data's."""
    obs, t = ep.states[start], start
    while t < end:
        if t in windows:
            n, skill = windows[t]
            obs = _run_window(library, env, obs, ep.actions[t:t + n], skill)
            t += n
        else:
            obs, *_ = env.step(ep.actions[t])
            t += 1


def posterior_replay(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                     dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Decode the first ``episodes`` episodes of the library's labelled data (most of them training
    episodes; about 10 % were held out) with the encoder's z of their own actions.

    Each episode starts from its recorded simulator state. Unlabelled steps replay the data's
    actions; a segment is cut into windows of at most ``max_skill_steps`` (as the env caps a
    skill), each window's z is the encoder mean of that window's actions, and the decoder runs
    exactly that many steps in the env, closed loop when the library is. Returns the subtasks (any
    of 7) completed by the data and by the replay. Needs the library's encoder weights and its
    training data (paths default to ``config.trained_on``).
    """

    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    env = KitchenTaskEnv(max_episode_steps=10**6)
    data_done, replay_done = [], []
    try:
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            env.reset(seed=e)
            env.set_sim_state(ep.sim_states[0])
            _replay_span(library, env, ep, _windows(library, labels, e), 0, len(ep.actions))
            replay_done.append([task for task in ALL_TASKS if env.task_done(task)])
            env.set_sim_state(ep.sim_states[-1])
            data_done.append([task for task in ALL_TASKS if env.task_done(task)])
    finally:
        env.close()
    n_data, n_replay = sum(map(len, data_done)), sum(map(len, replay_done))
    return {
        "episodes": len(data_done),
        "data_subtasks": data_done,
        "replay_subtasks": replay_done,
        "data_mean": n_data / max(len(data_done), 1),
        "replay_mean": n_replay / max(len(data_done), 1),
        "replay_fraction": n_replay / n_data if n_data else None,
    }


def window_errors(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                  dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """How far each decoded window ends from where the data's window ended, in cm of end-effector
    position, by the subtask the data was performing.

    Unlike :func:`posterior_replay`, every window starts from the data's own simulator state at
    its first step, so errors do not carry over: this measures one skill execution at a time.
    """

    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    env = KitchenTaskEnv(max_episode_steps=10**6)
    site = env.model.site("end_effector").id
    errors: dict[str, list[float]] = {}
    try:
        env.reset(seed=0)
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            for t, (n, skill) in sorted(_windows(library, labels, e).items()):
                env.set_sim_state(ep.sim_states[t + n])
                target = env.data.site_xpos[site].copy()
                env.set_sim_state(ep.sim_states[t])
                _run_window(library, env, ep.states[t], ep.actions[t:t + n], skill)
                task = "unknown" if ep.subtasks is None or ep.subtasks[t] < 0 else ALL_TASKS[ep.subtasks[t]]
                errors.setdefault(task, []).append(100 * float(np.linalg.norm(env.data.site_xpos[site] - target)))
    finally:
        env.close()
    every = [x for v in errors.values() for x in v]
    return {
        "episodes": min(episodes, len(dataset)),
        "windows": len(every),
        "median_cm": float(np.median(every)) if every else None,
        "mean_cm": float(np.mean(every)) if every else None,
        "median_cm_by_subtask": {k: float(np.median(v)) for k, v in sorted(errors.items())},
        "windows_by_subtask": {k: len(v) for k, v in sorted(errors.items())},
    }


def subtask_replay(library: SkillLibrary, task: str, episodes: int = 20, labels_path: str | os.PathLike | None = None,
                   dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """One subtask at a time: from the data's own simulator state where the windows covering
    ``task`` begin, decode them (z from the encoder, as in :func:`posterior_replay`) and report
    whether the subtask gets done and how far its object ends from the goal, next to where the
    demonstration left it. Tells "the decoder cannot do it" from "it gets close": the demonstrations
    may themselves stop just inside the success threshold (see ``--follow-through`` of the data).
    """

    if task not in ALL_TASKS:
        raise ValueError(f"unknown subtask {task!r}; choose from {ALL_TASKS}")
    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    if not dataset.has_subtasks:
        raise ValueError(f"{dataset.path} stores no per-step subtask; subtask_replay needs it")
    env = KitchenTaskEnv(max_episode_steps=10**6)
    code = ALL_TASKS.index(task)
    rows = []
    try:
        env.reset(seed=0)
        for e in range(min(episodes, len(dataset))):
            ep = dataset.episode(e, frames=False)
            steps = np.flatnonzero(ep.subtasks == code)
            if len(steps) == 0:
                continue
            windows = _windows(library, labels, e)
            first, end = int(steps[0]), int(steps[-1]) + 1
            starts = [t for t in sorted(windows) if first <= t < end]
            if not starts:
                continue
            env.set_sim_state(ep.sim_states[end])
            data_distance = env.task_distance(task)
            env.set_sim_state(ep.sim_states[starts[0]])
            _replay_span(library, env, ep, windows, starts[0], end)
            rows.append((data_distance, env.task_distance(task)))
    finally:
        env.close()
    data_d, decoded_d = (np.array([r[i] for r in rows]) for i in (0, 1))
    return {
        "task": task,
        "instances": len(rows),
        "threshold": BONUS_THRESH,
        "data_done": int((data_d < BONUS_THRESH).sum()),
        "decoded_done": int((decoded_d < BONUS_THRESH).sum()),
        "data_distance_median": float(np.median(data_d)) if rows else None,
        "decoded_distance_median": float(np.median(decoded_d)) if rows else None,
        "data_distance": data_d.round(3).tolist(),
        "decoded_distance": decoded_d.round(3).tolist(),
    }


@torch.no_grad()
def z_statistics(library: SkillLibrary, episodes: int = 10, labels_path: str | os.PathLike | None = None,
                 dataset_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Per z dim, over every window of the first ``episodes`` episodes of the library's data: how
    much the encoder's z varies between windows, how wide q(z|a,d) and p(z|s,d) are, and how far
    the prior's mean is from the encoder's.

    A dim whose posterior means barely vary (``posterior_mean_spread`` ≈ 0, ``posterior_std`` ≈ 1)
    carries no information and the decoder ignores it. In an informative dim, a prior std well
    above the posterior's is the part of the argument the state does not determine: sampled prior
    rollouts draw it at random (compare ``--z-scale`` with 1 in those dims only).
    ``length_correlation_by_skill``: per skill with ≥ 10 windows, the correlation of each dim of
    the encoder's mean with the window's length (how much z encodes where the skill stops).
    """
    labels, dataset = _replay_inputs(library, labels_path, dataset_path)
    if library.config.obs_kind != "state":
        raise ValueError("z_statistics evaluates the priors on the data's state vectors: state libraries only")
    rows = []
    for e in range(min(episodes, len(dataset))):
        ep = dataset.episode(e, frames=False)
        for t, (n, skill) in sorted(_windows(library, labels, e).items()):
            q_mean, q_log_std = library.encoder(torch.from_numpy(ep.actions[None, t:t + n].astype(np.float32)),
                                                torch.tensor([skill]), torch.tensor([n]))
            _, p_mean, p_log_std = library.prior(ep.states[t][None])
            rows.append((q_mean[0].numpy(), np.exp(q_log_std[0].numpy()), p_mean[0, skill], np.exp(p_log_std[0, skill]),
                         skill, n))
    if not rows:
        return {"episodes": min(episodes, len(dataset)), "windows": 0}
    q_mean, q_std, p_mean, p_std, skills, lengths = (np.stack(x) for x in zip(*rows, strict=True))
    # Does z encode how long the skill runs? Correlation with the window's length, within each skill.
    length_corr = {}
    for k in np.unique(skills):
        m = skills == k
        if m.sum() >= 10 and lengths[m].std() > 0:
            length_corr[str(int(k))] = [round(float(np.corrcoef(q_mean[m, i], lengths[m])[0, 1]), 2)
                                        for i in range(q_mean.shape[1])]
    return {
        "episodes": min(episodes, len(dataset)),
        "windows": len(rows),
        "posterior_mean_spread": np.round(q_mean.std(0).astype(np.float64), 3).tolist(),
        "posterior_std": np.round(q_std.mean(0).astype(np.float64), 3).tolist(),
        "prior_std": np.round(p_std.mean(0).astype(np.float64), 3).tolist(),
        "prior_mean_error": np.round(np.abs(p_mean - q_mean).mean(0).astype(np.float64), 3).tolist(),
        "length_correlation_by_skill": length_corr,
    }




def data_ceiling(library: SkillLibrary) -> float | None:
    """What the training data's own subtask orders would score on the evaluation task, replayed
    perfectly (:func:`eval_task_ceiling`); None if that data is not on disk."""

    path = Path(library.config.trained_on.get("dataset_path", "")) / "recording.json"
    if not path.is_file():
        return None
    return eval_task_ceiling(json.loads(path.read_text())["episodes"])


def data_report(recording: str | os.PathLike) -> dict[str, Any] | None:
    """A kitchen recording's episodes against the evaluation order (None if its recording.json is gone)."""
    path = Path(recording) / "recording.json"
    if not path.is_file():
        return None
    outcomes = json.loads(path.read_text())["episodes"]
    return {"eval_task_ceiling": eval_task_ceiling(outcomes), "eval_transitions": eval_transitions(outcomes)}


def stall_search(library: SkillLibrary, done: int, samples: int = 16, follow: int = 2, seed: int = 0,
                 policy: str | None = None, episode_steps: int = 280, reset_seed: int = 0,
                 tasks: Sequence[str] = DEFAULT_TASKS, continuations: int = 0) -> dict[str, Any]:
    """Can any skill of the library do the next subtask from where the greedy chain stops?

    Runs the greedy prior chain (argmax d, mean z; or a SkillSAC ``policy``'s deterministic
    actions) in the ordered evaluation task until it has done ``done`` subtasks, then tries every
    skill with ``samples`` arguments per scheme (p(z|s,d), its std doubled, uniform in the arg
    box). Each try replays the chain from the same reset, runs the skill, then up to ``follow``
    greedy skills, and counts whether the next subtask got done. If no (skill, z) does it, no
    policy over this library can, whatever the RL algorithm.

    ``continuations`` random chains then run from the stall until the next subtask is done or the
    episode ends, skills drawn uniformly or from p(d|s) and arguments from p(z|s,d): how often an
    agent exploring from there meets the reward.
    """
    low = kitchen_env_for(library, tasks=tasks, ordered=True, max_episode_steps=episode_steps)
    env = SkillSpaceEnv(low, library, progress_threshold=DEFAULT_PROGRESS_THRESHOLD)
    target = tasks[done]

    def prior_greedy(obs: np.ndarray) -> tuple[int, np.ndarray]:
        logits, mean, _ = library.prior(obs[None])
        d = int(logits[0].argmax())
        return d, mean[0, d].astype(np.float32)

    greedy = prior_greedy
    if policy:
        model = SkillSAC.load(policy)

        def policy_greedy(obs: np.ndarray) -> tuple[int, np.ndarray]:
            action, _ = model.predict(obs, deterministic=True)
            return int(action["skill"]), np.asarray(action["arg"], dtype=np.float32)

        greedy = policy_greedy

    obs, info = env.reset(seed=reset_seed)
    chain: list[tuple[int, np.ndarray]] = []
    while info.get("num_completed", 0) < done:
        d, z = greedy(obs)
        obs, _, terminated, truncated, info = env.step({"skill": d, "arg": z})
        chain.append((d, z))
        if terminated or truncated:
            raise RuntimeError(f"the greedy chain ended after {info['num_completed']} subtasks, before {done}")
    stall_obs = obs
    logits, mean, log_std = library.prior(stall_obs[None])
    prior_d = np.exp(logits[0] - logits[0].max())

    def try_skill(d: int, z: np.ndarray) -> bool:
        o, _ = env.reset(seed=reset_seed)
        for skill, arg in chain:
            o, *_ = env.step({"skill": skill, "arg": arg})
        o, _, te, tr, _ = env.step({"skill": d, "arg": z.astype(np.float32)})
        for _ in range(follow):
            if low.task_done(target) or te or tr:
                break
            skill, arg = greedy(o)
            o, _, te, tr, _ = env.step({"skill": skill, "arg": arg})
        return low.task_done(target)

    rng = np.random.default_rng(seed)
    bound = library.config.arg_bound
    hits: dict[str, list[int]] = {}
    for scheme in ("prior", "prior x2", "uniform"):
        hits[scheme] = []
        for d in range(library.num_skills):
            count = 0
            for _ in range(samples):
                if scheme == "uniform":
                    z = rng.uniform(-bound, bound, library.z_dim)
                else:
                    scale = 2.0 if scheme == "prior x2" else 1.0
                    z = mean[0, d] + scale * np.exp(log_std[0, d]) * rng.standard_normal(library.z_dim)
                count += try_skill(d, np.clip(z, -bound, bound))
            hits[scheme].append(count)
            print(f"{scheme:9s} skill {d}: {target} {count}/{samples}", flush=True)

    def random_chain(skills_uniform: bool) -> bool:
        o, _ = env.reset(seed=reset_seed)
        for skill, arg in chain:
            o, *_ = env.step({"skill": skill, "arg": arg})
        te = tr = False
        while not (te or tr or low.task_done(target)):
            lg, mu, ls = library.prior(o[None])
            if skills_uniform:
                d = int(rng.integers(library.num_skills))
            else:
                p = np.exp(lg[0] - lg[0].max())
                d = int(rng.choice(len(p), p=p / p.sum()))
            z = np.clip(mu[0, d] + np.exp(ls[0, d]) * rng.standard_normal(library.z_dim), -bound, bound)
            o, _, te, tr, _ = env.step({"skill": d, "arg": z.astype(np.float32)})
        return low.task_done(target)

    chains = {f"{name} skills": sum(random_chain(name == "uniform") for _ in range(continuations))
              for name in ("uniform", "prior") if continuations}
    for name, count in chains.items():
        print(f"random chains, {name}: {target} {count}/{continuations}", flush=True)
    env.close()
    result = {
        "library": str(library.config.trained_on.get("labels_path", "")), "policy": policy, "tasks": list(tasks),
        "target": target, "chain_skills": [d for d, _ in chain],
        "prior_d_at_stall": np.round(prior_d / prior_d.sum(), 3).tolist(),
        "samples_per_skill": samples, "hits": hits, "random_chains": continuations, "random_chain_hits": chains,
    }
    return result


def _z_scale(text: str) -> float | list[float]:
    values = [float(x) for x in text.split(",")]
    return values[0] if len(values) == 1 else values


def main(argv: list[str] | None = None) -> int:
    """Run the diagnostics asked for on a library; prints one JSON object per diagnostic."""

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("library", nargs="?", help="a skill library folder (not needed with --recording alone)")
    p.add_argument("--recording", default=None, metavar="DIR",
                   help="score the kitchen recording DIR against the evaluation order (data_report)")
    p.add_argument("--episodes", type=int, default=0, help="prior-rollout episodes (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", type=task_order, default=DEFAULT_TASKS, metavar="NAME",
                   help="the ordered task of the prior rollouts and the stall search: a name of the task suite "
                        "(default, kettle-cabinets, ...) or subtasks joined by '+'")
    p.add_argument("--threshold", type=float, default=DEFAULT_PROGRESS_THRESHOLD,
                   help="progress threshold that ends a skill (default: %(default)s)")
    p.add_argument("--greedy", action="store_true", help="argmax skill and mean z instead of sampling")
    p.add_argument("--z-scale", type=_z_scale, default=1.0, metavar="S or S1,S2,...",
                   help="scale of the prior's std when sampling z (1: the prior, 0: its mean; d is still "
                        "sampled), or one per z dim, e.g. 0,1,0,1,0")
    p.add_argument("--replay", type=int, default=0, metavar="N",
                   help="also replay the first N episodes of the library's data with the decoder alone "
                        "(z from the encoder), see posterior_replay")
    p.add_argument("--window-errors", type=int, default=0, metavar="N",
                   help="also decode every window of the first N episodes from the data's own state and "
                        "report how far from the data's end point it ends (see window_errors)")
    p.add_argument("--z-stats", type=int, default=0, metavar="N",
                   help="also report, per z dim, the spread and width of q(z|a,d) and p(z|s,d) over every "
                        "window of the first N episodes of the library's data (see z_statistics)")
    p.add_argument("--subtask-replay", nargs=2, metavar=("TASK", "N"), default=None,
                   help="also decode TASK alone from the data's state where it starts, in the first N episodes "
                        "(see subtask_replay), e.g. --subtask-replay 'bottom burner' 20")
    p.add_argument("--data", action="store_true",
                   help="also score the library's training data against the evaluation order (data_report)")
    p.add_argument("--stall-search", type=int, default=None, metavar="DONE",
                   help="also search for a (skill, z) that does the next subtask once the greedy chain has done "
                        "DONE subtasks (see stall_search)")
    p.add_argument("--samples", type=int, default=16, help="stall search: arguments tried per skill and scheme")
    p.add_argument("--follow", type=int, default=2, help="stall search: greedy skills run after the tried one")
    p.add_argument("--policy", default=None, help="stall search: a SkillSAC zip whose deterministic actions build the chain")
    p.add_argument("--episode-steps", type=int, default=280, help="stall search: the task's time limit")
    p.add_argument("--continuations", type=int, default=0,
                   help="stall search: also run this many random skill chains from the stall to the episode's end")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.recording:
        if not (Path(args.recording) / "recording.json").is_file():
            p.error(f"{args.recording} holds no recording.json: not a kitchen recording skillgym made")
        print(json.dumps({"data": data_report(args.recording)}, indent=2))
    if args.library is None:
        if not args.recording:
            p.error("give a library, or --recording DIR")
        return 0
    library = SkillLibrary.load(args.library)
    if args.replay:
        replay = posterior_replay(library, episodes=args.replay)
        print(json.dumps({"posterior_replay": replay}, indent=2))
    if args.window_errors:
        print(json.dumps({"window_errors": window_errors(library, episodes=args.window_errors)}, indent=2))
    if args.subtask_replay:
        task, n = args.subtask_replay
        print(json.dumps({"subtask_replay": subtask_replay(library, task, episodes=int(n))}, indent=2))
    if args.z_stats:
        print(json.dumps({"z_statistics": z_statistics(library, episodes=args.z_stats)}, indent=2))
    if args.data:
        print(json.dumps({"data": data_report(library.config.trained_on.get("dataset_path", ""))}, indent=2))
    if args.stall_search is not None:
        print(json.dumps({"stall_search": stall_search(library, args.stall_search, args.samples, args.follow,
                                                       args.seed, args.policy, args.episode_steps,
                                                       tasks=args.task, continuations=args.continuations)}, indent=2))
    if args.episodes > 0:
        r = prior_rollouts(library, episodes=args.episodes, seed=args.seed,
                           progress_threshold=args.threshold, greedy=args.greedy, z_scale=args.z_scale,
                           tasks=args.task)
        ceiling = data_ceiling(library)
        if ceiling is not None:
            r["data_ceiling"] = ceiling
        print(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
