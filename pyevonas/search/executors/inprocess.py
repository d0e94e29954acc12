"""The in-process evaluation backend: candidates train one after another in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from pyevonas.errors import PyevonasError
from pyevonas.search.executors._shared import check_ids, describe_error, device_of, pin_device, resolve_function
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


class InProcessEvaluator(Evaluator):
    """Train each candidate in this process, one after the other (the default)."""

    def __init__(self, evaluate_fn: EvaluateFn | None = None, device: str | None = None) -> None:
        """Args: evaluate_fn: the training function; device: pin every job to this device."""
        self._fn = evaluate_fn
        self._device = device

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        check_ids(jobs)
        fn = self._fn if self._fn is not None else resolve_function(DEFAULT_EVALUATE)
        for job in jobs:
            config = pin_device(job.config, self._device)
            if on_progress is not None:
                on_progress(job.id, {"event": "started", "device": device_of(config),
                                     "worker": 0, "pid": os.getpid()})  # fmt: skip
            # An exception raised by on_progress is the caller's, not the candidate's: keep it
            # aside (evaluate_fn may swallow it into a failed Metrics) and re-raise it here.
            callback_errors: list[BaseException] = []

            def progress(
                event: dict[str, Any], job_id: int = job.id, errors: list[BaseException] = callback_errors
            ) -> None:
                if on_progress is None:
                    return
                try:
                    on_progress(job_id, dict(event))
                except BaseException as exc:
                    errors.append(exc)
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
            yield job.id, metrics


__all__ = ["InProcessEvaluator"]
