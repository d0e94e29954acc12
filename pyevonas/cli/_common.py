"""Shared helpers of the CLI: the error edge and the consoles."""

from __future__ import annotations

import json
import sys
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
    if spec.lstrip().startswith(("[", "{")):  # never text notation: [ and { are reserved there
        try:
            data = parse_json(spec)
        except UserFileError as exc:
            raise EncodingError(f"{spec[:60]!r}: {exc}") from None
        return _chromosome(data, repr(spec[:60]))
    path = Path(spec)
    if path.suffix.lower() == ".json" or (len(spec) < 4096 and path.is_file()):
        if not path.is_file():
            raise EncodingError(f"no architecture file at {spec!r}")
        try:
            data = read_json(path)
        except UserFileError as exc:
            raise EncodingError(f"cannot read architecture file {spec!r}: {exc}") from None
        return _chromosome(data, spec)
    return [dict(g) for g in parse_arch(spec, schema=schema)]


def _chromosome(data: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "chromosome" in data:
        data = data["chromosome"]
    if not isinstance(data, list) or not all(isinstance(g, dict) and isinstance(g.get("layer"), str) for g in data):
        raise EncodingError(f"{where}: expected a JSON list of gene objects with a 'layer' key")
    return data
