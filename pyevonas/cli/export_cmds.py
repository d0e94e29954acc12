"""``pyevonas export``: write a run folder's whole history as one JSON document."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pyevonas.cli import app
from pyevonas.cli._common import console_err, examples
from pyevonas.errors import RunStoreError
from pyevonas.runs.store import DB_NAME, RunStore


def _inside_run(path: Path) -> bool:
    """Whether ``path`` lies in a run folder (any folder up its parents that holds a run database)."""
    folder = path.resolve().parent
    return any(RunStore.is_run(p) or (p / DB_NAME).exists() for p in (folder, *folder.parents))


@app.command(epilog=examples("pyevonas export runs/digits_rigid_s0 -o run.json"))
def export(
    run_dir: Annotated[Path, typer.Argument(help="The run folder (it holds run.sqlite).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the JSON to FILE instead of stdout ('-': stdout)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    matrices: Annotated[
        bool,
        typer.Option("--matrices/--no-matrices", help="Include each generation's similarity matrix."),
    ] = True,
) -> None:
    """Export a run's whole history as one JSON document.

    Every individual (generation, chromosome, parents, status, metrics) and every generation (similarity matrix, diversity, control window, decision, control-loop iterations).
    """
    _run(run_dir=run_dir, output=output, matrices=matrices, force=force)


def _run(*, run_dir: Path, output: Path | None, matrices: bool, force: bool) -> None:

    with RunStore.open(run_dir, readonly=True) as store:
        data = store.export(include_matrices=matrices)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    if output is None or str(output) == "-":
        typer.echo(text, nl=False)
        return
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise RunStoreError(f"cannot write {output}: folder {folder} does not exist")
    if output.is_dir():
        raise RunStoreError(f"cannot write {output}: it is a folder; give a file name")
    if _inside_run(output):
        raise RunStoreError(
            f"refusing to write {output}: it is inside a run folder, next to (or over) its {DB_NAME}; "
            "export somewhere else"
        )
    if output.exists() and not force:
        raise RunStoreError(f"{output} already exists; pass --force to replace it")
    # Write beside the target and rename, so an interrupted export never leaves half a file.
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise RunStoreError(f"cannot write {output}: {exc.strerror or exc}") from exc
    n_ind = len(data["individuals"])
    n_gen = len(data["generations"])
    console_err.print(f"exported {n_ind} individuals in {n_gen} generations to {output}", highlight=False)
