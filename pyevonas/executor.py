"""Evaluation backends: where candidates are trained (this process, a local process pool, or Ray).

The evolution loop hands a batch of :class:`EvalJob` to an :class:`Evaluator` and reads back
``(job id, Metrics)`` pairs as candidates finish, in any order. The loop never imports torch: only
the process that trains does (this one for ``"inprocess"``, the workers for ``"pool"`` and
``"ray"``).

Contract shared by every backend:

* ``evaluate`` is a generator; work starts when it is iterated, and stopping the iteration early
  (``break``, an exception, Ctrl-C) cancels what is still running.
* It never raises because of a candidate: an exception in ``evaluate_fn``, a worker that dies
  (``os._exit``, SIGKILL, a segfault, the OOM killer) or a job over its time limit yields a
  failed ``pyevonas.train.Metrics`` (``status="failed"``, ``error`` says why). It does raise when the
  run itself cannot go on: the backend cannot work (``evaluate_fn`` cannot be loaded, Ray is
  missing) or ``evaluate_fn`` raised a :class:`~pyevonas.errors.PyevonasError` (a bad
  ``TrainConfig``, a missing dataset: every other candidate would fail the same way). That error
  is re-raised in the caller, whichever process it came from.
* ``on_progress(job_id, event)`` is always called in the thread that iterates ``evaluate``. The
  first event of a job is ``{"event": "started", "device": ..., "worker": ..., "pid": ...}``; the
  next ones are the dicts ``evaluate_fn`` passes to its ``progress`` callback (per epoch:
  ``{"epoch", "epochs", "val_accuracy", "loss"}``).
* ``evaluate_fn(chromosome, config, progress=None) -> Metrics`` defaults to
  :func:`pyevonas.train.evaluate`. For the pool it must be a module-level function (it is sent to
  the workers by name); for Ray anything cloudpickle can carry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import multiprocessing as mp
import os
import pickle
import re
import signal
import socket
import threading
import time
import traceback
import weakref
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from pyevonas.errors import ConfigError, PyevonasError, TrainingError
from pyevonas.train import FAILED_FITNESS, Metrics  # a dataclass: no torch at import

DEFAULT_EVALUATE = "pyevonas.train:evaluate"
KINDS = ("inprocess", "pool", "ray")

ProgressCallback = Callable[[int, dict[str, Any]], None]


class MetricsLike(Protocol):
    """What the loop reads from a result: ``pyevonas.train.Metrics`` or an ``evaluate_fn``'s own."""

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
    return Metrics(status="failed", error=error, fitness=FAILED_FITNESS)


class Evaluator(ABC):
    """Trains candidates somewhere and reports their metrics; also a context manager."""

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

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_evaluator(
    kind: str = "inprocess",
    workers: int = 1,
    address: str | None = None,
    devices: list[str] | None = None,
    evaluate_fn: EvaluateFn | None = None,
    timeout_s: float | None = None,
) -> Evaluator:
    """Build an evaluation backend.

    Args:
        kind: ``"inprocess"`` (train here, one at a time), ``"pool"`` (local worker processes)
            or ``"ray"`` (a Ray cluster; needs ``pip install 'pyevonas[ray]'``).
        workers: For ``"pool"``, workers per device (the paper trained 5 at once on one GPU);
            for ``"ray"``, candidates sharing one GPU. Ignored by ``"inprocess"``.
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` starts or
            reuses a local Ray.
        devices: Devices to pin workers to, round-robin (``["cuda:0", "cuda:1"]``); ``None``
            keeps each job's ``config.device``. See :func:`detect_devices`.
        evaluate_fn: ``evaluate(chromosome, config, progress=None) -> Metrics``; default
            :func:`pyevonas.train.evaluate`.
        timeout_s: For ``"pool"``, wall-clock limit per candidate; a candidate over it is killed
            with its worker and marked failed.

    Returns:
        The evaluator; close it (or use ``with``) to stop its workers.

    Raises:
        ConfigError: For an unknown kind, a bad worker count or device list, or Ray missing.
    """
    if kind not in KINDS:
        raise ConfigError(f"executor: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if workers < 1:
        raise ConfigError(f"workers: must be at least 1, got {workers}")
    if devices is not None and (not devices or not all(isinstance(d, str) and d for d in devices)):
        raise ConfigError(f"devices: expected a non-empty list of device names, got {devices!r}")
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigError(f"timeout_s: must be positive, got {timeout_s}")
    if kind == "inprocess":
        return InProcessEvaluator(evaluate_fn, device=devices[0] if devices else None)
    if kind == "pool":
        return PoolEvaluator(workers, devices, evaluate_fn, timeout_s=timeout_s)
    return RayEvaluator(address, workers, evaluate_fn)


def detect_devices() -> list[str]:
    """Return ``["cuda:0", ...]`` for the visible GPUs, or ``["cpu"]`` (imports torch)."""
    try:
        import torch
    except ImportError:
        return ["cpu"]
    if torch.cuda.is_available():
        return [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    return ["cpu"]


# ---------------------------------------------------------------- helpers shared by backends


def _function_ref(fn: EvaluateFn | None) -> str:
    """Name a module-level function so a spawned worker can import it."""
    if fn is None:
        return DEFAULT_EVALUATE
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ConfigError(
            f"evaluate_fn: {fn!r} is not a module-level function; the process pool imports it by name in each worker"
        )
    return f"{module}:{qualname}"


def _resolve(ref: str) -> EvaluateFn:
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _pin(config: Any, device: str | None) -> Any:
    """Return ``config`` with its device replaced (pydantic model, dataclass or dict)."""
    if device is None:
        return config
    if hasattr(config, "model_copy"):
        return config.model_copy(update={"device": device})
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.replace(config, device=device)
    if isinstance(config, dict):
        return {**config, "device": device}
    raise TypeError(f"cannot set the device of a {type(config).__name__} config")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:2000] + "..."


def _check_ids(jobs: Sequence[EvalJob]) -> None:
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("evaluate: job ids must be unique within a batch")


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
        _check_ids(jobs)
        fn = self._fn if self._fn is not None else _resolve(DEFAULT_EVALUATE)
        for job in jobs:
            config = _pin(job.config, self._device)
            if on_progress is not None:
                on_progress(job.id, {"event": "started", "device": _device_of(config),
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
                metrics = failed(_describe(exc))
            if callback_errors:
                raise callback_errors[0]
            yield job.id, metrics


def _device_of(config: Any) -> str | None:
    if isinstance(config, dict):
        return config.get("device")
    return getattr(config, "device", None)


# ---------------------------------------------------------------- process pool


def _worker_main(conn: Connection, fn_ref: str, device: str | None, slot: int, threads: int) -> None:
    """Body of a pool worker: load the function, then evaluate jobs until told to stop."""
    # Ctrl-C reaches the whole process group; the parent decides what happens to the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    local_device = _hide_other_gpus(device)
    if device is None or device == "cpu":
        # N workers on the same cores: one BLAS/OpenMP pool each, sized to share them.
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    try:
        try:
            fn = _resolve(fn_ref)
        except BaseException:
            conn.send(("fatal", f"cannot load {fn_ref}:\n{traceback.format_exc(limit=5)}"))
            return
        conn.send(("ready", os.getpid()))
        while True:
            job = conn.recv()
            if job is None:
                return
            _worker_run(conn, fn, job, device, local_device, slot)
    except (EOFError, OSError):
        return  # the parent is gone or closed the pipe: nobody wants the results


def _worker_run(
    conn: Connection, fn: EvaluateFn, job: EvalJob, device: str | None, local_device: str | None, slot: int
) -> None:
    config = _pin(job.config, local_device)
    # The event names the device as the user knows it (cuda:3), not as this process sees it.
    conn.send(("progress", job.id, {"event": "started", "device": device or _device_of(config),
                                    "worker": slot, "pid": os.getpid()}))  # fmt: skip

    def progress(event: dict[str, Any], job_id: int = job.id) -> None:
        conn.send(("progress", job_id, dict(event)))

    try:
        metrics: MetricsLike = fn(job.chromosome, config, progress=progress)
    except PyevonasError as exc:
        try:
            payload = pickle.dumps(("raise", job.id, exc))
        except Exception:
            payload = pickle.dumps(("raise", job.id, TrainingError(_describe(exc))))
        conn.send_bytes(payload)
        return
    except Exception as exc:
        metrics = failed(_describe(exc))
    try:
        payload = pickle.dumps(("done", job.id, metrics))
    except Exception as exc:
        payload = pickle.dumps(("done", job.id, failed(f"result not sendable: {exc}")))
    conn.send_bytes(payload)


def _hide_other_gpus(device: str | None) -> str | None:
    """Make ``cuda:N`` the only GPU this worker sees; return the device name to train on.

    Pinning by ``CUDA_VISIBLE_DEVICES`` (set before torch is imported) rather than by device name
    alone: torch creates a context on the *current* device (GPU 0) for calls such as
    ``torch.cuda.is_bf16_supported()``, so N workers x K GPUs would otherwise pile stray
    contexts, hundreds of MB each, onto GPU 0. An index the parent's ``CUDA_VISIBLE_DEVICES``
    remaps is translated; one outside it is left for training to report.
    """
    match = re.fullmatch(r"cuda:(\d+)", device or "")
    if match is None:
        return device
    index = int(match.group(1))
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and index >= len(visible):
        return device
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[index] if visible else str(index)
    return "cuda:0"


def _exit_with_parent() -> None:
    """End this worker as soon as its parent dies (e.g. SIGKILLed), even in the middle of a job."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="pyevonas-parent-watch", daemon=True).start()


@dataclass
class _Worker:
    slot: int
    device: str | None
    process: Any = None
    conn: Connection | None = None
    ready: bool = False
    job: EvalJob | None = None
    deadline: float | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "an unknown cause"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-exitcode).name}"
        return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _stop(worker: _Worker, graceful: bool) -> None:
    """Stop a worker process and forget it."""
    proc, conn = worker.process, worker.conn
    worker.process = worker.conn = None
    worker.ready = False
    worker.job = worker.deadline = None
    if proc is None:
        return
    if graceful and conn is not None and proc.is_alive():
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)
        proc.join(timeout=5)
    if proc.is_alive():
        proc.kill()
    proc.join(timeout=10)
    if conn is not None:
        conn.close()
    with contextlib.suppress(ValueError):
        proc.close()


def _shutdown(workers: list[_Worker]) -> None:
    for worker in workers:
        _stop(worker, graceful=True)


class PoolEvaluator(Evaluator):
    """Evaluate candidates in local worker processes, ``workers`` per device.

    Workers are spawned (not forked: CUDA and the Rust thread pool do not survive a fork) on the
    first batch and reused across batches, so each keeps its CUDA context and dataset cache. A
    worker that dies takes only its candidate with it: the candidate is marked failed with the
    reason and a fresh worker takes the slot.
    """

    def __init__(
        self,
        workers: int = 1,
        devices: list[str] | None = None,
        evaluate_fn: EvaluateFn | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """See :func:`make_evaluator`."""
        self._fn_ref = _function_ref(evaluate_fn)
        slots = [None] if devices is None else list(devices)
        count = workers * len(slots)
        self._workers = [_Worker(slot=k, device=slots[k % len(slots)]) for k in range(count)]
        cpu_workers = sum(1 for w in self._workers if w.device in (None, "cpu"))
        self._threads = max(1, (os.cpu_count() or 1) // max(1, cpu_workers))
        self._timeout_s = timeout_s
        self._ctx = mp.get_context("spawn")
        self._closed = False
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    @property
    def size(self) -> int:
        """Number of worker slots."""
        return len(self._workers)

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        self._closed = True
        self._finalizer()

    def _start(self, worker: _Worker) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self._fn_ref, worker.device, worker.slot, self._threads),
            name=f"pyevonas-eval-{worker.slot}",
        )
        proc.start()
        child_conn.close()
        worker.process, worker.conn, worker.ready = proc, parent_conn, False

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        if self._closed:
            raise RuntimeError("evaluate: this evaluator is closed")
        _check_ids(jobs)
        queue = deque(jobs)
        busy: dict[int, _Worker] = {}
        try:
            while queue or busy:
                for worker in self._workers:
                    if queue and worker.job is None:
                        self._assign(worker, queue.popleft(), busy)
                finished: list[tuple[int, MetricsLike]] = []
                self._poll(busy, on_progress, finished)
                yield from finished
        finally:
            # Stopped early: the running candidates are abandoned, so their workers must not
            # report into the next batch. Killing them is the only way to stop a training step.
            for worker in list(busy.values()):
                _stop(worker, graceful=False)

    def _assign(self, worker: _Worker, job: EvalJob, busy: dict[int, _Worker]) -> None:
        if not worker.alive:
            _stop(worker, graceful=False)
            self._start(worker)
        assert worker.conn is not None
        try:
            worker.conn.send(job)
        except (OSError, ValueError):
            # The idle worker died since it was last seen; the job goes to a fresh one.
            _stop(worker, graceful=False)
            self._start(worker)
            assert worker.conn is not None
            worker.conn.send(job)
        # The clock starts with the job's "started" event, not here: a fresh worker may spend
        # seconds importing torch first, which is not the candidate's time.
        worker.job, worker.deadline = job, None
        busy[job.id] = worker

    def _poll(
        self,
        busy: dict[int, _Worker],
        on_progress: ProgressCallback | None,
        finished: list[tuple[int, MetricsLike]],
    ) -> None:
        """Wait for the next events of the live workers and handle them."""
        live = [w for w in self._workers if w.process is not None]
        timeout = 1.0
        deadlines = [w.deadline for w in busy.values() if w.deadline is not None]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        handles: list[Any] = [w.conn for w in live] + [w.process.sentinel for w in live]
        ready = set(wait(handles, timeout=timeout))
        for worker in live:
            assert worker.conn is not None and worker.process is not None
            if worker.conn in ready or worker.process.sentinel in ready:
                eof = self._drain(worker, busy, on_progress, finished)
                if eof or not worker.process.is_alive():
                    self._handle_death(worker, busy, finished)
                    continue
            if worker.deadline is not None and time.monotonic() >= worker.deadline:
                job = worker.job
                assert job is not None
                busy.pop(job.id, None)
                _stop(worker, graceful=False)
                finished.append(
                    (job.id, failed(
                        f"evaluation exceeded the time limit of {self._timeout_s:g} s; "
                        "its worker was stopped"))
                )  # fmt: skip

    def _drain(
        self,
        worker: _Worker,
        busy: dict[int, _Worker],
        on_progress: ProgressCallback | None,
        finished: list[tuple[int, MetricsLike]],
    ) -> bool:
        """Handle every message a worker has sent; return True at end of stream (it died)."""
        assert worker.conn is not None
        while True:
            try:
                if not worker.conn.poll():
                    return False
                message = worker.conn.recv()
            except (EOFError, OSError):
                return True
            kind = message[0]
            if kind == "ready":
                worker.ready = True
            elif kind == "fatal":
                raise TrainingError(f"evaluation worker {worker.slot} could not start: {message[1]}")
            elif kind == "progress":
                event = message[2]
                if event.get("event") == "started" and self._timeout_s is not None:
                    worker.deadline = time.monotonic() + self._timeout_s
                if on_progress is not None and message[1] in busy:
                    on_progress(message[1], event)
            elif kind == "raise":
                busy.pop(message[1], None)
                worker.job = worker.deadline = None
                raise message[2]
            elif kind == "done":
                job_id, metrics = message[1], message[2]
                if busy.pop(job_id, None) is not None:
                    finished.append((job_id, metrics))
                worker.job = worker.deadline = None

    def _handle_death(self, worker: _Worker, busy: dict[int, _Worker], finished: list[tuple[int, MetricsLike]]) -> None:
        assert worker.process is not None
        worker.process.join(timeout=5)
        reason = _exit_reason(worker.process.exitcode)
        was_ready, job = worker.ready, worker.job
        _stop(worker, graceful=False)
        if not was_ready:
            # It never got to run our code: every replacement would die the same way.
            raise TrainingError(
                f"evaluation worker {worker.slot} ({worker.device or 'default device'}) exited "
                f"with {reason} before it started"
            )
        if job is not None:
            busy.pop(job.id, None)
            finished.append(
                (job.id, failed(
                    f"evaluation worker {worker.slot} ({worker.device or 'default device'}) "
                    f"died with {reason} while evaluating this candidate; the worker was replaced"))
            )  # fmt: skip


# ---------------------------------------------------------------- Ray


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor: 'ray' needs the ray package; install it with pip install 'pyevonas[ray]'") from exc
    return ray


def _ray_task(fn: EvaluateFn | None, job: EvalJob, device: str | None, queue: Any) -> MetricsLike:
    """Body of one Ray task (runs on a cluster node)."""
    evaluate = fn if fn is not None else _resolve(DEFAULT_EVALUATE)
    config = _pin(job.config, device)
    queue.put(
        (job.id, {"event": "started", "device": _device_of(config), "worker": socket.gethostname(),
                  "pid": os.getpid()})
    )  # fmt: skip

    def progress(event: dict[str, Any]) -> None:
        queue.put((job.id, dict(event)))

    try:
        return evaluate(job.chromosome, config, progress=progress)
    except PyevonasError as exc:
        return _RunError(exc)  # type: ignore[return-value]
    except Exception as exc:
        return failed(_describe(exc))


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


class RayEvaluator(Evaluator):
    """Evaluate candidates as Ray tasks, on a cluster or on a local Ray instance.

    On a cluster with GPUs each task asks for ``1 / workers`` of a GPU (Ray then gives it that GPU
    as ``cuda``); without GPUs each task takes one CPU. A task whose worker dies, or that raises,
    yields a failed result; Ray does not retry it.
    """

    def __init__(self, address: str | None = None, workers: int = 1, evaluate_fn: EvaluateFn | None = None) -> None:
        """See :func:`make_evaluator`."""
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

        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        options: dict[str, Any] = {"max_retries": 0}
        if gpus > 0:
            options.update(num_gpus=1.0 / workers, num_cpus=1)
            self._device: str | None = "cuda"
        else:
            options.update(num_cpus=1)
            self._device = None
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
        _check_ids(jobs)
        ray = self._ray
        refs = {self._remote.remote(self._fn, job, self._device, self._queue): job.id for job in jobs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                self._forward_progress(on_progress)
                for ref in done:
                    try:
                        metrics = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        metrics = failed(f"Ray task failed: {_describe(exc)}")
                    if isinstance(metrics, _RunError):
                        raise metrics.error
                    yield refs[ref], metrics
            self._forward_progress(on_progress)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _forward_progress(self, on_progress: ProgressCallback | None) -> None:
        size = self._queue.size()
        if size == 0:
            return
        for job_id, event in self._queue.get_nowait_batch(size):
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


__all__ = [
    "EvalJob",
    "Evaluator",
    "failed",
    "InProcessEvaluator",
    "MetricsLike",
    "PoolEvaluator",
    "RayEvaluator",
    "detect_devices",
    "make_evaluator",
]
