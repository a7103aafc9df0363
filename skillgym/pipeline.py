"""``skillgym run kitchen``: the whole method on the kitchen, stage after stage.

scripted dataset -> skill extraction -> skill library + prior rollouts [-> SkillSAC].
Each stage writes its artifact under ``out`` and is reused when that artifact already exists and
was made with the same options, so an interrupted run picks up where it stopped (skill training
and SkillSAC continue from their last checkpoint). An artifact made with other options is refused,
never silently reused.

Each stage's options are its own config (:class:`RecordArgs`, :class:`ExtractArgs`,
:class:`TrainSkillsArgs`, :class:`TrainRLArgs`); :class:`PipelineArgs` only chooses the sizes
(``scale``), the seed and the folder, and Python callers may pass whole stage configs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, NamedTuple

import gymnasium as gym
import mujoco
import numpy as np
import stable_baselines3
import torch
from PIL import Image

from skillgym import outputs
from skillgym.cli.options import made_by
from skillgym.data.dataset import (
    DATASET_LAYOUT,
    holds_nothing,
    is_skillgym_dataset,
    may_record_into,
    open_dataset,
)
from skillgym.data.record import RecordArgs, record_dataset, recorded_args
from skillgym.data.show import contact_sheet
from skillgym.envs.prior_rollouts import prior_rollouts
from skillgym.envs.show_skills import SKILL_SHEETS, write_skill_sheets
from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES, make_skill_kitchen
from skillgym.extract.config import ExtractArgs
from skillgym.extract.labeler import LABELS_LAYOUT, check_labels_folder, extract_skills, is_labels_folder
from skillgym.extract.labels import read_json_object
from skillgym.report import verdict, write_report
from skillgym.rl.checkpoint import CheckpointError, checkpoint_folder, saved_extra
from skillgym.rl.skill_sac import SkillSAC
from skillgym.rl.train import (
    CONTINUABLE_CHANGES,
    RUN_CHECKPOINT,
    RUN_LAYOUT,
    TrainRLArgs,
    check_run_folder,
    is_run_folder,
    short_warm_up,
    train_rl,
)
from skillgym.skills.evaluate import write_eval
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import (
    CHECKPOINT_DIR,
    LIBRARY_LAYOUT,
    RESUMABLE_CHANGES,
    TrainSkillsArgs,
    is_library_folder,
    train_skills,
)
from skillgym.version import __version__


class Scale(NamedTuple):
    """The sizes of a ``run kitchen`` scale."""

    episodes: int  # scripted demonstrations recorded
    skill_steps: int  # skill-training gradient steps
    rl_steps: int  # SkillSAC budget in low-level steps
    threads: int  # torch threads of skill training
    estimate: str  # whole-job wall time on a 2-core machine (README: the measured quick run)


# quick: the bundled recipe at a size that shows every stage working, skill training on one thread (more
# threads slow it down on a loaded 2-core machine). paper: the bundled state library's sizes and the
# documented SkillSAC budget.
SCALES = {
    "quick": Scale(40, 4_000, 50_000, 1, "10 to 30 minutes"),
    "paper": Scale(400, 10_000, 300_000, 2, "several hours (about 3)"),
}
PRIOR_ROLLOUT_EPISODES = 10
SKILL_SHEETS_FOLDER = "show"  # `skillgym skills show` of the new library, inside its folder
REPORT_FIGURES = ("contact_sheet.png", "policy.gif", "learning_curve.png")  # written into out/report


@dataclass
class PipelineArgs:
    """Options of ``skillgym run kitchen``."""

    out: Path = Path("runs/kitchen")
    """folder of every stage's artifact"""
    scale: Literal["quick", "paper"] = "quick"
    """sizes of the run: quick (40 episodes, 4k skill steps, 50k SkillSAC steps; 10 to 30 minutes on 2 cores)
    or paper (the bundled library's sizes and the documented 300k SkillSAC steps)"""
    seed: int = 0
    """seed of every stage"""
    rl_steps: int | None = None
    """SkillSAC budget in low-level steps on SkillKitchen-v0 with the new library (default: the scale's)"""
    data: RecordArgs | None = None
    """the data stage's whole config, used as given but for its folder: scale and seed do not change it
    (Python only; default: RecordArgs at this scale and seed)"""
    extract: ExtractArgs | None = None
    """the extraction stage's whole config, as ``data`` (Python only)"""
    skills: TrainSkillsArgs | None = None
    """the skill-learning stage's whole config, as ``data`` (Python only)"""
    rl: TrainRLArgs | None = None
    """the RL stage's whole config, as ``data``; its ``steps`` is the budget (Python only)"""
    force: bool = False
    """redo every stage, replacing the artifacts this command wrote before in --out"""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.rl_steps is not None and self.rl_steps < 0:
            raise ValueError(f"rl_steps must be >= 0, got {self.rl_steps}")
        if self.rl is not None and self.rl_steps is not None:
            raise ValueError(f"rl_steps={self.rl_steps} and rl.steps={self.rl.steps} both set the SkillSAC budget; "
                             "give it once, as rl.steps")

    def stages(self) -> tuple[RecordArgs, ExtractArgs, TrainSkillsArgs, TrainRLArgs | None]:
        """Each stage's config, with its paths under ``out``."""
        episodes, skill_steps, rl_steps, threads, _ = SCALES[self.scale]
        rl_steps = rl_steps if self.rl_steps is None else self.rl_steps
        data_dir, labels_dir, library_dir = self.out / "data", self.out / "labels", self.out / "library"
        data = replace(self.data, out=data_dir) if self.data else RecordArgs(
            out=data_dir, episodes=episodes, seed=self.seed)
        extract = replace(self.extract, dataset=data_dir, out=labels_dir) if self.extract else ExtractArgs(
            dataset=data_dir, out=labels_dir, seed=self.seed)
        # The dataset named here, not through the labels: a run folder moved elsewhere still finds it.
        skills = replace(self.skills, labels=str(labels_dir), dataset=str(data_dir), out=str(library_dir)) \
            if self.skills else TrainSkillsArgs(labels=str(labels_dir), dataset=str(data_dir), out=str(library_dir),
                                                steps=skill_steps, seed=self.seed, threads=threads)
        rl = None
        if self.rl or rl_steps:
            # Without a config of the user's, a small budget gets a short warm-up, as in a comparison.
            rl = replace(self.rl, library=str(library_dir), out=str(self.out / "rl")) if self.rl else TrainRLArgs(
                library=str(library_dir), steps=rl_steps, seed=self.seed, out=str(self.out / "rl"),
                learning_starts=short_warm_up(rl_steps, skills.window))
        return data, extract, skills, rl


@dataclass
class _Stage:
    reused: bool = False
    """set by the stage when it found its artifact made by an earlier run"""


@contextmanager
def _stage(summary: dict, number: int, name: str, title: str, made_in: dict[str, float], summary_file: Path):
    """Print the stage's header, time it, and record its wall time in ``summary["timings"][name]``: the
    time it took to make, also when this run reused it (``made_in``: the timings of earlier runs,
    to which a stage made now is added in ``summary_file`` at once, so that a run cut later keeps it)."""
    print(f"[{number}/4] {title}", flush=True)
    start, stage = time.perf_counter(), _Stage()
    yield stage
    if not stage.reused:
        made_in[name] = time.perf_counter() - start
        print(f"      done in {made_in[name]:.0f} s", flush=True)
        summary_file.write_text(json.dumps({"run": summary["run"], "timings": made_in}, indent=2) + "\n")
    elif name in made_in:
        print(f"      made in {made_in[name]:.0f} s by an earlier run", flush=True)
    if name in made_in:  # a stage reused from a run that did not record its time has none
        summary.setdefault("timings", {})[name] = made_in[name]


def run_pipeline(args: PipelineArgs) -> dict:
    """Run (or reuse) every stage and write ``out/report.html``; returns the summary also written
    to ``out/summary.json``."""
    data, extract, skills, rl = args.stages()
    summary_file, report_dir = args.out / "summary.json", args.out / "report"
    _claim_folders(args, data, extract, skills, rl)
    command = made_by("skillgym run kitchen", "run_pipeline", args)
    summary: dict = {"run": {"command": command, "seed": args.seed, "scale": args.scale, "versions": _versions()}}
    timings = _read_json(summary_file).get("timings") if summary_file.is_file() else None
    made_in = {k: v for k, v in timings.items() if isinstance(v, (int, float))} if isinstance(timings, dict) else {}
    report_dir.mkdir(parents=True, exist_ok=True)
    if not summary_file.is_file():  # marks the folder as this command's at once; an earlier run's summary stays
        summary_file.write_text(json.dumps({**summary, "timings": made_in}, indent=2, default=str) + "\n")
    print(f"skillgym run kitchen, {args.scale} scale: {SCALES[args.scale].estimate} on 2 CPU cores; stages already "
          f"in {args.out} are reused")

    with _stage(summary, 1, "dataset", f"dataset -> {data.out}", made_in, summary_file) as stage:
        summary["dataset"], stage.reused = _dataset(data, report_dir)
    encoder = extract.encoder_name()
    with _stage(summary, 2, "skill extraction", f"skill extraction: {encoder}, K={extract.k} -> {extract.out}",
                made_in, summary_file) as stage:
        summary["extraction"], stage.reused = _labels(extract, data.out)
    with _stage(summary, 3, "skill learning", f"skill learning: {skills.steps} steps -> {skills.out}", made_in,
                summary_file) as stage:
        summary["library"], stage.reused = _library(skills)
        reference = BUNDLED_LIBRARIES["state"] / "eval.json"
        summary["reference"] = json.loads(reference.read_text()) if reference.is_file() else None
        print(f"      {verdict(summary['library'], summary['reference'])}")
    if rl is not None:
        with _stage(summary, 4, "SkillSAC", f"SkillSAC on {rl.env_id} with the new library: {rl.steps} low-level steps",
                    made_in, summary_file) as stage:
            summary["rl"], stage.reused = _skillsac(rl)
            if not (report_dir / "policy.gif").is_file():
                policy_gif(Path(rl.out) / "skillsac", Path(skills.out), report_dir / "policy.gif", seed=args.seed)
    else:
        print("[4/4] RL skipped (pass --rl-steps N to train SkillSAC on SkillKitchen-v0 with this library)")
    summary_file.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    report = write_report(args.out)
    total = sum(summary.get("timings", {}).values())
    print(f"the stages took {total / 60:.1f} min in all: open {report}")
    return summary


# Each stage makes its artifact, or reuses the one an earlier run made with the same options; it returns what
# the summary records of it and whether it was reused.
def _dataset(data: RecordArgs, report_dir: Path) -> tuple[dict | None, bool]:
    reused = (data.out / "recording.json").is_file()
    if reused:
        recording = _read_json(data.out / "recording.json")
        if recording.get("mixed_recipes"):  # put there by `skillgym data merge --mixed-recipes`
            print(f"      using the mixed training set at {data.out} (merged from "
                  f"{', '.join(recording['merged_from'])}); the data options are not used")
        else:
            wanted = {k: v for k, v in asdict(data).items() if k not in ("out", "workers", "overwrite")}
            _refuse_other_options("dataset", data.out, recorded_args(recording["args"]), wanted)
            print("      reusing the recording there")
    else:
        print("      " + record_dataset(data).summary())
    if not (report_dir / "contact_sheet.png").is_file():
        contact_sheet(data.out, 0, report_dir / "contact_sheet.png")
    return _read_json(data.out / "recording.json").get("report"), reused


def _labels(extract: ExtractArgs, dataset: Path) -> tuple[dict, bool]:
    encoder = extract.encoder_name()
    reused = (extract.out / "labels.json").is_file()
    if reused:
        _refuse_other_options("labels folder", extract.out, _read_json(extract.out / "labels.json").get("metadata", {}),
                              {"encoder": encoder, "k": extract.k, "seed": extract.seed,
                               "median_kernel": extract.kernel, "min_length": extract.min_length})
        print("      reusing the labels there")
    else:
        extract_skills(open_dataset(dataset), extract.out, encoder=encoder, k=extract.k, seed=extract.seed,
                       kernel=extract.kernel, min_length=extract.min_length, progress=extract.progress,
                       engine=extract.engine)
    scores = extract.out / "report" / "summary.json"
    return (_read_json(scores) if scores.is_file() else {}), reused


def _library(skills: TrainSkillsArgs) -> tuple[dict, bool]:
    """Train (or resume, or reuse) the library; its eval.json, with prior rollouts added, is its summary."""
    library_dir = Path(skills.out)
    checkpoint = library_dir / CHECKPOINT_DIR / "state.json"
    if checkpoint.is_file():
        ignored = (RESUMABLE_CHANGES - {"steps"}) | {"labels", "out", "dataset"}
        _refuse_other_options("skill library", library_dir, _read_json(checkpoint).get("args", {}),
                              {k: v for k, v in asdict(skills).items() if k not in ignored})
    eval_path = library_dir / "eval.json"
    reused = (library_dir / "model.safetensors").is_file() and eval_path.is_file()
    if reused:
        _refuse_other_options("skill library", library_dir, _read_json(eval_path),
                              {"steps": skills.steps, "seed": skills.seed})
        print("      reusing the library there")
    else:
        train_skills(replace(skills, resume=checkpoint.is_file()))
    results = _read_json(eval_path)
    if "rollouts" not in results:
        library = SkillLibrary.load(library_dir)
        for key, greedy in (("rollouts", False), ("rollouts_greedy", True)):
            results[key] = prior_rollouts(library, episodes=PRIOR_ROLLOUT_EPISODES, seed=skills.seed, greedy=greedy)
        write_eval(library_dir, results)
    if not (library_dir / SKILL_SHEETS_FOLDER / "skills.png").is_file():
        write_skill_sheets(library_dir, library_dir / SKILL_SHEETS_FOLDER, start_states=2, seed=skills.seed)
    return results, reused


def _skillsac(rl: TrainRLArgs) -> tuple[dict, bool]:
    out = Path(rl.out)
    earlier = _read_json(out / "result.json") if (out / "result.json").is_file() else {}
    earlier_args = earlier["args"] if isinstance(earlier.get("args"), dict) else {}
    # Another budget is redone, or continued from the run's checkpoint (the run is this command's own);
    # other options are refused. The library is this pipeline's own, however --out is spelled.
    options = {k: v for k, v in asdict(rl).items() if k not in CONTINUABLE_CHANGES}
    _refuse_other_options("SkillSAC run", out, earlier_args, options)
    if earlier_args.get("steps") == rl.steps and "curve" in earlier and "final" in earlier:
        print("      reusing the finished run there")
        return earlier, True
    if checkpoint_folder(out / RUN_CHECKPOINT) is not None:
        try:
            _refuse_other_options("SkillSAC run", out, saved_extra(out / RUN_CHECKPOINT).get("args", {}), options)
        except CheckpointError:
            pass  # train_rl says what to do with a checkpoint it cannot read
    return train_rl(rl), False


def policy_gif(model_path: Path, library: Path, out: Path, seed: int = 0, every: int = 2, size: int = 160) -> Path:
    """One deterministic episode of a trained SkillSAC policy in the kitchen, every low-level frame
    of every skill (every ``every``-th kept), as a GIF."""
    env = make_skill_kitchen(library=library, record_frames=True, render_mode="rgb_array")
    model = SkillSAC.load(model_path)
    obs, _ = env.reset(seed=10_000 + seed)
    frames, done = [env.render()], False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        frames += info["frames"]
        done = terminated or truncated
    env.close()
    images = [Image.fromarray(np.asarray(f)).resize((size, size)) for f in frames[::every]]
    images[0].save(out, save_all=True, append_images=images[1:], duration=60, loop=0)
    return out


def _versions() -> dict[str, str]:
    return {"skillgym": __version__, "torch": torch.__version__.split("+")[0], "mujoco": mujoco.__version__,
            "gymnasium": gym.__version__, "stable-baselines3": stable_baselines3.__version__}


def _claim_folders(args: PipelineArgs, data: RecordArgs, extract: ExtractArgs, skills: TrainSkillsArgs,
                   rl: TrainRLArgs | None) -> None:
    """Check ``--out`` and every stage's folder before anything is written, so that a folder the user made
    there is refused now and not after hours; with ``--force``, then delete the stages' folders."""
    summary_file, report_dir = args.out / "summary.json", args.out / "report"
    if (args.out / "recording.json").is_file():
        raise FileExistsError(f"{args.out} is a dataset folder; give run kitchen a folder of its own (it records "
                              "its demonstrations into OUT/data)")
    ours = _is_summary(summary_file)  # written first thing, so an interrupted run is ours too
    if summary_file.exists() and not ours:
        raise FileExistsError(f"{summary_file} is not a summary this command wrote, or is corrupt; it is never "
                              "replaced: delete it if skillgym wrote it (the stages made so far are reused), or pick "
                              "another --out")
    outputs.check_output_folder(args.out, ("summary.json", "report.html", "report"), ours=ours)
    if report_dir.is_dir():
        outputs.check_output_folder(report_dir, REPORT_FIGURES, ours=ours)
    if not may_record_into(data.out):
        raise FileExistsError(f"{data.out} exists and is not a recording skillgym made; it is never replaced, "
                              "pick another --out")
    if not args.force and not holds_nothing(data.out) and not (data.out / "recording.json").is_file():
        raise FileExistsError(f"{data.out} holds a dataset that is not a finished recording of this command; pass "
                              "--force to record it again, or pick another --out")
    check_labels_folder(extract.out)
    outputs.check_output_folder(Path(skills.out), LIBRARY_LAYOUT, ours=is_library_folder(Path(skills.out)))
    if rl is not None:
        check_run_folder(Path(rl.out))
    if args.force:  # every stage folder is checked before any is deleted
        sheets = tuple(f"{SKILL_SHEETS_FOLDER}/{name}" for name in SKILL_SHEETS)
        stages = [(data.out, DATASET_LAYOUT, is_skillgym_dataset), (extract.out, LABELS_LAYOUT, is_labels_folder),
                  (Path(skills.out), (*LIBRARY_LAYOUT, *sheets), is_library_folder)]
        stages += [(Path(rl.out), RUN_LAYOUT, is_run_folder)] if rl else []
        for folder, entries, is_ours in stages:
            _check_own_artifact(folder, entries, is_ours)
        for folder, _, _ in stages:
            shutil.rmtree(folder, ignore_errors=True)
        for name in REPORT_FIGURES:
            (report_dir / name).unlink(missing_ok=True)


def _check_own_artifact(folder: Path, entries: tuple[str, ...], ours: Callable[[Path], bool]) -> None:
    """--force deletes a stage's folder only if skillgym wrote it (``ours``) and it holds nothing but the
    stage's ``entries``."""
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return
    if not folder.is_dir() or not ours(folder):
        raise FileExistsError(f"{folder} is not a folder this stage wrote; --force only replaces what skillgym "
                              "wrote, pick another --out")
    outputs.check_whole_folder(folder, entries)


def _is_summary(path: Path) -> bool:
    """Whether ``path`` is a ``summary.json`` this command wrote."""
    summary = outputs.read_marker(path)
    run = summary.get("run") if isinstance(summary, dict) else None
    return isinstance(run, dict) and all(key in run for key in ("command", "seed", "scale", "versions"))


def _read_json(path: Path) -> dict:
    return read_json_object(path, ValueError, f"delete {path} to redo what it records")


def _refuse_other_options(stage: str, folder: Path, recorded: dict, wanted: dict) -> None:
    """Reuse an existing artifact only if it was made with the options asked for now."""
    differ = [f"{name}={recorded[name]!r} there, {value!r} now" for name, value in wanted.items()
              if name in recorded and _plain(recorded[name]) != _plain(value)]
    if differ:
        raise ValueError(
            f"{folder} holds a {stage} made with other options ({'; '.join(differ)}). Pass another --out, "
            f"or delete {folder} (and the stages after it) to redo it with these options."
        )


def _plain(value):
    """Options as JSON stores them (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, default=str))
