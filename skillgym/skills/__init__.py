"""Stage 2: skill VAE with progress head + priors, trained into a frozen SkillLibrary.

Imports are lazy so that ``python -m skillgym.skills.train`` (and torchrun's ``-m``) runs the
training module once, as ``__main__``.

Example:
    >>> from skillgym.skills import SkillLibrary, TrainSkillsArgs, train_skills
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LibraryConfig": "skillgym.skills.config",
    "LibraryError": "skillgym.skills.config",
    "SkillLibrary": "skillgym.skills.library",
    "TrainSkillsArgs": "skillgym.skills.train",
    "train_skills": "skillgym.skills.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'skillgym.skills' has no attribute {name!r}")
