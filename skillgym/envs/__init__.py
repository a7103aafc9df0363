"""Skill-space envs and wrappers.

- :class:`SkillSpaceEnv` wraps a low-level env with a skill library: one step runs one skill.
- :class:`FlattenSkillAction` gives a skill action space a flat ``Box`` view for stock agents.
- :class:`RecordSkillVideo` records every low-level frame of every skill.
- :class:`SeedEpisodes` seeds every episode from its number, so that training can resume exactly.
- :class:`RepeatableReset` saves its last reset, so that training can resume exactly with the env's own episodes.

Importing this package loads no simulator; ``gym.make("SkillKitchen-v0")`` loads the kitchen.
"""

from skillgym.envs.flatten import FlattenSkillAction
from skillgym.envs.repeatable_reset import RepeatableReset
from skillgym.envs.seed_episodes import SeedEpisodes
from skillgym.envs.skill_space import SkillSpaceEnv
from skillgym.envs.video import RecordSkillVideo

__all__ = ["FlattenSkillAction", "RecordSkillVideo", "RepeatableReset", "SeedEpisodes", "SkillSpaceEnv"]
