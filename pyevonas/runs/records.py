"""Records of a run: individuals, generation records, statuses and the cache key of a chromosome."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from pyevonas.errors import GraphError
from pyevonas.metric.graphs import canonical_key as graph_canonical_key


class Status(StrEnum):
    """Where a candidate stands. The values are the strings stored in run stores and JSON.

    ``ok``, ``failed`` and ``oversized`` are also the outcomes an evaluation reports
    (``Metrics.status``); ``cached`` marks a candidate that reused the result of an earlier one
    with the same architecture, ``reused`` one that took the result of the most similar
    architecture evaluated in an earlier generation (``--reuse-similarity``). The metrics of both
    copies, ``status`` included, are the copied result's, and ``cached_from`` names its id.
    """

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    OVERSIZED = "oversized"
    CACHED = "cached"
    REUSED = "reused"


STATUSES = tuple(Status)
#: Not evaluated yet: waiting, or taken by a worker.
UNFINISHED = (Status.PENDING, Status.RUNNING)
#: The outcomes an evaluation may report.
OUTCOMES = (Status.OK, Status.FAILED, Status.OVERSIZED)
# Outcomes that are a property of the architecture, so the cache may reuse them. "failed" is not
# one of them: a failure may come from the machine (out of memory, a dead worker).
EVALUATED_STATUSES = (Status.OK, Status.OVERSIZED)
#: Copies of another candidate's result: the same architecture (cached) or a near duplicate (reused).
COPIES = (Status.CACHED, Status.REUSED)


def outcome(ind: Any) -> Status:
    """The status of the evaluation behind an individual: a cached or reused one has the outcome it copied.

    ``ind`` is an :class:`Individual` or any object with its ``status`` (and, for a copy,
    ``metrics``) attributes. A copy whose metrics name no status counts as ``ok``; one whose
    metrics name something other than an outcome, as ``failed``.
    """
    status = Status(ind.status)
    if status not in COPIES:
        return status
    copied = (getattr(ind, "metrics", None) or {}).get("status") or Status.OK
    return Status(copied) if copied in OUTCOMES else Status.FAILED


def is_trained(ind: Any) -> bool:
    """Whether an individual counts as trained: its evaluation (or the one it copied) was ``ok``
    and it has a finite fitness.

    The one rule for "trained": the loop picks parents and the best among these, the report
    computes best and median fitness over them, the export writes it as ``trained``, and the
    live view shows fitness for them only. A cached copy of an oversized result carries that
    result's fitness (0.0) but never trained, so it does not count. A reused individual (a near
    duplicate that took its neighbour's ``ok`` result) counts, with its neighbour's fitness.
    """
    fitness = ind.fitness
    return outcome(ind) is Status.OK and fitness is not None and math.isfinite(fitness)


#: How far above 1/num_classes an accuracy may lie and still count as guessing: the larger of
#: 2 points and a tenth of the chance level (0.12 for 10 classes, 0.03 for 100).
CHANCE_MARGIN = 0.02


def chance_threshold(num_classes: int) -> float:
    """The highest accuracy that still counts as chance level among ``num_classes`` classes."""
    chance = 1.0 / max(int(num_classes), 1)
    return chance + max(CHANCE_MARGIN, 0.1 * chance)


def at_chance(accuracy: float | None, num_classes: int | None) -> bool:
    """Whether an accuracy is no better than guessing: a collapsed training (a network that
    predicts one class, or noise) scores about ``1 / num_classes``.

    ``False`` when either is unknown. See :func:`chance_threshold` for the margin.
    """
    if accuracy is None or not num_classes or not math.isfinite(accuracy):
        return False
    return accuracy <= chance_threshold(num_classes)


@dataclass(frozen=True, slots=True)
class Individual:
    """One candidate architecture of one generation, with its evaluation.

    Attributes:
        id: Row id, unique in the run.
        generation: 1-based generation number.
        index: Position in the generation's population (0-based).
        name: Display name given by the loop.
        chromosome: The layer dicts (paper format).
        sequence: One letter per gene.
        parents: Whatever the loop recorded as parents (ids or names), or ``None`` for a sampled one.
        status: The candidate's :class:`Status`.
        fitness ... train_seconds: The metrics of the evaluation, ``None`` until it is known.
        error: Why the evaluation failed, if it did.
        canonical_key: Cache key of the chromosome (see :func:`canonical_key`).
        metrics: The full metrics dict as given to :meth:`RunStore.set_result` (keeps extra fields).
        cached_from: Id of the individual whose result was copied, for status ``cached`` or ``reused``.
        created_at, started_at, finished_at: Unix times of the life cycle.
    """

    id: int
    generation: int
    index: int
    name: str
    chromosome: list[dict[str, Any]]
    sequence: str
    parents: list[Any] | None
    status: Status
    fitness: float | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    params: int | None = None
    size_mb: float | None = None
    latency_ms: float | None = None
    flops: int | None = None
    train_seconds: float | None = None
    error: str | None = None
    canonical_key: str = ""
    metrics: dict[str, Any] | None = None
    cached_from: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of every field."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """What the run store knows about one generation besides its individuals.

    Attributes:
        generation: 1-based generation number.
        matrix: Similarity matrix of the population (float64, rows and columns in population
            order), or ``None`` if none was saved.
        diversity: The diversity measure of ``matrix`` (e.g. median off-diagonal similarity).
        window: The control window ``(lo, hi)`` the diversity had to fall in, or ``None``.
        decision: The control loop's decision (free-form JSON dict), or ``None``.
        rng_state: The loop's RNG state saved with this generation (JSON dict), or ``None``.
        extras: Any other JSON dict the loop saved.
    """

    generation: int
    matrix: np.ndarray | None = None
    diversity: float | None = None
    window: tuple[float, float] | None = None
    decision: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None


def canonical_key(chromosome: Sequence[Mapping[str, Any]]) -> str:
    """Return the cache key of a chromosome: two chromosomes with equal keys train the same model.

    The key is the SHA-256 of the chromosome's JSON with sorted keys, without ``f_name`` (it only
    repeats ``layer``), with integral floats written as ints (``32.0`` and ``32`` build the same
    layer). Every other parameter is kept, padding and activation included, because they change
    the trained network even where the similarity metric ignores them. A cell gene's cell (the
    value under ``"cell"``) counts by its isomorphism class
    (:func:`pyevonas.metric.graphs.canonical_key`): two cells that differ only in the numbering of
    their inner nodes compute the same function, so they are one architecture, trained once.

    Args:
        chromosome: The layer dicts.

    Returns:
        A 64-character hex string.
    """
    genes = [
        {k: _canonical_cell(v) if k == "cell" else _canonical_value(v) for k, v in gene.items() if k != "f_name"}
        for gene in chromosome
    ]
    text = json.dumps(genes, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical_cell(cell: Any) -> Any:
    """A cell's canonical form; a value that is no graph stays as it is (the model builder names it)."""
    try:
        return {"canonical_cell": graph_canonical_key(cell)}
    except GraphError:
        return _canonical_value(cell)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    return value


def cell_notation(chromosome: Sequence[Mapping[str, Any]]) -> str | None:
    """The cell of a cell-space architecture as one line, or None for a chain without cells.

    A cell-space architecture is a skeleton whose cell genes (layer ``cell``) all hold the same
    cell under ``"cell"`` (``pyevonas.search.cells``); the cell is what tells two of them apart,
    so records and reports show it: its NAS-Bench-201 string as it is, a dag as compact JSON.
    """
    for gene in chromosome:
        if isinstance(gene, Mapping) and gene.get("layer") == "cell" and "cell" in gene:
            cell = gene["cell"]
            return cell if isinstance(cell, str) else json.dumps(cell, separators=(",", ":"))
    return None


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, so it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


#: What a generation's selection record (``extras["selection"]``) holds per individual, in
#: population order: the Pareto rank and tie-breaker (several objectives), the novelty score and
#: the DNS competition score.
SELECTION_SCORES = ("pareto_rank", "crowding", "isolation", "novelty", "competition")


def selection_scores(record: Any, index: int) -> dict[str, Any]:
    """An individual's values in its generation's selection record: each of
    :data:`SELECTION_SCORES` the record holds, at ``index`` (None where the record has none)."""
    if not isinstance(record, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in SELECTION_SCORES:
        values = record.get(key)
        if isinstance(values, list):
            out[key] = values[index] if 0 <= index < len(values) else None
    return out


__all__ = [
    "CHANCE_MARGIN",
    "COPIES",
    "EVALUATED_STATUSES",
    "OUTCOMES",
    "SELECTION_SCORES",
    "STATUSES",
    "UNFINISHED",
    "GenerationRecord",
    "Individual",
    "Status",
    "at_chance",
    "canonical_key",
    "cell_notation",
    "chance_threshold",
    "finite_json",
    "is_trained",
    "outcome",
    "selection_scores",
]
