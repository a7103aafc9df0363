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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from skillgym.data.dataset import open_dataset
from skillgym.data.record import RecordArgs, record_dataset, recorded_args
from skillgym.envs.prior_rollouts import prior_rollouts
from skillgym.extract.config import ExtractArgs
from skillgym.extract.labeler import extract_skills
from skillgym.rl.train import TrainRLArgs, train_rl
from skillgym.skills.evaluate import write_eval
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import CHECKPOINT_DIR, RESUMABLE_CHANGES, TrainSkillsArgs, train_skills

# Sizes per scale: (scripted episodes, skill-training steps, SkillSAC low-level steps).
SCALES = {
    "quick": (100, 20_000, 0),
    "paper": (400, 10_000, 300_000),
}
PRIOR_ROLLOUT_EPISODES = 10


@dataclass
class PipelineArgs:
    """Options of ``skillgym run kitchen``."""

    out: Path = Path("runs/kitchen")
    """folder of every stage's artifact"""
    scale: Literal["quick", "paper"] = "quick"
    """sizes of the run: quick (100 episodes, no RL) or paper (the bundled library's sizes and 300k RL steps)"""
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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.rl_steps is not None and self.rl_steps < 0:
            raise ValueError(f"rl_steps must be >= 0, got {self.rl_steps}")

    def stages(self) -> tuple[RecordArgs, ExtractArgs, TrainSkillsArgs, TrainRLArgs | None]:
        """Each stage's config, with its paths under ``out``."""
        episodes, skill_steps, rl_steps = SCALES[self.scale]
        rl_steps = rl_steps if self.rl_steps is None else self.rl_steps
        data_dir, labels_dir, library_dir = self.out / "data", self.out / "labels", self.out / "library"
        data = replace(self.data, out=data_dir) if self.data else RecordArgs(
            out=data_dir, episodes=episodes, seed=self.seed)
        extract = replace(self.extract, dataset=data_dir, out=labels_dir) if self.extract else ExtractArgs(
            dataset=data_dir, out=labels_dir, seed=self.seed)
        skills = replace(self.skills, labels=str(labels_dir), out=str(library_dir)) if self.skills else \
            TrainSkillsArgs(labels=str(labels_dir), out=str(library_dir), steps=skill_steps, seed=self.seed)
        rl = None
        if self.rl or rl_steps:
            rl = replace(self.rl, library=str(library_dir), out=str(self.out / "rl")) if self.rl else TrainRLArgs(
                library=str(library_dir), steps=rl_steps, seed=self.seed, out=str(self.out / "rl"))
        return data, extract, skills, rl


def run_pipeline(args: PipelineArgs) -> dict:
    """Run (or reuse) every stage; returns the summary also written to ``out/summary.json``."""
    data, extract, skills, rl = args.stages()
    summary: dict = {}

    print(f"[1/4] dataset -> {data.out}")
    if (data.out / "recording.json").is_file():
        recording = json.loads((data.out / "recording.json").read_text())
        if recording.get("mixed_recipes"):  # put there by `skillgym data merge --mixed-recipes`
            print(f"      using the mixed training set at {data.out} (merged from "
                  f"{', '.join(recording['merged_from'])}); the data options are not used")
        else:
            wanted = {k: v for k, v in asdict(data).items() if k not in ("out", "workers", "overwrite")}
            _refuse_other_options("dataset", data.out, recorded_args(recording["args"]), wanted)
    else:
        print("      " + record_dataset(data).summary())
    summary["dataset"] = json.loads((data.out / "recording.json").read_text())["report"]

    encoder = extract.encoder_name()
    print(f"[2/4] skill extraction: {encoder}, K={extract.k} -> {extract.out}")
    if (extract.out / "labels.json").is_file():
        _refuse_other_options("labels folder", extract.out,
                              json.loads((extract.out / "labels.json").read_text())["metadata"],
                              {"encoder": encoder, "k": extract.k, "seed": extract.seed})
    else:
        extract_skills(open_dataset(data.out), extract.out, encoder=encoder, k=extract.k, seed=extract.seed,
                       kernel=extract.kernel, min_length=extract.min_length, progress=extract.progress)
    summary_path = extract.out / "report" / "summary.json"
    if summary_path.is_file():
        summary["extraction"] = json.loads(summary_path.read_text())

    library_dir = Path(skills.out)
    print(f"[3/4] skill learning: {skills.steps} steps -> {library_dir}")
    checkpoint = library_dir / CHECKPOINT_DIR / "state.json"
    if checkpoint.is_file():
        ignored = (RESUMABLE_CHANGES - {"steps"}) | {"labels", "out", "dataset"}
        saved = json.loads(checkpoint.read_text())["args"]
        _refuse_other_options("skill library", library_dir, saved,
                              {k: v for k, v in asdict(skills).items() if k not in ignored})
    eval_path = library_dir / "eval.json"
    if not (library_dir / "model.safetensors").is_file() or not eval_path.is_file():
        train_skills(replace(skills, resume=checkpoint.is_file()))
    results = json.loads(eval_path.read_text())
    if "rollouts" not in results:
        library = SkillLibrary.load(library_dir)
        for key, greedy in (("rollouts", False), ("rollouts_greedy", True)):
            results[key] = prior_rollouts(library, episodes=PRIOR_ROLLOUT_EPISODES, seed=skills.seed, greedy=greedy)
        write_eval(library_dir, results)
    summary["library"] = results

    if rl is not None:
        print(f"[4/4] SkillSAC on {rl.env_id} with the new library: {rl.steps} low-level steps")
        summary["rl"] = train_rl(rl)
    else:
        print("[4/4] RL skipped (pass --rl-steps N to train SkillSAC on SkillKitchen-v0 with this library)")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"done: {args.out / 'summary.json'}")
    return summary


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
