"""``gym.make("SkillLibero-Spatial-v0")`` and its suites: a LIBERO task env in a skill library's space.

``libero_spatial`` has a bundled library (skillgym/assets/libero-spatial, a language-conditioned
state library trained on scripted demonstrations of its ten tasks), used when ``library=`` is not
given; the other suites need ``library=``, a folder written by ``skillgym train-skills`` from
LIBERO data (docs/guides/libero.md).
"""

from __future__ import annotations

import os

import gymnasium as gym

from skillgym.envs.skill_kitchen import ASSETS
from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv, check_skill_options
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.libero import MAX_EPISODE_STEPS, STATE_DIM, LiberoTaskEnv, suite_name

# The suites with a bundled library, which ``library=None`` takes.
BUNDLED_LIBERO_LIBRARIES = {"libero_spatial": ASSETS / "libero-spatial"}


def make_skill_libero(
    library: str | os.PathLike | None = None,
    suite: str = "libero_spatial",
    task: int | str | None = None,
    max_skill_steps: int | None = None,
    progress_threshold: float | None = DEFAULT_PROGRESS_THRESHOLD,
    record_frames: bool = False,
    render_mode: str | None = None,
    low_level_steps: int = MAX_EPISODE_STEPS,
    live_tasks: int | None = None,
    assets: str | os.PathLike | None = None,
) -> gym.Env:
    """A LIBERO suite (a task drawn per reset, or the fixed ``task``) in the space of the skill library ``library``.

    ``library=None`` takes the suite's bundled library (``libero_spatial`` only; the other suites
    need a library folder).

    The low-level env observes what the library's priors expect: frames at the library's image
    size and frame stack for a pixel library, the 15-d proprioceptive state for a state library (with the
    objects' positions after it if the library's state is longer: data recorded with
    ``skillgym data libero --object-positions``), which then renders no frames (the instruction embedding is in the low-level observation either way). Skills run at most
    ``max_skill_steps`` low-level steps (default: the library's; the paper's LIBERO skills are at most
    40 long); ``low_level_steps`` is the task's time limit (300). Each task's simulation is kept once
    built (about 0.4 GB each for a state library, 0.8 GB for a pixel one); ``live_tasks`` bounds how many
    (:class:`~skillgym.tasks.libero.LiberoTaskEnv`). ``progress_threshold`` is :class:`SkillSpaceEnv`'s (None:
    fixed-length skills).
    """
    check_skill_options(max_skill_steps, progress_threshold, low_level_steps)
    suite = suite_name(suite)
    if library is None:
        if suite not in BUNDLED_LIBERO_LIBRARIES:
            raise ValueError(
                f"no skill library is bundled for {suite} (only for {', '.join(BUNDLED_LIBERO_LIBRARIES)}): "
                "pass library=DIR, a library trained on its data with `skillgym data libero` -> "
                "`skillgym extract` -> `skillgym train-skills` (docs/guides/libero.md)"
            )
        library = BUNDLED_LIBERO_LIBRARIES[suite]
    lib = SkillLibrary.load(library)
    pixels = lib.config.obs_kind == "pixels"
    low = LiberoTaskEnv(
        suite=suite, task=task, image_size=lib.config.image_size if pixels else 84,
        frame_stack=lib.config.frame_stack if pixels else 1, max_episode_steps=low_level_steps,
        pixels=pixels, object_positions=not pixels and lib.config.state_dim != STATE_DIM, live_tasks=live_tasks,
        assets=assets, render_mode=render_mode,
    )
    state_dim = low.observation_space["state"].shape[0]
    if not pixels and state_dim != lib.config.state_dim:
        raise ValueError(f"{library} observes a {lib.config.state_dim}-d state; the {suite} env observes {state_dim} "
                         f"({STATE_DIM} of proprioception and 3 per object of {', '.join(low.objects) or 'none'})")
    env = SkillSpaceEnv(low, lib, max_skill_steps=max_skill_steps, record_frames=record_frames,
                        progress_threshold=progress_threshold)
    env.library_path = str(library)
    return env
