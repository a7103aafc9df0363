"""Command-line options generated from a stage's config dataclass.

Every option is declared once, as a field of the stage's dataclass with a docstring under it
(CleanRL's habit); :func:`add_options` turns the fields into argparse options and
:func:`parse_options` turns the parsed namespace back into the dataclass, so the Python API
and the CLI accept the same names (``episodes=200`` is ``--episodes 200``).

Field types map to argparse as follows: ``bool`` → ``--flag/--no-flag``; ``Literal[...]`` →
choices; ``tuple[str, ...] | None`` → one or more values; ``X | None`` → an ``X`` whose
default is none; a field with no default → a positional argument (or a required ``--flag``
when named in ``required``). Fields whose type is a dataclass or a dict are Python-only.
A field's ``metadata={"parse": fn}`` overrides how its text is parsed.

Example:
    >>> import argparse
    >>> from skillgym.extract.config import ExtractArgs
    >>> parser = argparse.ArgumentParser()
    >>> add_options(parser, ExtractArgs, required=("out",))
    >>> args = parse_options(ExtractArgs, parser.parse_args(["data/kitchen", "--out", "runs/labels", "--k", "5",
    ...                                                       "--no-progress"]))
    >>> args.k, args.progress, str(args.out)
    (5, False, 'runs/labels')
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import operator
import shlex
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (Python does not keep them)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        except (OSError, TypeError):  # defined where no source file is kept (an interactive session)
            continue
        for node, after in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else functools.reduce(operator.or_, rest)), True
    return tp, False


def _is_python_only(tp: Any) -> bool:
    tp, _ = _unwrap_optional(tp)
    return (dataclasses.is_dataclass(tp) if isinstance(tp, type) else False) or typing.get_origin(tp) is dict \
        or tp is dict


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are command-line options."""
    hints = typing.get_type_hints(cls)
    return [f for f in dataclasses.fields(cls) if f.init and not _is_python_only(hints[f.name])]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, cls: type, required: tuple[str, ...] = (),
                positional: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> None:
    """Add one argparse option per field of the dataclass ``cls`` (see the module docstring).

    Fields named in ``required`` are ``--flags`` the user must give; fields named in
    ``positional`` that have a default are optional positional arguments; ``only`` limits the
    options to these fields (scripts that pass a few of a stage's options through)."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for f in cli_fields(cls):
        if only is not None and f.name not in only:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = docs.get(f.name, "")
        kwargs: dict[str, Any] = {"help": help_text}
        if tp is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        else:
            if "parse" in f.metadata:
                kwargs["type"] = _argument_type(f.metadata["parse"])
            elif typing.get_origin(tp) is Literal:
                kwargs["choices"] = list(typing.get_args(tp))
            elif typing.get_origin(tp) is tuple:
                item = typing.get_args(tp)[0]
                kwargs.update(nargs="+", **({"choices": list(typing.get_args(item))}
                                            if typing.get_origin(item) is Literal else {"type": item}))
            elif tp in (int, float, str, Path):
                kwargs["type"] = tp
            else:
                raise TypeError(f"{cls.__name__}.{f.name}: no command-line form for type {tp}")
            if has_default:
                kwargs["default"] = default
                joiner = "," if "parse" in f.metadata else " "
                shown = "none" if default is None else joiner.join(map(str, default)) if isinstance(default, tuple) \
                    else default
                if not (optional and default is None and help_text) and "(default:" not in help_text:
                    kwargs["help"] = f"{help_text} (default: {shown})".strip()
            kwargs["metavar"] = f.name.upper() if "choices" not in kwargs else None
        if f.name in positional and has_default:
            parser.add_argument(f.name, nargs="?", **{k: v for k, v in kwargs.items() if k != "metavar"})
        elif not has_default and f.name not in required:
            parser.add_argument(f.name, **{k: v for k, v in kwargs.items() if k != "metavar"})
        else:
            parser.add_argument(_flag(f.name), dest=f.name, required=not has_default, **kwargs)


def _argument_type(parse: Any) -> Any:
    """``parse`` for argparse: its ValueError's message becomes the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = parse.__name__
    return convert


def parse_options(cls: type, namespace: argparse.Namespace, **extra: Any) -> Any:
    """Build ``cls`` from the options :func:`add_options` added (plus ``extra`` fields)."""
    values = {f.name: getattr(namespace, f.name) for f in cli_fields(cls) if hasattr(namespace, f.name)}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values, **extra)


def made_by(prog: str, function: str, config: Any) -> str:
    """What reproduces ``config``: its :func:`command_line`, or the Python call ``function(config)`` when an
    option only Python can give differs from its default.

    Example:
        >>> from skillgym.compare.compare import CompareArgs
        >>> made_by("skillgym compare", "compare", CompareArgs(out="runs/cmp", seeds=1))
        'skillgym compare --out runs/cmp --seeds 1'
        >>> made_by("skillgym compare", "compare", CompareArgs(out="runs/cmp", pretrain_steps={"bc": 50}))[:29]
        "compare(CompareArgs(out='runs"
    """
    hints = typing.get_type_hints(type(config))
    python_only = [f for f in dataclasses.fields(config) if f.init and _is_python_only(hints[f.name])]
    if all(getattr(config, f.name) == _default(f) for f in python_only):
        return command_line(prog, config)
    return f"{function}({config!r})"


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def command_line(prog: str, config: Any) -> str:
    """The shortest command line that gives ``config``: ``prog`` then the options that differ from their default.

    Example:
        >>> from skillgym.extract.config import ExtractArgs
        >>> command_line("skillgym extract", ExtractArgs(dataset="data/kitchen", out="runs/labels", k=5))
        'skillgym extract data/kitchen --out runs/labels --k 5'
    """
    words = [prog]
    hints = typing.get_type_hints(type(config))
    for f in cli_fields(type(config)):
        value = getattr(config, f.name)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if has_default and value == default:
            continue
        if isinstance(value, tuple):
            shown = [",".join(map(str, value))] if "parse" in f.metadata else [str(v) for v in value]
        else:
            shown = [str(value)]
        tp, _ = _unwrap_optional(hints[f.name])
        if tp is bool:
            words.append(_flag(f.name) if value else "--no-" + f.name.replace("_", "-"))
        elif not has_default and f.name != "out":
            words += shown
        else:
            words += [_flag(f.name), *shown]
    return " ".join(shlex.quote(w) if w != prog else w for w in words)
