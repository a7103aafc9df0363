"""``skillgym skills show LIBRARY --out DIR``: see what each skill of a library does.

For every skill ``d`` and a few start states, the skill runs with its prior-mean argument
``z = mean p(z|s,d)`` in the kitchen and its low-level frames are kept. Writes one GIF per skill
(start states one after the other) and ``skills.png``, a contact sheet with a row per skill and
start state, titled with the skill's mean executed length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from skillgym import outputs

SKILL_SHEETS = ("skills.png", "skills.json", "skill_*.gif")  # what this writes into its folder


def rollout_skills(library_path: str | Path, start_states: int = 3, warmup_skills: int = 2,
                   image_size: int = 96, seed: int = 0, progress: bool = True) -> dict[int, list[list[np.ndarray]]]:
    """frames[d][i] = the frames of skill ``d`` run from start state ``i`` (a progress bar over the runs if
    ``progress``).

    Start state ``i`` is a reset with seed ``seed + i`` followed by ``i * warmup_skills`` skills
    sampled from the priors, so that skills are also seen away from the initial posture.
    """
    from skillgym.envs.skill_space import SkillSpaceEnv
    from skillgym.skills.library import SkillLibrary
    from skillgym.tasks.kitchen import KitchenTaskEnv

    library = SkillLibrary.load(library_path)
    pixels = library.config.obs_kind == "pixels"
    low = KitchenTaskEnv(pixels=pixels, image_size=library.config.image_size if pixels else image_size,
                         frame_stack=library.config.frame_stack if pixels else 1, render_mode="rgb_array",
                         max_episode_steps=10**6)
    env = SkillSpaceEnv(low, library, record_frames=True)
    rng = np.random.default_rng(seed)
    frames: dict[int, list[list[np.ndarray]]] = {d: [] for d in range(library.num_skills)}
    bar = tqdm(total=start_states * library.num_skills, desc="skills show", unit="run", disable=not progress)
    for i in range(start_states):
        for d in range(library.num_skills):
            obs, _ = env.reset(seed=seed + i)
            for _ in range(i * warmup_skills):
                logits, mean, log_std = library.prior(obs[None])
                p = np.exp(logits[0] - logits[0].max())
                k = int(rng.choice(len(p), p=p / p.sum()))
                z = mean[0, k] + np.exp(log_std[0, k]) * rng.normal(size=library.z_dim)
                obs, *_ = env.step({"skill": k, "arg": z.astype(np.float32)})
            _, mean, _ = library.prior(obs[None])
            *_, info = env.step({"skill": d, "arg": mean[0, d].astype(np.float32)})
            frames[d].append(info["frames"])
            bar.update()
    bar.close()
    env.close()
    return frames


def write_skill_sheets(library_path: str | Path, out: str | Path, start_states: int = 3,
                       frames_per_row: int = 8, seed: int = 0) -> dict:
    """Run every skill of the library from ``start_states`` start states and write ``out/skills.png``
    (a contact sheet, ``frames_per_row`` frames a run), one ``skill_<d>.gif`` per skill and
    ``skills.json``; returns that summary (``mean_length`` per skill in low-level steps, every run's
    ``lengths``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    out = Path(out)
    outputs.check_output_folder(out, SKILL_SHEETS, ours=outputs.is_marker(out / "skills.json", ("mean_length",)))
    frames = rollout_skills(library_path, start_states=start_states, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    lengths = {d: [len(f) for f in runs] for d, runs in frames.items()}
    # skills.json first (it marks the folder as this command's), skills.png last (the sheet is complete).
    summary = {"library": str(library_path), "start_states": start_states,
               "mean_length": {d: float(np.mean(v)) for d, v in lengths.items()}, "lengths": lengths}
    (out / "skills.json").write_text(json.dumps(summary, indent=2) + "\n")
    for d, runs in frames.items():
        images = [Image.fromarray(f) for run in runs for f in run]
        images[0].save(out / f"skill_{d}.gif", save_all=True, append_images=images[1:], duration=80, loop=0)
    rows = [(d, i) for d in frames for i in range(start_states)]
    fig, axes = plt.subplots(len(rows), frames_per_row, figsize=(1.3 * frames_per_row, 1.35 * len(rows)),
                             squeeze=False)
    for r, (d, i) in enumerate(rows):
        run = frames[d][i]
        for c, t in enumerate(np.linspace(0, len(run) - 1, frames_per_row).round().astype(int)):
            axes[r, c].imshow(run[t])
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        label = f"skill {d}\nmean {np.mean(lengths[d]):.0f} steps" if i == 0 else f"start {i}"
        axes[r, 0].set_ylabel(f"{label}\n({len(run)} steps)", fontsize=7)
    fig.suptitle(f"{Path(library_path).name}: each skill with its prior-mean argument from {start_states} "
                 "start states", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "skills.png", dpi=90)
    plt.close(fig)
    return summary


@dataclass
class ShowSkillsArgs:
    """Options of ``skillgym skills show``."""

    library: Path
    """skill library folder"""
    out: Path
    """folder for skills.png, one GIF per skill and skills.json"""
    start_states: int = 3
    """start states each skill is run from"""
    seed: int = 0
    """seed of the start states"""

    def __post_init__(self) -> None:
        if self.start_states < 1:
            raise ValueError(f"start_states must be >= 1, got {self.start_states}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be >= 0 (and < 2**32), got {self.seed}")
