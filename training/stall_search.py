"""Can any skill of a library do the next subtask from where its priors' greedy chain stops?

Runs the greedy prior chain (argmax d, mean z) in the ordered evaluation task until it has done
``--done`` subtasks (2: microwave, kettle), then tries every skill with random arguments from that
state: ``--samples`` z per skill drawn from p(z|s,d) with its std scaled by 1 and by 2, and uniformly
from the arg box. Each try replays the chain from the same reset, runs the skill, then up to
``--follow`` greedy prior skills, and counts whether the next subtask of the task got done. If no
(skill, z) does it, no policy over this library can, whatever the RL algorithm (docs/results.md).

    python training/stall_search.py --library skillgym/assets/kitchen-state --samples 16

``--policy runs/.../skillsac.zip --done 3`` builds the chain (and the follow-up skills) from a trained
SkillSAC policy's deterministic actions instead, to ask the same question about a later subtask
(the light switch); ``--episode-steps`` lifts the task's time limit so that a try is not cut short.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import DEFAULT_TASKS, KitchenTaskEnv


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--library", default="skillgym/assets/kitchen-state")
    p.add_argument("--reset-seed", type=int, default=0)
    p.add_argument("--done", type=int, default=2, help="subtasks the greedy chain must finish first")
    p.add_argument("--samples", type=int, default=16, help="arguments tried per skill and sampling scheme")
    p.add_argument("--follow", type=int, default=2, help="greedy prior skills run after the tried one")
    p.add_argument("--seed", type=int, default=0, help="seed of the argument sampling")
    p.add_argument("--policy", default=None, help="a SkillSAC zip whose deterministic actions build the chain")
    p.add_argument("--episode-steps", type=int, default=280, help="the task's time limit in low-level steps")
    args = p.parse_args(argv)

    library = SkillLibrary.load(args.library)
    low = KitchenTaskEnv(tasks=DEFAULT_TASKS, ordered=True, max_episode_steps=args.episode_steps)
    env = SkillSpaceEnv(low, library, progress_threshold=0.95)
    target = DEFAULT_TASKS[args.done]

    def prior_greedy(obs: np.ndarray) -> tuple[int, np.ndarray]:
        logits, mean, _ = library.prior(obs[None])
        d = int(logits[0].argmax())
        return d, mean[0, d].astype(np.float32)

    greedy = prior_greedy
    if args.policy:
        from skillgym.rl.skill_sac import SkillSAC

        model = SkillSAC.load(args.policy)

        def policy_greedy(obs: np.ndarray) -> tuple[int, np.ndarray]:
            action, _ = model.predict(obs, deterministic=True)
            return int(action["skill"]), np.asarray(action["arg"], dtype=np.float32)

        greedy = policy_greedy

    obs, info = env.reset(seed=args.reset_seed)
    chain: list[tuple[int, np.ndarray]] = []
    while info.get("num_completed", 0) < args.done:
        d, z = greedy(obs)
        obs, _, terminated, truncated, info = env.step({"skill": d, "arg": z})
        chain.append((d, z))
        if terminated or truncated:
            raise SystemExit(f"the greedy chain ended after {info['num_completed']} subtasks, before {args.done}")
    stall_obs = obs
    logits, mean, log_std = library.prior(stall_obs[None])
    prior_d = np.exp(logits[0] - logits[0].max())

    def try_skill(d: int, z: np.ndarray) -> bool:
        o, _ = env.reset(seed=args.reset_seed)
        for skill, arg in chain:
            o, *_ = env.step({"skill": skill, "arg": arg})
        o, _, te, tr, _ = env.step({"skill": d, "arg": z.astype(np.float32)})
        for _ in range(args.follow):
            if low.task_done(target) or te or tr:
                break
            skill, arg = greedy(o)
            o, _, te, tr, _ = env.step({"skill": skill, "arg": arg})
        return low.task_done(target)

    rng = np.random.default_rng(args.seed)
    bound = library.config.arg_bound
    hits: dict[str, list[int]] = {}
    for scheme in ("prior", "prior x2", "uniform"):
        hits[scheme] = []
        for d in range(library.num_skills):
            count = 0
            for _ in range(args.samples):
                if scheme == "uniform":
                    z = rng.uniform(-bound, bound, library.z_dim)
                else:
                    scale = 2.0 if scheme == "prior x2" else 1.0
                    z = mean[0, d] + scale * np.exp(log_std[0, d]) * rng.standard_normal(library.z_dim)
                count += try_skill(d, np.clip(z, -bound, bound))
            hits[scheme].append(count)
            print(f"{scheme:9s} skill {d}: {target} {count}/{args.samples}", flush=True)
    env.close()
    result = {
        "library": args.library, "policy": args.policy, "target": target, "chain_skills": [d for d, _ in chain],
        "prior_d_at_stall": np.round(prior_d / prior_d.sum(), 3).tolist(),
        "samples_per_skill": args.samples, "hits": hits,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
