"""The stand-in for training that the executor tests give every backend.

:func:`fake_evaluate` is module-level, so the process pool imports it by name in its workers and Ray
pickles it by reference (the Ray workers of the ``local_ray`` fixture have tests/ on their path).
What it does is chosen by each job's first gene (see :func:`make_job`): finish, raise, exit, be
killed, segfault, swallow a progress error, return something unpicklable, sleep, or wait for other
jobs to start.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pyevonas.errors import DatasetError
from pyevonas.search.executors import EvalJob, failed


@dataclasses.dataclass(frozen=True)
class FakeMetrics:
    """The fields of `pyevonas.training.config.Metrics` the loop reads, plus where the job ran."""

    status: str
    error: str | None
    fitness: float
    device: str | None
    pid: int
    payload: Any = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def meet(folder: Path, name: str, peers: int) -> None:
    """Sign in to `folder` and wait until `peers` jobs have signed in: only jobs that run at the
    same time can all get past this (a serial backend leaves the first one waiting, then failed)."""
    (folder / name).write_text(str(os.getpid()))
    for _ in range(600):
        if sum(1 for p in folder.iterdir() if p.suffix != ".done") >= peers:
            return
        time.sleep(0.05)
    raise RuntimeError(f"job {name} waited in {folder} for {peers} peers in vain")


def fake_evaluate(chrom: list[dict[str, Any]], config: dict[str, Any], progress: Any = None) -> Any:
    """Behave as the job's first gene says (`mode`), reporting one progress event per epoch.

    With `meet` (a folder) and `peers`, the job first waits for that many jobs to reach the same
    folder (see :func:`meet`); a job that meets writes `<units>.done` there once its `seconds` are
    over. Mode `swallow` turns an exception of the progress callback into a failed result, as
    `pyevonas.training.loop.evaluate` does with any exception.
    """
    mode = chrom[0].get("mode", "ok")
    folder = chrom[0].get("meet")
    if folder is not None:
        meet(Path(folder), str(chrom[0]["units"]), chrom[0]["peers"])
    time.sleep(chrom[0].get("seconds", 0.0))
    if folder is not None:
        (Path(folder) / f"{chrom[0]['units']}.done").write_text("")
    if mode == "raise":
        raise RuntimeError("bad candidate")
    if mode == "dataset":
        raise DatasetError("dataset cifar10: no files in /nowhere")
    if mode == "exit":
        os._exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "segv":
        ctypes.string_at(0)
    epochs = int(config.get("epochs", 2))
    for epoch in range(1, epochs + 1):
        time.sleep(chrom[0].get("epoch_seconds", 0.0))
        if progress is not None:
            event = {"epoch": epoch, "epochs": epochs, "val_accuracy": epoch / epochs, "loss": 1.0}
            if mode != "swallow":
                progress(event)
                continue
            try:
                progress(event)
            except Exception as exc:
                return failed(str(exc))
    payload = (lambda: None) if mode == "unpicklable" else os.environ.get("CUDA_VISIBLE_DEVICES")
    return FakeMetrics("ok", None, float(chrom[0].get("units", 0)), config.get("device"),
                       os.getpid(), payload)  # fmt: skip


def make_job(job_id: int, mode: str = "ok", seconds: float = 0.0, epochs: int = 2, **gene_extra: Any) -> EvalJob:
    """A job for :func:`fake_evaluate`; its fitness, when it succeeds, is its id."""
    gene = {"layer": "D", "units": job_id, "mode": mode, "seconds": seconds, **gene_extra}
    return EvalJob(id=job_id, chromosome=[gene], config={"epochs": epochs, "device": "cpu"})


def collect(evaluator: Any, jobs: list[EvalJob]) -> tuple[dict[int, Any], dict[int, list[dict[str, Any]]]]:
    """Run a batch: its results and progress events by job id, checking no job reports twice."""
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    results: dict[int, Any] = {}
    for job_id, metrics in evaluator.evaluate(jobs, lambda i, e: events[i].append(e)):
        assert job_id not in results, "a job reported twice"
        results[job_id] = metrics
    return results, events
