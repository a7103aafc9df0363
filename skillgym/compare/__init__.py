"""Compare skill libraries and baselines on kitchen tasks at equal budgets of low-level env steps.

- :func:`compare` / ``skillgym compare``: methods x tasks x seeds, resumable runs in parallel
  processes, then a results page (:mod:`skillgym.compare.page`);
- :mod:`skillgym.compare.methods`: what each method is;
- :mod:`skillgym.compare.run`: one resumable run, evaluated on fixed episodes.
"""

from skillgym.compare.compare import CompareArgs, compare
from skillgym.compare.run import RunSpec, evaluate, train_run

__all__ = ["CompareArgs", "RunSpec", "compare", "evaluate", "train_run"]
