"""The ``pyevonas`` command line: a thin typer app; each command group lives in its own module.

The app itself is in :mod:`pyevonas.cli._app`; importing this package imports every command
module, which registers its commands on it.

Errors that a user can cause (``PyevonasError``, pydantic ``ValidationError``) print one red
line and exit with status 2, never a traceback. Anything else is a bug and shows one.
"""

from __future__ import annotations

import sys

# Each module registers its commands on `app` when imported, in the order `--help` lists them.
# isort: off
from pyevonas.cli import similarity_cmds  # noqa: F401
from pyevonas.cli import evolve_cmds  # noqa: F401
from pyevonas.cli import train_cmds  # noqa: F401
from pyevonas.cli import export_cmds  # noqa: F401
from pyevonas.cli import report_cmds  # noqa: F401

# isort: on
from pyevonas.cli._app import app
from pyevonas.cli._common import console_err, run_guarded, set_value_metavars

# Every command is registered: give each parameter a metavar that names its value.
set_value_metavars(app)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_guarded(app))


__all__ = ["app", "console_err", "main"]
