"""``pyevonas export``: write a run folder's whole history as one JSON document, or a CSV table."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from pyevonas.cli._app import app
from pyevonas.cli._common import console_err, examples
from pyevonas.errors import EncodingError, RunStoreError, SchemaError
from pyevonas.metric import format_arch
from pyevonas.metric.schema import Scoring
from pyevonas.runs.records import SELECTION_SCORES, Individual, cell_notation, is_trained, selection_scores
from pyevonas.runs.store import DB_NAME, RunStore

#: The columns of ``pyevonas export --csv``, one row per individual.
CSV_COLUMNS = (
    "generation",
    "index",
    "name",
    "status",
    "trained",
    "fitness",
    "val_accuracy",
    "test_accuracy",
    "params",
    "size_mb",
    "latency_ms",
    "flops",
    "train_seconds",
    "budget_epochs",
    "sequence",
    "notation",
    "parents",
    "copied_from",
    "error",
    *SELECTION_SCORES,
)


def _inside_run(path: Path) -> bool:
    """Whether ``path`` lies in a run folder (any folder up its parents that holds a run database)."""
    folder = path.resolve().parent
    return any(RunStore.is_run(p) or (p / DB_NAME).exists() for p in (folder, *folder.parents))


@app.command(epilog=examples("pyevonas export runs/digits_rigid_s0 -o run.json"))
def export(
    run_dir: Annotated[Path, typer.Argument(help="The run folder (it holds run.sqlite).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the JSON (or CSV) to FILE instead of stdout ('-': stdout)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    matrices: Annotated[
        bool,
        typer.Option("--matrices/--no-matrices", help="Include each generation's similarity matrix."),
    ] = True,
    as_csv: Annotated[
        bool,
        typer.Option(
            "--csv",
            help="Write a CSV table instead, one row per individual, for pandas or a spreadsheet: "
            + ", ".join(CSV_COLUMNS)
            + ".",
        ),
    ] = False,
) -> None:
    """Export a run's whole history as one JSON document, or its individuals as a CSV table.

    JSON: every individual (generation, chromosome, parents, status, metrics) and every generation (similarity matrix, diversity, control window, decision, control-loop iterations). CSV ([bold]--csv[/]): one row per individual; an empty cell is a value the run does not have (the fitness of a candidate that did not train, for one); parents are names separated by spaces.
    """
    _run(run_dir=run_dir, output=output, matrices=matrices, force=force, as_csv=as_csv)


def csv_rows(store: RunStore) -> list[dict[str, Any]]:
    """One row per individual of a run, with the :data:`CSV_COLUMNS`.

    ``fitness`` is empty for a candidate that did not train (the store keeps the placeholder the
    evaluation reported); ``notation`` is the text notation with parameters (default schema's
    letters, else the run's); ``parents`` the parents' names separated by spaces; the last
    columns (:data:`~pyevonas.runs.records.SELECTION_SCORES`) the Pareto rank, tie-breaker,
    novelty or competition score its generation's selection gave it (empty where none).
    """
    individuals = store.individuals()
    selections = {g: (store.generation_record(g).extras or {}).get("selection") for g in store.generations()}
    names = {ind.id: ind.name for ind in individuals}
    try:
        scoring: Any = Scoring.from_dict(dict(store.scoring), source=f"the scoring schema of {store.run_dir}")
    except (SchemaError, ValueError, TypeError):
        scoring = None
    rows = []
    for ind in individuals:
        trained = is_trained(ind)
        rows.append(
            {
                "generation": ind.generation,
                "index": ind.index,
                "name": ind.name,
                "status": str(ind.status),
                "trained": trained,
                "fitness": ind.fitness if trained else None,
                "val_accuracy": ind.val_accuracy,
                "test_accuracy": ind.test_accuracy,
                "params": ind.params,
                "size_mb": ind.size_mb,
                "latency_ms": ind.latency_ms,
                "flops": ind.flops,
                "train_seconds": ind.train_seconds,
                "budget_epochs": (ind.metrics or {}).get("budget_epochs"),
                "sequence": ind.sequence,
                "notation": _notation(ind, scoring),
                "parents": " ".join(str(names.get(p, p)) for p in ind.parents or []),
                "copied_from": names.get(ind.cached_from) if ind.cached_from is not None else None,
                "error": ind.error,
                **dict.fromkeys(SELECTION_SCORES),
                **selection_scores(selections.get(ind.generation), ind.index),
            }
        )
    return rows


def _notation(ind: Individual, scoring: Any) -> str:
    cell = cell_notation(ind.chromosome)  # a cell-space architecture: its NAS-Bench-201 string or dag
    if cell is not None:
        return cell
    for schema in ("default", scoring):
        if schema is None:
            continue
        try:
            return format_arch(ind.chromosome, schema)
        except (EncodingError, SchemaError):
            continue
    return ""


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _run(*, run_dir: Path, output: Path | None, matrices: bool, force: bool, as_csv: bool = False) -> None:

    with RunStore.open(run_dir, readonly=True) as store:
        if as_csv:
            rows = csv_rows(store)
            n_gen = len(store.generations())
        else:
            data = store.export(include_matrices=matrices)
    if as_csv:
        text = _csv_text(rows)
        n_ind = len(rows)
    else:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        n_ind, n_gen = len(data["individuals"]), len(data["generations"])
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
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:  # the text's own line ends
            handle.write(text)
        os.replace(tmp, output)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise RunStoreError(f"cannot write {output}: {exc.strerror or exc}") from exc
    console_err.print(f"exported {n_ind} individuals in {n_gen} generations to {output}", highlight=False)


__all__ = ["CSV_COLUMNS", "csv_rows", "export"]
