"""``gym.make("SkillKitchen-v0")`` and friends: the kitchen task env wrapped with a skill library."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from skillgym.envs.skill_space import DEFAULT_PROGRESS_THRESHOLD, SkillSpaceEnv, check_skill_options
from skillgym.skills.library import SkillLibrary
from skillgym.tasks.kitchen import DEFAULT_TASKS, KitchenTaskEnv

ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The default library of each observation kind (shaped toward the evaluation order).
BUNDLED_LIBRARIES = {"state": ASSETS / "kitchen-state", "pixels": ASSETS / "kitchen-pixels"}
# Other bundled libraries, by the name ``library=`` takes.
NAMED_LIBRARIES = {"agnostic": ASSETS / "kitchen-agnostic", "pixels": BUNDLED_LIBRARIES["pixels"]}


def resolve_library(library: str | os.PathLike | None, observation: str = "state") -> Path:
    """The folder of the skill library that ``library`` names.

    ``None`` or ``"default"`` is the bundled library for ``observation`` ("state" or "pixels"),
    ``"agnostic"`` the bundled task-agnostic state library (trained on random orders of all seven
    subtasks), ``"pixels"`` the bundled pixel library whatever ``observation`` says, anything else the path
    of a library folder.

    >>> resolve_library("default").name
    'kitchen-state'
    >>> resolve_library("no/such/library")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: no skill library at no/such/library (the folder is missing); library= takes 'default' ...
    """
    if observation not in BUNDLED_LIBRARIES:
        raise ValueError(f"observation must be 'state' or 'pixels', got {observation!r}")
    if library is None or library == "default":
        path = BUNDLED_LIBRARIES[observation]
        if not path.is_dir():
            raise FileNotFoundError(
                f"this skillgym ships no bundled {observation} skill library yet ({path} is missing). Train one "
                f"with `skillgym train-skills LABELS --obs {observation} --out DIR` and pass "
                "gym.make(..., library=DIR)."
            )
        return path
    path = NAMED_LIBRARIES.get(library, Path(library)) if isinstance(library, str) else Path(library)
    if not path.is_dir():
        problem = f"the bundled library '{library}' is missing ({path})" if library in NAMED_LIBRARIES else \
            f"no skill library at {path} (the folder is missing)"
        raise FileNotFoundError(
            f"{problem}; library= takes 'default' (the bundled {observation} library), 'agnostic' (the bundled "
            "task-agnostic state library), 'pixels' (the bundled pixel library) or a library folder "
            "(`skillgym train-skills LABELS --out DIR` makes one)"
        )
    return path


def kitchen_env_for(library: SkillLibrary, **kwargs: Any) -> KitchenTaskEnv:
    """The kitchen task env whose observations ``library``'s priors read: the state vector, or frames
    at the library's size and frame stack. ``kwargs`` go to :class:`KitchenTaskEnv` (tasks, time limit...).

    Example:
        >>> from skillgym.envs.skill_kitchen import BUNDLED_LIBRARIES
        >>> env = kitchen_env_for(SkillLibrary.load(BUNDLED_LIBRARIES["state"]), max_episode_steps=50)
        >>> env.observation_space.shape
        (59,)
    """
    pixels = library.config.obs_kind == "pixels"
    return KitchenTaskEnv(pixels=pixels, image_size=library.config.image_size,
                          frame_stack=library.config.frame_stack if pixels else 1, **kwargs)


def make_skill_kitchen(
    library: str | os.PathLike | SkillLibrary | None = None,
    tasks: str | Sequence[str] = DEFAULT_TASKS,
    observation: str = "state",
    max_skill_steps: int | None = None,
    progress_threshold: float | None = DEFAULT_PROGRESS_THRESHOLD,
    record_frames: bool = False,
    render_mode: str | None = None,
    low_level_steps: int = 280,
) -> gym.Env:
    """Kitchen task env (ordered subtasks, 280 low-level steps) in a skill library's space.

    ``library`` is a bundled library's name, a folder (:func:`resolve_library`) or a loaded or built
    :class:`~skillgym.skills.library.SkillLibrary`: by default the bundled library for ``observation``
    ("state" or "pixels"); a pixel library gets frames rendered
    at its own size and frame stack. ``tasks`` is a list of subtask names in order, or a string:
    a name from :data:`~skillgym.tasks.kitchen.TASK_SUITE` such as ``"kettle-cabinets"`` or
    subtasks joined by ``+`` (:func:`~skillgym.tasks.kitchen.task_order`). ``low_level_steps`` is the
    task's time limit; it is not called ``max_episode_steps`` because ``gym.make`` takes that name for
    its own ``TimeLimit``, which would count skill decisions. ``max_skill_steps`` (None: the library's)
    and ``progress_threshold`` (None: fixed-length skills) are :class:`SkillSpaceEnv`'s.

    Example:
        >>> env = make_skill_kitchen(tasks="kettle-cabinets", low_level_steps=100)
        >>> env.unwrapped.tasks
        ('kettle', 'light switch', 'slide cabinet', 'hinge cabinet')
        >>> make_skill_kitchen(low_level_steps=0)
        Traceback (most recent call last):
        ...
        ValueError: low_level_steps must be an int >= 1 (the task's time limit in low-level steps), got 0
    """
    check_skill_options(max_skill_steps, progress_threshold, low_level_steps)
    path = None if isinstance(library, SkillLibrary) else resolve_library(library, observation)
    lib = library if isinstance(library, SkillLibrary) else SkillLibrary.load(path)
    low = kitchen_env_for(lib, tasks=tasks, max_episode_steps=low_level_steps, render_mode=render_mode)
    env = SkillSpaceEnv(low, lib, max_skill_steps=max_skill_steps, record_frames=record_frames,
                        progress_threshold=progress_threshold)
    env.library_path = None if path is None else str(path)
    return env
