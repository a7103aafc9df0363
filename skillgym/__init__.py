"""skillgym: offline robot data in, a skill space any RL agent can act in out (EXTRACT).

``import skillgym`` registers ``SkillKitchen-v0`` and ``SkillKitchenPixels-v0`` with gymnasium
without loading MuJoCo; each env's modules load when ``gym.make`` builds it.
"""

from skillgym.registration import register_envs
from skillgym.version import __version__

__all__ = ["__version__", "register_envs"]

register_envs()
