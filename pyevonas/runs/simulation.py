"""Simulated runs: searches whose candidates a surrogate model scored instead of training them.

A run started with ``pyevonas evolve --evaluator surrogate:MODEL`` (the backend is
``pyevonas.search.executors.surrogate``) records it twice: its saved settings say
``evaluator = "surrogate:MODEL"``, and its metadata holds, under :data:`EVALUATOR_KEY`, what
:class:`Simulation` describes (the model, its file's SHA-256, the coverage threshold, the notice
the reports print). Each candidate's metrics hold its ``coverage``: its similarity to the nearest
published evaluation, in [0, 1]; below the threshold the surrogate extrapolates.
:func:`coverage_stats` gives the share of such candidates in a generation.

The report (``pyevonas.report``), the export and the command line read this module, so that
every page about a simulated run says so: "simulated with the surrogate of cifar10, not trained".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyevonas.runs.records import Status

#: The metadata key of the evaluator of a simulated run (absent when candidates were trained).
EVALUATOR_KEY = "evaluator"
#: Its ``kind``.
EVALUATOR_KIND = "surrogate"
#: The metrics key of a simulated candidate's coverage.
COVERAGE_KEY = "coverage"
#: The ``evaluator`` setting of a simulated run is this prefix and the model: ``surrogate:cifar10``.
SURROGATE_PREFIX = "surrogate:"


def is_model_file(model: str) -> bool:
    """Whether a surrogate ``model`` names a file (a path) rather than a built-in surrogate (a name).

    Example:
        >>> is_model_file("cifar10"), is_model_file("models/mine.json"), is_model_file("mine.json")
        (False, True, True)
    """
    return any(sep in model for sep in ("/", "\\")) or model.startswith(("~", ".")) or bool(Path(model).suffix)


@dataclass(frozen=True)
class Simulation:
    """The surrogate that scored a run's candidates.

    Attributes:
        model: a built-in surrogate's name (``cifar10``, ``cifar100``) or the model file's path.
        sha256: the SHA-256 of the model file (``None`` for a built-in one).
        coverage_threshold: a candidate whose coverage is below this counts as extrapolated.
        epochs: the training length the surrogate predicts.
    """

    model: str
    sha256: str | None = None
    coverage_threshold: float = 0.8
    epochs: int = 12

    @property
    def label(self) -> str:
        """``the surrogate of cifar10``, or ``the surrogate in model.json`` for a file."""
        if is_model_file(self.model):
            return f"the surrogate in {Path(self.model).name}"
        return f"the surrogate of {self.model}"

    @property
    def notice(self) -> str:
        """What every page about the run says: ``simulated with the surrogate of cifar10, not trained``."""
        return f"simulated with {self.label}, not trained"

    def to_meta(self) -> dict[str, Any]:
        """The run-metadata entry (JSON)."""
        return {
            "kind": EVALUATOR_KIND,
            "model": self.model,
            "sha256": self.sha256,
            "coverage_threshold": self.coverage_threshold,
            "epochs": self.epochs,
            "notice": self.notice,
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Simulation | None:
        """The simulation a run's metadata records, or ``None`` for a run whose candidates trained.

        Example:
            >>> Simulation.from_meta({"evaluator": {"kind": "surrogate", "model": "cifar10"}}).notice
            'simulated with the surrogate of cifar10, not trained'
            >>> Simulation.from_meta({"source": "pyevonas"}) is None
            True
        """
        entry = meta.get(EVALUATOR_KEY)
        if not isinstance(entry, Mapping) or entry.get("kind") != EVALUATOR_KIND:
            return None
        threshold = entry.get("coverage_threshold")
        epochs = entry.get("epochs")
        sha256 = entry.get("sha256")
        return cls(
            model=str(entry.get("model") or "unknown"),
            sha256=sha256 if isinstance(sha256, str) else None,
            coverage_threshold=float(threshold) if isinstance(threshold, (int, float)) else cls.coverage_threshold,
            epochs=int(epochs) if isinstance(epochs, int) else cls.epochs,
        )


@dataclass(frozen=True)
class CoverageStats:
    """How much of a generation the published evaluations cover.

    Attributes:
        n: candidates with a coverage (reused near duplicates, which carry another
            architecture's result, and candidates without a prediction are left out).
        extrapolated: how many of them have a coverage below the threshold.
        median: their median coverage (``None`` when ``n`` is 0).
    """

    n: int
    extrapolated: int
    median: float | None

    @property
    def share(self) -> float | None:
        """``extrapolated / n`` (``None`` when ``n`` is 0)."""
        return self.extrapolated / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``n``, ``extrapolated``, ``share``, ``median``."""
        return {"n": self.n, "extrapolated": self.extrapolated, "share": self.share, "median": self.median}


def coverage_of(ind: Any) -> float | None:
    """A candidate's recorded coverage, or ``None`` (not simulated, not scored, or a reused copy)."""
    if Status(ind.status) is Status.REUSED:
        return None
    value = (getattr(ind, "metrics", None) or {}).get(COVERAGE_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def coverage_stats(individuals: Iterable[Any], threshold: float) -> CoverageStats:
    """The coverage of a generation's candidates against ``threshold``.

    Example:
        >>> from types import SimpleNamespace as I
        >>> gen = [I(status="ok", metrics={"coverage": c}) for c in (0.95, 0.7, 0.85)]
        >>> coverage_stats(gen, 0.8).to_dict()
        {'n': 3, 'extrapolated': 1, 'share': 0.3333333333333333, 'median': 0.85}
    """
    values = sorted(v for v in (coverage_of(ind) for ind in individuals) if v is not None)
    n = len(values)
    if not n:
        return CoverageStats(0, 0, None)
    middle = n // 2
    median = values[middle] if n % 2 else (values[middle - 1] + values[middle]) / 2
    return CoverageStats(n, sum(v < threshold for v in values), median)


__all__ = [
    "COVERAGE_KEY",
    "EVALUATOR_KEY",
    "EVALUATOR_KIND",
    "SURROGATE_PREFIX",
    "CoverageStats",
    "Simulation",
    "coverage_of",
    "coverage_stats",
    "is_model_file",
]
