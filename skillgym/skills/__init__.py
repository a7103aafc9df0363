"""Stage 2: skill VAE with progress head + priors, trained into a frozen SkillLibrary."""

from skillgym.skills.config import LibraryConfig, LibraryError
from skillgym.skills.library import SkillLibrary

__all__ = ["LibraryConfig", "LibraryError", "SkillLibrary"]
