"""CLI commands of the similarity engine: similarity, matrix, schema validate/export."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from pyevonas._userfiles import UserFileError, parse_json, read_text
from pyevonas.cli._app import app
from pyevonas.cli._common import ARCH_FORMS, console, console_err, echo_json, examples, read_arch
from pyevonas.cli.matrix_view import print_matrix_view
from pyevonas.errors import EncodingError, PyevonasError
from pyevonas.metric import align, diversity, sequence
from pyevonas.metric.api import similarity_matrix
from pyevonas.metric.graph_costs import GraphCosts, graph_costs_json_schema
from pyevonas.metric.schema import Scoring, json_schema, resolve_scoring

schema_app = typer.Typer(
    help="Validate and publish scoring schemas.",
    no_args_is_help=True,
    epilog=examples("pyevonas schema validate mine.json", "pyevonas schema export --builtin paper -o paper.json"),
)
app.add_typer(schema_app, name="schema")

SchemaOpt = Annotated[str, typer.Option("--schema", "-s", help="Scoring schema: default, paper, or a JSON file.")]


def read_population(path: Path, generation: int | None = None) -> tuple[list[str], list[Any]]:
    """Names and architectures from a population file.

    Accepted: a JSON list of chromosomes or of text-notation strings; a JSON object with
    ``chromosomes``/``architectures`` (list or name -> chromosome); a run JSON of the paper's
    runs (``generations[...].individuals``, pick one with ``generation``); or a text file with one
    architecture per line (``#`` comments allowed).

    Raises:
        EncodingError: the file is missing, unreadable, of another shape, or holds no architecture.
    """
    names, archs = _read_population(path, generation)
    if not archs:
        raise EncodingError(f"{path}: no architectures in the file")
    return names, archs


def _read_population(path: Path, generation: int | None) -> tuple[list[str], list[Any]]:
    if not path.is_file():
        raise EncodingError(f"no population file at {str(path)!r}")
    try:
        text = read_text(path)
    except UserFileError as exc:
        raise EncodingError(f"{path}: {exc}") from None
    if path.suffix.lower() != ".json":
        lines = [ln.strip() for ln in text.splitlines()]
        archs: list[Any] = [ln for ln in lines if ln and not ln.startswith("#")]
        return [str(i) for i in range(len(archs))], archs
    try:
        data = parse_json(text)
    except UserFileError as exc:
        raise EncodingError(f"{path}: {exc}") from None
    if isinstance(data, dict) and "generations" in data:
        try:
            gens = data["generations"]
            pick = (
                gens[-1] if generation is None else next((g for g in gens if g.get("generation") == generation), None)
            )
            if pick is None:
                raise EncodingError(f"{path}: no generation {generation}")
            inds = pick["individuals"]
            return [str(i.get("name", k)) for k, i in enumerate(inds)], [i["chromosome"] for i in inds]
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EncodingError(
                f"{path}: 'generations' is not a run's generations with individuals and chromosomes ({exc!r})"
            ) from None
    if isinstance(data, dict):
        for key in ("chromosomes", "architectures", "population"):
            if key in data:
                data = data[key]
                break
        else:
            raise EncodingError(f"{path}: expected a list of architectures or a 'chromosomes' key")
    if isinstance(data, dict):
        return [str(k) for k in data], list(data.values())
    if not isinstance(data, list):
        raise EncodingError(f"{path}: expected a list of architectures, got {type(data).__name__}")
    return [str(i) for i in range(len(data))], data


@app.command(
    epilog=examples(
        'pyevonas similarity "C(32,3,1) B L M(2) g F(64)" "C(64,3,1) L g F(64)"',
        "pyevonas similarity a.json b.json --schema paper --json",
    )
)
def similarity(
    a: Annotated[
        str,
        typer.Argument(help=f"First architecture: {ARCH_FORMS}."),
    ],
    b: Annotated[str, typer.Argument(help="Second architecture, same forms.")],
    schema: SchemaOpt = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Similarity of two architectures (1 = identical)."""

    arch_a, arch_b = read_arch(a, schema), read_arch(b, schema)
    al = align(arch_a, arch_b, schema=schema)
    if as_json:
        echo_json(
            {
                "similarity": al.similarity,
                "score": al.score,
                "sequence_a": sequence(arch_a, schema),
                "sequence_b": sequence(arch_b, schema),
                "aligned_a": al.aligned_a,
                "aligned_b": al.aligned_b,
            }
        )
        return
    console.print(f"{al.aligned_a}\n{al.aligned_b}", highlight=False)
    console.print(f"similarity [bold]{al.similarity:.6f}[/] (raw score {al.score:g})")


@app.command(
    epilog=examples(
        "pyevonas matrix population.json                (a view that fits the terminal)",
        "pyevonas matrix run.json --generation 5 -o matrix.csv",
        "pyevonas matrix population.txt --others elites.txt -o matrix.npy --float32",
    )
)
def matrix(
    file: Annotated[
        Path,
        typer.Argument(
            help="Population: JSON list of chromosomes or text notations, a paper-run JSON, or a .txt file with one architecture per line."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the matrix to a .csv or .npy file.")
    ] = None,
    schema: SchemaOpt = "default",
    others: Annotated[
        Path | None, typer.Option("--others", help="Compare against this population instead (N x M).")
    ] = None,
    generation: Annotated[
        int | None, typer.Option("--generation", "-g", help="Generation to take from a run JSON (default: last).")
    ] = None,
    condensed: Annotated[
        bool, typer.Option("--condensed", help="Only the upper triangle (scipy pdist layout; .npy only).")
    ] = False,
    float32: Annotated[bool, typer.Option("--float32", help="Store float32 instead of float64.")] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Threads (default: PYEVONAS_NUM_THREADS or all cores).")
    ] = None,
) -> None:
    """Similarity matrix of a population, with its median similarity (diversity).

    Without [bold]-o[/]: the numbers when they fit the terminal, else a heatmap with the most similar pairs, or only the pairs. [bold]-o FILE.csv[/] or [bold].npy[/] writes every number.
    """

    names, archs = read_population(file, generation)
    other_archs = read_population(others, generation)[1] if others else None
    if condensed and (output is None or output.suffix.lower() != ".npy"):
        raise typer.BadParameter("--condensed writes a 1-D array: give -o FILE.npy", param_hint="--condensed")
    if condensed and others is None and not resolve_scoring(schema).symmetric:
        raise typer.BadParameter(
            f"--condensed keeps only the upper triangle, which needs a symmetric schema; {schema!r} is directed",
            param_hint="--condensed",
        )
    if output is not None and output.suffix.lower() not in (".csv", ".npy"):
        raise typer.BadParameter(f"{output}: the output must end in .csv or .npy", param_hint="--output")

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        "{task.percentage:>3.0f}%",
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console_err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"aligning {len(archs)} architectures", total=None)
        m = similarity_matrix(
            archs,
            other_archs,
            schema,
            condensed=condensed,
            dtype=np.float32 if float32 else np.float64,
            n_threads=threads,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if output is not None:
        _write_matrix(output, m, names, None if others is None else [str(j) for j in range(m.shape[1])])
        console.print(f"wrote {output} ({' x '.join(map(str, m.shape))})")
    elif m.ndim == 2:
        other_names = None if others is None else [str(j) for j in range(m.shape[1])]
        complete = print_matrix_view(
            console,
            m,
            names,
            other_names,
            lambda i: sequence(archs[i], schema),
            None if other_archs is None else (lambda j: sequence(other_archs[j], schema)),
        )
        if not complete:
            console.print("every number: add -o matrix.csv (or -o matrix.npy)", highlight=False)
    if others is None and len(archs) >= 2:
        console.print(
            f"median similarity: off-diagonal {diversity(m, condensed=condensed):.4f}, upper triangle "
            f"{diversity(m, 'upper', condensed=condensed):.4f}, full {diversity(m, 'full', condensed=condensed):.4f}"
        )


def _write_matrix(output: Path, m: np.ndarray, names: list[str], columns: list[str] | None) -> None:
    """Write a matrix as .npy, or as CSV with a header row and names quoted where needed."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() == ".npy":
            np.save(output, m)
            return
        with output.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["name", *(names if columns is None else columns)])
            for name, row in zip(names, m, strict=True):
                writer.writerow([name, *(repr(float(v)) for v in row)])
    except OSError as exc:
        raise PyevonasError(f"cannot write {output}: {exc.strerror or exc}") from None


@schema_app.command("validate", epilog=examples("pyevonas schema validate mine.json"))
def schema_validate(file: Annotated[Path, typer.Argument(help="Scoring schema JSON file.")]) -> None:
    """Check a scoring schema; print one line per problem."""

    s = Scoring.load(file)
    kind = "symmetric" if s.symmetric else "directed"
    console.print(f"[green]ok[/]: scoring schema {s.name!r}: {len(s.genes)} gene types, {len(s.rules)} rules, {kind}")


@schema_app.command(
    "export",
    epilog=examples(
        "pyevonas schema export -o schemas/scoring.schema.json",
        "pyevonas schema export --builtin default",
        "pyevonas schema export --graph-costs -o schemas/graph_costs.schema.json",
    ),
)
def schema_export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    builtin: Annotated[
        str | None,
        typer.Option(
            "--builtin",
            help="Export a shipped schema (default, paper) instead of the JSON Schema; with --graph-costs, "
            "a shipped graph cost set (unit, nb201, nb101, darts).",
        ),
    ] = None,
    graph_costs: Annotated[
        bool,
        typer.Option(
            "--graph-costs", help="The graph cost format (edit costs of cells) instead of the scoring schema."
        ),
    ] = False,
) -> None:
    """Print the JSON Schema of the scoring-schema format (or of graph cost files, or a shipped file)."""

    if graph_costs:
        text = GraphCosts.builtin(builtin).to_json() if builtin else json.dumps(graph_costs_json_schema(), indent=2)
    else:
        text = Scoring.builtin(builtin).to_json() if builtin else json.dumps(json_schema(), indent=2)
    if output is None:
        echo_json(json.loads(text))
    else:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {output}")


__all__ = ["SchemaOpt", "matrix", "read_population", "schema_app", "schema_export", "schema_validate", "similarity"]
