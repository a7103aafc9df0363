"""The ``skillgym`` command: one subcommand per stage, its options generated from the stage's config.

    skillgym data kitchen --out data/kitchen           # scripted demonstrations (the recommended recipe)
    skillgym data show data/kitchen --out sheet.png    # contact sheet of an episode
    skillgym extract data/kitchen --out runs/labels    # stage 1: skills from the data
    skillgym train-skills runs/labels --out runs/library
    skillgym skills show runs/library --out runs/library/show
    skillgym train-rl SkillKitchen-v0 --library runs/library --steps 300000
    skillgym run kitchen                               # the whole method, stage after stage

A usage error (a wrong option, a missing or corrupt file, an artifact that would be
overwritten) prints one line saying what is wrong and exits with code 2; set
``SKILLGYM_DEBUG=1`` to see the traceback instead.
"""

from skillgym.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
