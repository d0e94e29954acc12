"""The events the search loop emits; observers (the live view, a log) receive them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyevonas.runs.records import Individual, Status
from pyevonas.search.config import RunConfig
from pyevonas.search.control import ControlIteration
from pyevonas.search.selection import FrontSummary


# ---------------------------------------------------------------------- events
@dataclass(frozen=True)
class RunStarted:
    """The loop starts (or resumes) a run.

    A resumed run also says what it resumes: ``elapsed_before`` seconds spent on the run in
    earlier sessions, ``generations_stored`` generations already in the store, and how many of
    their candidates are ``finished`` (have a result) or still ``to_evaluate``.
    """

    run_dir: Path
    config: RunConfig
    resumed: bool
    elapsed_before: float = 0.0
    generations_stored: int = 0
    finished: int = 0
    to_evaluate: int = 0


@dataclass(frozen=True)
class GenerationStarted:
    """Generation ``generation`` is about to be evaluated; ``candidates`` in population order.

    ``diversity`` is the generation's median similarity (the ``diversity`` measure of the
    config), ``window`` the control window it was bred for, and ``decision`` the control loop's
    decision that bred it (as stored; ``{"control": "initial", ...}`` for generation 1), so an
    observer that joins a resumed run sees every decision, not only those of new generations.
    ``matrix`` is the generation's similarity matrix as stored (a float64 numpy array, rows and
    columns in population order), or None.
    """

    generation: int
    n_generations: int
    candidates: tuple[CandidateInfo, ...]
    diversity: float | None
    window: tuple[float, float] | None
    decision: dict[str, Any] | None = None
    matrix: Any = None


@dataclass(frozen=True)
class CandidateInfo:
    """A candidate's state as the live view shows it.

    ``sequence`` is the architecture as the view shows it: a chain's gene letters, or a cell-space
    architecture's cell (its NAS-Bench-201 string, or compact dag JSON).
    ``trained`` is :func:`~pyevonas.runs.records.is_trained` of the candidate: whether its fitness
    is a trained network's (a cached copy of an oversized result has a fitness but never trained).
    ``at_chance`` marks a trained candidate whose validation accuracy is no better than guessing
    (:func:`~pyevonas.runs.records.at_chance`: a collapsed training).
    ``costs``: in a run with several objectives, the candidate's value of each objective the view
    does not show already (all but ``val_accuracy``/``fitness``), as (name, value) pairs in the
    run's order; a value is None when the candidate has none. Empty in a run with one objective.
    ``budget``: under ``budget = "halving"``, the epochs of the rung its result is from, or of the
    rung it is training for while running; None otherwise.
    """

    id: int
    index: int
    name: str
    sequence: str
    status: Status
    fitness: float | None = None
    error: str | None = None
    trained: bool = False
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    at_chance: bool = False
    costs: tuple[tuple[str, float | None], ...] = ()
    budget: int | None = None


@dataclass(frozen=True)
class CandidateUpdate:
    """A candidate changed status (running, ok, failed, cached...)."""

    generation: int
    candidate: CandidateInfo


@dataclass(frozen=True)
class CandidateProgress:
    """A candidate finished a training epoch."""

    generation: int
    id: int
    epoch: int
    epochs: int
    val_accuracy: float | None


@dataclass(frozen=True)
class GenerationEvaluated:
    """Every candidate of a generation has a result."""

    generation: int
    n_generations: int
    best_fitness: float | None
    median_fitness: float | None
    diversity: float | None
    n_ok: int
    n_failed: int
    seconds: float
    from_store: bool


@dataclass(frozen=True)
class ControlStep:
    """One candidate population of the control loop that breeds ``generation``."""

    generation: int
    iteration: ControlIteration
    max_iterations: int


@dataclass(frozen=True)
class GenerationBred:
    """Generation ``generation`` was bred and stored."""

    generation: int
    decision: dict[str, Any]
    diversity: float
    window: tuple[float, float] | None


@dataclass(frozen=True)
class FrontMeasured(FrontSummary):
    """The Pareto front of an evaluated generation, for runs with two or more objectives: the
    fields of :class:`~pyevonas.search.selection.FrontSummary`.

    ``size`` and ``hypervolume`` are the generation's own; ``size_so_far`` and
    ``hypervolume_so_far`` those of every candidate trained up to it. The hypervolume is
    normalised (:func:`pyevonas.runs.objectives.normalised_hypervolume`) against
    ``reference_point`` (None, and the hypervolumes too, when a reference value is unknown).
    """


@dataclass(frozen=True)
class RunFinished:
    """The run is complete. ``front``: with several objectives, the run's final Pareto front, best
    first in the objectives' order (:func:`pyevonas.runs.objectives.pareto_front`; ``best`` is its
    first member); empty with one objective."""

    run_dir: Path
    best: Individual | None
    elapsed_s: float
    front: tuple[Individual, ...] = ()


Event = (
    RunStarted
    | GenerationStarted
    | CandidateUpdate
    | CandidateProgress
    | GenerationEvaluated
    | ControlStep
    | GenerationBred
    | FrontMeasured
    | RunFinished
)
Observer = Callable[[Event], None]


__all__ = [
    "CandidateInfo",
    "CandidateProgress",
    "CandidateUpdate",
    "ControlStep",
    "Event",
    "FrontMeasured",
    "GenerationBred",
    "GenerationEvaluated",
    "GenerationStarted",
    "Observer",
    "RunFinished",
    "RunStarted",
]
