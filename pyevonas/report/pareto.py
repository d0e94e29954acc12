"""The report's accuracy-against-cost view: Pareto fronts and hypervolume per generation.

For every run of a report, under one list of objectives (by default the runs' own when they have
two or more, else ``val_accuracy, params``, or ``val_accuracy, size_mb`` for runs imported from
the original code, which record no parameter count) and one reference point (so the runs compare):

* per generation: the size of the generation's Pareto front and its hypervolume, and the same
  for the front of every candidate trained up to that generation (``*_so_far``, never falling);
* the final front (every trained candidate of the run), with each member's values;
* the run's selection settings, as its meta records them (``topk`` by fitness when none).

The hypervolume is :func:`pyevonas.runs.objectives.normalised_hypervolume`: each minimised
objective is divided by its reference value, so in ``val_accuracy, params`` it is the share of
the box [0, 1] x [0, 1] (accuracy x params / reference) that the front dominates. The reference
point is, per objective: a value given to the report, else the one the runs were configured with
(when they agree), else 0 for a maximised objective and ``REFERENCE_MARGIN`` x the largest value
among the trained candidates of generation 1 of all the report's runs for a minimised one (the
rule a run uses alone, applied to every run of the report).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pyevonas.errors import ConfigError
from pyevonas.report._style import literal_text, new_figure, plain_log_ticks
from pyevonas.report.analysis import RunStats
from pyevonas.runs.objectives import (
    REFERENCE_MARGIN,
    Objective,
    default_reference,
    non_dominated_sort,
    normalised_hypervolume,
    objective_matrix,
    objective_value,
    parse_objectives,
)
from pyevonas.runs.records import is_trained

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Objectives of the view when no run of the report has two or more of its own.
REPORT_OBJECTIVES: tuple[str, ...] = ("val_accuracy", "params")
#: ... and when the runs record no parameter count but a size (the original code's runs).
SIZE_OBJECTIVES: tuple[str, ...] = ("val_accuracy", "size_mb")

AddFigure = Callable[[str, Callable[[], Any], str], str]


def run_selection(st: RunStats) -> dict[str, Any]:
    """A run's selection settings as its meta records them (the paper's top k when it records none)."""
    sel = st.run.meta.get("selection")
    return dict(sel) if isinstance(sel, Mapping) else {"method": "topk", "objectives": ["val_accuracy"]}


def report_objectives(all_stats: Sequence[RunStats], objectives: str | Sequence[str] | None = None) -> list[Objective]:
    """The objectives of the view: ``objectives`` if given, else the first run's own when it has
    two or more, else :data:`REPORT_OBJECTIVES` (:data:`SIZE_OBJECTIVES` when the runs record a
    size but no parameter count, as the original code's).

    Raises:
        ValueError: a bad objective name.
    """
    if objectives is not None:
        return list(parse_objectives(objectives))
    for st in all_stats:
        own = run_selection(st).get("objectives") or []
        if len(own) >= 2:
            return list(parse_objectives(own))
    individuals = [ind for st in all_stats for g in st.run.generations for ind in g.individuals if is_trained(ind)]
    if not any(getattr(ind, "params", None) for ind in individuals) and any(
        getattr(ind, "size_mb", None) for ind in individuals
    ):
        return list(parse_objectives(SIZE_OBJECTIVES))  # runs imported from the original code
    return list(parse_objectives(REPORT_OBJECTIVES))


def report_reference(
    all_stats: Sequence[RunStats], objectives: Sequence[Objective], given: Mapping[str, float] | None = None
) -> list[float | None]:
    """The one reference point of the report (see the module docstring).

    Raises:
        ConfigError: a given or configured value that is not a finite number.
    """
    configured = _configured_references(all_stats)
    first = [ind for st in all_stats for g in st.run.generations[:1] for ind in g.individuals]
    default = default_reference(first, objectives)
    out: list[float | None] = []
    for obj, dflt in zip(objectives, default, strict=True):
        if given and (obj.name in given or obj.label in given):
            out.append(_finite_reference(obj.name, given[obj.name] if obj.name in given else given[obj.label]))
            continue
        agreed = configured.get(obj.name) or configured.get(obj.label)
        out.append(next(iter(agreed)) if agreed and len(agreed) == 1 else dflt)
    return out


def _configured_references(all_stats: Sequence[RunStats]) -> dict[str, set[float]]:
    """The reference values the runs were configured with, per objective name (the run's config,
    which :func:`~pyevonas.report.analysis.load_run` copies into the meta, or its selection record)."""
    configured: dict[str, set[float]] = {}
    for st in all_stats:
        for source in (run_selection(st).get("reference_point"), st.run.meta.get("reference_point")):
            for key, value in (source if isinstance(source, Mapping) else {}).items():
                configured.setdefault(str(key), set()).add(_finite_reference(str(key), value))
    return configured


def _finite_reference(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"reference point {name}: must be a finite number, got {value!r}")
    return number


def _check_dominated(
    all_stats: Sequence[RunStats], objectives: Sequence[Objective], reference: Sequence[float | None]
) -> None:
    """Refuse a reference point that no trained candidate is better than in every objective: its
    hypervolume would be 0 in every generation, which says nothing."""
    if any(r is None for r in reference):
        return
    trained = [ind for st in all_stats for g in st.run.generations for ind in g.individuals if is_trained(ind)]
    if not trained:
        return
    ref = np.array(
        [-float(r) if o.maximise else float(r) for o, r in zip(objectives, reference, strict=True) if r is not None]
    )
    if not np.any(np.all(objective_matrix(trained, objectives) < ref, axis=1)):
        point = ", ".join(f"{o.name} {float(r):g}" for o, r in zip(objectives, reference, strict=True) if r is not None)
        raise ConfigError(
            f"no trained candidate of the runs is better than the reference point ({point}) in every "
            "objective, so every hypervolume would be 0; give a reference every front can beat"
        )


def _front(individuals: Sequence[Any], objectives: Sequence[Objective]) -> list[Any]:
    """The non-dominated trained individuals, one per architecture."""
    seen: set[str] = set()
    trained = []
    for ind in individuals:
        key = getattr(ind, "canonical_key", "") or f"{ind.generation}:{ind.index}"
        if is_trained(ind) and key not in seen:
            seen.add(key)
            trained.append(ind)
    if not trained:
        return []
    ranks = non_dominated_sort(objective_matrix(trained, objectives))
    return [ind for ind, r in zip(trained, ranks, strict=True) if r == 0]


def pareto_analysis(
    all_stats: Sequence[RunStats],
    objectives: str | Sequence[str] | None = None,
    reference_point: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The fronts and hypervolumes of every run (the ``pareto`` entry of ``summary.json``)."""
    objs = report_objectives(all_stats, objectives)
    reference = report_reference(all_stats, objs, reference_point)
    if reference_point or _configured_references(all_stats):
        _check_dominated(all_stats, objs, reference)
    names = [o.name for o in objs]
    runs = []
    for st in all_stats:
        so_far: list[Any] = []
        gens = []
        for g in st.run.generations:
            so_far.extend(g.individuals)
            gens.append(
                {
                    "generation": g.generation,
                    "front_size": len(_front(g.individuals, objs)),
                    "hypervolume": normalised_hypervolume(g.individuals, objs, reference),
                    "front_size_so_far": len(_front(so_far, objs)),
                    "hypervolume_so_far": normalised_hypervolume(so_far, objs, reference),
                }
            )
        front = sorted(_front(so_far, objs), key=lambda ind: [objective_value(ind, o) for o in objs[1:]])
        runs.append(
            {
                "name": st.run.name,
                "selection": run_selection(st),
                "generations": gens,
                "hypervolume": gens[-1]["hypervolume_so_far"] if gens else None,
                "front": [
                    {
                        "name": ind.name,
                        "generation": ind.generation,
                        "sequence": ind.sequence,
                        **{o.name: _finite(objective_value(ind, o)) for o in objs},
                    }
                    for ind in front
                ],
            }
        )
    return {
        "objectives": names,
        "maximised": [o.name for o in objs if o.maximise],
        "reference_point": dict(zip(names, reference, strict=True)),
        "reference_rule": (
            "given values, else the runs' configured ones, else 0 for a maximised objective and "
            f"{REFERENCE_MARGIN} x the largest value of generation 1 (all runs) for a minimised one"
        ),
        "hypervolume": "normalised: each minimised objective divided by its reference value",
        "runs": runs,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------
# figures


@literal_text
def front_figure(
    points: Sequence[tuple[int, float, float]],
    fronts: Sequence[tuple[int, Sequence[tuple[float, float]]]],
    hypervolumes: Sequence[tuple[int, float | None, float | None]],
    x_label: str,
    y_label: str,
    title: str = "",
) -> Figure:
    """Fronts per generation and hypervolume per generation of one run.

    Args:
        points: ``(generation, x, y)`` of every trained candidate (x the cost, y the accuracy).
        fronts: per generation, the front so far as ``(x, y)`` points sorted by x.
        hypervolumes: ``(generation, of the generation, so far)``.
        x_label, y_label: axis labels.
        title: figure title.
    """
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(10.0, 3.8)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.4, 1])
    cmap = matplotlib.colormaps["viridis"]
    n_gen = max([g for g, _, _ in points] + [g for g, _ in fronts] + [1])
    if points:
        p = np.array(points, dtype=np.float64)
        sc = ax.scatter(p[:, 1], p[:, 2], c=p[:, 0], cmap=cmap, vmin=1, vmax=max(n_gen, 2), s=12, alpha=0.6)
        fig.colorbar(sc, ax=ax, label="generation", shrink=0.9, ticks=MaxNLocator(integer=True))
        xs = p[:, 1][p[:, 1] > 0]
        if xs.size and xs.max() / xs.min() > 30:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
    for g, front in fronts:
        if not front:
            continue
        f = np.array(front, dtype=np.float64)
        colour = cmap((g - 1) / max(n_gen - 1, 1))
        last = g == fronts[-1][0]
        ax.step(f[:, 0], f[:, 1], where="post", color=colour, lw=2.0 if last else 0.8, alpha=1.0 if last else 0.6)
    ax.set_xlabel(x_label + " (lower is better)")
    ax.set_ylabel(y_label)
    ax.set_title("front of all candidates so far, per generation", fontsize=9)
    ax.grid(alpha=0.3)
    if hypervolumes:
        h = np.array([[g, math.nan if a is None else a, math.nan if b is None else b] for g, a, b in hypervolumes])
        bx.plot(h[:, 0], h[:, 2], "o-", color="#1f77b4", ms=4, label="all candidates so far")
        bx.plot(h[:, 0], h[:, 1], "s--", color="#ff7f0e", ms=3, label="the generation")
        bx.legend(fontsize=8)
    bx.set_xlabel("generation")
    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.set_ylabel("hypervolume")
    bx.grid(alpha=0.3)
    fig.suptitle(title or "Pareto front and hypervolume", fontsize=10)
    return fig


@literal_text
def hypervolume_curves(curves: Sequence[tuple[str, Sequence[int], Sequence[float | None]]], title: str = "") -> Figure:
    """The hypervolume so far per generation, one line per run."""
    fig = new_figure(7.0, 3.8)
    ax = fig.subplots()
    for label, gens, values in curves:
        ax.plot(list(gens), [math.nan if v is None else v for v in values], "o-", ms=3, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("hypervolume of all candidates so far")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(title or "Hypervolume per generation", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# HTML


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return html.escape(str(value))


def _selection_text(sel: Mapping[str, Any]) -> str:
    parts = [str(sel.get("method", "topk"))]
    if sel.get("neighbours") is not None:
        parts.append(f"k={sel['neighbours']}, archive {sel.get('archive')}")
    objectives = sel.get("objectives") or ["val_accuracy"]
    parts.append("objectives " + ", ".join(objectives))
    if sel.get("tiebreak"):
        parts.append(f"tie-break {sel['tiebreak']}")
    return "; ".join(parts)


def pareto_html(doc: Mapping[str, Any], all_stats: Sequence[RunStats], add_figure: AddFigure, per_run: bool) -> str:
    """The report's section on fronts and hypervolume, from :func:`pareto_analysis`'s ``doc``."""
    objs = doc["objectives"]
    ref = ", ".join(f"{k} {_fmt(v)}" for k, v in doc["reference_point"].items())
    rows = []
    for run in doc["runs"]:
        last = run["generations"][-1] if run["generations"] else {}
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    html.escape(run["name"]),
                    html.escape(_selection_text(run["selection"])),
                    _fmt(last.get("front_size_so_far")),
                    _fmt(last.get("hypervolume")),
                    _fmt(run["hypervolume"]),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("run", "selection", "final front size", "hypervolume of the last generation", "hypervolume (run)")
    )
    parts = [
        '<h2 id="pareto">Accuracy against cost: Pareto fronts and hypervolume</h2>',
        f'<p class="note">Objectives: {html.escape(", ".join(objs))} (maximised: '
        f"{html.escape(', '.join(doc['maximised']) or 'none')}; the others minimised). Reference point: "
        f"{html.escape(ref)} ({html.escape(doc['reference_rule'])}). Hypervolume {html.escape(doc['hypervolume'])}; "
        "“run” counts every candidate trained up to the generation.</p>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>",
    ]
    if not any(run["front"] for run in doc["runs"]):
        parts.append(
            f'<p class="note">No run records {html.escape(", ".join(objs))} for its trained candidates: '
            "no front to draw.</p>"
        )
        return "\n".join(parts)
    if len(doc["runs"]) > 1 and any(run["hypervolume"] is not None for run in doc["runs"]):
        curves = [
            (
                run["name"],
                [g["generation"] for g in run["generations"]],
                [g["hypervolume_so_far"] for g in run["generations"]],
            )
            for run in doc["runs"]
        ]
        parts.append(
            add_figure(
                "pareto_hypervolume_runs",
                lambda: hypervolume_curves(curves),
                "Hypervolume of all candidates so far, per generation and run.",
            )
        )
    if per_run and len(objs) >= 2:
        objectives = parse_objectives(objs)
        for st, run in zip(all_stats, doc["runs"], strict=True):
            if not run["front"]:
                continue
            parts.append(add_figure(f"pareto_{run['name']}", _run_figure(st, run, objectives), _caption(run, objs)))
    return "\n".join(parts)


def _caption(run: Mapping[str, Any], objs: Sequence[str]) -> str:
    return (
        f"{run['name']}: every trained candidate ({objs[1]} against {objs[0]}, coloured by generation) with "
        "the front of all candidates so far after each generation (the last one bold), and the hypervolume per generation."
    )


def _run_figure(st: RunStats, run: Mapping[str, Any], objectives: Sequence[Objective]) -> Callable[[], Any]:
    y_obj, x_obj = objectives[0], objectives[1]

    def xy(ind: Any) -> tuple[float, float]:
        return objective_value(ind, x_obj), objective_value(ind, y_obj)

    points: list[tuple[int, float, float]] = []
    fronts: list[tuple[int, list[tuple[float, float]]]] = []
    so_far: list[Any] = []
    for g in st.run.generations:
        so_far.extend(g.individuals)
        for ind in g.individuals:
            x, y = xy(ind)
            if is_trained(ind) and math.isfinite(x) and math.isfinite(y):
                points.append((g.generation, x, y))
        front = [p for p in (xy(ind) for ind in _front(so_far, list(objectives))) if all(map(math.isfinite, p))]
        fronts.append((g.generation, sorted(front)))
    hvs = [(g["generation"], g["hypervolume"], g["hypervolume_so_far"]) for g in run["generations"]]
    return lambda: front_figure(points, fronts, hvs, x_obj.name, y_obj.name, title=f"{run['name']}: Pareto front")


__all__ = [
    "REPORT_OBJECTIVES",
    "SIZE_OBJECTIVES",
    "AddFigure",
    "front_figure",
    "hypervolume_curves",
    "pareto_analysis",
    "pareto_html",
    "report_objectives",
    "report_reference",
    "run_selection",
]
