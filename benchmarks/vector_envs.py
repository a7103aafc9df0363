"""Low-level env steps per second of SkillKitchen-v0 run as N envs in parallel processes, as ratios to N = 1.

Random skills (uniform skill, uniform argument in its Box; no learning, no agent), so what is measured is the
simulator and the skill decoder only. Configurations: the plain env in this process, then for N = 1, 2, 4
processes SB3's ``SubprocVecEnv`` (all N envs step together: a vector step lasts as long as its longest skill)
and skillgym's ``AsyncSkillVecEnv`` (each env starts its next skill when its last one is received). Every
configuration runs ``--decisions`` skill decisions in total after a warm-up, in ``--rounds`` alternating rounds; the best
round of each is reported, on the wall clock (the work happens in the subprocesses). Each subprocess keeps
torch to one thread, so N processes use N cores. Also printed: the CPU time all processes spend per low-level
step (constant in N when parallel envs cost no extra work, so a missing speed-up means missing free cores)
and the share of env time spent stepping rather than waiting for the longest skill of a vector step.

    python benchmarks/vector_envs.py                      # defaults: 240 decisions per round, 2 rounds
    python benchmarks/vector_envs.py --decisions 480 --rounds 3 --n-envs 1 2

The speed-up a machine can give is bounded by its free cores: report ``uptime`` with the numbers.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import NamedTuple

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import SubprocVecEnv

import skillgym  # noqa: F401  (registers SkillKitchen-v0)
from skillgym.rl.vec_env import AsyncSkillVecEnv


def make_kitchen(seed: int) -> Callable[[], gym.Env]:
    def make() -> gym.Env:
        torch.set_num_threads(1)  # one core per env process; torch's default would take them all in each
        env = gym.make("skillgym:SkillKitchen-v0")
        env.action_space.seed(seed)
        return env

    return make


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux ``/proc``; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class Measurement(NamedTuple):
    steps: int  # low-level steps of all envs
    seconds: float  # wall time
    cpu: float  # CPU seconds of every process involved
    slots: int  # N x the longest skill of each vector step: what the envs would run if none waited

    def row(self) -> tuple[float, float, float]:
        """(low-level steps/s, CPU ms per low-level step, share of env time spent stepping, not waiting)."""
        return self.steps / self.seconds, 1e3 * self.cpu / self.steps, self.steps / self.slots


def run_plain(env: gym.Env, decisions: int) -> Measurement:
    """``decisions`` random skills in this process."""
    steps, cpu, start = 0, time.process_time(), time.perf_counter()
    for _ in range(decisions):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += int(info["skill_steps"])
        if terminated or truncated:
            env.reset()
    return Measurement(steps, time.perf_counter() - start, time.process_time() - cpu, steps)


def run_vec(venv: SubprocVecEnv, decisions: int, rng: np.random.Generator) -> Measurement:
    """``decisions`` random skills spread over the vector's envs."""
    space = venv.action_space
    n = venv.num_envs
    pids = [os.getpid()] + [p.pid for p in venv.processes]
    steps, slots, cpu, start = 0, 0, cpu_seconds(pids), time.perf_counter()
    for _ in range(decisions // n):
        actions = [
            {"skill": int(rng.integers(space["skill"].n)),
             "arg": rng.uniform(space["arg"].low, space["arg"].high).astype(np.float32)}
            for _ in range(n)
        ]
        _, _, _, infos = venv.step(actions)  # SB3 VecEnvs reset finished envs themselves
        lengths = [int(info["skill_steps"]) for info in infos]
        steps += sum(lengths)
        slots += n * max(lengths)
    return Measurement(steps, time.perf_counter() - start, cpu_seconds(pids) - cpu, slots)


def run_async(venv: AsyncSkillVecEnv, decisions: int, rng: np.random.Generator) -> Measurement:
    """``decisions`` random skills, each env starting its next skill as soon as its last one is received."""
    space = venv.action_space
    pids = [os.getpid()] + [p.pid for p in venv.processes]

    def start(indices: list[int]) -> None:
        venv.send(indices, [{"skill": int(rng.integers(space["skill"].n)),
                             "arg": rng.uniform(space["arg"].low, space["arg"].high).astype(np.float32)}
                            for _ in indices])

    steps, cpu, start_time = 0, cpu_seconds(pids), time.perf_counter()
    start(venv.idle_envs())
    for n in range(decisions):
        i, _, _, _, info = venv.receive()
        steps += int(info["skill_steps"])
        if n + venv.num_envs < decisions:
            start([i])
    seconds = time.perf_counter() - start_time
    return Measurement(steps, seconds, cpu_seconds(pids) - cpu, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=240, help="skill decisions per configuration and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 2, 4], help="vector env sizes")
    parser.add_argument("--warmup", type=int, default=8, help="decisions per env before timing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    plain = make_kitchen(0)()
    plain.reset(seed=0)
    run_plain(plain, args.warmup)
    vecs: dict[str, SubprocVecEnv | AsyncSkillVecEnv] = {}
    for n in args.n_envs:
        for kind, run in ((SubprocVecEnv, run_vec), (AsyncSkillVecEnv, run_async)):
            venv = kind([make_kitchen(i) for i in range(n)])
            venv.seed(0)
            venv.reset()
            run(venv, args.warmup * n, rng)
            vecs[f"{kind.__name__} N={n}"] = venv

    runs: dict[str, list[Measurement]] = {"plain": [], **{name: [] for name in vecs}}
    try:
        for _ in range(args.rounds):
            runs["plain"].append(run_plain(plain, args.decisions))
            for name, venv in vecs.items():
                run = run_async if isinstance(venv, AsyncSkillVecEnv) else run_vec
                runs[name].append(run(venv, args.decisions, rng))
    finally:
        for venv in vecs.values():
            venv.close()

    best = {name: max(m.row()[0] for m in ms) for name, ms in runs.items()}
    base = "SubprocVecEnv N=1" if "SubprocVecEnv N=1" in vecs else "plain"
    length = np.mean([m.steps / args.decisions for m in runs["plain"]])
    print(f"SkillKitchen-v0, random skills ({length:.1f} low-level steps each), {args.decisions} decisions per "
          f"configuration and round, {args.rounds} rounds; {os.cpu_count()} CPUs, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'':20s} {'steps/s':>8s} {'to ' + base:>21s} {'to plain':>9s} {'CPU ms/step':>12s} {'stepping':>9s}")
    for name, ms in runs.items():
        rows = [m.row() for m in ms]
        cpu_ms = np.median([r[1] for r in rows])
        stepping = "n/a" if name.startswith("Async") else f"{np.median([r[2] for r in rows]):.0%}"
        print(f"{name:20s} {best[name]:8.1f} {best[name] / best[base]:20.2f}x {best[name] / best['plain']:8.2f}x "
              f"{cpu_ms:12.2f} {stepping:>9s}   rounds: " + ", ".join(f"{r[0]:.1f}" for r in rows))
    print("CPU ms/step: CPU time of all processes (learner + envs) per low-level step, median of rounds. "
          "stepping: share of the envs' time spent running skills rather than waiting for the longest skill "
          "of their vector step (AsyncSkillVecEnv has no vector step).")

if __name__ == "__main__":
    main()
