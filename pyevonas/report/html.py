"""The offline HTML report and summary.json written from analysed runs."""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas import __version__
from pyevonas.errors import ConfigError, RunStoreError
from pyevonas.metric import DiversityHow, align, resolve_scoring
from pyevonas.report import cells as C
from pyevonas.report import figures as F
from pyevonas.report.analysis import (
    GenerationStats,
    Group,
    Pair,
    RunData,
    RunStats,
    analyse_run,
    architecture,
    at_chance,
    chance_limit,
    compute_matrix,
    coverage_summary,
    gene_texts,
    groups,
    load_run,
    schema_name,
    schema_of,
    similar_pairs,
    summary,
)
from pyevonas.report.cells import has_cells
from pyevonas.report.figures import gene_colour, png_bytes, text_colour
from pyevonas.report.pareto import pareto_analysis, pareto_html
from pyevonas.runs.records import finite_json, is_trained
from pyevonas.runs.staging import staging_dir
from pyevonas.runs.store import DB_NAME

# ------------------------------------------------------------------------------------------
# HTML


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return html.escape(str(v))


def _fmt_latency(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:,.1f}"


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "", row_classes: Sequence[str] = ()
) -> str:
    """A table in a box that scrolls sideways rather than cut a column on a narrow page.

    A cell given as ``(html, class)`` gets that class (e.g. ``arch`` or ``edits``, which wrap);
    ``row_classes`` gives rows a class (``mean``), in order.
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        (f'<tr class="{row_classes[k]}">' if k < len(row_classes) and row_classes[k] else "<tr>")
        + "".join(_cell(c) for c in row)
        + "</tr>"
        for k, row in enumerate(rows)
    )
    return f'<div class="wide"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _cell(c: Any) -> str:
    if isinstance(c, tuple):
        return f'<td class="{c[1]}">{c[0]}</td>'
    return f"<td>{c}</td>"


def _seq_html(seq: str, titles: Sequence[str] | None = None) -> str:
    """Coloured gene boxes; ``titles`` (one per letter) become their tooltips."""
    cells = []
    for k, ch in enumerate(seq):
        bg = gene_colour(ch)
        tip = f' title="{html.escape(titles[k])}"' if titles is not None and k < len(titles) else ""
        cells.append(f'<span class="g"{tip} style="background:{bg};color:{text_colour(bg)}">{html.escape(ch)}</span>')
    return '<span class="seq">' + "".join(cells) + "</span>"


def _ind_seq_html(ind: Any, schema: Any) -> str:
    """An individual's gene boxes, each with its gene's parameters as a tooltip."""
    return _seq_html(ind.sequence, gene_texts(ind, schema))


def _arch_html(ind: Any, schema: Any) -> str:
    """Gene boxes (tooltips: parameters) above the text notation with parameters."""
    text = architecture(ind, schema)
    notation = "" if text is None else f'<div class="notation">{html.escape(text)}</div>'
    return _ind_seq_html(ind, schema) + notation


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px}
body{color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
.wide{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3;text-align:center}td:first-child{text-align:left}
td.arch,td.edits,td.names{text-align:left}
td.arch{min-width:16em;max-width:30em}td.edits{min-width:10em;max-width:16em;overflow-wrap:anywhere}
tr.mean td{font-weight:bold;border-bottom:2px solid #999}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.seq{font-family:ui-monospace,Menlo,Consolas,monospace}
.g{display:inline-block;width:1.15em;text-align:center;font-weight:bold;font-size:.85em;cursor:help}
.notation{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;color:#333;overflow-wrap:anywhere}
.chance{color:#b15928;font-size:.85em}
.note{color:#555;font-size:.9em}nav a{margin-right:1em}
.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:.4em .8em}
.sim{color:#b15928;font-weight:bold}
"""


class _Figures:
    """Renders figures to DIR/figures/*.png and returns their <img> tags (embedded as base64).

    ``notice`` (a simulated run's ``simulated with the surrogate of ..., not trained``) goes into
    every figure's title and caption; :meth:`scoped` sets another one for a run's own figures.
    """

    def __init__(self, out_dir: Path, notice: str | None = None) -> None:
        self.dir = out_dir / "figures"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files: list[str] = []
        self.notice = notice

    @contextlib.contextmanager
    def scoped(self, notice: str | None) -> Iterator[None]:
        """The figures added inside carry ``notice`` (None: none) instead of the report's."""
        before, self.notice = self.notice, notice
        try:
            yield
        finally:
            self.notice = before

    def add(self, name: str, make: Callable[[], Any], alt: str) -> str:
        fig = make()
        if self.notice is not None:
            F.mark_simulated(fig, self.notice)
        data = png_bytes(fig)
        fname = f"{_slug(name)}.png"
        (self.dir / fname).write_bytes(data)
        self.files.append(f"figures/{fname}")
        b64 = base64.b64encode(data).decode("ascii")
        caption = html.escape(alt)
        mark = ""
        if self.notice is not None:
            caption = f"{html.escape(self.notice)}: {caption}"
            mark = f'<span class="sim">{html.escape(_capital(self.notice))}.</span> '
        return (
            f'<figure><img alt="{caption}" src="data:image/png;base64,{b64}">'
            f'<figcaption class="note">{mark}{html.escape(alt)}</figcaption></figure>'
        )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _report_notice(all_stats: Sequence[RunStats]) -> str | None:
    """What the report says of its simulated runs: the one notice when every run was simulated by
    one surrogate, else each notice with the runs it concerns; None when every run trained."""
    by_notice: dict[str, list[str]] = {}
    for st in all_stats:
        sim = st.run.simulation
        if sim is not None:
            by_notice.setdefault(sim.notice, []).append(st.run.name)
    if not by_notice:
        return None
    if len(by_notice) == 1 and sum(map(len, by_notice.values())) == len(all_stats):
        return next(iter(by_notice))
    return "; ".join(f"{', '.join(names)} {notice}" for notice, names in by_notice.items())


def _simulated_banner(all_stats: Sequence[RunStats]) -> str:
    """The warning at the top of a report with simulated runs (empty for trained runs only)."""
    notice = _report_notice(all_stats)
    if notice is None:
        return ""
    return (
        f'<p class="warn"><span class="sim">⚠ {html.escape(_capital(notice))}.</span> Fitness and validation '
        "accuracies of simulated runs are a surrogate's predictions from the paper's published evaluations "
        "(<code>pyevonas evolve --evaluator surrogate:...</code>), not measurements; they have no test "
        "accuracy or latency, and their sizes are counted from the architectures. Each run section gives, per "
        "generation, the share of candidates far from every published evaluation (coverage below the "
        "threshold), where the surrogate extrapolates.</p>"
    )


def _gene_names(run: RunData) -> dict[str, str]:
    """Legend names of the letters of a run's stored sequences: those of the run's own schema."""
    return resolve_scoring(schema_of(run, None)).gene_names()


def _cells_html(
    st: RunStats, labels: Sequence[str], chroms: Sequence[list[dict[str, Any]]], figs: _Figures, key: str
) -> str:
    """A cell-space run's cells: the best of each generation drawn, and the operations of the last
    generation's cells by position (the letter figures show one skeleton for every individual)."""
    run = st.run
    parts = ["<h3>Cells of the best individual of each generation</h3>"]
    parts.append(
        figs.add(
            f"{key}_cells_best",
            lambda: C.cell_drawings(
                [(label, C.cells_of(chrom)) for label, chrom in zip(labels, chroms, strict=True)],
                title=f"{run.name}: cells of the best of each generation",
            ),
            f"{run.name}: the cell of the best individual of each generation, nodes in topological order, "
            "edges labelled by their operation",
        )
    )
    last = run.generations[-1] if run.generations else None
    cells = [cell for ind in (last.individuals if last else []) for cell in C.cells_of(ind.chromosome)]
    if cells:
        parts.append(f"<h3>Operations of the cells of generation {last.generation if last else ''}</h3>")
        parts.append(
            figs.add(
                f"{key}_cells_operations",
                lambda: C.operation_frequency(
                    cells, title=f"{run.name}: operations of generation {last.generation if last else ''}'s cells"
                ),
                f"{run.name}: for each edge (or node) of the cell, the share of the {len(cells)} cells of the "
                "last generation with each operation (an absent edge counts as none)",
            )
        )
    return "".join(parts)


def _best_rows(st: RunStats) -> tuple[list[str], list[str], list[list[dict[str, Any]]]]:
    labels, seqs, chroms = [], [], []
    for g in st.generations:
        if g.best is not None:
            labels.append(f"G{g.generation} · {g.best.fitness:.3f}")
            seqs.append(g.best.sequence)
            chroms.append(g.best.chromosome)
    return labels, seqs, chroms


_LATENCY_NOTE = (
    "Latencies of imported runs ({runs}) are the original code's <code>inference_time</code> × 1000: "
    "one first call of Keras <code>model.predict</code>, timed once in the authors' environment (the "
    "first call includes graph building, and a few take ~3,000,000 ms). They are not a benchmark and do "
    "not compare with the latencies pyevonas measures. Axes whose values span more than {spread:g}× are "
    "drawn on a log scale."
)


def _latency_note(runs: Sequence[RunData]) -> str:
    imported = [r.name for r in runs if r.imported]
    if not imported:
        return ""
    names = ", ".join(html.escape(n) for n in imported)
    return f'<p class="note">{_LATENCY_NOTE.format(runs=names, spread=F.LOG_SPREAD)}</p>'


def _fitness_html(ind: Any, chance: float | None) -> str:
    mark = ' <span class="chance" title="a collapsed training: fitness at chance level">chance</span>'
    return _fmt(ind.fitness) + (mark if at_chance(ind, chance) else "")


def _best_table(st: RunStats) -> str:
    """Each generation's best: metrics, and its architecture with parameters."""
    rows = []
    for g in st.generations:
        b = g.best
        if b is None:
            continue
        rows.append(
            [
                str(g.generation),
                (html.escape(b.name), "names"),
                _fmt(b.fitness),
                _fmt(getattr(b, "val_accuracy", None)),
                _fmt(getattr(b, "test_accuracy", None)),
                _fmt(getattr(b, "params", None)),
                _fmt(getattr(b, "size_mb", None), 2),
                _fmt_latency(getattr(b, "latency_ms", None)),
                (_arch_html(b, st.run_schema), "arch"),
            ]
        )
    if not rows:
        return '<p class="note">No individual trained.</p>'
    return _table(
        [
            "gen",
            "name",
            "fitness",
            "val accuracy",
            "test accuracy",
            "params",
            "size (MB)",
            "latency (ms)",
            "architecture",
        ],
        rows,
    )


def _run_section(st: RunStats, figs: _Figures, pairs: list[Pair], skip_chance: bool = False) -> str:

    run = st.run
    key = _slug(run.name)
    gens = [g.generation for g in st.generations]
    parts = [f'<h2 id="{key}">Run {html.escape(run.name)}</h2>']
    parts.append(
        f'<p class="note">{html.escape(run.path)} · dataset {html.escape(run.dataset)} · control '
        f"{html.escape(run.control)} · seed {_fmt(run.meta.get('seed'))} · matrices: "
        f"{html.escape(st.matrix_source)} · Pearson r (best fitness, median similarity) = "
        f"<b>{_fmt(st.pearson, 2)}</b></p>"
    )
    parts.append(_simulation_html(run))
    best = st.best
    if best is not None:
        facts = [f"fitness <b>{_fmt(best.fitness)}</b>"]
        for label, attr, digits in (
            ("validation accuracy", "val_accuracy", 3),
            ("test accuracy", "test_accuracy", 3),
            ("size (MB)", "size_mb", 2),
        ):
            value = getattr(best, attr, None)
            if value is not None:
                facts.append(f"{label} <b>{_fmt(value, digits)}</b>")
        params = getattr(best, "params", None)
        if params is not None:
            facts.append(f"<b>{params:,}</b> parameters")
        parts.append(
            f"<p>Best of the run: <b>{html.escape(best.name)}</b> (generation "
            f"{_fmt(getattr(best, 'generation', None))}): {', '.join(facts)}</p>" + _arch_html(best, st.run_schema)
        )
    has_window = any(g.window is not None for g in st.generations)
    statistic = [g.control_statistic for g in st.generations]
    parts.append("<h3>Max fitness and median similarity per generation (Fig. 6)</h3>")
    parts.append(
        figs.add(
            f"{key}_fig6_fitness_similarity",
            lambda: F.fitness_similarity(
                gens,
                [g.max_fitness for g in st.generations],
                [g.median_similarity for g in st.generations],
                control_statistic=statistic if has_window else None,
                windows=[g.window for g in st.generations] if has_window else None,
                accepted=[g.accepted for g in st.generations] if has_window else None,
                title=run.name,
            ),
            f"{run.name}: best fitness and median similarity per generation"
            + (
                "; the bars are the diversity-control windows, a red cross marks a generation whose "
                "control statistic fell outside its window; where the statistic is the median "
                "similarity itself, one line shows both"
                if has_window
                else ""
            ),
        )
    )
    parts.append(_generation_table(st))
    parts.append("<h3>Best individual of each generation</h3>")
    parts.append(
        '<p class="note">Hover a gene for its parameters. The text notation is what '
        "<code>pyevonas train</code> and <code>pyevonas.parse_arch</code> read.</p>"
    )
    parts.append(_best_table(st))
    heat = []
    for g in st.generations:
        m = st.matrices.get(g.generation)
        if m is None:
            continue
        inds = next(x for x in run.generations if x.generation == g.generation).individuals
        order = sorted(range(len(inds)), key=lambda k: (inds[k].size_mb is None, inds[k].size_mb or 0.0, k))
        heat.append((f"G{g.generation} · median {_fmt(g.median_similarity, 2)}", m[np.ix_(order, order)]))
    if heat:
        parts.append("<h3>Population similarity per generation, ordered by model size (Fig. 5)</h3>")
        parts.append(
            figs.add(
                f"{key}_fig5_heatmaps",
                lambda: F.similarity_heatmaps(heat, title=f"{run.name}: similarity, ordered by size"),
                f"{run.name}: similarity matrices, rows and columns ordered by model size (small first)",
            )
        )
    labels, seqs, chroms = _best_rows(st)
    if seqs:
        parts.append("<h3>Best individual of each generation (Fig. 7)</h3>")
        parts.append(
            figs.add(
                f"{key}_fig7_alignment_chart",
                lambda: F.alignment_chart(
                    labels, seqs, title=f"{run.name}: best of each generation", gene_names=_gene_names(run)
                ),
                f"{run.name}: best individual per generation, one colour per gene type",
            )
        )
    if has_cells(chroms):
        parts.append(_cells_html(st, labels, chroms, figs, key))
    if len(chroms) >= 2:
        m_best = compute_matrix(chroms, st.schema)
        parts.append("<h3>Clustering of the best individuals (Fig. 8)</h3>")
        parts.append(
            figs.add(
                f"{key}_fig8_clustergram",
                lambda: F.clustergram(labels, m_best, title=f"{run.name}: best of each generation"),
                f"{run.name}: hierarchical clustering (average linkage, 1 - similarity) of the best individuals",
            )
        )
    if seqs:
        parts.append("<h3>Genes and blocks among the best individuals (Fig. 9)</h3>")
        parts.append(
            figs.add(
                f"{key}_fig9_gene_frequency",
                lambda: F.gene_frequency(seqs, title=f"{run.name}: best of each generation"),
                f"{run.name}: frequency of genes and of blocks of 2 and 3 genes among the best individuals",
            )
        )
    parts.append("<h3>Similar pairs with a large fitness gap (Fig. 20)</h3>")
    if skip_chance:
        chance = run.chance
        parts.append(
            '<p class="note">Individuals at chance level (a collapsed training, fitness ≤ '
            f"{chance_limit(chance):.4g}) are left out (<code>--skip-chance</code>).</p>"
            if chance is not None
            else f'<p class="note">The chance level of dataset {html.escape(run.dataset)} is unknown: '
            "no individual is left out as a collapsed training.</p>"
        )
    parts.append(_pairs_html(pairs, st, figs, key))
    points = [
        (g.generation, i.fitness, i.size_mb, i.latency_ms)
        for g in run.generations
        for i in g.individuals
        if is_trained(i)
    ]
    bests = [(g.generation, g.best.size_mb, g.best.latency_ms) for g in st.generations if g.best is not None]
    if points:
        parts.append("<h3>Size and latency against fitness (Fig. 17, 18)</h3>")
        parts.append(_latency_note([run]))
        parts.append(
            figs.add(
                f"{key}_fig17_18_size_latency",
                lambda: F.size_latency(points, bests, title=f"{run.name}: size and latency"),
                f"{run.name}: size and latency of every trained individual against its fitness; "
                "best individual per generation",
            )
        )
    return "\n".join(parts)


def _simulation_html(run: RunData) -> str:
    """A simulated run's notice under its heading: which surrogate, and where it extrapolates."""
    sim = run.simulation
    if sim is None:
        return ""
    coverage = coverage_summary(run) or []
    n = sum(c["n"] for c in coverage)
    far = sum(c["extrapolated"] for c in coverage)
    share = f"{far} of {n} candidates ({far / n:.0%})" if n else "no candidate"
    return (
        f'<p class="warn"><span class="sim">⚠ {html.escape(_capital(sim.notice))}.</span> Model '
        f"<code>{html.escape(sim.model)}</code>"
        + (f" (SHA-256 <code>{html.escape(sim.sha256[:16])}…</code>)" if sim.sha256 else "")
        + f"; fitness is its predicted {sim.epochs}-epoch validation accuracy. {share} had a coverage (similarity "
        f"to the nearest published evaluation) below {sim.coverage_threshold:g}: there the surrogate "
        "extrapolates (column “extrapolated” below).</p>"
    )


def _generation_table(st: RunStats) -> str:
    """One row per generation: counts, fitness, similarity, the control's window and decision, and
    for a simulated run the share of candidates where the surrogate extrapolates."""
    coverage = {c["generation"]: c for c in coverage_summary(st.run) or []}
    rows = []
    for g in st.generations:
        row = [
            str(g.generation),
            str(g.n),
            str(g.n_trained),
            str(g.n_failed),
            str(g.n_oversized),
            _fmt(g.max_fitness),
            _fmt(g.median_fitness),
            _fmt(g.median_similarity),
            _fmt(g.control_statistic),
            "–" if g.window is None else f"({g.window[0]:.3f}, {g.window[1]:.3f}]",
            "–" if g.accepted is None else ("yes" if g.accepted else "<b>no</b>"),
            str(g.control_iterations) if g.control_iterations else "–",
        ]
        if coverage:
            share = coverage.get(g.generation, {}).get("share")
            row.append("–" if share is None else f"{share:.0%}")
        rows.append(row)
    headers = [
        "gen",
        "n",
        "trained" if not coverage else "scored",
        "failed",
        "oversized",
        "max fitness",
        "median fitness",
        "median similarity",
        "control statistic",
        "window",
        "in window",
        "control tries",
    ]
    return _table(headers + (["extrapolated"] if coverage else []), rows)


def _pairs_html(pairs: list[Pair], st: RunStats, figs: _Figures, key: str) -> str:

    chance = st.run.chance
    if not pairs:
        return '<p class="note">No pair passes the thresholds.</p>'

    aligned = []
    rows = []
    for k, p in enumerate(pairs, 1):
        al = align(p.better.chromosome, p.worse.chromosome, schema=st.schema)
        aligned.append(
            F.AlignedPair(
                f"{k}a {p.better.name}",
                f"{k}b {p.worse.name}",
                al.aligned_a,
                al.aligned_b,
                f"G{p.generation} sim {p.similarity:.3f} · fitness {p.better.fitness:.3f} → {p.worse.fitness:.3f}",
            )
        )
        e = p.edits()
        edits = [
            f"<div><i>{label}</i> {html.escape(', '.join(e[kind]))}</div>"
            for kind, label in (("substitutions", "subst."), ("insertions", "ins."), ("deletions", "del."))
            if e[kind]
        ]
        rows.append(
            [
                str(k),
                str(p.generation),
                (
                    f"1 {html.escape(p.better.name)} · {_fitness_html(p.better, chance)}<br>"
                    f"2 {html.escape(p.worse.name)} · {_fitness_html(p.worse, chance)}",
                    "names",
                ),
                (
                    _ind_seq_html(p.better, st.run_schema) + "<br>" + _ind_seq_html(p.worse, st.run_schema),
                    "arch",
                ),
                _fmt(p.similarity),
                _fmt(p.gap),
                ("".join(edits) or "–", "edits"),
            ]
        )
    table = _table(
        [
            "#",
            "gen",
            "individuals (1 better, 2 worse) · fitness",
            "sequences",
            "similarity",
            "fitness gap",
            "edits 1 → 2",
        ],
        rows,
        "pairs",
    )
    n_chance = sum(at_chance(p.worse, chance) for p in pairs)
    note = ""
    if n_chance and chance is not None:
        note = (
            f'<p class="note">{n_chance} of {len(pairs)} pairs end at chance level (fitness ≤ '
            f"{chance_limit(chance):.4g}: a training that collapsed). <code>pyevonas report --skip-chance</code> leaves such "
            "individuals out.</p>"
        )
    img = figs.add(
        f"{key}_fig20_pairs",
        lambda: F.pair_alignments(
            aligned,
            title=f"{st.run.name}: similar pairs, large fitness gap",
            gene_names=resolve_scoring(st.schema).gene_names(),
        ),
        f"{st.run.name}: alignments of similar pairs with a large fitness gap (▼ marks an edit)",
    )
    return note + table + img


def _bands(members: list[RunStats], value: Callable[[GenerationStats], float | None]) -> tuple[list[int], np.ndarray]:
    gens = sorted({g.generation for m in members for g in m.generations})
    pos = {g: k for k, g in enumerate(gens)}
    arr = np.full((len(members), len(gens)), np.nan)
    for r, m in enumerate(members):
        for g in m.generations:
            v = value(g)
            if v is not None:
                arr[r, pos[g.generation]] = v
    return gens, arr


def _group_bands(group: Group, value: Callable[[GenerationStats], float | None]) -> list[F.Band]:
    """One band per run length of a group: runs of different lengths are never pooled.

    Named by the group's label (its control and the settings that tell it apart); its colour is
    its control mode's, or, where groups of one control differ in other settings, one per label."""
    lengths = group.lengths
    key = group.label if group.settings else group.control
    out = []
    for n in reversed(lengths):  # the longest first, drawn solid; shorter ones dashed
        members = [m for m in group.members if len(m.generations) == n]
        gens, arr = _bands(members, value)
        label = group.label if len(lengths) == 1 else f"{group.label} · {n} gen."
        out.append(F.Band(label, gens, arr, key=key, dashed=n != lengths[-1]))
    return out


def _warnings_html(warnings: Sequence[str]) -> str:
    return "".join(f'<p class="warn">⚠ {html.escape(w)}</p>' for w in warnings)


def _comparison_section(all_stats: list[RunStats], figs: _Figures, schema: Any, doc: dict[str, Any]) -> str:

    parts = ['<h2 id="comparison">Comparison of the runs</h2>']
    by_dataset: dict[str, list[Group]] = {}
    for group in groups(all_stats):
        by_dataset.setdefault(group.dataset, []).append(group)
    curves: list[tuple[str, list[F.Band], list[F.Band]]] = []
    sizes: list[tuple[str, list[F.Band], list[F.Band]]] = []
    for dataset, modes in sorted(by_dataset.items()):
        fit_b: list[F.Band] = []
        sim_b: list[F.Band] = []
        size_b: list[F.Band] = []
        lat_b: list[F.Band] = []
        for group in modes:
            fit_b += _group_bands(group, lambda g: g.max_fitness)
            sim_b += _group_bands(group, lambda g: g.median_similarity)
            size_b += _group_bands(group, lambda g: None if g.best is None else g.best.size_mb)
            lat_b += _group_bands(group, lambda g: None if g.best is None else g.best.latency_ms)
        curves.append((dataset, fit_b, sim_b))
        sizes.append((dataset, size_b, lat_b))
    parts.append("<h3>Max fitness and median similarity across seeds (Fig. 12)</h3>")
    parts.append(_warnings_html(doc["warnings"]))
    parts.append(
        figs.add(
            "all_fig12_grouped_curves",
            lambda: F.grouped_curves(curves),
            "per dataset and setting (control mode, and any other setting in which the runs differ, named): "
            "median across runs (line) and min-max range (band); "
            "runs of one group that differ in length get one band per length (n = runs in the band)",
        )
    )
    parts.append("<h3>Size and latency of the best individuals across seeds (Fig. 17, 18)</h3>")
    parts.append(_latency_note([st.run for st in all_stats]))
    parts.append(
        figs.add(
            "all_fig17_18_grouped_size_latency",
            lambda: F.grouped_size_latency(sizes),
            "size (MB) and latency (ms) of each generation's best individual: median across runs and min-max range",
        )
    )
    datasets = sorted({st.run.dataset for st in all_stats})
    for dataset in datasets:
        parts.append(_dataset_bests_html(dataset, [st for st in all_stats if st.run.dataset == dataset], figs, schema))
    return "\n".join(parts)


def _dataset_bests_html(dataset: str, members: list[RunStats], figs: _Figures, schema: Any) -> str:
    """Figs. 7, 8/19 and 9 over the best individual of each run of one dataset (as the paper draws them)."""
    bests = [(st.run.name, st.best) for st in members if st.best is not None]
    if not bests:
        return ""
    d = html.escape(dataset)
    slug = _slug(dataset)
    labels = [f"{n} · {b.fitness:.3f}" for n, b in bests]
    seqs = [b.sequence for _, b in bests]
    parts = [f"<h3>Best individual of each {d} run (Fig. 7)</h3>"]
    parts.append(
        figs.add(
            f"all_{slug}_fig7_alignment_chart",
            lambda: F.alignment_chart(
                labels,
                seqs,
                title=f"{dataset}: best individual of each run",
                # each run's letters as its own schema names them (the first run's on a clash)
                gene_names={k: v for st in reversed(members) for k, v in _gene_names(st.run).items()},
            ),
            f"{dataset}: best individual of each run (labelled by its folder), one colour per gene type",
        )
    )
    if len(bests) >= 2:
        m = compute_matrix([b.chromosome for _, b in bests], schema if schema is not None else members[0].schema)
        parts.append(f"<h3>Clustering of the best individuals of the {d} runs (Fig. 8, 19)</h3>")
        parts.append(
            figs.add(
                f"all_{slug}_fig8_19_clustergram",
                lambda: F.clustergram([n for n, _ in bests], m, title=f"{dataset}: best individual of each run"),
                f"{dataset}: hierarchical clustering of the best individual of each run",
            )
        )
    parts.append(f"<h3>Genes and blocks among the best individuals of the {d} runs (Fig. 9)</h3>")
    parts.append(
        figs.add(
            f"all_{slug}_fig9_gene_frequency",
            lambda: F.gene_frequency(seqs, title=f"{dataset}: best individual of each run"),
            f"{dataset}: frequency of genes and blocks of 2 and 3 genes among the runs' best individuals",
        )
    )
    return "\n".join(parts)


def _table3_html(summary_doc: dict[str, Any]) -> str:
    parts = ['<h2 id="table3">Pearson correlation of best fitness and median similarity (Table 3)</h2>']
    parts.append(_warnings_html(summary_doc["warnings"]))
    rows: list[list[Any]] = []
    classes: list[str] = []
    for g in summary_doc["table3"]:
        group = f"{html.escape(g['dataset'])} · {html.escape(g['label'])}"
        mixed = len(g["n_generations"]) > 1
        for r in g["runs"]:
            length = str(r["n_generations"]) + (" ⚠" if mixed else "")
            rows.append(
                [
                    group,
                    (f'<a href="#{_slug(r["name"])}">{html.escape(r["name"])}</a>', "names"),
                    _fmt(r["seed"]),
                    length,
                    _fmt(r["pearson"], 2),
                ]
            )
            classes.append("")
        n = len(g["runs"])
        rows.append(
            [
                f"{group} · mean of {n} run{'s' if n != 1 else ''}",
                "",
                "",
                "/".join(str(x) for x in g["n_generations"]),
                _fmt(g["mean_pearson"], 3),
            ]
        )
        classes.append("mean")
    parts.append(_table(["dataset · setting", "run", "seed", "generations", "Pearson r"], rows, "table3", classes))
    parts.append(
        '<p class="note">Pearson r between each generation\'s best fitness and its median similarity '
        "(see the note at the top on which median); one row per run, labelled by its folder, grouped by "
        "setting: dataset, control mode and every other search setting (budget, warm start, epochs, "
        "population, objectives, training recipe...), the group named by those in which it differs from the "
        "other groups of its dataset. Seeds and execution settings (workers, device, time limits) do not split "
        "a group. The mean is over the unrounded values (the paper averaged the rounded "
        "ones, which can differ by 0.001).</p>"
    )
    return "\n".join(parts)


def write_report(
    runs: Sequence[str | os.PathLike[str] | RunData],
    out_dir: str | os.PathLike[str],
    *,
    schema: Any = None,
    median: DiversityHow = "upper",
    min_similarity: float = 0.8,
    min_gap: float = 0.1,
    max_pairs: int = 12,
    skip_chance: bool = False,
    run_sections: bool = True,
    title: str = "pyevonas report",
    objectives: str | Sequence[str] | None = None,
    reference_point: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write ``index.html`` (figures embedded, opens offline), ``figures/*.png`` and ``summary.json`` into ``out_dir``.

    Args:
        runs: Run folders (or already loaded :class:`RunData`).
        out_dir: Output folder; created if missing. Files of an earlier report there are replaced.
        schema: Recompute every similarity matrix with this schema instead of using stored ones.
        median: Median convention: "upper" (default, the paper's), "offdiag" or "full".
        min_similarity, min_gap, max_pairs: Thresholds of the similar-pairs view (Fig. 20).
        skip_chance: Leave individuals whose fitness is at chance level (a collapsed training)
            out of the similar pairs (Fig. 20).
        run_sections: Include one section per run (figures per generation); the comparison,
            Table 3 and summary are always written.
        title: Page title.
        objectives, reference_point: Objectives and hypervolume reference of the Pareto view
            (:mod:`pyevonas.report.pareto`; default: the runs' own, else val_accuracy and params).

    Runs are named by their folder (``runs/digits_rigid_s0-2`` is ``digits_rigid_s0-2``); two
    folders of one name are told apart by their parent folder.

    Returns:
        The summary (also written to ``summary.json``); its ``warnings`` (runs of one dataset and
        control that differ in length) are also shown on the page.

    Raises:
        RunStoreError: a run folder is missing or not a run.
        ConfigError: ``out_dir`` holds an ``index.html`` or ``figures/`` that no pyevonas report
            wrote (they are never overwritten).
    """
    if not runs:
        raise RunStoreError("no run to report on")
    _check_output(Path(out_dir))
    started = time.perf_counter()
    datas = [r if isinstance(r, RunData) else load_run(r) for r in runs]
    _unique_names(datas)
    all_stats = [analyse_run(d, schema=schema, median=median) for d in datas]
    pairs = {
        st.run.name: similar_pairs(st, min_similarity, min_gap, max_pairs, skip_chance=skip_chance) for st in all_stats
    }
    doc = summary(all_stats, pairs)
    doc["settings"] = {
        "schema": None if schema is None else schema_name(schema),
        "median": median,
        "min_similarity": min_similarity,
        "min_gap": min_gap,
        "max_pairs": max_pairs,
        "skip_chance": skip_chance,
    }
    try:
        doc["pareto"] = pareto_analysis(all_stats, objectives, reference_point)
    except ValueError as exc:
        raise ConfigError(f"invalid objectives: {exc}") from None

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Build into a temporary folder, then swap in, so a failed report leaves no half-written one.
        tmp = staging_dir(out, "report")
    except OSError as exc:
        raise RunStoreError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    try:
        figs = _Figures(tmp, _report_notice(all_stats))
        body = [_simulated_banner(all_stats), _header_html(all_stats, doc, median, schema)]
        body.append(_table3_html(doc))
        body.append(pareto_html(doc["pareto"], all_stats, figs.add, per_run=run_sections))
        if len(all_stats) > 1:
            body.append(_comparison_section(all_stats, figs, schema, doc))
        if run_sections:
            for st in all_stats:
                sim = st.run.simulation
                with figs.scoped(None if sim is None else sim.notice):
                    body.append(_run_section(st, figs, pairs[st.run.name], skip_chance))
        doc["figures"] = list(figs.files)
        doc["seconds"] = round(time.perf_counter() - started, 3)
        page = _page(title, body, all_stats, run_sections)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        (tmp / "summary.json").write_text(
            json.dumps(finite_json(doc), indent=2, default=_json_default), encoding="utf-8"
        )
        _publish(tmp, out)
    except RunStoreError:
        raise
    except OSError as exc:  # a full disk, a folder made read-only meanwhile
        raise RunStoreError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return doc


def _publish(built: Path, out: Path) -> None:
    """Swap a built report into ``out``. Two reports writing into one folder take turns (a lock
    on the folder itself), so neither finds the other's figures/ half replaced."""
    with _folder_lock(out):
        if (out / "figures").exists():
            shutil.rmtree(out / "figures")
        os.replace(built / "figures", out / "figures")
        os.replace(built / "index.html", out / "index.html")
        os.replace(built / "summary.json", out / "summary.json")


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``folder`` (none where flock does not exist), waiting for a holder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_output(out: Path) -> None:
    """Refuse to replace an index.html or figures/ that is not an earlier pyevonas report's."""

    run = next((p for p in (out, *out.resolve().parents) if (p / DB_NAME).exists()), None)
    if run is not None:
        raise ConfigError(
            f"refusing to write a report into {out}: it is {'' if run == out else 'inside '}the run folder "
            f"{run} (next to its {DB_NAME}); choose an -o folder outside every run"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    clashes = [name for name in ("index.html", "figures", "summary.json") if (out / name).exists()]
    if not clashes:
        return
    try:
        ours = json.loads((out / "summary.json").read_text(encoding="utf-8")).get("format") == "pyevonas-report"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise ConfigError(
            f"output folder {out} already has {' and '.join(clashes)} not written by pyevonas report; "
            "choose another -o folder"
        )


def _unique_names(datas: list[RunData]) -> None:
    """Tell apart runs of one name: by their parent folders (``a/run``, ``b/run``), else ``#2``..."""
    counts: dict[str, int] = {}
    for d in datas:
        counts[d.name] = counts.get(d.name, 0) + 1
    for k, d in enumerate(datas):
        if counts[d.name] > 1 and d.path:
            parent = Path(d.path).resolve().parent.name
            if parent:
                datas[k] = RunData(f"{parent}/{d.name}", d.path, d.meta, d.scoring, d.generations)
    seen: dict[str, int] = {}
    for k, d in enumerate(datas):
        n = seen.get(d.name, 0)
        seen[d.name] = n + 1
        if n:
            datas[k] = RunData(f"{d.name}#{n + 1}", d.path, d.meta, d.scoring, d.generations)


def _header_html(all_stats: list[RunStats], doc: dict[str, Any], median: DiversityHow, schema: Any) -> str:
    med = {
        "upper": "median of the strict upper triangle of each matrix (the paper's dashboard)",
        "offdiag": "median of all off-diagonal cells",
        "full": "median of the full matrix, diagonal included",
    }[median]
    src = (
        "recomputed with the '" + schema_name(schema) + "' schema"
        if schema is not None
        else "as stored by each run (missing ones computed with the run's scoring)"
    )
    rows = []
    for st, r in zip(all_stats, doc["runs"], strict=True):
        best = st.best
        rows.append(
            [
                f'<a href="#{_slug(st.run.name)}">{html.escape(st.run.name)}</a>',
                html.escape(st.run.dataset) + (' <span class="sim">simulated</span>' if st.run.simulation else ""),
                html.escape(st.run.control),
                _fmt(st.run.meta.get("seed")),
                str(r["n_generations"]),
                str(r["n_individuals"]),
                str(r["n_failed"]),
                str(r["n_oversized"]),
                _fmt(None if best is None else best.fitness),
                _fmt(None if best is None else getattr(best, "test_accuracy", None)),
                ("–", "arch") if best is None else (_arch_html(best, st.run_schema), "arch"),
                _fmt(st.pearson, 2),
            ]
        )
    return (
        f'<p class="note">Similarity matrices: {html.escape(src)}. Median similarity: {html.escape(med)}. '
        "Best fitness: highest fitness among trained individuals (failed and oversized ones are left out).</p>"
        + _table(
            [
                "run",
                "dataset",
                "control",
                "seed",
                "generations",
                "individuals",
                "failed",
                "oversized",
                "best fitness",
                "test accuracy",
                "best architecture (hover a gene for its parameters)",
                "Pearson r",
            ],
            rows,
        )
    )


def _page(title: str, body: list[str], all_stats: list[RunStats], run_sections: bool) -> str:
    links = ['<a href="#table3">Table 3</a>']
    if len(all_stats) > 1:
        links.append('<a href="#comparison">Comparison</a>')
    if run_sections:
        links += [f'<a href="#{_slug(st.run.name)}">{html.escape(st.run.name)}</a>' for st in all_stats]
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if _report_notice(all_stats) is not None:
        title = f"{title} (simulated)"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="note">pyevonas {html.escape(__version__)} · {stamp} · '
        f"{len(all_stats)} run(s)</p><nav>{' '.join(links)}</nav>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


__all__ = ["write_report"]
