"""``skillgym compare``: methods x tasks x seeds at one budget of low-level env steps, then a results page.

    skillgym compare --methods extract,spirl,sac,bc --tasks default --seeds 2 --steps 20000 --out runs/cmp

Runs go to parallel processes, one torch thread each; every run is resumable (run the same command
again after an interruption, or with a larger ``--steps`` to extend finished runs). Methods that
learn from demonstrations (``spirl``, ``bc``, ``bc+sac``) share one dataset: ``--data``, or a
recording made in ``<out>/data`` with ``skillgym data kitchen``'s defaults. Output folder::

    data/, spirl/                     the recorded demonstrations and the SPiRL skill library (if needed)
    runs/<method>/<task>/seed<k>/     one run each (skillgym.compare.run)
    results.md, curves.png, skill_lengths.png, results.json   the results page and its numbers

Before any run starts, the libraries, ``--data`` and the output folder are checked: a library that
does not load or does not fit the kitchen, data that are not kitchen demonstrations, or an output
folder holding files named like these that an earlier comparison did not write, stop the command.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from skillgym import outputs
from skillgym.cli.options import made_by
from skillgym.compare.methods import METHOD_GROUPS, METHODS
from skillgym.compare.page import PAGE_FILES, SUMMARY_KEYS, write_results_page
from skillgym.compare.run import PROGRESS, RUN_JSON, RunSpec, check_run_folder, train_run
from skillgym.data.dataset import may_record_into, open_dataset
from skillgym.envs.seed_episodes import SeedEpisodes
from skillgym.envs.skill_kitchen import NAMED_LIBRARIES, kitchen_env_for, resolve_library
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.extract.labeler import is_labels_folder
from skillgym.notices import quiet_third_party_notices
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import ACTION_DIM, HELD_OUT_TASKS, STATE_DIM, TASK_SUITE, task_name

# Evaluation points: every 20k low-level steps at the paper's budgets, ten points on short runs.
EVAL_EVERY_MAX = 20_000
# SPiRL's library trains on this many torch threads whatever --workers is: torch's sums depend on the
# thread count, and the number of runs in parallel must not change a comparison's numbers.
SPIRL_THREADS = 2
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
    """comma-separated skill libraries for extract and flat-skill: folders, or the bundled default / agnostic / pixels"""
    data: str | None = None
    """demonstrations for spirl, bc and bc+sac (default: record them into OUT/data)"""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """runs in parallel (default: one per CPU core)"""
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
        for name in ("methods", "tasks", "library"):
            if isinstance(getattr(self, name), str):  # one string is a comma-separated list, as on the command line
                setattr(self, name, comma_list(getattr(self, name)))
        for name in ("seeds", "steps", "workers", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.seeds > SeedEpisodes.MAX_SEED + 1:
            raise ValueError(f"--seeds must be <= {SeedEpisodes.MAX_SEED + 1}, got {self.seeds}")
        if self.eval_every is not None and self.eval_every < 1:
            raise ValueError(f"--eval-every must be >= 1, got {self.eval_every}")
        unknown = [m for m in self.methods if m not in METHODS and m not in METHOD_GROUPS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join([*METHODS, *METHOD_GROUPS])}")
        try:
            self.task_names()
        except ValueError as e:
            if not str(e).startswith("unknown task"):
                raise
            raise ValueError(f"{e}; or a group of tasks: held-out, suite") from None  # names only compare takes
        if any(METHODS[m].uses == "library" for m in self.method_names()):
            # One library named twice (or by two paths) would have two processes train in one run folder.
            folders: dict[Path, str] = {}
            for library in self.library:
                folders.setdefault(resolve_library(library).resolve(), library)
            self.library = tuple(folders.values())

    def method_names(self) -> list[str]:
        """The methods, groups expanded, in the order given."""
        names: list[str] = []
        for m in self.methods:
            names += [n for n in METHOD_GROUPS.get(m, (m,)) if n not in names]
        return names

    def task_names(self) -> list[str]:
        """The tasks, ``held-out`` and ``suite`` expanded, each spelled one way (:func:`task_name`)."""
        groups = {"held-out": HELD_OUT_TASKS, "suite": tuple(TASK_SUITE)}
        names: list[str] = []
        for t in self.tasks:
            names += [n for n in map(task_name, groups.get(t, (t,))) if n not in names]
        return names

    def eval_interval(self) -> int:
        """Low-level steps between evaluations: --eval-every, or a tenth of the budget up to EVAL_EVERY_MAX."""
        return self.eval_every or max(1, min(EVAL_EVERY_MAX, self.steps // 10))


def library_labels(libraries: Sequence[str]) -> list[str]:
    """How the page names each library: the bundled name, or the folder's name with as many of its parent
    folders as it takes to tell the libraries apart.

    Example:
        >>> library_labels(["default", "/runs/a/library", "/runs/b/library", "/runs/c"])
        ['default', 'a/library', 'b/library', 'c']
    """
    parts = {library: Path(library).resolve().parts[1:] for library in libraries
             if library != "default" and library not in NAMED_LIBRARIES}
    depth = dict.fromkeys(parts, 1)
    while True:
        labels = {library: "/".join(parts[library][-depth[library]:]) if library in parts else library
                  for library in libraries}
        taken = list(labels.values())
        clashing = [library for library in parts
                    if taken.count(labels[library]) > 1 and depth[library] < len(parts[library])]
        if not clashing:
            return [labels[library] for library in libraries]
        for library in clashing:
            depth[library] += 1


def plan_runs(args: CompareArgs, dataset: str | None, spirl_library: str | None) -> list[tuple[str, RunSpec]]:
    """``(method label, run)`` for every method, library, task and seed."""
    out = Path(args.out)
    runs = []
    labels = dict(zip(args.library, library_labels(args.library), strict=True))
    for method in args.method_names():
        uses = METHODS[method].uses
        libraries: list[str | None] = list(args.library) if uses == "library" else [spirl_library]
        for library in libraries:
            label = method
            if uses == "library" and len(args.library) > 1:
                label = f"{method}[{labels[str(library)]}]"
            folder = label.replace("/", "-")
            for task in args.task_names():
                for seed in range(args.seeds):
                    runs.append((label, RunSpec(
                        method=method, task=task, seed=seed, steps=args.steps, eval_every=args.eval_interval(),
                        eval_episodes=args.eval_episodes, out=str(out / "runs" / folder / task / f"seed{seed}"),
                        library=library if uses in ("library", "spirl") else None,
                        dataset=dataset if uses == "data" else None,
                        agent_kwargs=args.agent_kwargs.get(method, {}),
                        **({"bc_steps": args.pretrain_steps["bc"]} if "bc" in args.pretrain_steps else {}))))
    folders = [run.out for _, run in runs]
    shared = sorted({f for f in folders if folders.count(f) > 1})
    if shared:
        raise ValueError(f"two runs would share the folder {shared[0]}: the libraries' folder names tell them "
                         "apart there only with / turned into -; rename one of the folders")
    return runs


def data_paths(args: CompareArgs) -> tuple[str | None, str | None]:
    """Where the demonstrations and the SPiRL library of the chosen methods are (or will be)."""
    needs = {METHODS[m].uses for m in args.method_names()}
    dataset = (args.data or str(Path(args.out) / "data")) if needs & {"data", "spirl"} else None
    spirl_library = str(Path(args.out) / "spirl" / "library") if "spirl" in needs else None
    return dataset, spirl_library


def check_library(library: str) -> None:
    """Load ``library`` and wrap the kitchen env in its skill space, with the checks ``SkillKitchen-v0``
    (and so ``skillgym train-rl``) makes: raises ``ValueError`` naming the problem if it is no library, is
    corrupt, or does not fit the kitchen (a LIBERO library, a library of another observation)."""
    lib = SkillLibrary.load(resolve_library(library))  # its message names the folder and what is wrong
    try:
        SkillSpaceEnv(kitchen_env_for(lib), lib).close()
    except ValueError as e:
        raise ValueError(f"--library {library} does not fit the kitchen: {e}") from e


def check_dataset(path: str) -> None:
    """Open ``--data`` and check that it holds kitchen demonstrations, which ``bc`` clones and ``spirl``
    learns its skills from."""
    dataset = open_dataset(path)
    dataset.close()
    if (dataset.state_dim, dataset.action_dim) != (STATE_DIM, ACTION_DIM):
        raise ValueError(f"--data {path} holds {dataset.state_dim}-d states and {dataset.action_dim}-d actions, "
                         f"but the kitchen's are {STATE_DIM}-d and {ACTION_DIM}-d: pass Franka Kitchen "
                         "demonstrations (`skillgym data kitchen` records them), or leave out --data")


def check_comparison_folder(args: CompareArgs) -> None:
    """Refuse ``--out`` if it is a file, or if it holds entries named like the ones a comparison writes (the
    page, ``runs/``, ``spirl/``) and is not an earlier comparison's output (no ``results.json`` of one, no
    run folder, no SPiRL labels)."""
    out = Path(args.out)
    _, spirl_library = data_paths(args)
    written = [*PAGE_FILES, "runs"] + (["spirl"] if spirl_library is not None else [])
    # data/ is not among them: a finished recording there is used as it is, and check_inputs refuses
    # anything else there but an empty folder.
    run_files = out.glob(f"runs/*/*/seed*/{RUN_JSON}")
    ours = (outputs.is_marker(out / "results.json", SUMMARY_KEYS)
            or any(outputs.is_marker(f, ("method", "task", "seed")) for f in run_files)
            or is_labels_folder(out / "spirl" / "labels"))
    outputs.check_output_folder(out, written, ours=ours)


def check_inputs(args: CompareArgs) -> None:
    """Everything that can be checked before a run starts: the output folder, the libraries and ``--data``
    of the chosen methods."""
    check_comparison_folder(args)
    recording, (dataset, _) = Path(args.out) / "data", data_paths(args)
    if dataset is not None and args.data is None and not may_record_into(recording):
        raise FileExistsError(f"{recording} exists and is not a recording skillgym made, where compare records "
                              "the demonstrations for bc and spirl; pick another --out, or pass --data")
    uses = {METHODS[m].uses for m in args.method_names()}
    if "library" in uses:
        for library in args.library:
            check_library(library)
    if args.data is not None and uses & {"data", "spirl"}:
        check_dataset(args.data)
    for _, run in plan_runs(args, *data_paths(args)):
        check_run_folder(run)


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
        train_spirl(SpirlArgs(dataset=str(dataset), out=str(out / "spirl"), threads=SPIRL_THREADS, **steps))


def _start_worker() -> None:
    """A run's process: third-party notices silenced, a warning one line, as the command's own are, and Ctrl-C
    left to the parent, which ends the workers (one stopped by it would be sending its interruption back to the
    parent while the parent ends it)."""
    quiet_third_party_notices()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not os.environ.get("SKILLGYM_DEBUG"):
        warnings.showwarning = lambda message, *_, **__: print(f"skillgym compare: warning: {message}",
                                                                file=sys.stderr)


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
    are ready. Raises :class:`RunsFailed` (after writing the page) if any run raised, and ``ValueError`` or
    ``OSError`` before any run starts if a library, ``--data`` or the output folder will not do.

    Call it under ``if __name__ == "__main__":`` in a script: the runs' processes are spawned, and each
    imports the script's main module again.
    """
    out = Path(args.out)
    runs = plan_runs(args, *data_paths(args))
    check_inputs(args)
    out.mkdir(parents=True, exist_ok=True)
    command = command or made_by("skillgym compare", "compare", args)
    failures: dict[str, str] = {}
    context = multiprocessing.get_context("spawn")  # torch and MuJoCo state must not be forked
    children_before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(max_workers=min(args.workers, len(runs)), mp_context=context,
                             initializer=_start_worker) as pool:
        try:
            _run_all(pool, args, runs, command, failures)
        except KeyboardInterrupt:
            # Ctrl-C is this process's alone (the workers ignore it): end the workers (each run keeps what it
            # checkpointed), then show the runs finished so far.
            for child in set(multiprocessing.active_children()) - children_before:
                child.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            write_results_page(out, runs, command)
            raise
    summary = write_results_page(out, runs, command)
    if failures:
        raise RunsFailed(f"{len(failures)} of {len(runs)} runs failed (the page shows the others): "
                         + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    return summary


def _run_all(pool: ProcessPoolExecutor, args: CompareArgs, runs: list[tuple[str, RunSpec]], command: str,
             failures: dict[str, str]) -> None:
    """Submit every run (those that need demonstrations once they are ready), rewrite the page as runs finish
    and record each failure in ``failures``."""
    out = Path(args.out)
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
