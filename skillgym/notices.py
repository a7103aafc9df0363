"""Silence third-party notices that say nothing about a user's run (the CLI and its worker processes)."""

from __future__ import annotations

import warnings

from farama_notifications import notifications

QUIET_WARNINGS = (
    ".*env.task_done to get variables from other wrappers is deprecated.*",
    ".*is not within the observation space.*",
    "`eval_env` is set to None.*",  # Minari, when writing a dataset
    "env_spec is None.*",
    "`author_email` is set to None.*",
    "Evaluation environment is not wrapped with a ``Monitor`` wrapper.*",  # SB3's evaluate_policy
)


def quiet_third_party_notices() -> None:
    """Filter the warnings above and gymnasium-robotics' notice about its Adroit envs (skillgym uses none)."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    drop_robotics_notice()


def drop_robotics_notice() -> None:
    """Drop the notice gymnasium-robotics prints when first imported, about reward changes of its Adroit envs:
    skillgym imports it for the kitchen, which that notice does not concern."""
    notifications.pop("gymnasium_robotics", None)
