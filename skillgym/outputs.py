"""Output folders: skillgym replaces only what it wrote itself.

Each command declares the layout it writes into its output folder, as paths or glob patterns
(a library: ``config.json``, ``model.safetensors``, ``checkpoint/state.*``, ``tb/events.out.tfevents.*``
...), and knows the marker that shows a folder is its own (a ``config.json`` a library wrote, a
``labels.json`` ...). Before any work it checks the folder:

- :func:`check_output_folder`: if one of the layout's top-level entries already exists (other than as an
  empty folder) and the folder carries no marker, the command stops; other entries (a user's notes next
  to a library) are left alone.
- :func:`check_whole_folder`: a command that deletes a folder (``--overwrite`` of a dataset, ``skillgym
  run --force``) also stops if anything in it, at any depth, is not part of the layout.

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
    >>> (folder / "tb").mkdir()
    >>> _ = (folder / "tb" / "notes.txt").write_text("mine")
    >>> strays(folder, ("eval.json", "tb/events.out.tfevents.*"))
    ['tb/notes.txt']
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

MAX_MARKER_BYTES = 2**20
# Names match a layout's exactly, case included, whatever the file system: what skillgym may replace or delete
# is what it wrote under that very name. Only the check for clashes (check_output_folder) ignores case.


def top_level(layout: Iterable[str]) -> tuple[str, ...]:
    """The top-level entries of a layout: ``("checkpoint/state.*", "eval.json")`` -> ``("checkpoint", "eval.json")``."""
    return tuple(dict.fromkeys(pattern.split("/", 1)[0] for pattern in layout))


def inside(layout: Iterable[str], entry: str) -> tuple[str, ...]:
    """The layout of the folder ``entry``: ``inside(("tb/events.*",), "tb")`` -> ``("events.*",)``."""
    return tuple(p.split("/", 1)[1] for p in layout if "/" in p and fnmatchcase(entry, p.split("/", 1)[0]))


def strays(folder: Path, layout: Iterable[str]) -> list[str]:
    """Paths under ``folder`` (relative, sorted) that ``layout`` does not describe; a folder the layout names
    without a pattern for its contents is taken whole."""
    layout = tuple(layout)
    found = []
    for entry in sorted(Path(folder).iterdir()):
        patterns = [p for p in layout if fnmatchcase(entry.name, p.split("/", 1)[0])]
        if any("/" not in p for p in patterns):
            continue
        if patterns and entry.is_dir() and not entry.is_symlink():
            found += [f"{entry.name}/{path}" for path in strays(entry, inside(patterns, entry.name))]
        else:
            found.append(entry.name)
    return found


def holds_only(folder: Path, layout: Iterable[str], partial: Iterable[str]) -> bool:
    """Whether ``folder`` holds some of ``layout``'s top-level entries and they hold only what ``partial`` (a
    part of the layout) describes: what a command leaves when cut early, e.g. only TensorBoard events."""
    if not Path(folder).is_dir():
        return False
    partial = tuple(partial)
    names = top_level(layout)
    present = {p.name for p in Path(folder).iterdir() if any(fnmatchcase(p.name, n) for n in names)}
    strays_inside = [path for path in strays(folder, partial) if path.split("/", 1)[0] in present]
    return bool(present) and not strays_inside


def check_output_folder(folder: Path, layout: Iterable[str], ours: bool, option: str = "--out") -> None:
    """Refuse ``folder`` if it is a file, if it cannot be made, or if it holds top-level entries of
    ``layout`` (what the command writes there) while not ``ours`` (the command's marker is missing)."""
    folder = Path(folder)
    if not folder.exists():
        check_creatable(folder, option)
        return
    if not folder.is_dir():
        raise FileExistsError(f"{option} {folder} is a file; pick a folder")
    # Matched whatever the case: on a case-insensitive file system (macOS, Windows) a user's Eval.json is the
    # file eval.json would be written to.
    names = [n.casefold() for n in top_level(layout)]
    clash = sorted(p.name for p in folder.iterdir()
                   if any(fnmatchcase(p.name.casefold(), n) for n in names) and not is_empty_folder(p))
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


def write_tensors(tensors: dict[str, Any], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (torch) as a safetensors file with the permissions of the user's other files
    (safetensors' ``save_file`` makes its files readable by their owner only, so a library could not be
    shared)."""
    from safetensors.torch import save

    Path(path).write_bytes(save(tensors, metadata=metadata))


def check_writable(path: Path, option: str = "--out") -> None:
    """Refuse ``path`` before any work if the folder it would be made in cannot be written (a read-only disk,
    no permission): found by making a folder there, which is what counts, whoever runs this."""
    existing = next(p for p in (Path(path).parent, *Path(path).parent.parents) if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".skillgym-write-check-", dir=existing))
    except OSError as e:
        raise PermissionError(f"{option} {path} cannot be written: nothing can be made in {existing} "
                              f"({e.strerror})") from e


def check_whole_folder(folder: Path, layout: Iterable[str], option: str = "--out") -> None:
    """Before deleting ``folder``: refuse if anything in it is not part of ``layout``."""
    others = strays(folder, layout)
    if others:
        raise FileExistsError(f"{folder} also holds {_listed(others)}, which are not part of what this command "
                              "writes there; it only replaces a folder that holds nothing else: move them or pick "
                              f"another {option}")


def read_marker(path: Path) -> Any:
    """The contents of ``path`` if it is a small JSON file (a marker a stage may have written), else None."""
    try:
        return json.loads(path.read_text()) if path.stat().st_size < MAX_MARKER_BYTES else None
    except (ValueError, OSError, RecursionError):
        return None


def is_marker(path: Path, keys: Iterable[str]) -> bool:
    """Whether ``path`` is a small JSON object with all of ``keys``: a file a skillgym stage wrote."""
    payload = read_marker(path)
    return isinstance(payload, dict) and all(k in payload for k in keys)


def is_empty_folder(path: Path) -> bool:
    """Whether ``path`` is a folder (or a link to one) with nothing in it: writing into it loses nothing."""
    return path.is_dir() and not any(path.iterdir())


def _listed(entries: list[str], most: int = 4) -> str:
    shown = ", ".join(entries[:most])
    return shown + (f" and {len(entries) - most} more" if len(entries) > most else "")
