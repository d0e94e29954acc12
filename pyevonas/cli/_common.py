"""Shared helpers of the CLI: the error edge and the consoles."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console

console = Console()
console_err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red error line and return the Exit to raise."""
    console_err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def run_guarded(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run the typer app; user errors become one line on stderr and exit code 2."""
    from pydantic import ValidationError

    from pyevonas.errors import PyevonasError

    try:
        app(args=args, standalone_mode=False)
    except (PyevonasError, ValidationError) as exc:
        console_err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=False)
        return 2
    except KeyboardInterrupt:
        console_err.print("interrupted", style="yellow")
        return 130
    except SystemExit as exc:  # typer.Exit inside standalone_mode=False
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        if isinstance(exc, click.ClickException):
            exc.show(file=sys.stderr)
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            console_err.print("aborted", style="yellow")
            return 130
        raise
    return 0


def echo_json(obj: Any) -> None:
    """Print an object as JSON on stdout (no rich markup)."""
    import json

    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
