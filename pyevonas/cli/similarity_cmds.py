"""CLI commands of the similarity engine: similarity, matrix, schema validate/export."""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from pyevonas._userfiles import UserFileError, parse_json, read_text
from pyevonas.cli._app import app
from pyevonas.cli._common import (
    ARCH_FORMS,
    GRAPH_FORMS,
    console,
    console_err,
    echo_json,
    examples,
    read_arch_or_graph,
)
from pyevonas.cli.matrix_view import print_matrix_view
from pyevonas.errors import EncodingError, GraphError, PyevonasError
from pyevonas.metric import align, diversity, sequence
from pyevonas.metric.api import similarity_matrix
from pyevonas.metric.graph_api import (
    DEFAULT_EXACT_LIMIT,
    ApproximationWarning,
    as_graphs,
    costs_for,
    graph_edit_distance,
    is_graph_input,
)
from pyevonas.metric.graph_costs import GraphCosts, graph_costs_json_schema
from pyevonas.metric.graphs import GraphArch
from pyevonas.metric.schema import Scoring, json_schema, resolve_scoring

schema_app = typer.Typer(
    help="Validate and publish scoring schemas.",
    no_args_is_help=True,
    epilog=examples("pyevonas schema validate mine.json", "pyevonas schema export --builtin paper -o paper.json"),
)
app.add_typer(schema_app, name="schema")

SchemaOpt = Annotated[str, typer.Option("--schema", "-s", help="Scoring schema: default, paper, or a JSON file.")]
CostsOpt = Annotated[
    str | None,
    typer.Option(
        "--costs",
        help="Edit costs of graph architectures: unit, nb201, nb101, darts, or a JSON file "
        "(default: the built-in set of the graphs' format; unit for DAGs or mixed formats).",
    ),
]


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
        'pyevonas similarity "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|" '
        '"|nor_conv_1x1~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"',
        "pyevonas similarity darts_v1.json darts_v2.json --costs unit",
    )
)
def similarity(
    a: Annotated[
        str,
        typer.Argument(help=f"First architecture: {ARCH_FORMS}; or a graph: {GRAPH_FORMS}."),
    ],
    b: Annotated[str, typer.Argument(help="Second architecture, same forms (a graph if the first is one).")],
    schema: SchemaOpt = "default",
    costs: CostsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Similarity of two architectures (1 = identical); of two graphs, by graph edit distance."""

    arch_a, arch_b = read_arch_or_graph(a, "A", schema), read_arch_or_graph(b, "B", schema)
    if isinstance(arch_a, GraphArch) or isinstance(arch_b, GraphArch):
        _graph_similarity(arch_a, arch_b, costs if costs is not None else schema, as_json)
        return
    _refuse_costs_for_chains(costs)
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


def _refuse_costs_for_chains(costs: str | None) -> None:
    if costs is not None:
        raise typer.BadParameter(
            "edit costs are for graph architectures; chains are scored with --schema", param_hint="--costs"
        )


def _graph_similarity(a: Any, b: Any, costs: str, as_json: bool) -> None:
    """The similarity command for two graphs: edit distance, dmax, similarity, and whether it is exact."""
    for name, arch in (("A", a), ("B", b)):
        if not isinstance(arch, GraphArch):
            raise GraphError(
                f"{name} is a chain and {'B' if name == 'A' else 'A'} a graph architecture; chains and graphs "
                "cannot be compared with each other"
            )
    cost_set = costs_for(costs, (a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ApproximationWarning)  # said below, in words
        d = graph_edit_distance(a, b, cost_set)
    if as_json:
        echo_json(
            {
                "similarity": d.similarity,
                "distance": float(d),
                "dmax": d.dmax,
                "exact": d.exact,
                "costs": cost_set.name,
                "format_a": a.format,
                "format_b": b.format,
            }
        )
        return
    kind = (
        "exact"
        if d.exact
        else f"a lower bound: a cell has more than {DEFAULT_EXACT_LIMIT} nodes, so the edit distance is the "
        "bounded method's upper bound"
    )
    console.print(
        f"graph edit distance {float(d):g} of at most {d.dmax:g} (costs {escape(cost_set.name)!r})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"similarity [bold]{d.similarity:.6f}[/] ({kind})", highlight=False, soft_wrap=True)


@app.command(
    epilog=examples(
        "pyevonas matrix population.json                (a view that fits the terminal)",
        "pyevonas matrix run.json --generation 5 -o matrix.csv",
        "pyevonas matrix population.txt --others elites.txt -o matrix.npy --float32",
        "pyevonas matrix nb201_cells.txt --costs unit    (one NAS-Bench-201 string per line)",
    )
)
def matrix(
    file: Annotated[
        Path,
        typer.Argument(
            help="Population: JSON list of chromosomes or text notations, a paper-run JSON, or a .txt file with one "
            "architecture per line. Graphs: a JSON list of DAG, NAS-Bench-101 or DARTS objects or NAS-Bench-201 "
            "strings, or a .txt file with one NAS-Bench-201 string or Genotype(...) per line."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the matrix to a .csv or .npy file.")
    ] = None,
    schema: SchemaOpt = "default",
    costs: CostsOpt = None,
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
    """Similarity matrix of a population, with its median similarity (diversity); of graphs, by graph edit distance.

    Without [bold]-o[/]: the numbers when they fit the terminal, else a heatmap with the most similar pairs, or only the pairs. [bold]-o FILE.csv[/] or [bold].npy[/] writes every number.
    """

    names, archs = read_population(file, generation)
    other_archs = read_population(others, generation)[1] if others else None
    if is_graph_input(archs) or (other_archs is not None and is_graph_input(other_archs)):
        archs = as_graphs(archs, str(file))
        other_archs = None if other_archs is None else as_graphs(other_archs, str(others))
        metric: Any = costs_for(costs if costs is not None else schema, [*archs, *(other_archs or ())])
        symmetric, directed, verb = metric.symmetric, f"the edit costs {metric.name!r} are directed", "comparing"
    else:
        _refuse_costs_for_chains(costs)
        metric, symmetric, directed, verb = (
            schema,
            resolve_scoring(schema).symmetric,
            f"{schema!r} is directed",
            "aligning",
        )
    if condensed and (output is None or output.suffix.lower() != ".npy"):
        raise typer.BadParameter("--condensed writes a 1-D array: give -o FILE.npy", param_hint="--condensed")
    if condensed and others is None and not symmetric:
        raise typer.BadParameter(
            f"--condensed keeps only the upper triangle, which needs a symmetric schema; {directed}",
            param_hint="--condensed",
        )
    if output is not None and output.suffix.lower() not in (".csv", ".npy"):
        raise typer.BadParameter(f"{output}: the output must end in .csv or .npy", param_hint="--output")

    m = _compute_matrix(archs, other_archs, metric, verb, condensed, float32, threads)
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
            _shown(archs, schema),
            None if other_archs is None else _shown(other_archs, schema),
        )
        if not complete:
            console.print("every number: add -o matrix.csv (or -o matrix.npy)", highlight=False)
    if others is None and len(archs) >= 2:
        console.print(
            f"median similarity: off-diagonal {diversity(m, condensed=condensed):.4f}, upper triangle "
            f"{diversity(m, 'upper', condensed=condensed):.4f}, full {diversity(m, 'full', condensed=condensed):.4f}"
        )


def _compute_matrix(
    archs: Sequence[Any],
    other_archs: Sequence[Any] | None,
    metric: Any,
    verb: str,
    condensed: bool,
    float32: bool,
    threads: int | None,
) -> np.ndarray:
    """The matrix, with a progress bar; bounded graph distances said in one warning line."""
    with (
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            "{task.percentage:>3.0f}%",
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console_err,
            transient=True,
        ) as bar,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ApproximationWarning)
        task = bar.add_task(f"{verb} {len(archs)} architectures", total=None)
        m = similarity_matrix(
            archs,
            other_archs,
            metric,
            condensed=condensed,
            dtype=np.float32 if float32 else np.float64,
            n_threads=threads,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for w in caught:
        count = re.match(r"(\d+) graph edit distance", str(w.message))
        text = (
            f"{count[1]} similarities are lower bounds: their pairs have a cell of more than {DEFAULT_EXACT_LIMIT} "
            "nodes, so the edit distance is the bounded method's upper bound"
            if count
            else str(w.message)
        )
        console_err.print(f"warning: {escape(text)}", style="yellow", highlight=False, soft_wrap=True)
    return m


def _shown(archs: Sequence[Any], schema: str) -> Any:
    """How the matrix view shows architecture i: its letter sequence, or a graph's text."""
    if archs and isinstance(archs[0], GraphArch):
        return lambda i: escape(str(archs[i]))
    return lambda i: sequence(archs[i], schema)


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
