"""The documentation: every public class and function has a docstring, and the MkDocs site builds
with ``mkdocs build --strict`` (no broken link, no missing reference, no warning)."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Packages whose public names are their __all__ (skillgym.extract: its lazy _EXPORTS).
PACKAGES = ["skillgym.envs", "skillgym.rl", "skillgym.skills", "skillgym.data", "skillgym.extract"]
# Modules whose public names are their own top-level classes and functions.
MODULES = ["skillgym.spaces", "skillgym.tasks.kitchen", "skillgym.pipeline", "skillgym.cli.options"]


def public_objects() -> list[tuple[str, object]]:
    out = []
    for name in PACKAGES:
        module = importlib.import_module(name)
        for attr in getattr(module, "_EXPORTS", None) or module.__all__:
            out.append((f"{name}.{attr}", getattr(module, attr)))
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not attr.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and obj.__module__ == name:
                out.append((f"{name}.{attr}", obj))
    return [(name, obj) for name, obj in out if inspect.isclass(obj) or inspect.isfunction(obj)]


def has_own_docstring(obj: object) -> bool:
    """A docstring written in the source: not inherited, not a dataclass's generated signature."""
    node = ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0]
    return bool(ast.get_docstring(node))


def test_public_classes_and_functions_have_docstrings():
    objects = public_objects()
    assert len(objects) > 40
    missing = [f"{name} ({inspect.getsourcefile(obj)})" for name, obj in objects if not has_own_docstring(obj)]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def every_module_object() -> list[tuple[str, object]]:
    """Every public class and function defined at the top level of any skillgym module."""
    import skillgym

    out = []
    for info in pkgutil.walk_packages(skillgym.__path__, "skillgym."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        module = importlib.import_module(info.name)
        for attr, obj in vars(module).items():
            if not attr.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and obj.__module__ == info.name:
                out.append((f"{info.name}.{attr}", obj))
    return out


def test_every_module_documents_its_classes_and_functions():
    objects = every_module_object()
    assert len(objects) > 150
    missing = [f"{name} ({inspect.getsourcefile(obj)})" for name, obj in objects if not has_own_docstring(obj)]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_mkdocs_build_is_strict_clean(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is not installed")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    result = subprocess.run([*command, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "config" / "index.html").is_file()


def test_readme_and_getting_started_show_the_command_that_ci_runs():
    ci_command = [line for line in (ROOT / ".ci/run").read_text().splitlines()
                  if line.startswith("python3 -m venv .venv &&")]
    assert len(ci_command) == 1
    for page in ["README.md", "docs/getting-started.md"]:
        assert ci_command[0] in (ROOT / page).read_text().splitlines(), page
