"""The typer ``app`` of the ``pyevonas`` command line, with its root options (``--version``).

The command modules (``similarity_cmds``, ``evolve_cmds``...) import ``app`` from here and register
their commands on it; :mod:`pyevonas.cli` imports them in ``--help`` order and exposes ``app`` and
``main``. Keeping the app out of the package ``__init__`` means no command module imports the
package that imports it (no import cycle). The module is private (``_app``, not ``app``) so that
its name never shadows the package's ``app`` attribute.
"""

from __future__ import annotations

import typer

from pyevonas import __version__
from pyevonas.cli._common import examples

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


__all__ = ["app"]
