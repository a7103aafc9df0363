"""Gradient steps per second of SkillSAC against SB3 SAC on the same skill env, measured in the same run.

SAC acts on a flattened view of the skill space (Box action ``[K skill scores ‖ arg]``, skill = argmax of the
scores), with the same network sizes (actor MLP = the prior's MLP, critics ``net_arch``) and batch size.
The env is ``ToySkillEnv`` at kitchen-state size (obs dim 59, K=8, nz=5) so no simulator is needed.

    python benchmarks/skillsac_updates.py                 # defaults: 300 gradient steps each, batch 256
    python benchmarks/skillsac_updates.py --steps 1000 --threads 2
    python benchmarks/skillsac_updates.py --split        # where SkillSAC's update spends its time
    python benchmarks/skillsac_updates.py --profile 50   # then torch's profile of 50 SkillSAC updates
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

``--split`` also times, in the same alternating rounds, SkillSAC with each of the two parts of its update that SAC
has no counterpart of made cheap, and with both: the critics evaluated at one argument per state (as SAC's at one
action) instead of at every skill's argument, and the frozen prior's output on s and s' computed once and reused.
The differences to SkillSAC as it is are the two parts' costs; SkillSAC with both is the rest. The split is timed
this way because torch's profiler (``--profile N``, its table of N SkillSAC updates by operation and shape) slows
the memory-bound operations on ``(B, K, ·)`` tensors many times more than the matmuls, which skews any split of its
self times.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
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
        "--split", action="store_true", help="also time SkillSAC without each of its two parts SAC has no "
        "counterpart of, and split its update into them and the rest"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="afterwards, torch's profile of N SkillSAC gradient steps"
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

    def make_skill_sac() -> SkillSAC:
        return SkillSAC("SkillPolicy", make_env(), learning_starts=warmup, batch_size=args.batch_size,
                        policy_kwargs=dict(net_arch=args.hidden, share_actor=not args.separate_actor), seed=0)

    warmup = 2 * args.batch_size
    skill = make_skill_sac()
    sac = SAC(
        "MlpPolicy",
        FlatSkillAction(make_env()),
        learning_starts=warmup,
        batch_size=args.batch_size,
        policy_kwargs=dict(net_arch=args.hidden),
        seed=0,
    )
    models: dict[str, Any] = {"SkillSAC": skill, "SAC": sac}
    ablations: dict[str, list[Callable[[SkillSAC], None]]] = {}
    if args.split:
        ablations = {ONE_ARGUMENT: [critics_at_one_argument], PRIOR_ONCE: [prior_computed_once],
                     BOTH: [critics_at_one_argument, prior_computed_once]}
        models.update({name: make_skill_sac() for name in ablations})
    for name, model in models.items():
        with warnings.catch_warnings():  # SkillSAC warns that learn() made no update: none is wanted yet
            warnings.simplefilter("ignore", UserWarning)
            model.learn(warmup)  # fills the buffer
        for ablate in ablations.get(name, []):
            ablate(model)
        model.train(gradient_steps=20, batch_size=args.batch_size)  # allocator / Adam state warm-up

    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(time_updates(model, args.steps, args.batch_size))
    best = {k: max(v) for k, v in rates.items()}
    n_skill = sum(p.numel() for p in skill.policy.parameters() if p.requires_grad)
    n_sac = sum(p.numel() for p in sac.policy.parameters() if p.requires_grad)
    print(
        f"obs {args.obs_dim}, K={args.n_skills}, nz={args.arg_dim}, hidden {args.hidden}, batch {args.batch_size}, "
        f"threads {args.threads}, share_actor={not args.separate_actor}, malloc {'keep' if malloc_tuned else 'default'}"
    )
    print(f"trainable parameters: SkillSAC {n_skill:,} / SAC {n_sac:,}")
    width = max(map(len, rates))
    for name, values in rates.items():
        print(
            f"{name:{width}s} gradient steps/s: best {best[name]:7.1f}  rounds {', '.join(f'{v:.1f}' for v in values)}"
        )
    print(f"ratio SkillSAC / SAC: {best['SkillSAC'] / best['SAC']:.2f}  (load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs)")
    if args.split:
        print(update_split({name: 1000 / rate for name, rate in best.items()}))

    if args.profile:
        with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            skill.train(gradient_steps=args.profile, batch_size=args.batch_size)
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25))


ONE_ARGUMENT = "SkillSAC, critics at one argument per state"
PRIOR_ONCE = "SkillSAC, prior computed once"
BOTH = "SkillSAC, both"


def critics_at_one_argument(model: SkillSAC) -> None:
    """Ablation: the critics evaluated at one argument per state, as SAC's at one action, instead of at every
    skill's argument (the soft value and Eq. 5); the K columns then repeat the first skill's value."""
    for critic in (model.critic, model.critic_target):
        def at_one(features: th.Tensor, args: th.Tensor, detach_params: bool = False,
                   q_per_skill: Any = critic.q_per_skill) -> th.Tensor:
            return q_per_skill(features, args[:, :1], detach_params).expand(-1, -1, args.shape[1])
        critic.q_per_skill = at_one  # type: ignore[method-assign]


def prior_computed_once(model: SkillSAC) -> None:
    """Ablation: the frozen prior's output on the next update's batch of s and s' reused by every later one."""
    first: list[Any] = []

    def reused(obs: Any, prior_dist: Any = model.policy.prior_dist) -> Any:
        if not first:
            first.append(prior_dist(obs))
        return first[0]
    model.policy.prior_dist = reused  # type: ignore[method-assign]


def update_split(update_ms: dict[str, float]) -> str:
    """SkillSAC's update time split by the ablations into the two parts SAC has no counterpart of and the rest."""
    full = update_ms["SkillSAC"]
    rows = [("SkillSAC's update", full),
            ("  critics at every skill's argument (less: at one argument per state)", full - update_ms[ONE_ARGUMENT]),
            ("  frozen prior on s and s' (less: computed once)", full - update_ms[PRIOR_ONCE]),
            ("  the rest (both ablations at once)", update_ms[BOTH]),
            ("SAC's whole update", update_ms["SAC"])]
    return "\n".join(f"{name:72s} {ms:6.2f} ms" for name, ms in rows)


if __name__ == "__main__":
    main()
