"""Gymnasium ids of skillgym's envs, registered by entry-point strings.

Nothing here imports a simulator or a stage: ``import skillgym`` stays light, and an env's
modules load only when ``gym.make`` builds it.
"""

from __future__ import annotations

import gymnasium as gym

# The low-level env enforces its own 280-step limit (as truncation); no extra TimeLimit.
SKILL_ENVS = {
    "SkillKitchen-v0": ("skillgym.envs.skill_kitchen:make_skill_kitchen", {"observation": "state"}),
    "SkillKitchenPixels-v0": ("skillgym.envs.skill_kitchen:make_skill_kitchen", {"observation": "pixels"}),
}


def register_envs() -> None:
    """Register every id of ``SKILL_ENVS`` that gymnasium does not know yet."""
    for env_id, (entry_point, kwargs) in SKILL_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=False)
