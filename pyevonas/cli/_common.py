"""Shared helpers of the CLI: the error edge and the consoles."""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import sys
import traceback
import types
import typing
import unicodedata
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from pyevonas._userfiles import UserFileError, parse_json, read_json
from pyevonas.errors import EncodingError, PyevonasError
from pyevonas.metric.encode import parse_arch
from pyevonas.metric.graphs import GraphArch, looks_like_graph, parse_graph

console = Console()
console_err = Console(stderr=True)


def _printable(message: str) -> str:
    """The message with control characters and odd line breaks (from a user's file) escaped.

    Plain newlines stay: a message lists further problems on indented lines of its own.
    """
    return "".join(
        c if c == "\n" or (unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029\x85") else repr(c)[1:-1]
        for c in message
    )


def print_error(message: str) -> None:
    """One red ``error:`` prefix, then the message verbatim (it may contain brackets)."""

    console_err.print(Text.assemble(("error: ", "bold red"), _printable(str(message))), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red error line and return the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def command_name() -> str:
    """How to run pyevonas again from the same shell, for the next-step commands a command prints.

    ``pyevonas`` when that name finds the running program on PATH (an active virtualenv, a
    ``pip install --user``), or when pyevonas runs inside another program (pytest, a notebook).
    Otherwise the path it was started by, relative to the working folder when under it (run as
    ``.venv/bin/pyevonas`` without activating the venv: ``.venv/bin/pyevonas``); started with
    ``python -m pyevonas``: that, with the interpreter's path when ``python`` is another one.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "pyevonas":
        return f"{_as_typed(sys.executable, 'python')} -m pyevonas"
    if path.name not in ("pyevonas", "pyevonas.exe"):
        return "pyevonas"
    return _as_typed(argv0, "pyevonas")


def _as_typed(program: str, name: str) -> str:
    """``name`` when the shell finds ``program`` by it, else ``program``'s path as a shell word."""
    here = os.path.normpath(os.path.abspath(program))
    found = shutil.which(name)
    if found is not None and os.path.normpath(os.path.abspath(found)) == here:
        return name
    try:
        relative = os.path.relpath(here)
    except ValueError:  # another drive (Windows)
        relative = here
    shown = here if relative.startswith(os.pardir) else relative
    if os.sep not in shown:
        shown = os.curdir + os.sep + shown  # a bare name would be looked up on PATH
    return shlex.quote(shown)


#: Optional dependencies and the extra that installs each.
OPTIONAL_DEPENDENCIES = {
    "torch": "train",
    "torchvision": "train",
    "sklearn": "train",
    "ptflops": "train",
    "matplotlib": "report",
    "scipy": "report",
    "ray": "ray",
}


def run_guarded(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the typer app; user errors become one line on stderr and exit code 2."""

    try:
        rv = app(args=args, standalone_mode=False)
    except (PyevonasError, ValidationError) as exc:
        print_error(str(exc))
        return 2
    except Warning as exc:
        # Raised only where the user asked warnings to be errors (python -W error, PYTHONWARNINGS).
        print_error(f"{type(exc).__name__}: {exc} ({_raised_at(exc)}a warning raised as an error, as -W error asks)")
        return 2
    except KeyboardInterrupt:
        console_err.print("interrupted", style="yellow")
        return 130
    except ModuleNotFoundError as exc:
        # The similarity engine installs without the training and report stacks.
        top = (exc.name or "").split(".")[0]
        extra = OPTIONAL_DEPENDENCIES.get(top)
        if extra is None:
            raise
        print_error(f"this command needs {top}, which is not installed: pip install 'pyevonas[{extra}]'")
        return 2
    except SystemExit as exc:
        return int(exc.code or 0)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        console_err.print("aborted", style="yellow")
        return 130
    except Exception as exc:
        # typer >= 0.29 carries its own click (typer._click); older ones use click itself.
        show = getattr(exc, "show", None)
        code = getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show(file=sys.stderr)
            return code
        raise
    # With standalone_mode=False click returns the code of a `typer.Exit(code)` instead of raising.
    return rv if isinstance(rv, int) else 0


def _raised_at(exc: BaseException) -> str:
    """``at FILE:LINE; `` of the line that raised ``exc``, or nothing when it is not known."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"at {frames[-1].filename}:{frames[-1].lineno}; " if frames else ""


def echo_json(obj: Any) -> None:
    """Print an object as JSON on stdout (no rich markup)."""

    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


#: How every command's architecture argument may be written (see :func:`read_arch`).
ARCH_FORMS = 'text notation (e.g. "C(32,3,1) B L g F(64)"), a JSON chromosome, or a .json file'


def read_arch(spec: str, schema: Any = "default") -> list[dict[str, Any]]:
    """An architecture given on the command line, read the same way by every command.

    ``spec`` is an inline JSON chromosome (it starts with ``[`` or ``{``), a JSON chromosome file,
    or the text notation, parsed under ``schema``. A JSON chromosome is a list of layer dicts,
    or an object with a ``chromosome`` key.

    Raises:
        EncodingError: the JSON or the file cannot be read, or holds no chromosome; or the text
            notation is invalid under ``schema``.
    """
    found = _json_argument(spec)
    if found is None:
        return [dict(g) for g in parse_arch(spec, schema=schema)]
    return _chromosome(found[0], found[1])


#: How a graph architecture may be written where a command compares graphs (see :func:`read_arch_or_graph`).
GRAPH_FORMS = (
    'a NAS-Bench-201 string ("|nor_conv_3x3~0|+|...|"), a DARTS Genotype(...) text, or JSON (inline or a .json '
    "file) of a DAG, a NAS-Bench-101 cell or a DARTS genotype"
)


def read_arch_or_graph(spec: str, name: str, schema: Any = "default") -> list[dict[str, Any]] | GraphArch:
    """A chain, as :func:`read_arch` reads it, or a graph architecture (:data:`GRAPH_FORMS`).

    ``name`` names an inline argument in errors (a file is named by its path).

    Raises:
        EncodingError: as :func:`read_arch`; GraphError (an EncodingError) for a graph that cannot
            be read, one line naming the problem and its place.
    """
    text = spec.strip()
    if text.startswith(("|", "Genotype(")):  # never text notation: neither is a layer letter
        return parse_graph(text, where=name)
    found = _json_argument(spec)
    if found is None:
        return [dict(g) for g in parse_arch(spec, schema=schema)]
    data, where, in_file = found
    if looks_like_graph(data):
        return parse_graph(data, where=where if in_file else name)
    if isinstance(data, dict) and "chromosome" not in data:
        raise EncodingError(
            f"{where}: expected a chromosome (a JSON list of gene objects with a 'layer' key) or a graph "
            "architecture (a JSON object with nodes and edges, matrix and ops, or normal and reduce)"
        )
    return _chromosome(data, where)


def _json_argument(spec: str) -> tuple[Any, str, bool] | None:
    """The JSON an argument holds inline (it starts with ``[`` or ``{``) or in its file, the name
    errors give it, and whether it came from a file; None for anything else (the text notation)."""
    if spec.lstrip().startswith(("[", "{")):  # never text notation: [ and { are reserved there
        try:
            return parse_json(spec), repr(spec[:60]), False
        except UserFileError as exc:
            raise EncodingError(f"{spec[:60]!r}: {exc}") from None
    path = Path(spec)
    if path.suffix.lower() == ".json" or (len(spec) < 4096 and path.is_file()):
        if not path.is_file():
            raise EncodingError(f"no architecture file at {spec!r}")
        try:
            return read_json(path), spec, True
        except UserFileError as exc:
            raise EncodingError(f"cannot read architecture file {spec!r}: {exc}") from None
    return None


def _chromosome(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "chromosome" in data:
        data = data["chromosome"]
    if not isinstance(data, list) or not all(isinstance(g, dict) and isinstance(g.get("layer"), str) for g in data):
        raise EncodingError(f"{where}: expected a JSON list of gene objects with a 'layer' key")
    return data


# ---------------------------------------------------------------------- --help
def examples(*lines: str) -> str:
    """A command's ``epilog``: the example command lines its ``--help`` ends with.

    One paragraph per line, so that every typer version keeps them on lines of their own. The
    lines are rich markup: write no ``[`` (use the text notation, not inline JSON).
    """
    return "\n\n".join(["Example:" if len(lines) == 1 else "Examples:", *lines])


#: Metavars by parameter name, for parameters that name the same kind of value everywhere.
_NAMED_METAVARS = {"arch": "ARCH", "a": "ARCH", "b": "ARCH", "settings": "KEY=VALUE", "resume": "RUN"}


def _value_metavar(name: str, annotation: Any, info: Any) -> str:
    """A metavar that names the value a parameter takes (``FILE``, ``N``, ``RUN``), not its type.

    Flags take no value and get none. A run folder given as an argument is a ``RUN``; another
    ``*_dir`` or a path said to be a folder is a ``DIR``; any other path a ``FILE``; integers are
    ``N``, other numbers ``X``; anything else is written as its option name (``--device DEVICE``).
    """
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = (
        args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1 else annotation
    )
    if typing.get_origin(base) is list:
        base = typing.get_args(base)[0]
    is_argument = isinstance(info, typer.models.ArgumentInfo)
    if base is bool:
        return ""
    if name in _NAMED_METAVARS:
        return _NAMED_METAVARS[name]
    if is_argument and name in ("run_dir", "runs"):
        return "RUN"
    if name.endswith("_dir") or (base is Path and "folder" in (info.help or "").lower()):
        return "DIR"
    if base is Path:
        return "FILE"
    if base is int:
        return "N"
    if base is float:
        return "X"
    return name.upper()


def set_value_metavars(app: typer.Typer) -> None:
    """Give every parameter of ``app``'s commands without a ``metavar`` one from :func:`_value_metavar`.

    Runs once, after every command module has registered its commands (``pyevonas.cli``), so that
    ``--help`` reads ``--seed N`` and ``RUN``, never ``<int>``/``INTEGER`` or ``<path>``/``PATH``,
    also for the options a command gains later.
    """
    callbacks = [c.callback for c in app.registered_commands]
    if app.registered_callback is not None:
        callbacks.append(app.registered_callback.callback)
    for callback in callbacks:
        if callback is None:
            continue
        # The modules postpone annotations (PEP 563): typer evaluates the strings afresh, creating
        # new OptionInfo objects each time. Store them evaluated once, so the metavars set stick.
        hints = typing.get_type_hints(callback, include_extras=True)
        callback.__annotations__ = hints
        for name, param in inspect.signature(callback).parameters.items():
            hint = hints.get(name)
            base, extras = hint, [param.default]  # `x: int = typer.Option(...)`
            if typing.get_origin(hint) is typing.Annotated:
                base, *extras = typing.get_args(hint)  # `x: Annotated[int, typer.Option(...)]`
            for info in extras:
                if isinstance(info, typer.models.ParameterInfo) and info.metavar is None:
                    info.metavar = _value_metavar(name, base, info)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            set_value_metavars(group.typer_instance)
