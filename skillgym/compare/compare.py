"""``skillgym compare``: methods x tasks x seeds at one budget of low-level env steps, then a results page.

    skillgym compare --methods extract,spirl,sac,bc --tasks default --seeds 2 --steps 20000 --out runs/cmp

Runs go to parallel processes, one torch thread each; every run is resumable (run the same command
again after an interruption, or with a larger ``--steps`` to extend finished runs). Methods that
learn from demonstrations (``spirl``, ``bc``, ``bc+sac``) share one dataset: ``--data``, or a
recording made in ``<out>/data`` with ``skillgym data kitchen``'s defaults. Output folder::

    data/, spirl/                     the recorded demonstrations and the SPiRL skill library (if needed)
    runs/<method>/<task>/seed<k>/     one run each (skillgym.compare.run)
    results.md, curves.png, skill_lengths.png, results.json   the results page and its numbers
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from skillgym.cli.options import command_line
from skillgym.compare.methods import METHOD_GROUPS, METHODS
from skillgym.compare.page import write_results_page
from skillgym.compare.run import PROGRESS, RunSpec, train_run
from skillgym.envs.skill_kitchen import NAMED_LIBRARIES, resolve_library
from skillgym.notices import quiet_third_party_notices
from skillgym.tasks.kitchen import HELD_OUT_TASKS, TASK_SUITE, task_order

# Evaluation points: every 20k low-level steps at the paper's budgets, ten points on short runs.
EVAL_EVERY_MAX = 20_000
# Slowest runs first, so that the pool does not end waiting on one long run.
COST = {"sac": 4, "bc+sac": 4, "flat-skill-tqc": 2, "flat-skill-sac": 2, "spirl": 1.5, "extract": 1, "bc": 0}


def comma_list(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise ValueError("expected a comma-separated list")
    return items


@dataclass
class CompareArgs:
    """Options of ``skillgym compare``."""

    out: str
    """output folder: the runs and the results page (re-run the command to resume)"""
    methods: tuple[str, ...] = field(default=("extract", "spirl", "sac", "bc"), metadata={"parse": comma_list})
    """comma-separated, from extract, spirl, sac, bc, bc+sac, flat-skill-sac, flat-skill-tqc (flat-skill: both; all)"""
    tasks: tuple[str, ...] = field(default=("default",), metadata={"parse": comma_list})
    """comma-separated task names (default, kettle-cabinets, burners-cabinets, switch-first; held-out: all but
    default; suite: all four) or subtasks joined by '+'"""
    seeds: int = 3
    """runs per method and task, with seeds 0 .. seeds-1"""
    steps: int = 300_000
    """budget of every run in low-level env steps"""
    library: tuple[str, ...] = field(default=("default",), metadata={"parse": comma_list})
    """comma-separated skill libraries for extract and flat-skill: folders, or the bundled default / agnostic"""
    data: str | None = None
    """demonstrations for spirl, bc and bc+sac (default: record them into OUT/data)"""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """runs in parallel"""
    eval_every: int | None = None
    """low-level steps between evaluations (default: steps / 10, at most 20000)"""
    eval_episodes: int = 20
    """deterministic episodes per evaluation, with the same seeds for every run"""
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """per method, keyword arguments replacing its agent's settings, e.g. {"extract": {"learning_starts": 100}}
    (Python only)"""
    pretrain_steps: dict[str, int] = field(default_factory=dict)
    """gradient steps of the offline parts, {"spirl": ..., "bc": ...} (Python only; default 10000 and 20000)"""

    def __post_init__(self) -> None:
        for name in ("seeds", "steps", "workers", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        unknown = [m for m in self.methods if m not in METHODS and m not in METHOD_GROUPS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join([*METHODS, *METHOD_GROUPS])}")
        for task in self.task_names():
            task_order(task)
        for library in self.library:
            resolve_library(library)

    def method_names(self) -> list[str]:
        """The methods, groups expanded, in the order given."""
        names: list[str] = []
        for m in self.methods:
            names += [n for n in METHOD_GROUPS.get(m, (m,)) if n not in names]
        return names

    def task_names(self) -> list[str]:
        """The tasks, ``held-out`` and ``suite`` expanded."""
        groups = {"held-out": HELD_OUT_TASKS, "suite": tuple(TASK_SUITE)}
        names: list[str] = []
        for t in self.tasks:
            names += [n for n in groups.get(t, (t,)) if n not in names]
        return names

    def eval_interval(self) -> int:
        return self.eval_every or max(1, min(EVAL_EVERY_MAX, self.steps // 10))


def library_label(library: str) -> str:
    """How the page names a library: the bundled name or the folder's name."""
    return library if library == "default" or library in NAMED_LIBRARIES else Path(library).name


def plan_runs(args: CompareArgs, dataset: str | None, spirl_library: str | None) -> list[tuple[str, RunSpec]]:
    """``(method label, run)`` for every method, library, task and seed."""
    out = Path(args.out)
    runs = []
    for method in args.method_names():
        uses = METHODS[method].uses
        libraries: list[str | None] = list(args.library) if uses == "library" else [spirl_library]
        for library in libraries:
            label = method
            if uses == "library" and len(args.library) > 1:
                label = f"{method}[{library_label(str(library))}]"
            for task in args.task_names():
                for seed in range(args.seeds):
                    runs.append((label, RunSpec(
                        method=method, task=task, seed=seed, steps=args.steps, eval_every=args.eval_interval(),
                        eval_episodes=args.eval_episodes, out=str(out / "runs" / label / task / f"seed{seed}"),
                        library=library if uses in ("library", "spirl") else None,
                        dataset=dataset if uses == "data" else None,
                        agent_kwargs=args.agent_kwargs.get(method, {}),
                        **({"bc_steps": args.pretrain_steps["bc"]} if "bc" in args.pretrain_steps else {}))))
    return runs


def data_paths(args: CompareArgs) -> tuple[str | None, str | None]:
    """Where the demonstrations and the SPiRL library of the chosen methods are (or will be)."""
    needs = {METHODS[m].uses for m in args.method_names()}
    dataset = (args.data or str(Path(args.out) / "data")) if needs & {"data", "spirl"} else None
    spirl_library = str(Path(args.out) / "spirl" / "library") if "spirl" in needs else None
    return dataset, spirl_library


def prepare_data(args: CompareArgs) -> None:
    """Record the demonstrations and train the SPiRL library, if the chosen methods need them and they are missing."""
    dataset, spirl_library = data_paths(args)
    out = Path(args.out)
    if dataset is not None and args.data is None and not (out / "data" / "recording.json").is_file():
        from skillgym.data.record import RecordArgs, record_dataset

        print(f"recording demonstrations for spirl / bc into {out / 'data'} (skillgym data kitchen's defaults)")
        print("  " + record_dataset(RecordArgs(out=out / "data", workers=args.workers)).summary())
    if spirl_library is not None:
        from skillgym.baselines.spirl import SpirlArgs, train_spirl

        steps = {"steps": args.pretrain_steps["spirl"]} if "spirl" in args.pretrain_steps else {}
        train_spirl(SpirlArgs(dataset=str(dataset), out=str(out / "spirl"), threads=args.workers, **steps))


class RunsFailed(RuntimeError):
    """Some runs of a comparison raised; the others finished and the page shows them."""


def _progress(runs: list[tuple[str, RunSpec]]) -> int:
    total = 0
    for _, run in runs:
        note = Path(run.out) / PROGRESS
        try:
            total += min(int(note.read_text()), run.steps)
        except (OSError, ValueError):
            pass
    return total


def compare(args: CompareArgs, command: str | None = None) -> dict[str, Any]:
    """Run every (method, task, seed) not finished yet, then write the results page; returns its numbers.

    The page is also rewritten whenever a run finishes, so the runs done so far can be read meanwhile.

    Runs that need no demonstrations start at once; the others once the data and the SPiRL library
    are ready. Raises :class:`RunsFailed` (after writing the page) if any run raised.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(args, *data_paths(args))
    command = command or command_line("skillgym compare", args)
    failures: dict[str, str] = {}
    context = multiprocessing.get_context("spawn")  # torch and MuJoCo state must not be forked
    with ProcessPoolExecutor(max_workers=min(args.workers, len(runs)), mp_context=context,
                             initializer=quiet_third_party_notices) as pool:
        pending: dict[Future, tuple[str, RunSpec]] = {}
        later = []
        for label, run in sorted(runs, key=lambda r: -COST[r[1].method]):
            if METHODS[run.method].uses in ("data", "spirl"):
                later.append((label, run))
            else:
                pending[pool.submit(train_run, run)] = (label, run)
        if later:
            prepare_data(args)
            pending.update({pool.submit(train_run, run): (label, run) for label, run in later})
        with tqdm(total=sum(run.steps for _, run in runs), desc=f"{len(runs)} runs", unit="step",
                  unit_scale=True) as bar:
            while pending:
                finished, _ = wait(pending, timeout=5, return_when=FIRST_COMPLETED)
                for future in finished:
                    label, run = pending.pop(future)
                    if future.exception() is not None:
                        failures[run.out] = f"{type(future.exception()).__name__}: {future.exception()}"
                        tqdm.write(f"  {label} / {run.task} / seed {run.seed} failed: {failures[run.out]}")
                if finished and pending:  # a long comparison shows its finished runs while the others train
                    write_results_page(out, runs, command)
                bar.update(_progress(runs) - bar.n)
    summary = write_results_page(out, runs, command)
    if failures:
        raise RunsFailed(f"{len(failures)} of {len(runs)} runs failed (the page shows the others): "
                         + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    return summary
