"""Objectives of a run's candidates, Pareto ranks, crowding distance and hypervolume.

Plain functions on the records of a run (:class:`~pyevonas.runs.records.Individual`) and on numpy
arrays, used by the search to choose parents (:mod:`pyevonas.search.selection`) and by the reports
to draw fronts (:mod:`pyevonas.report.pareto`); they live here, below both, so a report needs
nothing of the search.

An objective names a metric a candidate records (:func:`parse_objective`): ``fitness`` and
accuracies are maximised, costs (``params``, ``latency_ms``, ``size_mb``, ``flops``...) minimised.
The array functions take values in *minimisation form* (a maximised objective negated):
:func:`dominance_matrix`, :func:`non_dominated_sort`, :func:`crowding_distance`,
:func:`front_crowding` and :func:`hypervolume`, small tested implementations (no dependency on
pymoo).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyevonas.runs.records import Status, is_trained

#: The default objective: the fitness (best validation accuracy), maximised. The paper's search.
DEFAULT_OBJECTIVES: tuple[str, ...] = ("val_accuracy",)
#: Objective names that read another metric of a candidate.
ALIASES: dict[str, str] = {"val_accuracy": "fitness", "macs": "flops"}
#: The default hypervolume reference of a minimised objective is this factor times its largest
#: value among the trained candidates of generation 1.
REFERENCE_MARGIN = 1.1

_NAME = re.compile(r"^(?:(max|min):)?([A-Za-z_][A-Za-z0-9_]*)$")


# ---------------------------------------------------------------------- objectives
@dataclass(frozen=True)
class Objective:
    """One objective of the search.

    Attributes:
        name: the name as written in the settings (``params``, ``val_accuracy``, ``max:score``).
        metric: the candidate's metric it reads (``fitness`` for ``val_accuracy``, ``flops`` for ``macs``).
        maximise: True for accuracy-like objectives, False for costs.
    """

    name: str
    metric: str
    maximise: bool

    @property
    def label(self) -> str:
        """The name without a ``max:``/``min:`` prefix."""
        return self.name.split(":", 1)[-1]


def parse_objective(text: str) -> Objective:
    """An objective from its name.

    ``fitness`` and names ending in ``accuracy`` are maximised, every other name (``params``,
    ``size_mb``, ``latency_ms``, ``flops``/``macs``, ``train_seconds``, or any metric a custom
    evaluator records) is minimised. A ``max:`` or ``min:`` prefix sets the direction.

    Raises:
        ValueError: not a metric name.
    """
    match = _NAME.match(text.strip())
    if match is None:
        raise ValueError(f"objective {text!r} is not a metric name (letters, digits, _; optional max: or min: prefix)")
    prefix, name = match.groups()
    maximise = prefix == "max" if prefix else (name == "fitness" or name.endswith("accuracy"))
    return Objective(text.strip(), ALIASES.get(name, name), maximise)


def parse_objectives(names: str | Iterable[str]) -> tuple[Objective, ...]:
    """Objectives from a comma-separated string or a list of names.

    Raises:
        ValueError: no objective, a bad name, or one metric named twice.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    objectives = tuple(parse_objective(str(item)) for item in items if str(item).strip())
    if not objectives:
        raise ValueError("name at least one objective, e.g. val_accuracy or val_accuracy,params")
    metrics = [o.metric for o in objectives]
    twice = sorted({m for m in metrics if metrics.count(m) > 1})
    if twice:
        raise ValueError(f"objective metric {', '.join(twice)} named twice")
    return objectives


def objective_value(ind: Any, objective: Objective) -> float:
    """An individual's value of ``objective`` (NaN when it has none): a field of
    :class:`~pyevonas.runs.records.Individual`, else an entry of its ``metrics``."""
    value = getattr(ind, objective.metric, None)
    if value is None:
        value = (getattr(ind, "metrics", None) or {}).get(objective.metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def named_values(ind: Any, objectives: Sequence[Objective]) -> dict[str, int | float | None]:
    """An individual's value of each objective, by the objective's name, as recorded (an integer
    stays one; None where it has none): what a front member's ``objectives`` hold in ``best.json``
    and the export."""
    out: dict[str, int | float | None] = {}
    for obj in objectives:
        value = getattr(ind, obj.metric, None)
        if value is None:
            value = (getattr(ind, "metrics", None) or {}).get(obj.metric)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        out[obj.name] = value if ok else None
    return out


def objective_matrix(individuals: Sequence[Any], objectives: Sequence[Objective]) -> np.ndarray:
    """The (n, m) objective values in minimisation form: maximised ones negated, missing ones +inf
    (worse than anything, so a candidate without a value is never preferred for it)."""
    out = np.full((len(individuals), len(objectives)), np.inf)
    for i, ind in enumerate(individuals):
        for j, obj in enumerate(objectives):
            v = objective_value(ind, obj)
            if math.isfinite(v):
                out[i, j] = -v if obj.maximise else v
    return out


# ---------------------------------------------------------------------- Pareto ranking
def dominance_matrix(F: np.ndarray) -> np.ndarray:
    """``D[i, j]``: row i dominates row j (no worse in every objective, better in one; minimisation)."""
    F = np.asarray(F, dtype=np.float64)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    return np.asarray(le & lt)


def non_dominated_sort(F: np.ndarray) -> np.ndarray:
    """The front of each row: 0 for the non-dominated ones, 1 for those only they dominate, ...

    Deb's fast non-dominated sort on an (n, m) array in minimisation form. Equal rows share a
    front.
    """
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    ranks = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ranks
    dom = dominance_matrix(F)
    dominated_by = dom.sum(axis=0)  # how many rows dominate each row
    current = np.flatnonzero(dominated_by == 0)
    front = 0
    while current.size:
        ranks[current] = front
        dominated_by = dominated_by - dom[current].sum(axis=0)
        current = np.flatnonzero((dominated_by == 0) & (ranks < 0))
        front += 1
    return ranks


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (minimisation form).

    Per objective, the rows are sorted; the two ends get infinity and every other row adds the
    gap between its two neighbours divided by the objective's range. A front of one or two rows
    is all infinite. An objective whose values are all equal adds nothing.
    """
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape if F.ndim == 2 else (len(F), 0)
    if n <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        column = F[order, j]
        distance[order[0]] = distance[order[-1]] = np.inf
        finite = column[np.isfinite(column)]
        span = float(finite.max() - finite.min()) if finite.size > 1 else 0.0
        if span <= 0.0:
            continue
        with np.errstate(invalid="ignore"):
            gaps = column[2:] - column[:-2]  # inf - x = inf; inf - inf (two missing) = nan
        distance[order[1:-1]] += np.nan_to_num(gaps, nan=0.0, posinf=np.inf) / span
    return distance


def front_crowding(F: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The crowding distance of every row within its own front (``ranks`` from :func:`non_dominated_sort`)."""
    out = np.zeros(len(ranks))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        out[members] = crowding_distance(np.asarray(F)[members])
    return out


def pareto_front(
    individuals: Iterable[Any], objectives: Sequence[Objective], budget: Callable[[Any], int] | None = None
) -> list[Any]:
    """The Pareto front of a run: its trained individuals that no other one dominates.

    One individual per architecture (the earliest by id; a cached copy repeats its result), and
    none that is ``reused`` (a near duplicate carrying its neighbour's result, so its costs are not
    its own). With ``budget`` (the epochs behind a result, under successive halving) only the
    results of the largest budget compete, as the loop ranks a longer training first. Sorted best
    first in the objectives' order (the first objective decides, then the next), then by id: with
    ``val_accuracy, params`` the most accurate first, the smallest last.
    """
    seen: set[str] = set()
    cands: list[Any] = []
    for ind in sorted(individuals, key=lambda i: i.id):
        key = getattr(ind, "canonical_key", None) or str(ind.id)
        if not is_trained(ind) or ind.status is Status.REUSED or key in seen:
            continue
        seen.add(key)
        cands.append(ind)
    if budget is not None and cands:
        most = max(budget(ind) for ind in cands)
        cands = [ind for ind in cands if budget(ind) == most]
    if not cands:
        return []
    F = objective_matrix(cands, objectives)
    ranks = non_dominated_sort(F)
    members = [k for k in range(len(cands)) if ranks[k] == 0]
    members.sort(key=lambda k: (*F[k].tolist(), cands[k].id))
    return [cands[k] for k in members]


# ---------------------------------------------------------------------- hypervolume
def hypervolume(F: np.ndarray, reference: Sequence[float]) -> float:
    """The hypervolume dominated by the rows of ``F`` and bounded by ``reference`` (minimisation).

    Rows not strictly better than the reference in every objective add nothing. Exact: a sweep
    in two objectives, slicing along the last objective above two (fine for the fronts of a
    search, tens of points in two to four objectives).
    """
    values = np.asarray(F, dtype=np.float64).reshape(len(F), -1) if len(F) else np.zeros((0, len(reference)))
    ref = np.asarray(reference, dtype=np.float64)
    if values.shape[1] != ref.size:
        raise ValueError(f"reference has {ref.size} objectives, the points {values.shape[1]}")
    points = values[np.all(values < ref, axis=1)]
    if points.size == 0:
        return 0.0
    points = np.unique(points, axis=0)
    return float(_hv(points[non_dominated_sort(points) == 0], ref))


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    m = points.shape[1]
    if m == 1:
        return float(ref[0] - points[:, 0].min())
    if m == 2:
        order = np.lexsort((points[:, 1], points[:, 0]))
        total, best_y = 0.0, float(ref[1])
        xs = points[order, 0]
        ys = points[order, 1]
        for k in range(len(order)):
            best_y = min(best_y, float(ys[k]))
            x_next = float(xs[k + 1]) if k + 1 < len(order) else float(ref[0])
            total += (x_next - float(xs[k])) * (float(ref[1]) - best_y)
        return total
    order = np.argsort(points[:, -1], kind="stable")
    total = 0.0
    for k in range(len(order)):
        lo = float(points[order[k], -1])
        hi = float(points[order[k + 1], -1]) if k + 1 < len(order) else float(ref[-1])
        if hi > lo:
            below = points[order[: k + 1], :-1]
            below = below[non_dominated_sort(below) == 0]
            total += _hv(below, ref[:-1]) * (hi - lo)
    return total


def default_reference(first_generation: Sequence[Any], objectives: Sequence[Objective]) -> list[float | None]:
    """The default hypervolume reference: 0 for a maximised objective (an accuracy's worst),
    ``REFERENCE_MARGIN`` times the largest value among ``first_generation``'s trained candidates
    for a minimised one (None when none has a value). Generation 1 is the random sample, fixed
    once evaluated, so the reference does not move during a run or after a resume."""
    trained = [ind for ind in first_generation if is_trained(ind)]
    out: list[float | None] = []
    for obj in objectives:
        if obj.maximise:
            out.append(0.0)
            continue
        values = [v for v in (objective_value(ind, obj) for ind in trained) if math.isfinite(v)]
        out.append(REFERENCE_MARGIN * max(values) if values else None)
    return out


def normalised_hypervolume(
    individuals: Sequence[Any], objectives: Sequence[Objective], reference: Sequence[float | None]
) -> float | None:
    """The hypervolume of ``individuals`` (trained ones) against ``reference`` (original units),
    with each minimised objective divided by its reference value: in two objectives
    ``val_accuracy, params`` it is the area dominated in the box [0, 1] x [0, 1] of accuracy and
    params / reference, so 1 would be 100 % accuracy at no cost. None when a reference value is
    unknown."""
    known = [r for r in reference if r is not None]
    if len(known) < len(reference):
        return None
    ref = np.array(known, dtype=np.float64)
    scale = np.array([abs(r) if (not o.maximise and r != 0) else 1.0 for o, r in zip(objectives, ref, strict=True)])
    sign = np.array([-1.0 if o.maximise else 1.0 for o in objectives])
    trained = [ind for ind in individuals if is_trained(ind)]
    F = objective_matrix(trained, objectives)
    return hypervolume(F / scale, sign * ref / scale)


__all__ = [
    "ALIASES",
    "DEFAULT_OBJECTIVES",
    "REFERENCE_MARGIN",
    "Objective",
    "crowding_distance",
    "default_reference",
    "dominance_matrix",
    "front_crowding",
    "hypervolume",
    "non_dominated_sort",
    "normalised_hypervolume",
    "objective_matrix",
    "named_values",
    "objective_value",
    "pareto_front",
    "parse_objective",
    "parse_objectives",
]
