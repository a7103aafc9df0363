"""Gradient steps per second of SkillSAC against SB3 SAC on the same skill env, measured in the same run.

SAC acts on a flattened view of the skill space (Box action ``[K skill scores ‖ arg]``, skill = argmax of the
scores), with the same network sizes (actor MLP = the prior's MLP, critics ``net_arch``) and batch size.
The env is ``ToySkillEnv`` at kitchen-state size (obs dim 59, K=8, nz=5) so no simulator is needed.

    python benchmarks/skillsac_updates.py                 # defaults: 300 gradient steps each, batch 256
    python benchmarks/skillsac_updates.py --steps 1000 --threads 2
    python benchmarks/skillsac_updates.py --profile 50   # then where SkillSAC's update spends its time
    python benchmarks/skillsac_updates.py --kitchen      # SkillSAC on pixels vs on state (bundled libraries)

``--kitchen`` instead times SkillSAC's update on ``SkillKitchenPixels-v0`` (64x64 frame stacks of 4) against
``SkillKitchen-v0`` (state vector): on pixels with ``share_prior_encoder=False`` (uint8 frames in the replay
buffer, the pixel prior's conv encoder in the actor, a conv encoder in the critics), then with the default
shared encoder (the pixel prior's own, frozen) once with frames in the replay buffer (one conv pass per sampled
observation) and once as by default with the encoder's features stored instead (no conv pass in an update),
each with its bundled library, on replay buffers filled with random transitions of the envs' spaces (an
update's cost does not depend on the values).

Both algorithms are timed on ``model.train(gradient_steps=N, batch_size)`` after the same warm-up, in
alternating rounds, on the CPU time of this process (``time.process_time``, robust to neighbours on a shared
machine; with 1 thread it equals wall time on an idle one); the best round of each is reported.

``--malloc keep`` (default) first calls ``skillgym.rl.utils.keep_freed_memory()``, which applies to both
algorithms alike; ``--malloc default`` measures glibc's defaults, under which SkillSAC's multi-MB per-skill
tensors are page-faulted in afresh at every update (see that function's docstring).

``--profile N`` then prints torch's profile of N SkillSAC updates by operation and shape, and the update's time
split by those shapes into the two parts SAC has no counterpart of (the critics at every skill's argument:
operations on ``(B, K, ·)`` or ``(B·K, ·)`` tensors; the frozen prior on s and s': on ``2B`` rows) and the rest,
next to SAC's whole update.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC

from skillgym.envs.toy import ToySkillEnv
from skillgym.rl import SkillSAC
from skillgym.rl.buffers import SkillReplayBuffer
from skillgym.rl.utils import keep_freed_memory


class FlatSkillAction(gym.ActionWrapper):
    """Box view ``[K scores ‖ arg]`` of a ``Dict(skill, arg)`` action space (the skill is the argmax score)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.n_skills = int(env.action_space["skill"].n)
        arg = env.action_space["arg"]
        low = np.concatenate([-np.ones(self.n_skills), arg.low]).astype(np.float32)
        high = np.concatenate([np.ones(self.n_skills), arg.high]).astype(np.float32)
        self.action_space = spaces.Box(low, high, dtype=np.float32)

    def action(self, action: np.ndarray) -> dict[str, Any]:
        return {
            "skill": int(np.argmax(action[: self.n_skills])),
            "arg": action[self.n_skills :].astype(np.float32),
        }


def time_updates(model: Any, steps: int, batch_size: int) -> float:
    t0 = time.process_time()
    model.train(gradient_steps=steps, batch_size=batch_size)
    return steps / (time.process_time() - t0)


def filled_skill_sac(env: gym.Env, transitions: int, batch_size: int, **kwargs: Any) -> SkillSAC:
    """SkillSAC(**kwargs) on ``env`` with ``transitions`` random transitions of its spaces in the replay buffer."""
    from stable_baselines3.common.logger import configure

    model = SkillSAC("SkillPolicy", env, batch_size=batch_size, buffer_size=transitions, seed=0, **kwargs)
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    space = env.observation_space
    arg_dim = env.action_space["arg"].shape[0]
    for _ in range(transitions):
        obs, next_obs = (rng.integers(0, 256, space.shape, np.uint8) if space.dtype == np.uint8
                         else rng.normal(size=space.shape).astype(space.dtype) for _ in range(2))
        action = np.concatenate([[rng.integers(env.action_space["skill"].n)], rng.normal(size=arg_dim)])
        model.replay_buffer.add(obs[None], next_obs[None], action[None].astype(np.float32), np.zeros(1),
                                np.zeros(1), [{"skill_steps": 10}])
    return model


def kitchen_pixels_vs_state(args: argparse.Namespace) -> None:
    """Gradient steps/s of SkillSAC on the pixel kitchen env over the state one (see the module docstring)."""
    import skillgym  # noqa: F401  (registers the envs)

    variants = {"pixels": ("SkillKitchenPixels-v0", {"policy_kwargs": {"share_prior_encoder": False}}),
                "pixels, shared, frames stored": ("SkillKitchenPixels-v0", {"replay_buffer_class": SkillReplayBuffer}),
                "pixels, shared, features stored": ("SkillKitchenPixels-v0", {}),
                "state": ("SkillKitchen-v0", {})}
    models = {name: filled_skill_sac(gym.make(env_id), 4 * args.batch_size, args.batch_size, **kwargs)
              for name, (env_id, kwargs) in variants.items()}
    for model in models.values():
        model.train(gradient_steps=5, batch_size=args.batch_size)  # allocator / Adam state warm-up
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(time_updates(model, args.steps, args.batch_size))
    best = {k: max(v) for k, v in rates.items()}
    for name, model in models.items():
        n = sum(p.numel() for p in model.policy.parameters() if p.requires_grad)
        print(f"{name:31s} gradient steps/s: best {best[name]:7.2f}  rounds {', '.join(f'{v:.2f}' for v in rates[name])}"
              f"  ({n:,} trainable parameters, observation {model.observation_space.shape} "
              f"{model.observation_space.dtype})")
    costs = ", ".join(f"{name} {best['state'] / rate:.1f}x" for name, rate in best.items() if name != "state")
    print(f"batch {args.batch_size}, threads {args.threads}; update cost over state: {costs}  (load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs)")
    if args.profile:
        with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU]) as prof:
            models["pixels"].train(gradient_steps=args.profile, batch_size=args.batch_size)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    for model in models.values():
        model.env.close()  # free the renderers before the interpreter tears EGL down


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="gradient steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[256, 256], help="actor/prior and critic MLP sizes"
    )
    parser.add_argument("--n-skills", type=int, default=8)
    parser.add_argument("--arg-dim", type=int, default=5)
    parser.add_argument("--obs-dim", type=int, default=59)
    parser.add_argument(
        "--separate-actor", action="store_true", help="two prior copies for π_d and π_z (share_actor=False)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--malloc", choices=["keep", "default"], default="keep")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="afterwards, profile N SkillSAC gradient steps"
    )
    parser.add_argument("--kitchen", action="store_true",
                        help="time SkillSAC on SkillKitchenPixels-v0 against SkillKitchen-v0 instead")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    malloc_tuned = args.malloc == "keep" and keep_freed_memory()
    if args.kitchen:
        kitchen_pixels_vs_state(args)
        return

    def make_env() -> ToySkillEnv:
        return ToySkillEnv(
            n_skills=args.n_skills,
            arg_dim=args.arg_dim,
            n_states=8,
            obs_dim=args.obs_dim,
            obs_dtype=np.float64,
            prior_net_arch=args.hidden,
        )

    warmup = 2 * args.batch_size
    skill = SkillSAC(
        "SkillPolicy",
        make_env(),
        learning_starts=warmup,
        batch_size=args.batch_size,
        policy_kwargs=dict(net_arch=args.hidden, share_actor=not args.separate_actor),
        seed=0,
    )
    sac = SAC(
        "MlpPolicy",
        FlatSkillAction(make_env()),
        learning_starts=warmup,
        batch_size=args.batch_size,
        policy_kwargs=dict(net_arch=args.hidden),
        seed=0,
    )
    for model in (skill, sac):
        with warnings.catch_warnings():  # SkillSAC warns that learn() made no update: none is wanted yet
            warnings.simplefilter("ignore", UserWarning)
            model.learn(warmup)  # fills the buffer
        model.train(gradient_steps=20, batch_size=args.batch_size)  # allocator / Adam state warm-up

    rates: dict[str, list[float]] = {"SkillSAC": [], "SAC": []}
    for _ in range(args.rounds):
        rates["SkillSAC"].append(time_updates(skill, args.steps, args.batch_size))
        rates["SAC"].append(time_updates(sac, args.steps, args.batch_size))
    best = {k: max(v) for k, v in rates.items()}
    n_skill = sum(p.numel() for p in skill.policy.parameters() if p.requires_grad)
    n_sac = sum(p.numel() for p in sac.policy.parameters() if p.requires_grad)
    print(
        f"obs {args.obs_dim}, K={args.n_skills}, nz={args.arg_dim}, hidden {args.hidden}, batch {args.batch_size}, "
        f"threads {args.threads}, share_actor={not args.separate_actor}, malloc {'keep' if malloc_tuned else 'default'}"
    )
    print(f"trainable parameters: SkillSAC {n_skill:,} / SAC {n_sac:,}")
    for name, values in rates.items():
        print(
            f"{name:9s} gradient steps/s: best {best[name]:7.1f}  rounds {', '.join(f'{v:.1f}' for v in values)}"
        )
    print(f"ratio SkillSAC / SAC: {best['SkillSAC'] / best['SAC']:.2f}  (load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs)")

    if args.profile:
        with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            skill.train(gradient_steps=args.profile, batch_size=args.batch_size)
        events = prof.key_averages(group_by_input_shape=True)
        print(events.table(sort_by="self_cpu_time_total", row_limit=25))
        if args.n_skills > 2:  # with K = 2, B·K rows and the prior's 2B rows cannot be told apart
            print(update_split(events, args.batch_size, args.n_skills, 1000 / best["SkillSAC"], 1000 / best["SAC"]))


def update_split(events: Any, batch_size: int, n_skills: int, skill_ms: float, sac_ms: float) -> str:
    """SkillSAC's update time split, by the shapes of the profiled operations, into the two parts SAC has no
    counterpart of and the rest, in ms of the timed update (profiling itself slows every operation alike)."""
    def part(shapes: list[list[int]]) -> str:
        if any(s[:2] == [batch_size, n_skills] or s[:1] == [batch_size * n_skills] for s in shapes):
            return "critics at every skill's argument"  # (B, K, ·) and (B·K, ·): Eq. 5 and the soft value
        if any(s[:1] == [2 * batch_size] for s in shapes):
            return "frozen prior on s and s'"  # the one pass over both halves of the batch
        return "the rest"
    ms: dict[str, float] = {}
    for event in events:
        name = part(event.input_shapes)
        ms[name] = ms.get(name, 0.0) + event.self_cpu_time_total
    total = sum(ms.values())
    split = ", ".join(f"{name} {skill_ms * t / total:.1f} ms ({t / total:.0%})" for name, t in ms.items())
    return f"SkillSAC update {skill_ms:.1f} ms: {split}; SAC's whole update {sac_ms:.1f} ms"


if __name__ == "__main__":
    main()
