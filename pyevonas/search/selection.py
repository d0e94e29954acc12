"""Parent selection beyond the paper's top k: several objectives (Pareto ranks), novelty and DNS.

The paper ranks a generation by one fitness and breeds from its top k. This module adds two
independent choices, both settings of :class:`~pyevonas.search.config.RunConfig`:

* **objectives** (``objectives = ["val_accuracy", "params"]``): with two or more, a generation is
  ranked by Pareto rank (non-dominated sorting), ties broken by crowding distance (NSGA-II) or by
  how far a candidate's architecture is from the nearest other one on its front
  (``tiebreak = "similarity"``, 1 - similarity). Accuracy-like objectives are maximised, every
  other one is minimised (see :func:`parse_objective`).
* **selection** (``topk``, ``novelty``, ``dns``): ``topk`` takes the best k by that ranking;
  ``novelty`` takes the k most novel (mean distance ``1 - similarity`` to the ``neighbours``
  nearest architectures of the archive), the ranking breaking ties; ``dns`` is Dominated
  Novelty Search (Bahlous-Boldi et al., 2025): a candidate's competition score is its mean
  distance to the ``neighbours`` nearest *fitter* candidates (infinite when none is fitter) and
  the k best by that score are the parents. With several objectives, "fitter" means "dominates".

The diversity control (rigid, soft, custom) then breeds from these parents exactly as from the
paper's top k. With the defaults (``val_accuracy`` alone, ``topk``) :func:`choose_parents` is
:func:`~pyevonas.search.operators.select_top_k` on the fitness, i.e. the paper's rule.

The numerical parts are pure functions on numpy arrays, in *minimisation form* (a maximised
objective enters negated): the objectives, Pareto ranks, crowding and hypervolume in
:mod:`pyevonas.runs.objectives` (below the search, so the reports use them too), and here
:func:`front_isolation`, :func:`novelty_scores` and :func:`dns_scores`. They are small, tested
implementations (no dependency on pymoo).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyevonas.runs.objectives import (
    DEFAULT_OBJECTIVES,
    Objective,
    default_reference,
    dominance_matrix,
    front_crowding,
    non_dominated_sort,
    normalised_hypervolume,
    objective_matrix,
    parse_objectives,
)
from pyevonas.runs.records import Individual, is_trained
from pyevonas.search.config import DEFAULT_NEIGHBOURS, ArchiveScope, RunConfig, SelectionKind, TieBreak
from pyevonas.search.operators import select_top_k


def front_isolation(distance: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Each row's distance to the nearest other row of its front (infinite when alone on it).

    ``distance`` is an (n, n) matrix, e.g. ``1 - similarity``; the tie-breaker
    ``tiebreak = "similarity"`` prefers the most isolated architectures of a front.
    """
    distance = np.asarray(distance, dtype=np.float64)
    out = np.full(len(ranks), np.inf)
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        if members.size < 2:
            continue
        block = distance[np.ix_(members, members)].copy()
        np.fill_diagonal(block, np.inf)
        out[members] = block.min(axis=1)
    return out


# ---------------------------------------------------------------------- novelty and DNS
def novelty_scores(distance: np.ndarray, k: int, self_index: Sequence[int] | None = None) -> np.ndarray:
    """Novelty of each row: the mean of its ``k`` smallest distances to the columns (the archive).

    Args:
        distance: (n, m) distances of n candidates to m archive members (``1 - similarity``).
        k: neighbours; fewer when the archive has fewer.
        self_index: for each row, the column that is the candidate itself (left out), or -1.

    Returns:
        n scores; infinite for a candidate with no other archive member.
    """
    distance = np.asarray(distance, dtype=np.float64)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = np.full(distance.shape[0], np.inf)
    for i, row in enumerate(distance):
        keep = np.ones(row.size, dtype=bool)
        if self_index is not None and 0 <= self_index[i] < row.size:
            keep[self_index[i]] = False
        values = np.sort(row[keep])[:k]
        if values.size:
            out[i] = float(values.mean())
    return out


def dns_scores(distance: np.ndarray, fitter: np.ndarray, k: int) -> np.ndarray:
    """Dominated Novelty Search competition scores (Bahlous-Boldi et al., 2025).

    Args:
        distance: (n, n) distances between the competing candidates (``1 - similarity``).
        fitter: (n, n) booleans, ``fitter[i, j]``: candidate j is fitter than i (with several
            objectives: j dominates i).
        k: neighbours; fewer when fewer candidates are fitter.

    Returns:
        For each candidate the mean distance to its ``k`` nearest fitter candidates, infinite when
        none is fitter. The higher, the better: a candidate survives by being the fittest or by
        being far from everything fitter than it.
    """
    distance = np.asarray(distance, dtype=np.float64)
    fitter = np.asarray(fitter, dtype=bool)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = np.full(distance.shape[0], np.inf)
    for i in range(distance.shape[0]):
        values = np.sort(distance[i, fitter[i]])[:k]
        if values.size:
            out[i] = float(values.mean())
    return out


# ---------------------------------------------------------------------- the policy
@dataclass(frozen=True)
class SelectionSettings:
    """How parents are chosen (the selection settings of a :class:`~pyevonas.search.config.RunConfig`).

    Attributes:
        method: ``topk``, ``novelty`` or ``dns``.
        objectives: the objectives; the first one alone is the paper's fitness ranking.
        tiebreak: ties within a Pareto front: ``crowding`` or ``similarity``.
        neighbours: k of novelty and DNS.
        archive: whom novelty and DNS compare with: ``population`` (the generation) or ``run``
            (every candidate trained so far); None for the method's default (novelty: run,
            dns: population).
        reference_point: hypervolume reference per objective name; missing ones get the default
            (:func:`default_reference`).
    """

    method: SelectionKind = "topk"
    objectives: tuple[Objective, ...] = field(default_factory=lambda: parse_objectives(DEFAULT_OBJECTIVES))
    tiebreak: TieBreak = "crowding"
    neighbours: int = DEFAULT_NEIGHBOURS
    archive: ArchiveScope | None = None
    reference_point: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: RunConfig) -> SelectionSettings:
        """The selection settings of a run config."""
        return cls(
            method=config.selection,
            objectives=parse_objectives(config.objectives),
            tiebreak=config.tiebreak,
            neighbours=config.neighbours,
            archive=config.archive,
            reference_point=dict(config.reference_point),
        )

    @property
    def multi(self) -> bool:
        """Two or more objectives."""
        return len(self.objectives) >= 2

    @property
    def is_default(self) -> bool:
        """The paper's rule: top k by fitness."""
        return self.label == "topk"

    @property
    def scope(self) -> ArchiveScope:
        """The archive actually used by novelty and DNS."""
        if self.archive is not None:
            return self.archive
        return "run" if self.method == "novelty" else "population"

    @property
    def label(self) -> str:
        """A short name: the method, with the objectives unless they are the paper's fitness
        (``dns``, ``topk (val_accuracy, params)``)."""
        fitness = [o.metric for o in self.objectives] == ["fitness"] and self.objectives[0].maximise
        return self.method + ("" if fitness else f" ({', '.join(o.name for o in self.objectives)})")

    def describe(self) -> dict[str, Any]:
        """The settings as JSON (stored in the run's meta and shown by the report)."""
        out: dict[str, Any] = {"method": self.method, "objectives": [o.name for o in self.objectives]}
        if self.multi:
            out["tiebreak"] = self.tiebreak
        if self.method != "topk":
            out["neighbours"] = self.neighbours
            out["archive"] = self.scope
        return out


@dataclass(frozen=True)
class FrontSummary:
    """The Pareto front of a generation (two or more objectives).

    Attributes:
        generation: the generation.
        objectives: their names.
        size: candidates on the generation's own front.
        hypervolume: hypervolume of the generation's trained candidates (see :func:`normalised_hypervolume`).
        size_so_far: candidates on the front of every candidate trained up to this generation.
        hypervolume_so_far: hypervolume of that front.
        reference_point: the reference, per objective name (original units).
    """

    generation: int
    objectives: tuple[str, ...]
    size: int
    hypervolume: float | None
    size_so_far: int
    hypervolume_so_far: float | None
    reference_point: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "objectives": list(self.objectives),
            "front_size": self.size,
            "hypervolume": self.hypervolume,
            "front_size_so_far": self.size_so_far,
            "hypervolume_so_far": self.hypervolume_so_far,
            "reference_point": self.reference_point,
        }


@dataclass(frozen=True)
class Selection:
    """The parents chosen from a generation and what they were chosen by.

    Attributes:
        parents: best first (ranked parents for :func:`~pyevonas.search.operators.breed`).
        record: JSON for the generation's stored ``extras["selection"]``: the settings, the
            parents' ids and, per individual of the generation in population order, its Pareto
            rank and tie-breaker (several objectives), its novelty or DNS competition score
            (``null`` for untrained individuals; infinite values are stored as ``Infinity``).
        front: the Pareto front's size and hypervolume, with two or more objectives.
    """

    parents: list[Individual]
    record: dict[str, Any]
    front: FrontSummary | None = None


Similarity = Callable[[Sequence[Any], Sequence[Any]], np.ndarray]


def resolve_reference(settings: SelectionSettings, first_generation: Sequence[Any]) -> list[float | None]:
    """The reference of a run: the configured values where given, else :func:`default_reference`."""
    default = default_reference(first_generation, settings.objectives)
    given = settings.reference_point
    return [
        float(given[o.name]) if o.name in given else float(given[o.label]) if o.label in given else d
        for o, d in zip(settings.objectives, default, strict=True)
    ]


def choose_parents(
    generation: Sequence[Individual],
    settings: SelectionSettings,
    top_k: int,
    *,
    earlier: Callable[[], Sequence[Individual]] = list,
    similarity: Similarity | None = None,
    budget: Callable[[Individual], int] | None = None,
) -> Selection:
    """The ranked parents of an evaluated generation.

    Args:
        generation: the generation's individuals, population order.
        settings: the selection settings.
        top_k: how many parents.
        earlier: the individuals of the earlier generations (read only when needed: by the
            ``run`` archive and for the default hypervolume reference).
        similarity: ``(rows, columns) -> matrix`` of chromosomes, the run's similarity; needed
            by novelty, DNS and the similarity tie-breaker.
        budget: the training epochs behind an individual's result (``budget = "halving"``): a
            larger budget ranks first and is fitter, the objectives decide between equal ones.
            None: every result counts alike.

    Returns:
        The parents, best first, and what they were chosen by.
    """
    if settings.is_default:
        ranked = select_top_k(
            [ind.fitness if is_trained(ind) else None for ind in generation],
            top_k,
            budgets=None if budget is None else [budget(ind) for ind in generation],
        )
        return Selection(
            [generation[i] for i in ranked], {"method": "topk", "parents": [generation[i].id for i in ranked]}
        )
    record: dict[str, Any] = settings.describe()
    gen = _Generation(generation, settings, earlier, similarity, budget)
    base = _fitness_order(gen, record)
    if settings.method == "topk":
        order = [gen.cands[i] for i in base]
    elif settings.method == "novelty":
        order = _novelty_order(gen, record, base)
    else:  # dns
        order = _dns_order(gen, record)
    parents = order[:top_k]
    record["parents"] = [p.id for p in parents]
    front = None
    if settings.multi:
        front = _front_summary(generation, settings, gen.earlier_trained)
        record["front"] = front.to_dict()
    return Selection(parents, record, front)


class _Generation:
    """A generation's trained candidates, with the run's similarity, budgets and earlier individuals."""

    def __init__(
        self,
        generation: Sequence[Individual],
        settings: SelectionSettings,
        earlier: Callable[[], Sequence[Individual]],
        similarity: Similarity | None,
        budget: Callable[[Individual], int] | None,
    ) -> None:
        self.generation = generation
        self.settings = settings
        self.positions = [i for i, ind in enumerate(generation) if is_trained(ind)]
        self.cands = [generation[i] for i in self.positions]
        self._earlier = earlier
        self._similarity = similarity
        self._budget = budget
        self._previous: list[Individual] | None = None

    def earlier_trained(self) -> list[Individual]:
        """The trained individuals of the earlier generations, read once, when first needed."""
        if self._previous is None:
            self._previous = [ind for ind in self._earlier() if is_trained(ind)]
        return self._previous

    def sim(self, rows: Sequence[Individual], cols: Sequence[Individual]) -> np.ndarray:
        """The similarity matrix of two lists of individuals (refused without a similarity)."""
        if self._similarity is None:
            raise ValueError(f"selection {self.settings.method!r} needs the similarity of the architectures")
        if not rows or not cols:
            return np.zeros((len(rows), len(cols)))
        return np.asarray(
            self._similarity([r.chromosome for r in rows], [c.chromosome for c in cols]), dtype=np.float64
        )

    def per_index(self, values: np.ndarray) -> list[float | None]:
        """Per individual of the generation, its candidate's value, or None if it is untrained."""
        out: list[float | None] = [None] * len(self.generation)
        for p, v in zip(self.positions, values.tolist(), strict=True):
            out[p] = v
        return out

    def budgets(self, individuals: Sequence[Individual]) -> np.ndarray:
        """The training epochs behind each individual's result (0 each without budgets)."""
        budget = self._budget
        return np.array([0 if budget is None else budget(ind) for ind in individuals], dtype=np.int64)


def _fitness_order(gen: _Generation, record: dict[str, Any]) -> list[int]:
    """The candidates' fitness ranking: budget, then Pareto rank and tie-breaker or the one objective."""
    settings, cands = gen.settings, gen.cands
    F = objective_matrix(cands, settings.objectives)
    B = gen.budgets(cands)
    if settings.multi:
        ranks = non_dominated_sort(F)
        if settings.tiebreak == "similarity":
            tie = front_isolation(1.0 - gen.sim(cands, cands), ranks)
        else:
            tie = front_crowding(F, ranks)
        record["pareto_rank"] = gen.per_index(ranks)
        record[settings.tiebreak if settings.tiebreak == "crowding" else "isolation"] = gen.per_index(tie)
        return sorted(range(len(cands)), key=lambda i: (-int(B[i]), int(ranks[i]), -float(tie[i]), i))
    return sorted(range(len(cands)), key=lambda i: (-int(B[i]), float(F[i, 0]), i))


def _novelty_order(gen: _Generation, record: dict[str, Any], base: list[int]) -> list[Individual]:
    """The candidates by novelty against the archive, the fitness ranking ``base`` breaking ties."""
    settings, cands = gen.settings, gen.cands
    place = {i: n for n, i in enumerate(base)}
    archive = cands + (gen.earlier_trained() if settings.scope == "run" else [])
    scores = novelty_scores(1.0 - gen.sim(cands, archive), settings.neighbours, self_index=range(len(cands)))
    record["novelty"] = gen.per_index(scores)
    return [cands[i] for i in sorted(range(len(cands)), key=lambda i: (-float(scores[i]), place[i]))]


def _dns_order(gen: _Generation, record: dict[str, Any]) -> list[Individual]:
    """The distinct architectures of the pool by DNS competition score, then budget and fitness."""
    settings = gen.settings
    pool = (gen.earlier_trained() + gen.cands) if settings.scope == "run" else list(gen.cands)
    pool = _distinct(pool)
    P = objective_matrix(pool, settings.objectives)
    PB = gen.budgets(pool)
    # fitter[i, j]: j trained longer than i, or as long and dominates i.
    fitter = (PB[None, :] > PB[:, None]) | ((PB[None, :] == PB[:, None]) & dominance_matrix(P).T)
    scores = dns_scores(1.0 - gen.sim(pool, pool), fitter, settings.neighbours)
    by_id = {ind.id: float(s) for ind, s in zip(pool, scores, strict=True)}
    record["competition"] = [by_id.get(ind.id) if is_trained(ind) else None for ind in gen.generation]
    pool_ranks = non_dominated_sort(P) if settings.multi else None
    pool_tie = front_crowding(P, pool_ranks) if pool_ranks is not None else None

    def key(i: int) -> tuple[float, ...]:
        if pool_ranks is not None and pool_tie is not None:
            return (-float(scores[i]), -float(PB[i]), float(pool_ranks[i]), -float(pool_tie[i]), float(pool[i].id))
        return (-float(scores[i]), -float(PB[i]), float(P[i, 0]), float(pool[i].id))

    return [pool[i] for i in sorted(range(len(pool)), key=key)]


def _distinct(individuals: Sequence[Individual]) -> list[Individual]:
    """One individual per architecture (the earliest), so copies do not compete with each other."""
    seen: set[str] = set()
    out = []
    for ind in sorted(individuals, key=lambda i: i.id):
        key = ind.canonical_key or str(ind.id)
        if key not in seen:
            seen.add(key)
            out.append(ind)
    return out


def _front_summary(
    generation: Sequence[Individual], settings: SelectionSettings, earlier_trained: Callable[[], list[Individual]]
) -> FrontSummary:
    previous = earlier_trained()
    g = generation[0].generation if generation else 0
    first = [ind for ind in previous if ind.generation == 1] if g != 1 else list(generation)
    reference = resolve_reference(settings, first)
    trained = [ind for ind in generation if is_trained(ind)]
    so_far = previous + trained
    names = tuple(o.name for o in settings.objectives)
    return FrontSummary(
        generation=g,
        objectives=names,
        size=_front_size(trained, settings.objectives),
        hypervolume=normalised_hypervolume(trained, settings.objectives, reference),
        size_so_far=_front_size(_distinct(so_far), settings.objectives),
        hypervolume_so_far=normalised_hypervolume(so_far, settings.objectives, reference),
        reference_point=_named(names, reference),
    )


def _named(names: Sequence[str], reference: Sequence[float | None]) -> dict[str, float] | None:
    known = [r for r in reference if r is not None]
    return dict(zip(names, known, strict=True)) if len(known) == len(reference) else None


def _front_size(individuals: Sequence[Any], objectives: Sequence[Objective]) -> int:
    if not individuals:
        return 0
    return int(np.sum(non_dominated_sort(objective_matrix(individuals, objectives)) == 0))


__all__ = [
    "FrontSummary",
    "Selection",
    "SelectionSettings",
    "Similarity",
    "choose_parents",
    "dns_scores",
    "front_isolation",
    "novelty_scores",
    "resolve_reference",
]
