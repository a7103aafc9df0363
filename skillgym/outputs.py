"""Output folders: skillgym replaces only what it wrote itself.

Each command knows the entries it writes into its output folder (a library's ``config.json``,
``model.safetensors``, ``checkpoint/`` ...) and the marker that shows a folder is its own (a
``config.json`` a library wrote, a ``labels.json`` ...). Before any work it checks the folder:

- :func:`check_output_folder`: if one of those entries already exists (other than as an empty folder) and
  the folder carries no marker, the command stops; other entries (a user's notes next to a library) are
  left alone.
- :func:`check_whole_folder`: a command that replaces the whole folder (``--overwrite`` of a
  dataset, ``skillgym run --force``) also stops if the folder holds anything else.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "eval.json").write_text("{}")  # a user's file, named like one a library holds
    >>> check_output_folder(folder, ("config.json", "model.safetensors"), ours=False)  # no clash: fine
    >>> try:
    ...     check_output_folder(folder, ("config.json", "eval.json"), ours=False)
    ... except FileExistsError as e:
    ...     print(str(e).split(", which")[0].endswith("holds eval.json"))
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

MAX_MARKER_BYTES = 2**20


def matching(folder: Path, names: Iterable[str]) -> list[str]:
    """The entries of ``folder`` whose names match one of ``names`` (names or glob patterns), sorted."""
    names = tuple(names)
    return sorted(p.name for p in folder.iterdir() if any(fnmatch(p.name, n) for n in names))


def unmatched(folder: Path, names: Iterable[str]) -> list[str]:
    """The entries of ``folder`` whose names match none of ``names``, sorted."""
    names = tuple(names)
    return sorted(p.name for p in Path(folder).iterdir() if not any(fnmatch(p.name, n) for n in names))


def check_output_folder(folder: Path, names: Iterable[str], ours: bool, option: str = "--out") -> None:
    """Refuse ``folder`` if it is a file, or if it holds entries named like ``names`` (what the command
    writes there) while not ``ours`` (the command's marker is missing)."""
    folder = Path(folder)
    if not folder.exists():
        check_creatable(folder, option)
        return
    if not folder.is_dir():
        raise FileExistsError(f"{option} {folder} is a file; pick a folder")
    clash = [name for name in matching(folder, names) if not _empty_folder(folder / name)]  # nothing to lose
    if clash and not ours:
        raise FileExistsError(f"{folder} holds {_listed(clash)}, which skillgym did not write; it never replaces "
                              f"files it did not write: move them or pick another {option}")


def check_creatable(path: Path, option: str = "--out") -> None:
    """Refuse ``path`` before any work if it cannot be made because one of its parents is a file."""
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise FileExistsError(f"{option} {path} cannot be made: {parent} is a file, not a folder")
            return


def check_whole_folder(folder: Path, names: Iterable[str], option: str = "--out") -> None:
    """Before replacing all of ``folder``: refuse if it holds any entry not named in ``names``."""
    others = unmatched(folder, names)
    if others:
        raise FileExistsError(f"{folder} also holds {_listed(others)}, which skillgym did not write there; it only "
                              f"replaces a folder that holds nothing else: move them or pick another {option}")


def is_marker(path: Path, keys: Iterable[str]) -> bool:
    """Whether ``path`` is a small JSON object with all of ``keys``: a file a skillgym stage wrote."""
    try:
        payload = json.loads(path.read_text()) if path.stat().st_size < MAX_MARKER_BYTES else None
    except (ValueError, OSError, RecursionError):
        return False
    return isinstance(payload, dict) and all(k in payload for k in keys)


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _listed(entries: list[str], most: int = 4) -> str:
    shown = ", ".join(entries[:most])
    return shown + (f" and {len(entries) - most} more" if len(entries) > most else "")
