"""The skill action space: ``Dict(skill=Discrete(K), arg=Box(-b, b, (nz,), float32))``.

One action picks a skill ``d`` in ``[0, K)`` and its continuous argument ``z``. Every env that acts
in a skill space and every agent that acts in one builds and checks the space here.

Example:
    >>> space = skill_action_space(num_skills=8, arg_dim=5, arg_bound=3.0)
    >>> space
    Dict('skill': Discrete(8), 'arg': Box(-3.0, 3.0, (5,), float32))
    >>> check_skill_action_space(space)
    (8, 5)
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def skill_action_space(num_skills: int, arg_dim: int, arg_bound: float) -> spaces.Dict:
    """``Dict(skill=Discrete(num_skills), arg=Box(-arg_bound, arg_bound, (arg_dim,), float32))``."""
    return spaces.Dict(
        skill=spaces.Discrete(num_skills),
        arg=spaces.Box(-arg_bound, arg_bound, (arg_dim,), np.float32),
    )


def check_skill_action_space(space: spaces.Space) -> tuple[int, int]:
    """Return ``(K, nz)`` of a skill action space, or raise ``ValueError`` saying what is wrong.

    Example:
        >>> check_skill_action_space(spaces.Box(-1, 1, (13,)))
        Traceback (most recent call last):
        ...
        ValueError: expected a skill action space Dict(skill=Discrete(K), arg=Box((nz,))), got Box(-1.0, 1.0, (13,), float32)
    """
    ok = (
        isinstance(space, spaces.Dict)
        and set(space.spaces) == {"skill", "arg"}
        and isinstance(space["skill"], spaces.Discrete)
        and isinstance(space["arg"], spaces.Box)
        and len(space["arg"].shape) == 1
    )
    if not ok:
        raise ValueError(f"expected a skill action space Dict(skill=Discrete(K), arg=Box((nz,))), got {space}")
    if int(space["skill"].start) != 0:
        raise ValueError(f"the skill space must start at 0 (Discrete(K, start=0)), got {space['skill']}")
    return int(space["skill"].n), int(space["arg"].shape[0])
