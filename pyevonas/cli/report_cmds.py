"""The ``pyevonas import``, ``report`` and ``align`` commands: thin wrappers over importer, report and align."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from pyevonas.cli._app import app
from pyevonas.cli._common import ARCH_FORMS, console, console_err, echo_json, examples, read_arch
from pyevonas.errors import ConfigError
from pyevonas.metric import DIVERSITY_KINDS, align, compiled, resolve_scoring
from pyevonas.metric.hybrid import cell_columns
from pyevonas.report.figures import gene_colour, text_colour
from pyevonas.report.html import write_report
from pyevonas.runs.importer import import_run


@app.command(
    "import",
    epilog=examples("pyevonas import results_compressed_paper_cifar10_s1_div.evonas --run-dir runs/cifar10_s1_div"),
)
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="An original .evonas file, or its plain-JSON extract (one run per .json file).")
    ],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="The run folder to create (must not exist, or be empty).")],
) -> None:
    """Import a published run of the original code into a new run folder.

    Nothing is written when the file is malformed.
    """

    run = import_run(file, run_dir)
    n = sum(len(g.individuals) for g in run.generations)
    console.print(
        f"imported [bold]{run.name}[/] ({run.dataset}, {run.control} control, seed {run.seed}): "
        f"{len(run.generations)} generations, {n} individuals → {run_dir}",
        highlight=False,
    )


@app.command(
    "report",
    epilog=examples(
        "pyevonas report runs/digits_rigid_s0",
        "pyevonas report runs/cifar100_s* -o reports/cifar100 --schema paper --skip-chance",
    ),
)
def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="One or more run folders.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Output folder for index.html, summary.json and figures/.",
            show_default="reports/ and the run folder's name; reports/FIRST+N for several runs",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            help="Recompute every similarity matrix with this schema ('paper', 'default' or a file) "
            "instead of using the stored ones."
        ),
    ] = None,
    median: Annotated[
        str,
        typer.Option(help="Median similarity over 'upper' (strict upper triangle, the paper's), 'offdiag' or 'full'."),
    ] = "upper",
    min_similarity: Annotated[
        float, typer.Option(help="Similar pairs (Fig. 20): similarity strictly above this.")
    ] = 0.8,
    min_gap: Annotated[float, typer.Option(help="Similar pairs (Fig. 20): fitness gap strictly above this.")] = 0.1,
    max_pairs: Annotated[int, typer.Option(help="Similar pairs (Fig. 20): at most this many per run.")] = 12,
    skip_chance: Annotated[
        bool,
        typer.Option(
            "--skip-chance",
            help="Similar pairs (Fig. 20): leave out individuals at chance-level fitness (collapsed trainings).",
        ),
    ] = False,
    run_sections: Annotated[
        bool, typer.Option("--run-sections/--no-run-sections", help="One section of figures per run.")
    ] = True,
    title: Annotated[str, typer.Option(help="Report title.")] = "pyevonas report",
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Objectives of the Pareto fronts and hypervolume, comma-separated "
            "(default: the runs' own, else val_accuracy,params)."
        ),
    ] = None,
) -> None:
    """Write an offline HTML report (the paper's figures and Table 3) and summary.json for one or more runs."""

    # ConfigError, not typer.Exit: the CLI's error edge turns it into one line and exit status 2.
    if median not in DIVERSITY_KINDS:
        raise ConfigError(f"--median must be one of {', '.join(DIVERSITY_KINDS)}, got {median!r}")
    if max_pairs < 0:
        raise ConfigError(f"--max-pairs must be >= 0, got {max_pairs}")
    if output is None:
        output = default_output(runs)
    doc = write_report(
        runs,
        output,
        schema=schema,
        median=median,
        min_similarity=min_similarity,
        min_gap=min_gap,
        max_pairs=max_pairs,
        skip_chance=skip_chance,
        run_sections=run_sections,
        title=title,
        objectives=objectives,
    )
    for run in doc["runs"]:
        r = run["pearson_fitness_similarity"]
        best = run["best"]
        console.print(
            f"{run['name']}: {run['n_generations']} generations, best fitness "
            f"{'–' if best is None else format(best['fitness'], '.4f')}, Pearson r "
            f"{'–' if r is None else format(r, '.2f')}",
            highlight=False,
        )
    for warning in doc["warnings"]:
        console_err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    console.print(f"report written to {output / 'index.html'} ({doc['seconds']:.1f} s)", highlight=False)


def default_output(runs: list[Path]) -> Path:
    """``reports/<run folder name>``; for several runs ``reports/<first>+<n - 1>``."""
    name = runs[0].resolve().name or "run"
    if len(runs) > 1:
        name = f"{name}+{len(runs) - 1}"
    return Path("reports") / name


def render_alignment(al: Any, gene_names: Mapping[str, str] | None = None) -> Text:
    """A rich renderable of an alignment: coloured genes, a match line, the scores, and a legend
    naming each letter with ``gene_names`` (``Scoring.gene_names()`` of the alignment's schema)."""

    def row(letters: str) -> Text:
        t = Text()
        for ch in letters:
            if ch == "-":
                t.append(" - ", style="dim")
            else:
                bg = gene_colour(ch)
                t.append(f" {ch} ", style=f"bold {text_colour(bg)} on {bg}")
        return t

    marks = Text()
    for a, b, s in zip(al.aligned_a, al.aligned_b, al.column_scores, strict=True):
        mark = " " if "-" in (a, b) else ("|" if a == b else (":" if s > 0 else "."))
        marks.append(f" {mark} ")
    letters = sorted(set(al.aligned_a + al.aligned_b) - {"-"})
    names = gene_names or {}
    legend = Text("  ".join(f"{k} {names.get(k, '')}".rstrip() for k in letters), style="dim")
    out = Text()
    out.append_text(row(al.aligned_a))
    out.append("\n")
    out.append_text(marks)
    out.append("\n")
    out.append_text(row(al.aligned_b))
    out.append(f"\nscore {al.score:g}   similarity {al.similarity:.3f}   (| same gene, : related, . mismatch)\n")
    out.append_text(legend)
    return out


@app.command(
    "align",
    epilog=examples('pyevonas align "C(32,3,1) B L M(2) g F(64)" "C(64,3,1) L g O(0.2) F(64)" --schema paper'),
)
def align_cmd(
    a: Annotated[
        str,
        typer.Argument(help=f"First architecture: {ARCH_FORMS}."),
    ],
    b: Annotated[str, typer.Argument(help="Second architecture, same forms.")],
    schema: Annotated[
        str, typer.Option("--schema", "-s", help="Scoring schema: 'default', 'paper' or a schema file.")
    ] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the alignment as JSON instead of colours.")] = False,
) -> None:
    """Align two architectures and print the alignment, one colour per gene type."""

    arch_a, arch_b = read_arch(a, schema), read_arch(b, schema)
    al = align(arch_a, arch_b, schema=schema)
    cells = cell_columns(compiled(schema), al.flat_pairs, al.column_scores, arch_a, arch_b)
    if as_json:
        echo_json(
            {
                "aligned_a": al.aligned_a,
                "aligned_b": al.aligned_b,
                "column_scores": list(al.column_scores),
                "score": al.score,
                "similarity": al.similarity,
                "schema": schema,
                **({"cell_columns": cells} if cells else {}),
            }
        )
        return
    console.print(render_alignment(al, resolve_scoring(schema).gene_names()), highlight=False)
    for col in cells:
        console.print(
            f"column {col['column'] + 1}: cell genes {col['letters'][0]}{col['a'] + 1} ~ {col['letters'][1]}"
            f"{col['b'] + 1}: score {col['score']:.4g}, cell similarity {col['cell_similarity']:.3f}",
            highlight=False,
        )


__all__ = ["align_cmd", "default_output", "import_cmd", "render_alignment", "report_cmd"]
