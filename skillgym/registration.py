"""Gymnasium ids of skillgym's envs, registered by entry-point strings.

Nothing here imports a simulator or a stage: ``import skillgym`` stays light, and an env's
modules load only when ``gym.make`` builds it.
"""

from __future__ import annotations

import gymnasium as gym

# The low-level envs enforce their own time limits (280 kitchen, 300 LIBERO steps, as truncation); no
# extra TimeLimit. SkillLibero-Spatial-v0 has a bundled library; the other LIBERO ids need `library=`.
SKILL_ENVS = {
    "SkillKitchen-v0": ("skillgym.envs.skill_kitchen:make_skill_kitchen", {"observation": "state"}),
    "SkillKitchenPixels-v0": ("skillgym.envs.skill_kitchen:make_skill_kitchen", {"observation": "pixels"}),
    "SkillLibero-Spatial-v0": ("skillgym.envs.skill_libero:make_skill_libero", {"suite": "libero_spatial"}),
    "SkillLibero-Object-v0": ("skillgym.envs.skill_libero:make_skill_libero", {"suite": "libero_object"}),
    "SkillLibero-Goal-v0": ("skillgym.envs.skill_libero:make_skill_libero", {"suite": "libero_goal"}),
    "SkillLibero-10-v0": ("skillgym.envs.skill_libero:make_skill_libero", {"suite": "libero_10"}),
    # The low-level LIBERO task env (task=, suite=): what scripted demonstrations are recorded in.
    "LiberoTask-v0": ("skillgym.tasks.libero:LiberoTaskEnv", {}),
}


def register_envs() -> None:
    """Register every id of ``SKILL_ENVS`` that gymnasium does not know yet."""
    for env_id, (entry_point, kwargs) in SKILL_ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, kwargs=kwargs, disable_env_checker=False)
