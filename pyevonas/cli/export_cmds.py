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
from pyevonas.runs.objectives import Objective, named_values, parse_objectives
from pyevonas.runs.records import (
    SELECTION_SCORES,
    Individual,
    cell_notation,
    finite_json,
    is_trained,
    selection_scores,
)
from pyevonas.runs.store import DB_NAME, RunStore
from pyevonas.search import halving
from pyevonas.search.warmstart import META_KEY, InitialArchitectures

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
    "rung",
    "sequence",
    "notation",
    "parents",
    "copied_from",
    "origin",
    "error",
    "on_front",
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

    JSON: every individual (generation, chromosome, parents, status, metrics, its halving rung, where it came from, whether it is on the final Pareto front) and every generation (similarity matrix, diversity, control window, decision, control-loop iterations); with several objectives also the run's final Pareto front (pareto_front). CSV ([bold]--csv[/]): one row per individual; an empty cell is a value the run does not have (the fitness of a candidate that did not train, for one); parents are names separated by spaces.
    """
    _run(run_dir=run_dir, output=output, matrices=matrices, force=force, as_csv=as_csv)


def csv_rows(store: RunStore) -> list[dict[str, Any]]:
    """One row per individual of a run, with the :data:`CSV_COLUMNS`.

    ``fitness`` is empty for a candidate that did not train (the store keeps the placeholder the
    evaluation reported); ``notation`` is the text notation with parameters (default schema's
    letters, else the run's); ``parents`` the parents' names separated by spaces; the last
    columns (:data:`~pyevonas.runs.records.SELECTION_SCORES`) the Pareto rank, tie-breaker,
    novelty or competition score its generation's selection gave it (empty where none). ``rung``,
    ``origin`` and ``on_front`` are those of :class:`RunFacts`.
    """
    individuals = store.individuals()
    facts = RunFacts.of(store, individuals)
    selections = {g: (store.generation_record(g).extras or {}).get("selection") for g in store.generations()}
    names = {ind.id: ind.name for ind in individuals}
    scoring = _scoring(store)
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
                "rung": facts.rung(ind),
                "sequence": ind.sequence,
                "notation": _notation(ind, scoring),
                "parents": " ".join(str(names.get(p, p)) for p in ind.parents or []),
                "copied_from": names.get(ind.cached_from) if ind.cached_from is not None else None,
                "origin": facts.origin(ind),
                "error": ind.error,
                "on_front": facts.on_front(ind),
                **dict.fromkeys(SELECTION_SCORES),
                **selection_scores(selections.get(ind.generation), ind.index),
            }
        )
    return rows


class RunFacts:
    """What the export adds to each individual from the run as a whole.

    * ``rung``: under ``budget = "halving"``, the rung its result is from, ``k/n`` (``2/3``: the
      second of three rungs; its epochs are ``budget_epochs``); None otherwise.
    * ``origin``: where it came from: ``init SOURCE: WHAT`` for an architecture of a warm start
      (``--init``: the file's entry, or the source run's individual and its fitness),
      ``sampled`` for the rest of generation 1, ``elite`` for an unchanged copy of a parent,
      ``bred`` for a child.
    * ``on_front``: with several objectives, whether it is a member of the run's final Pareto
      front (:func:`~pyevonas.runs.objectives.pareto_front`, as best.json has it); None with one.
    """

    def __init__(
        self,
        config: dict[str, Any],
        meta: dict[str, Any],
        elites: dict[int, int],
        front: list[Individual],
        objectives: tuple[Objective, ...],
    ) -> None:
        epochs = config.get("epochs")
        self.epochs = epochs if isinstance(epochs, int) and epochs > 0 else None
        self.halving = config.get("budget") == "halving" and self.epochs is not None
        self.elites = elites
        self.front = front
        self.objectives = objectives
        self._front_ids = {ind.id for ind in front}
        self.init: InitialArchitectures | None = None
        init = meta.get(META_KEY)
        if isinstance(init, dict):
            try:
                self.init = InitialArchitectures.from_meta(init)
            except (TypeError, ValueError):
                self.init = None

    @classmethod
    def of(cls, store: RunStore, individuals: list[Individual]) -> RunFacts:
        """The facts of a stored run (its individuals read already)."""
        config = dict(store.config or {})
        elites = {}
        for g in store.generations():
            decision = store.generation_record(g).decision or {}
            listed = decision.get("elites") if isinstance(decision, dict) else None
            elites[g] = len(listed) if isinstance(listed, list) else 0
        objectives: tuple[Objective, ...] = ()
        front: list[Individual] = []
        try:
            objectives = parse_objectives(config.get("objectives") or ["val_accuracy"])
        except (ValueError, TypeError):
            objectives = ()
        front = halving.final_front(individuals, objectives, int(config.get("epochs") or 0))
        return cls(config, dict(store.meta or {}), elites, front, objectives)

    def rung(self, ind: Individual) -> str | None:
        budget = (ind.metrics or {}).get(halving.BUDGET_KEY)
        if not self.halving or self.epochs is None or not isinstance(budget, int):
            return None
        steps = halving.rungs(self.epochs)
        return f"{steps.index(budget) + 1}/{len(steps)}" if budget in steps else None

    def origin(self, ind: Individual) -> str:
        if ind.generation == 1:
            init = self.init
            if init is not None and ind.index < len(init.chromosomes):
                what = init.origins[ind.index] if ind.index < len(init.origins) else f"entry {ind.index}"
                return f"init {init.source}: {what}"
            return "sampled"
        return "elite" if ind.index < self.elites.get(ind.generation, 0) else "bred"

    def on_front(self, ind: Individual) -> bool | None:
        return ind.id in self._front_ids if len(self.objectives) >= 2 else None

    def front_json(self, scoring: Any) -> list[dict[str, Any]]:
        """The members of the final front: who each is and its objective values, best first."""
        return [
            {
                "name": ind.name,
                "generation": ind.generation,
                "index": ind.index,
                "id": ind.id,
                "objectives": named_values(ind, self.objectives),
                "sequence": ind.sequence,
                "notation": _notation(ind, scoring),
            }
            for ind in self.front
        ]


def _scoring(store: RunStore) -> Any:
    try:
        return Scoring.from_dict(dict(store.scoring), source=f"the scoring schema of {store.run_dir}")
    except (SchemaError, ValueError, TypeError):
        return None


def _with_facts(store: RunStore, data: dict[str, Any]) -> dict[str, Any]:
    """The store's export with :class:`RunFacts`: per individual ``rung``, ``origin`` and
    ``on_front``, and the run's ``pareto_front`` when it has several objectives."""
    individuals = store.individuals()
    facts = RunFacts.of(store, individuals)
    by_id = {ind.id: ind for ind in individuals}
    for entry in data["individuals"]:
        ind = by_id.get(entry.get("id"))
        if ind is None:
            continue
        entry["rung"] = facts.rung(ind)
        entry["origin"] = facts.origin(ind)
        entry["on_front"] = facts.on_front(ind)
    if len(facts.objectives) >= 2:
        data["pareto_front"] = finite_json(facts.front_json(_scoring(store)))
    return data


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
            data = _with_facts(store, store.export(include_matrices=matrices))
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


__all__ = ["CSV_COLUMNS", "RunFacts", "csv_rows", "export"]
