"""Low-level task envs the skills act in: the Franka Kitchen task (``skillgym.tasks.kitchen``).

A task env imports no stage of skillgym; the data stage records in it and ``SkillSpaceEnv``
wraps it. Importing this package loads no simulator.
"""
