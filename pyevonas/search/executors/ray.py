"""The Ray evaluation backend: candidates train as Ray tasks, on a local instance or a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyevonas
from pyevonas.errors import ConfigError, PyevonasError
from pyevonas.search.config import SHIP_NOTHING, SHIP_PACKAGE, check_ray_code
from pyevonas.search.executors._shared import (
    check_ids,
    describe_error,
    device_of,
    pin_device,
    resolve_function,
    setting_of,
    timeout_reason,
    with_setting,
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


def _ray_task(
    fn: EvaluateFn | None, job: EvalJob, device: str | None, inbox: Any, checkpoint: bytes | None = None
) -> _TaskResult:
    """Body of one Ray task (runs on a cluster node).

    A job with a ``checkpoint`` setting (a rung of successive halving) names a file of the
    driver's run folder, which this node may not see: the task trains against a copy in a
    temporary folder of its own, filled with ``checkpoint`` (the driver's file, carried through
    Ray's object store), and returns what training saved there for the driver to write back.
    """
    evaluate = fn if fn is not None else resolve_function(DEFAULT_EVALUATE)
    config = pin_device(job.config, device)

    def progress(event: dict[str, Any]) -> None:
        # Fire and forget: the calls of one task run in order on the (synchronous) inbox actor. A
        # blocking put would be a task waiting on Ray: Ray lends its CPU to the next task
        # meanwhile, which starts another worker process (torch imported again) beside this one
        # on a CPU it does not have.
        inbox.put.remote((job.id, dict(event)))

    progress({"event": "started", "device": device_of(config), "worker": socket.gethostname(), "pid": os.getpid()})

    driver_path = setting_of(config, "checkpoint")
    local_dir = tempfile.mkdtemp(prefix="pyevonas-checkpoint-") if driver_path is not None else None
    try:
        local = None
        if local_dir is not None:
            local = Path(local_dir) / Path(str(driver_path)).name
            if checkpoint is not None:
                local.write_bytes(checkpoint)
            config = with_setting(config, "checkpoint", str(local))
        try:
            metrics: Any = evaluate(job.chromosome, config, progress=progress)
        except PyevonasError as exc:
            return _TaskResult(_RunError(exc))
        except Exception as exc:
            return _TaskResult(failed(describe_error(exc)))
        saved = local.read_bytes() if local is not None and local.is_file() else None
        return _TaskResult(metrics, saved)
    finally:
        if local_dir is not None:
            shutil.rmtree(local_dir, ignore_errors=True)


class _Inbox:
    """The progress events of running tasks, collected for the caller (a Ray actor).

    A synchronous actor: the calls of one caller run in the order it made them, so a task's
    "started" event comes before its epochs (ray.util.queue's actor is asynchronous and does not
    keep that order for calls nobody waits on).
    """

    def __init__(self) -> None:
        self._items: list[tuple[int, dict[str, Any]]] = []

    def put(self, item: tuple[int, dict[str, Any]]) -> None:
        self._items.append(item)

    def drain(self) -> list[tuple[int, dict[str, Any]]]:
        items, self._items = self._items, []
        return items


@dataclass(frozen=True)
class _RunError:
    """A Ray task's run-level error, carried back as a value so the caller re-raises it as is."""

    error: PyevonasError


@dataclass(frozen=True)
class _TaskResult:
    """What a task returns: its metrics (or run-level error) and the checkpoint its training saved."""

    metrics: Any
    checkpoint: bytes | None = None


def _write_checkpoint(path: str, data: bytes) -> None:
    """Write a checkpoint a task brought back into the driver's run folder, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _read_checkpoint(config: Any) -> bytes | None:
    """The driver's checkpoint file of a job, to carry to its task (None: none yet, or no halving)."""
    path = setting_of(config, "checkpoint")
    if path is None:
        return None
    try:
        return Path(str(path)).read_bytes()
    except FileNotFoundError:
        return None


#: How long the start-up check may wait for a worker (a runtime_env with ``pip`` installs first).
PROBE_TIMEOUT_S = 600.0


def runtime_env(code: str = SHIP_PACKAGE, extra: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The Ray ``runtime_env`` of a search: ``extra`` (a user's own: ``pip``, ``env_vars``,
    ``working_dir``, ``container``...) with pyevonas added to its ``py_modules`` as ``code`` says:
    ``package`` ships this process's pyevonas folder (its compiled core runs on nodes of the same
    platform and CPU architecture, CPython >= 3.11), ``installed`` ships nothing.
    """
    env = dict(extra or {})
    if code == SHIP_NOTHING:
        return env or None
    try:
        check_ray_code(code)
    except ValueError as exc:
        raise ConfigError(f"ray_code: {exc}") from None
    ship = str(Path(pyevonas.__file__).parent)
    modules = env.get("py_modules") or []
    if not isinstance(modules, list):
        raise ConfigError(f"ray_runtime_env: py_modules must be a list, got {modules!r}")
    env["py_modules"] = [*modules, ship]
    excludes = env.get("excludes") or []
    if not isinstance(excludes, list):
        raise ConfigError(f"ray_runtime_env: excludes must be a list, got {excludes!r}")
    env["excludes"] = [*excludes, *(e for e in ("__pycache__", "*.pyc") if e not in excludes)]
    return env


def _probe_node(needs_training: bool) -> dict[str, Any]:
    """What a Ray worker runs: its pyevonas version and host (imports the training side when
    candidates will be trained by the built-in evaluation)."""
    import pyevonas as here

    if needs_training:
        resolve_function(DEFAULT_EVALUATE)  # torch and the rest of the training stack
    return {"version": here.__version__, "host": socket.gethostname(), "path": here.__file__}


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

    When this evaluator starts or connects Ray itself, the job's ``runtime_env`` is
    :func:`runtime_env` of ``ray_code`` and ``ray_runtime_env``: by default pyevonas travels to the
    nodes with the job, so a node needs only Python and pyevonas's dependencies. Before the first
    candidate, one task checks that a worker can run pyevonas (a clear error instead of every
    candidate failing). A candidate continued by successive halving gets its checkpoint through
    Ray's object store and its task sends the new one back, which this process writes into the
    run folder: the nodes need not share it.
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
        ray_code: str = SHIP_PACKAGE,
        ray_runtime_env: Mapping[str, Any] | None = None,
    ) -> None:
        """See :func:`make_evaluator`."""
        self._timeout_s = timeout_s
        self._retries = max_retries
        ray = _import_ray()
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            env = runtime_env(ray_code, ray_runtime_env)
            # Only a local instance started here takes start-up options; a cluster has its own.
            local = {"include_dashboard": False} if address is None else {}
            _check_reachable(address)
            try:
                # Ray's own INFO lines (connecting, uploading the package) would interleave with the
                # live view and the log; its warnings and errors still show.
                ray.init(address=address, log_to_driver=False, runtime_env=env, logging_level=logging.WARNING, **local)
            except Exception as exc:
                hint = ""
                if address is not None and not os.environ.get("RAY_AUTH_MODE"):
                    hint = (
                        "; if the cluster uses token authentication (the default of `ray start` in "
                        "recent Ray), set RAY_AUTH_MODE=token here too"
                    )
                raise ConfigError(f"executor: cannot connect to Ray at {address!r}: {exc}{hint}") from exc
            self._owns_ray = True
        elif ray_code != SHIP_PACKAGE or ray_runtime_env:
            warnings.warn(
                "Ray was initialised before the evaluator, so ray_code and ray_runtime_env do not apply: "
                "pass a runtime_env to your own ray.init",
                stacklevel=2,
            )
        try:
            options, self._device = task_options(
                float(ray.cluster_resources().get("GPU", 0.0)),
                workers,
                device,
                cpus_per_candidate,
                gpus_per_candidate,
                max_retries,
            )
            self._check_workers(needs_training=evaluate_fn is None)
        except BaseException:
            self._shutdown_ray()
            raise
        self._remote = ray.remote(_ray_task).options(**options)
        # The inbox actor needs no CPU, so a one-CPU cluster can still run a task beside it.
        self._inbox = ray.remote(_Inbox).options(num_cpus=0).remote()
        self._fn = evaluate_fn
        self._closed = False

    def _check_workers(self, needs_training: bool) -> None:
        """Run one task that imports pyevonas (and the training stack) on a worker.

        Raises:
            ConfigError: the worker cannot (pyevonas or a dependency is missing there, the
                runtime_env failed to set up) or none started within :data:`PROBE_TIMEOUT_S`.
        """
        ray = self._ray
        ref = ray.remote(_probe_node).options(num_cpus=0, max_retries=0).remote(needs_training)
        try:
            found = ray.get(ref, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
            raise ConfigError(
                f"executor: no Ray worker started within {PROBE_TIMEOUT_S:g} s (is its runtime_env still installing?)"
            ) from None
        except Exception as exc:
            reason = describe_error(exc).splitlines()
            cause = next((line.strip() for line in reversed(reason) if "Error" in line), reason[0] if reason else "")
            raise ConfigError(
                f"executor: a Ray worker cannot run pyevonas: {cause[:500]}; ship it with ray_code = "
                f"{SHIP_PACKAGE!r} (--ray-code, the default) or install 'pyevonas[train]' on every node"
            ) from None
        if found.get("version") != pyevonas.__version__:
            warnings.warn(
                f"the Ray worker on {found.get('host')} runs pyevonas {found.get('version')} from "
                f"{found.get('path')}, this process {pyevonas.__version__}",
                stacklevel=3,
            )

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        if self._closed:
            raise RuntimeError("evaluate: this evaluator is closed")
        check_ids(jobs)
        ray = self._ray
        refs: dict[Any, EvalJob] = {}
        for job in jobs:
            saved = _read_checkpoint(job.config)
            carried = ray.put(saved) if saved is not None else None
            refs[self._remote.remote(self._fn, job, self._device, self._inbox, carried)] = job
        pending = list(refs)
        started: dict[int, float] = {}
        finished: set[int] = set()
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                self._forward_progress(on_progress, started, finished)
                for ref in done:
                    finished.add(refs[ref].id)
                    yield refs[ref].id, self._result(ref, refs[ref])
                for ref in self._overdue(pending, refs, started):
                    pending.remove(ref)
                    finished.add(refs[ref].id)
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
                    yield refs[ref].id, failed(timeout_reason(self._timeout_s or 0.0))
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _result(self, ref: Any, job: EvalJob) -> MetricsLike:
        """A finished task's metrics (its checkpoint written back); a run-level error it carried
        back is raised here."""
        try:
            outcome = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:  # its worker or node lost, every retry included
            retried = f" (retried {self._retries} times)" if self._retries else ""
            return failed(f"Ray task failed{retried}: {describe_error(exc)}")
        if isinstance(outcome.metrics, _RunError):
            raise outcome.metrics.error
        if outcome.checkpoint is not None:
            try:
                _write_checkpoint(str(setting_of(job.config, "checkpoint")), outcome.checkpoint)
            except OSError as exc:  # the candidate trained; only its continuation is lost
                return failed(f"cannot write its checkpoint into the run folder: {exc}")
        result: MetricsLike = outcome.metrics
        return result

    def _overdue(self, pending: list[Any], refs: dict[Any, EvalJob], started: dict[int, float]) -> list[Any]:
        """The pending tasks that started more than ``timeout_s`` ago."""
        if self._timeout_s is None:
            return []
        now = time.monotonic()
        return [ref for ref in pending if refs[ref].id in started and now - started[refs[ref].id] > self._timeout_s]

    def _forward_progress(
        self, on_progress: ProgressCallback | None, started: dict[int, float], finished: set[int]
    ) -> None:
        """Hand on the progress events queued so far, except those of jobs already finished (an
        event sent without waiting may arrive after its task's result)."""
        for job_id, event in self._ray.get(self._inbox.drain.remote()):
            if job_id in finished:
                continue
            if event.get("event") == "started":
                started.setdefault(job_id, time.monotonic())
            if on_progress is not None:
                on_progress(job_id, event)

    def close(self) -> None:
        """Drop the progress inbox; shut Ray down if this evaluator started it."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._ray.kill(self._inbox)
        self._shutdown_ray()

    def _shutdown_ray(self) -> None:
        if self._owns_ray:
            self._owns_ray = False
            self._ray.shutdown()


__all__ = [
    "DEFAULT_RETRIES",
    "RayEvaluator",
    "runtime_env",
    "task_options",
]
