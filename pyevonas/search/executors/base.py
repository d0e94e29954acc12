"""The contract of the evaluation backends: jobs and the ``Evaluator`` base class (their shared helpers: ``_shared``).

The evolution loop hands a batch of :class:`EvalJob` to an :class:`Evaluator` and reads back
``(job id, Metrics)`` pairs as candidates finish, in any order. The loop never imports torch: only
the process that trains does (this one for ``"inprocess"``, the workers for ``"pool"`` and
``"ray"``).

Contract shared by every backend:

* ``evaluate`` is a generator; work starts when it is iterated, and stopping the iteration early
  (``break``, an exception, Ctrl-C) cancels what is still running.
* It never raises because of a candidate: an exception in ``evaluate_fn``, a worker that dies
  (``os._exit``, SIGKILL, a segfault, the OOM killer) or a job over its time limit yields a
  failed ``pyevonas.training.config.Metrics`` (``status="failed"``, ``error`` says why). It does raise when the
  run itself cannot go on: the backend cannot work (``evaluate_fn`` cannot be loaded, Ray is
  missing) or ``evaluate_fn`` raised a :class:`~pyevonas.errors.PyevonasError` (a bad
  ``TrainConfig``, a missing dataset: every other candidate would fail the same way). That error
  is re-raised in the caller, whichever process it came from.
* ``on_progress(job_id, event)`` is always called in the thread that iterates ``evaluate``. The
  first event of a job is ``{"event": "started", "device": ..., "worker": ..., "pid": ...}``; the
  next ones are the dicts ``evaluate_fn`` passes to its ``progress`` callback (per epoch:
  ``{"epoch", "epochs", "val_accuracy", "loss"}``).
* ``evaluate_fn(chromosome, config, progress=None) -> Metrics`` defaults to
  :func:`pyevonas.training.loop.evaluate`. For the pool it must be a module-level function (it is sent to
  the workers by name); for Ray anything cloudpickle can carry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyevonas.runs.records import Status
from pyevonas.training.config import FAILED_FITNESS, Metrics  # a dataclass: no torch at import

DEFAULT_EVALUATE = "pyevonas.training.loop:evaluate"
KINDS = ("inprocess", "pool", "ray", "surrogate")

ProgressCallback = Callable[[int, dict[str, Any]], None]


class MetricsLike(Protocol):
    """What the loop reads from a result: ``pyevonas.training.config.Metrics`` or an ``evaluate_fn``'s own."""

    @property
    def status(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def fitness(self) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


EvaluateFn = Callable[..., MetricsLike]


@dataclass(frozen=True)
class EvalJob:
    """One candidate to evaluate.

    Attributes:
        id: The caller's id for the job (the run store's individual id); unique in a batch.
        chromosome: The layer dicts.
        config: The ``TrainConfig`` (any picklable object; a backend that pins devices replaces
            its ``device``).
    """

    id: int
    chromosome: list[dict[str, Any]]
    config: Any


def failed(error: str) -> Metrics:
    """The result of a candidate whose evaluation produced none: a failed ``Metrics``."""
    return Metrics(status=Status.FAILED, error=error, fitness=FAILED_FITNESS)


class Evaluator(ABC):
    """Trains candidates somewhere and reports their metrics; also a context manager.

    The one evaluation contract: the backends here subclass it, and so does a backend of one's
    own given to :func:`pyevonas.search.loop.evolve` as ``evaluator=`` (only :meth:`evaluate` must
    be written).
    """

    @abstractmethod
    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """Evaluate a batch and yield ``(job id, metrics)`` as each candidate finishes.

        Args:
            jobs: The candidates; ids must be unique.
            on_progress: Called with ``(job id, event dict)`` (see the module docstring).

        Yields:
            ``(job id, metrics)`` once per job, in completion order.
        """

    def close(self) -> None:  # noqa: B027 - a backend without resources needs no close
        """Release workers and connections (idempotent)."""

    def describe(self) -> dict[str, Any] | None:
        """What a run's metadata records of this backend (JSON), or ``None`` when its candidates are
        trained: the surrogate backend describes its model, so the run says it was simulated."""
        return None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def detect_devices() -> list[str]:
    """Return ``["cuda:0", ...]`` for the visible GPUs, or ``["cpu"]`` (imports torch)."""
    try:
        import torch
    except ImportError:
        return ["cpu"]
    if torch.cuda.is_available():
        return [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    return ["cpu"]


__all__ = [
    "DEFAULT_EVALUATE",
    "KINDS",
    "EvalJob",
    "EvaluateFn",
    "Evaluator",
    "MetricsLike",
    "ProgressCallback",
    "detect_devices",
    "failed",
]
