"""The Ray evaluation backend: candidates train as Ray tasks, on a local instance or a cluster."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pyevonas.errors import ConfigError, PyevonasError
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

# ---------------------------------------------------------------- Ray


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor: 'ray' needs the ray package; install it with pip install 'pyevonas[ray]'") from exc
    return ray


def _ray_task(fn: EvaluateFn | None, job: EvalJob, device: str | None, queue: Any) -> MetricsLike:
    """Body of one Ray task (runs on a cluster node)."""
    evaluate = fn if fn is not None else resolve_function(DEFAULT_EVALUATE)
    config = pin_device(job.config, device)
    queue.put(
        (job.id, {"event": "started", "device": device_of(config), "worker": socket.gethostname(),
                  "pid": os.getpid()})
    )  # fmt: skip

    def progress(event: dict[str, Any]) -> None:
        queue.put((job.id, dict(event)))

    try:
        return evaluate(job.chromosome, config, progress=progress)
    except PyevonasError as exc:
        return _RunError(exc)  # type: ignore[return-value]
    except Exception as exc:
        return failed(describe_error(exc))


@dataclass(frozen=True)
class _RunError:
    """A Ray task's run-level error, carried back as a value so the caller re-raises it as is."""

    error: PyevonasError


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) where nothing listens, in seconds: Ray
    itself retries an unreachable address for minutes before it gives up."""
    if address is None or address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"executor: Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"executor: cannot connect to Ray at {address!r}: nothing answers at {host}:{port} ({exc}); "
            "is the head node running (`ray start --head --port=PORT`)?"
        ) from None


#: Retries of a candidate whose Ray worker or node was lost (a task that raised is not retried:
#: the candidate's own failure is a result).
DEFAULT_RETRIES = 3


def task_options(
    cluster_gpus: float,
    workers: int,
    device: str | None = None,
    cpus_per_candidate: float = 1.0,
    gpus_per_candidate: float | None = None,
    max_retries: int = DEFAULT_RETRIES,
) -> tuple[dict[str, Any], str | None]:
    """The Ray options of a candidate's task, and the device its training is pinned to.

    Without ``gpus_per_candidate`` a task asks for ``1 / workers`` of a GPU when the cluster has
    GPUs and the candidates train on CUDA (``device`` ``auto``, ``cuda...`` or None); a run on
    ``cpu`` asks for none, so its candidates never wait for a GPU beside idle CPU-only nodes.

    Raises:
        ConfigError: GPUs asked for on a cluster that has none (every task would wait forever).
    """
    wants_cuda = device is None or device == "auto" or device.startswith("cuda")
    gpus = gpus_per_candidate
    if gpus is None:
        gpus = 1.0 / workers if cluster_gpus > 0 and wants_cuda else 0.0
    elif gpus > 0 and cluster_gpus <= 0:
        raise ConfigError(f"gpus_per_candidate: {gpus:g} GPUs asked for, but the Ray cluster has no GPU")
    options: dict[str, Any] = {"max_retries": max_retries, "num_cpus": cpus_per_candidate, "num_gpus": gpus}
    return options, ("cuda" if gpus > 0 else None)


class RayEvaluator(Evaluator):
    """Evaluate candidates as Ray tasks, on a cluster or on a local Ray instance.

    Each task asks for ``cpus_per_candidate`` CPUs and the GPUs of :func:`task_options` (by default
    ``1 / workers`` of a GPU when the cluster has GPUs and the run trains on CUDA; Ray then gives it
    that GPU as ``cuda``). A task whose worker or node is lost is run again, up to ``max_retries``
    times (training is seeded per candidate, so a retry gives the same result), then fails with
    the reason; a task that raised is a failed result at once. A task running longer than ``timeout_s`` (from
    its start on a worker) is cancelled and fails with the reason "timed out after N s".
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int = 1,
        evaluate_fn: EvaluateFn | None = None,
        timeout_s: float | None = None,
        *,
        device: str | None = None,
        cpus_per_candidate: float = 1.0,
        gpus_per_candidate: float | None = None,
        max_retries: int = DEFAULT_RETRIES,
    ) -> None:
        """See :func:`make_evaluator`."""
        self._timeout_s = timeout_s
        self._retries = max_retries
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            # Only a local instance started here takes start-up options; a cluster has its own.
            local = {"include_dashboard": False} if address is None else {}
            _check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, **local)
            except Exception as exc:
                hint = ""
                if address is not None and not os.environ.get("RAY_AUTH_MODE"):
                    hint = (
                        "; if the cluster uses token authentication (the default of `ray start` in "
                        "recent Ray), set RAY_AUTH_MODE=token here too"
                    )
                raise ConfigError(f"executor: cannot connect to Ray at {address!r}: {exc}{hint}") from exc
            self._owns_ray = True
        from ray.util.queue import Queue

        options, self._device = task_options(
            float(ray.cluster_resources().get("GPU", 0.0)),
            workers,
            device,
            cpus_per_candidate,
            gpus_per_candidate,
            max_retries,
        )
        self._remote = ray.remote(_ray_task).options(**options)
        # The queue actor needs no CPU, so a one-CPU cluster can still run a task beside it.
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._fn = evaluate_fn
        self._closed = False

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        if self._closed:
            raise RuntimeError("evaluate: this evaluator is closed")
        check_ids(jobs)
        ray = self._ray
        refs = {self._remote.remote(self._fn, job, self._device, self._queue): job.id for job in jobs}
        pending = list(refs)
        started: dict[int, float] = {}
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                self._forward_progress(on_progress, started)
                for ref in done:
                    yield refs[ref], self._result(ref)
                for ref in self._overdue(pending, refs, started):
                    pending.remove(ref)
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                    yield refs[ref], failed(timeout_reason(self._timeout_s or 0.0))
            self._forward_progress(on_progress, started)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _result(self, ref: Any) -> MetricsLike:
        """A finished task's metrics; a run-level error it carried back is raised here."""
        try:
            metrics = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:  # its worker or node lost, every retry included
            retried = f" (retried {self._retries} times)" if self._retries else ""
            metrics = failed(f"Ray task failed{retried}: {describe_error(exc)}")
        if isinstance(metrics, _RunError):
            raise metrics.error
        result: MetricsLike = metrics
        return result

    def _overdue(self, pending: list[Any], refs: dict[Any, int], started: dict[int, float]) -> list[Any]:
        """The pending tasks that started more than ``timeout_s`` ago."""
        if self._timeout_s is None:
            return []
        now = time.monotonic()
        return [ref for ref in pending if refs[ref] in started and now - started[refs[ref]] > self._timeout_s]

    def _forward_progress(self, on_progress: ProgressCallback | None, started: dict[int, float]) -> None:
        size = self._queue.size()
        if size == 0:
            return
        for job_id, event in self._queue.get_nowait_batch(size):
            if event.get("event") == "started":
                started.setdefault(job_id, time.monotonic())
            if on_progress is not None:
                on_progress(job_id, event)

    def close(self) -> None:
        """Drop the progress queue; shut Ray down if this evaluator started it."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._queue.shutdown()
        if self._owns_ray:
            self._ray.shutdown()


__all__ = ["DEFAULT_RETRIES", "RayEvaluator", "task_options"]
