"""Stage 2: skill VAE with progress head + priors, trained into a frozen SkillLibrary.

Example:
    >>> from skillgym.skills import SkillLibrary, TrainSkillsArgs, train_skills
"""

from skillgym.skills.config import LibraryConfig, LibraryError
from skillgym.skills.library import SkillLibrary
from skillgym.skills.train import TrainSkillsArgs, train_skills

__all__ = ["LibraryConfig", "LibraryError", "SkillLibrary", "TrainSkillsArgs", "train_skills"]
