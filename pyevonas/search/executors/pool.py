"""The process-pool evaluation backend: one worker process per slot, each pinned to a device."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import re
import signal
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from pyevonas.errors import PyevonasError, TrainingError
from pyevonas.search.executors._shared import (
    check_ids,
    describe_error,
    device_of,
    function_ref,
    pin_device,
    resolve_function,
    timeout_reason,
)
from pyevonas.search.executors.base import (
    EvalJob,
    EvaluateFn,
    Evaluator,
    MetricsLike,
    ProgressCallback,
    failed,
)

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
            fn = resolve_function(fn_ref)
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
    config = pin_device(job.config, local_device)
    # The event names the device as the user knows it (cuda:3), not as this process sees it.
    conn.send(("progress", job.id, {"event": "started", "device": device or device_of(config),
                                    "worker": slot, "pid": os.getpid()}))  # fmt: skip

    def progress(event: dict[str, Any], job_id: int = job.id) -> None:
        conn.send(("progress", job_id, dict(event)))

    try:
        metrics: MetricsLike = fn(job.chromosome, config, progress=progress)
    except PyevonasError as exc:
        try:
            payload = pickle.dumps(("raise", job.id, exc))
        except Exception:
            payload = pickle.dumps(("raise", job.id, TrainingError(describe_error(exc))))
        conn.send_bytes(payload)
        return
    except Exception as exc:
        metrics = failed(describe_error(exc))
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
        self._fn_ref = function_ref(evaluate_fn)
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
        check_ids(jobs)
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
                reason = timeout_reason(self._timeout_s or 0.0)
                finished.append((job.id, failed(f"{reason} (its worker was stopped)")))

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


__all__ = ["PoolEvaluator"]
