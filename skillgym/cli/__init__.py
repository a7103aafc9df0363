"""The ``skillgym`` command: one subcommand per stage, its options generated from the stage's config.

    skillgym data kitchen --out data/kitchen           # scripted demonstrations (the recommended recipe)
    skillgym data show data/kitchen --out sheet.png    # contact sheet of an episode
    skillgym extract data/kitchen --out runs/labels    # stage 1: skills from the data
    skillgym train-skills runs/labels --out runs/library
    skillgym skills show runs/library --out runs/library/show
    skillgym train-rl SkillKitchen-v0 --library runs/library --steps 300000
    skillgym run kitchen                               # the whole method, stage after stage
    skillgym compare --methods extract,spirl,sac --out runs/cmp   # libraries and baselines side by side

A usage error (a wrong option, a missing or corrupt file, an artifact that would be
overwritten) prints one line saying what is wrong and exits with code 2; set
``SKILLGYM_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse


# Imported on call: stages use skillgym.cli.options without loading every stage through the CLI.
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skillgym`` command."""
    from skillgym.cli.commands import main as run_command

    return run_command(argv)


def build_parser() -> argparse.ArgumentParser:
    """The ``skillgym`` parser with every subcommand."""
    from skillgym.cli.commands import build_parser as build

    return build()


__all__ = ["build_parser", "main"]
