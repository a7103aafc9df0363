"""skillgym: offline robot data in, a skill space any RL agent can act in out (EXTRACT).

``import skillgym`` registers ``SkillKitchen-v0`` and ``SkillKitchenPixels-v0`` with gymnasium.
"""

from skillgym.envs.registration import register_envs

__version__ = "0.1.0"

register_envs()
