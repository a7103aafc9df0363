"""RLlib PPO in a skill space, across Ray env runners: the path to many machines.

SkillKitchen-v0's actions are ``Dict(skill=Discrete(K), arg=Box)``. RLlib's PPO (new API stack)
acts in that space with a composite action distribution: its catalog pairs a categorical over
the skill with a diagonal Gaussian over the argument (``TorchMultiDistribution``) and sums their
log-probabilities. Env runners are Ray actors, so ``--env-runners N`` spreads the simulators over
a cluster (the one at ``RAY_ADDRESS`` if it is set, else a local Ray).

RLlib's SAC accepts only Box or Discrete action spaces, so SkillSAC (an SB3 algorithm, with the
skill priors as its regulariser) remains the learner on one machine (``skillgym train-rl``), and
this PPO, which uses no priors, is the way to spread a skill-space agent over many machines.

    pip install 'skillgym[ray]'
    python training/rllib_ppo.py --env-runners 2 --iterations 100 --out runs/rllib_ppo

Each iteration prints the mean return of the episodes it finished (subtasks completed, of 4) and
the skill decisions sampled; ``--out/result.json`` keeps them. Budgets here count skill decisions
(one runs about 20 low-level steps), as RLlib counts env steps.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from skillgym.cli.options import add_options, command_line, parse_options
from skillgym.notices import quiet_third_party_notices

ENV_NAME = "skillgym-skill-env"


@dataclass
class RLlibPPOArgs:
    """Options of training/rllib_ppo.py."""

    env_id: str = "SkillKitchen-v0"
    """skill-space env id (registered by `import skillgym`)"""
    library: str | None = None
    """skill library: a bundled name or a library folder (default: the env's bundled library)"""
    iterations: int = 100
    """PPO iterations, each on --train-batch skill decisions"""
    env_runners: int = 2
    """Ray env runner processes that step the envs (0: the driver steps them)"""
    envs_per_runner: int = 1
    """envs each env runner steps"""
    train_batch: int = 2000
    """skill decisions per iteration, over all env runners"""
    minibatch: int = 250
    """skill decisions per gradient step"""
    epochs: int = 10
    """passes over each iteration's batch"""
    lr: float = 3e-4
    """Adam learning rate"""
    gamma: float = 0.99
    """discount per skill decision"""
    seed: int = 0
    """seed of the networks, the env runners and their envs"""
    out: str = "runs/rllib_ppo"
    """folder of result.json (the options and every iteration's return)"""


def make_env(env_config: dict[str, Any]) -> Any:
    """The skill-space env, built inside each env runner (where skillgym must register its ids first)."""
    import gymnasium as gym

    quiet_third_party_notices()
    import skillgym  # noqa: F401  (registers SkillKitchen-v0 and friends)

    kwargs = {} if env_config.get("library") is None else {"library": env_config["library"]}
    return gym.make(env_config["env_id"], **kwargs)


def ppo_config(args: RLlibPPOArgs) -> Any:
    """The PPO configuration: new API stack, composite action distribution from the Dict action space."""
    from ray.rllib.algorithms.ppo import PPOConfig

    return (
        PPOConfig()
        .environment(ENV_NAME, env_config={"env_id": args.env_id, "library": args.library})
        # No sample timeout: on a busy machine RLlib would otherwise drop a slow runner's samples
        # and hand back an iteration without any.
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=args.envs_per_runner,
                     rollout_fragment_length="auto", sample_timeout_s=None)
        .training(train_batch_size_per_learner=args.train_batch, minibatch_size=args.minibatch,
                  num_epochs=args.epochs, lr=args.lr, gamma=args.gamma)
        .debugging(seed=args.seed)
    )


def main(args: RLlibPPOArgs, command: str) -> dict[str, Any]:
    """Train, print every iteration, write ``--out/result.json``; returns what it wrote."""
    import ray
    from ray.tune.registry import register_env

    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS", "local")
        ray.init(address=address, logging_level=logging.WARNING,
                 **({"include_dashboard": False} if address == "local" else {}))
    register_env(ENV_NAME, make_env)
    algo = ppo_config(args).build_algo()
    history = []
    t0 = time.perf_counter()
    try:
        for i in range(1, args.iterations + 1):
            result = algo.train()
            runners = result["env_runners"]
            history.append({"iteration": i, "skill_decisions": int(runners["num_env_steps_sampled_lifetime"]),
                            "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
                            "seconds": round(time.perf_counter() - t0, 1)})
            print(f"iteration {i}: return {history[-1]['episode_return_mean']:.2f} "
                  f"after {history[-1]['skill_decisions']} skill decisions")
    finally:
        algo.stop()
        if started:
            ray.shutdown()
    summary = {"command": command, "args": asdict(args), "history": history}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_options(parser, RLlibPPOArgs)
    args = parse_options(RLlibPPOArgs, parser.parse_args())
    main(args, command_line("python training/rllib_ppo.py", args))
