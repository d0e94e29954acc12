"""The ``pyevonas`` command line: a thin typer app; each command group lives in its own module.

Errors that a user can cause (``PyevonasError``, pydantic ``ValidationError``) print one red
line and exit with status 2, never a traceback. Anything else is a bug and shows one.
"""

from __future__ import annotations

import sys

import typer

from pyevonas import __version__
from pyevonas.cli._common import console_err, examples, run_guarded, set_value_metavars

app = typer.Typer(
    name="pyevonas",
    help="Sequence-alignment similarity of neural architectures and diversity-controlled evolutionary NAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog=examples(
        "pyevonas evolve                 (a small real search on the built-in digits dataset)",
        'pyevonas similarity "C(32,3,1) B L M(2) g F(64)" "C(32,3,1) B L g F(64)"',
        "pyevonas COMMAND --help         (each command's options and examples)",
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pyevonas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Sequence-alignment similarity of neural architectures and diversity-controlled evolutionary NAS."""


# Each module registers its commands on `app` when imported, in the order `--help` lists them.
# isort: off
from pyevonas.cli import similarity_cmds  # noqa: E402,F401
from pyevonas.cli import evolve_cmds  # noqa: E402,F401
from pyevonas.cli import train_cmds  # noqa: E402,F401
from pyevonas.cli import export_cmds  # noqa: E402,F401
from pyevonas.cli import report_cmds  # noqa: E402,F401
# isort: on

# Every command is registered: give each parameter a metavar that names its value.
set_value_metavars(app)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_guarded(app))


__all__ = ["app", "console_err", "main"]
