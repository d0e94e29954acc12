"""The in-process evaluation backend: candidates train one after another in this process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pyevonas.errors import PyevonasError
from pyevonas.search.executors._shared import (
    check_ids,
    describe_error,
    device_of,
    pin_device,
    resolve_function,
    timeout_reason,
)
from pyevonas.search.executors.base import (
    DEFAULT_EVALUATE,
    EvalJob,
    EvaluateFn,
    Evaluator,
    MetricsLike,
    ProgressCallback,
    failed,
)

# ---------------------------------------------------------------- in-process


class _TimedOut(Exception):
    """Raised from the progress callback once a candidate has run past its time limit."""


class InProcessEvaluator(Evaluator):
    """Train each candidate in this process, one after the other (the default).

    A time limit cannot stop a training in this process midway: it is checked at each progress
    event (each epoch) and when the candidate returns; a candidate over it fails with the reason
    "timed out after N s".
    """

    def __init__(
        self, evaluate_fn: EvaluateFn | None = None, device: str | None = None, timeout_s: float | None = None
    ) -> None:
        """Args: evaluate_fn: the training function; device: pin every job to this device;
        timeout_s: the time limit of one candidate (None: none)."""
        self._fn = evaluate_fn
        self._device = device
        self._timeout_s = timeout_s

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        check_ids(jobs)
        fn = self._fn if self._fn is not None else resolve_function(DEFAULT_EVALUATE)
        for job in jobs:
            yield job.id, self._run_one(fn, job, on_progress)

    def _run_one(self, fn: EvaluateFn, job: EvalJob, on_progress: ProgressCallback | None) -> MetricsLike:
        config = pin_device(job.config, self._device)
        if on_progress is not None:
            on_progress(job.id, {"event": "started", "device": device_of(config),
                                 "worker": 0, "pid": os.getpid()})  # fmt: skip
        # An exception raised by on_progress is the caller's, not the candidate's: keep it
        # aside (evaluate_fn may swallow it into a failed Metrics) and re-raise it here.
        callback_errors: list[BaseException] = []
        deadline = None if self._timeout_s is None else time.monotonic() + self._timeout_s

        def progress(event: dict[str, Any]) -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise _TimedOut(timeout_reason(self._timeout_s or 0.0))
            if on_progress is None:
                return
            try:
                on_progress(job.id, dict(event))
            except BaseException as exc:
                callback_errors.append(exc)
                raise

        try:
            metrics: MetricsLike = fn(job.chromosome, config, progress=progress)
        except Exception as exc:
            if callback_errors:
                raise callback_errors[0] from exc
            if isinstance(exc, PyevonasError):
                raise
            metrics = failed(describe_error(exc))
        if callback_errors:
            raise callback_errors[0]
        if deadline is not None and time.monotonic() > deadline:
            return failed(timeout_reason(self._timeout_s or 0.0))
        return metrics


__all__ = ["InProcessEvaluator"]
