"""Baselines that learn from the same offline data as EXTRACT, for comparisons at equal low-level steps.

- :mod:`skillgym.baselines.spirl`: SPiRL-style fixed-length skills (closed-loop decoder, continuous
  ``z``, state-conditioned prior), trained with skillgym's own skill VAE and run with SkillSAC.
- :mod:`skillgym.baselines.bc`: behaviour cloning into a Stable-Baselines3 SAC actor, to evaluate
  directly or to fine-tune with SAC.
"""
