"""``skillgym run kitchen``: the whole method on the kitchen, stage after stage.

scripted dataset -> skill extraction -> skill library + prior rollouts [-> SkillSAC].
Each stage writes its artifact under ``out`` and is reused when that artifact already exists and
was made with the same options, so an interrupted run picks up where it stopped (an interrupted
skill training resumes from its checkpoint). An artifact made with other options is refused,
never silently reused.

Each stage's options are its own config (:class:`RecordArgs`, :class:`ExtractArgs`,
:class:`TrainSkillsArgs`, :class:`TrainRLArgs`); :class:`PipelineArgs` only chooses the sizes
(``scale``), the seed and the folder, and Python callers may pass whole stage configs.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import gymnasium as gym
import mujoco
import numpy as np
import stable_baselines3
import torch
from PIL import Image

from skillgym.data.dataset import open_dataset
from skillgym.data.record import RecordArgs, record_dataset, recorded_args
from skillgym.data.show import contact_sheet
from skillgym.envs.prior_rollouts import prior_rollouts
from skillgym.envs.show_skills import write_skill_sheets
from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES, make_skill_kitchen
from skillgym.extract.config import ExtractArgs
from skillgym.extract.labeler import extract_skills
from skillgym.report import verdict, write_report
from skillgym.rl.skill_sac import SkillSAC
from skillgym.rl.train import TrainRLArgs, train_rl
from skillgym.skills.evaluate import write_eval
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import CHECKPOINT_DIR, RESUMABLE_CHANGES, TrainSkillsArgs, train_skills
from skillgym.version import __version__

# Sizes per scale: (scripted episodes, skill-training steps, SkillSAC low-level steps, torch threads
# of skill training). quick: the bundled recipe at a size that runs in about half an hour on 2 cores,
# one thread (two threads ran skill training 3-5x slower on a loaded 2-core machine); paper: the
# bundled state library's sizes and the documented SkillSAC budget.
SCALES = {
    "quick": (40, 4_000, 50_000, 1),
    "paper": (400, 10_000, 300_000, 2),
}
# Whole-job wall time on a 2-core machine (README: the measured quick run).
ESTIMATES = {"quick": "about half an hour", "paper": "several hours (about 3)"}
PRIOR_ROLLOUT_EPISODES = 10
REPORT_FIGURES = ("contact_sheet.png", "policy.gif", "learning_curve.png")  # written into out/report


@dataclass
class PipelineArgs:
    """Options of ``skillgym run kitchen``."""

    out: Path = Path("runs/kitchen")
    """folder of every stage's artifact"""
    scale: Literal["quick", "paper"] = "quick"
    """sizes of the run: quick (40 episodes, 4k skill steps, 50k SkillSAC steps; about half an hour on 2 cores)
    or paper (the bundled library's sizes and the documented 300k SkillSAC steps)"""
    seed: int = 0
    """seed of every stage"""
    rl_steps: int | None = None
    """SkillSAC budget in low-level steps on SkillKitchen-v0 with the new library (default: the scale's)"""
    data: RecordArgs | None = None
    """the data stage's config (Python only; default: RecordArgs at this scale and seed)"""
    extract: ExtractArgs | None = None
    """the extraction stage's config (Python only)"""
    skills: TrainSkillsArgs | None = None
    """the skill-learning stage's config (Python only)"""
    rl: TrainRLArgs | None = None
    """the RL stage's config (Python only)"""
    force: bool = False
    """redo every stage, replacing the artifacts this command wrote before in --out"""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.rl_steps is not None and self.rl_steps < 0:
            raise ValueError(f"rl_steps must be >= 0, got {self.rl_steps}")

    def stages(self) -> tuple[RecordArgs, ExtractArgs, TrainSkillsArgs, TrainRLArgs | None]:
        """Each stage's config, with its paths under ``out``."""
        episodes, skill_steps, rl_steps, threads = SCALES[self.scale]
        rl_steps = rl_steps if self.rl_steps is None else self.rl_steps
        data_dir, labels_dir, library_dir = self.out / "data", self.out / "labels", self.out / "library"
        data = replace(self.data, out=data_dir) if self.data else RecordArgs(
            out=data_dir, episodes=episodes, seed=self.seed)
        extract = replace(self.extract, dataset=data_dir, out=labels_dir) if self.extract else ExtractArgs(
            dataset=data_dir, out=labels_dir, seed=self.seed)
        skills = replace(self.skills, labels=str(labels_dir), out=str(library_dir)) if self.skills else \
            TrainSkillsArgs(labels=str(labels_dir), out=str(library_dir), steps=skill_steps, seed=self.seed,
                            threads=threads)
        rl = None
        if self.rl or rl_steps:
            rl = replace(self.rl, library=str(library_dir), out=str(self.out / "rl")) if self.rl else TrainRLArgs(
                library=str(library_dir), steps=rl_steps, seed=self.seed, out=str(self.out / "rl"))
        return data, extract, skills, rl


@contextmanager
def _stage(summary: dict, number: int, title: str, made_in: dict[str, float]):
    """Print the stage's header, time it, and record its wall time in ``summary["timings"]``: the
    time it took to make, also when this run reused it (``made_in``: the timings of earlier runs)."""
    print(f"[{number}/4] {title}", flush=True)
    start, name = time.perf_counter(), title.split(":")[0].split(" ->")[0]
    reused: list[bool] = []
    yield reused
    seconds = time.perf_counter() - start
    if reused and name in made_in:
        seconds = made_in[name]
        print(f"      made in {seconds:.0f} s by an earlier run", flush=True)
    else:
        print(f"      done in {seconds:.0f} s", flush=True)
    summary.setdefault("timings", {})[name] = seconds


def run_pipeline(args: PipelineArgs) -> dict:
    """Run (or reuse) every stage and write ``out/report.html``; returns the summary also written
    to ``out/summary.json``."""
    data, extract, skills, rl = args.stages()
    if args.force:
        for folder in (data.out, extract.out, Path(skills.out), *([Path(rl.out)] if rl else [])):
            _remove_own_artifact(folder)
        for name in REPORT_FIGURES:
            (args.out / "report" / name).unlink(missing_ok=True)
    summary: dict = {"run": {"command": shlex.join(["skillgym", *sys.argv[1:]]) if sys.argv[0].endswith("skillgym")
                             else f"run_pipeline({args!r})", "seed": args.seed, "scale": args.scale,
                             "versions": _versions()}}
    summary_file = args.out / "summary.json"
    made_in = json.loads(summary_file.read_text()).get("timings", {}) if summary_file.is_file() else {}
    report_dir = args.out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    print(f"skillgym run kitchen, {args.scale} scale: {ESTIMATES[args.scale]} on 2 CPU cores; stages already "
          f"in {args.out} are reused")

    with _stage(summary, 1, f"dataset -> {data.out}", made_in) as reused:
        if (data.out / "recording.json").is_file():
            recording = json.loads((data.out / "recording.json").read_text())
            if recording.get("mixed_recipes"):  # put there by `skillgym data merge --mixed-recipes`
                print(f"      using the mixed training set at {data.out} (merged from "
                      f"{', '.join(recording['merged_from'])}); the data options are not used")
            else:
                wanted = {k: v for k, v in asdict(data).items() if k not in ("out", "workers", "overwrite")}
                _refuse_other_options("dataset", data.out, recorded_args(recording["args"]), wanted)
                print("      reusing the recording there")
                reused.append(True)
        else:
            print("      " + record_dataset(data).summary())
        summary["dataset"] = json.loads((data.out / "recording.json").read_text())["report"]
        if not (report_dir / "contact_sheet.png").is_file():
            contact_sheet(data.out, 0, report_dir / "contact_sheet.png")

    encoder = extract.encoder_name()
    with _stage(summary, 2, f"skill extraction: {encoder}, K={extract.k} -> {extract.out}", made_in) as reused:
        if (extract.out / "labels.json").is_file():
            _refuse_other_options("labels folder", extract.out,
                                  json.loads((extract.out / "labels.json").read_text())["metadata"],
                                  {"encoder": encoder, "k": extract.k, "seed": extract.seed})
            print("      reusing the labels there")
            reused.append(True)
        else:
            extract_skills(open_dataset(data.out), extract.out, encoder=encoder, k=extract.k, seed=extract.seed,
                           kernel=extract.kernel, min_length=extract.min_length, progress=extract.progress,
                           engine=extract.engine)
        summary_path = extract.out / "report" / "summary.json"
        if summary_path.is_file():
            summary["extraction"] = json.loads(summary_path.read_text())

    library_dir = Path(skills.out)
    with _stage(summary, 3, f"skill learning: {skills.steps} steps -> {library_dir}", made_in) as reused:
        checkpoint = library_dir / CHECKPOINT_DIR / "state.json"
        if checkpoint.is_file():
            ignored = (RESUMABLE_CHANGES - {"steps"}) | {"labels", "out", "dataset"}
            saved = json.loads(checkpoint.read_text())["args"]
            _refuse_other_options("skill library", library_dir, saved,
                                  {k: v for k, v in asdict(skills).items() if k not in ignored})
        eval_path = library_dir / "eval.json"
        if not (library_dir / "model.safetensors").is_file() or not eval_path.is_file():
            train_skills(replace(skills, resume=checkpoint.is_file()))
        else:
            print("      reusing the library there")
            reused.append(True)
        results = json.loads(eval_path.read_text())
        if "rollouts" not in results:
            library = SkillLibrary.load(library_dir)
            for key, greedy in (("rollouts", False), ("rollouts_greedy", True)):
                results[key] = prior_rollouts(library, episodes=PRIOR_ROLLOUT_EPISODES, seed=skills.seed,
                                              greedy=greedy)
            write_eval(library_dir, results)
        summary["library"] = results
        reference = BUNDLED_LIBRARIES["state"] / "eval.json"
        summary["reference"] = json.loads(reference.read_text()) if reference.is_file() else None
        print(f"      {verdict(results, summary['reference'])}")
        if not (library_dir / "show" / "skills.png").is_file():
            write_skill_sheets(library_dir, library_dir / "show", start_states=2, seed=skills.seed)

    if rl is not None:
        with _stage(summary, 4, f"SkillSAC on {rl.env_id} with the new library: {rl.steps} low-level steps", made_in) as reused:
            result_file = Path(rl.out) / "result.json"
            if result_file.is_file() and json.loads(result_file.read_text())["args"]["steps"] == rl.steps:
                print("      reusing the finished run there")
                reused.append(True)
                summary["rl"] = json.loads(result_file.read_text())
            else:
                summary["rl"] = train_rl(rl)
            if not (report_dir / "policy.gif").is_file():
                policy_gif(Path(rl.out) / "skillsac", library_dir, report_dir / "policy.gif", seed=args.seed)
    else:
        print("[4/4] RL skipped (pass --rl-steps N to train SkillSAC on SkillKitchen-v0 with this library)")
    summary_file.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    report = write_report(args.out)
    total = sum(summary.get("timings", {}).values())
    print(f"the stages took {total / 60:.1f} min in all: open {report}")
    return summary


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


def _remove_own_artifact(folder: Path) -> None:
    """--force: delete a stage's folder, but only one this pipeline wrote (it holds that stage's marker)."""
    markers = ("recording.json", "labels.json", "config.json", "curve.json", "checkpoint")
    if folder.exists():
        if not any((folder / m).exists() for m in markers):
            raise FileExistsError(f"{folder} exists but holds no skillgym artifact; --force only replaces "
                                  "what skillgym wrote, pick another --out")
        shutil.rmtree(folder)


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
