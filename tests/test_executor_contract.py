"""The contract of ``pyevonas.search.executors.base``, checked against every evaluation backend.

Each test runs once per backend through the ``kind`` fixture: in this process (the fast tier), a
local process pool and a local one-CPU Ray (``slow``: they start processes). Training is
:func:`executor_fakes.fake_evaluate`; what each backend does beyond the contract (device pinning,
worker deaths' messages, time limits, parallelism) is in test_executor.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_fakes import collect, fake_evaluate, make_job

from pyevonas.errors import DatasetError
from pyevonas.search.executors import (
    Evaluator,
    InProcessEvaluator,
    PoolEvaluator,
    RayEvaluator,
    make_evaluator,
)
from pyevonas.training.config import Metrics

CLASSES = {"inprocess": InProcessEvaluator, "pool": PoolEvaluator, "ray": RayEvaluator}
# Two workers for the pool, so that a job can still run when the one before it returns.
WORKERS = {"inprocess": 1, "pool": 2, "ray": 1}
SLOW = pytest.mark.slow
WITH_WORKERS = [pytest.param("pool", marks=SLOW), pytest.param("ray", marks=SLOW)]


@pytest.fixture(scope="module", params=["inprocess", *WITH_WORKERS])
def kind(request: pytest.FixtureRequest) -> str:
    """The backend under test (Ray's tests start a local instance for the module)."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return str(request.param)


@pytest.fixture(scope="module")
def evaluator(kind: str) -> Iterator[Evaluator]:
    """One evaluator per backend, shared by the module's tests: it must serve batch after batch."""
    with make_evaluator(kind, workers=WORKERS[kind], evaluate_fn=fake_evaluate) as built:
        yield built


def test_make_evaluator_builds_the_backend_and_closing_is_idempotent(kind: str) -> None:
    with make_evaluator(kind, evaluate_fn=fake_evaluate) as fresh:
        assert type(fresh) is CLASSES[kind] and isinstance(fresh, Evaluator)
        results, _ = collect(fresh, [make_job(1)])
        assert results[1].status == "ok"
    fresh.close()  # a second close does nothing


def test_every_job_yields_its_own_result_once(evaluator: Evaluator) -> None:
    # Ids out of order: each result must come back under its own job's id (fitness == id).
    jobs = [make_job(5), make_job(2, epochs=3), make_job(9, epochs=1)]
    results, _ = collect(evaluator, jobs)  # collect fails on a second result for a job
    assert sorted(results) == [2, 5, 9]
    assert all(results[k].status == "ok" and results[k].fitness == float(k) for k in results)


def test_an_empty_batch_yields_nothing(evaluator: Evaluator) -> None:
    assert list(evaluator.evaluate([])) == []


def test_duplicate_job_ids_are_refused(evaluator: Evaluator) -> None:
    with pytest.raises(ValueError, match="unique"):
        list(evaluator.evaluate([make_job(1), make_job(1)]))


def test_work_starts_when_the_results_are_iterated(evaluator: Evaluator, tmp_path: Path) -> None:
    results = evaluator.evaluate([make_job(1, meet=str(tmp_path), peers=1)])
    time.sleep(0.2)
    assert not (tmp_path / "1").exists()
    assert [job_id for job_id, _ in results] == [1]
    assert (tmp_path / "1.done").exists()


def test_progress_starts_with_where_the_job_runs_then_the_training_events(evaluator: Evaluator) -> None:
    threads: set[int] = set()
    events: dict[int, list[dict[str, Any]]] = {}

    def on_progress(job_id: int, event: dict[str, Any]) -> None:
        threads.add(threading.get_ident())
        events.setdefault(job_id, []).append(event)

    results = dict(evaluator.evaluate([make_job(1, epochs=3), make_job(2, epochs=1)], on_progress))
    assert threads == {threading.get_ident()}  # always in the thread that iterates
    for job_id, epochs in ((1, 3), (2, 1)):
        started, *training = events[job_id]
        assert set(started) == {"event", "device", "worker", "pid"} and started["event"] == "started"
        assert (started["pid"], started["device"]) == (results[job_id].pid, results[job_id].device)
        assert training == [
            {"epoch": e, "epochs": epochs, "val_accuracy": e / epochs, "loss": 1.0} for e in range(1, epochs + 1)
        ]


def test_a_candidate_that_raises_is_a_failed_result_not_an_error(evaluator: Evaluator) -> None:
    results, events = collect(evaluator, [make_job(1), make_job(2, "raise"), make_job(3)])
    assert sorted(results) == [1, 2, 3]
    assert results[1].status == results[3].status == "ok"
    failure = results[2]
    assert isinstance(failure, Metrics)
    assert (failure.status, failure.error) == ("failed", "RuntimeError: bad candidate")
    assert failure.to_dict()["fitness"] == 0.0
    assert [e["event"] for e in events[2]] == ["started"]  # started, then failed


def test_run_level_errors_are_raised_and_the_backend_stays_usable(evaluator: Evaluator) -> None:
    with pytest.raises(DatasetError, match="no files in /nowhere"):
        list(evaluator.evaluate([make_job(1, "dataset"), make_job(2, seconds=30)]))
    # Once the cause is fixed, the same evaluator goes on.
    results, _ = collect(evaluator, [make_job(3)])
    assert results[3].status == "ok"


def test_a_progress_callback_error_reaches_the_caller(evaluator: Evaluator) -> None:
    def broken(job_id: int, event: dict[str, Any]) -> None:
        if "epoch" in event:
            raise KeyError("ui bug")

    # The training function swallows every exception (as the real one does): the caller still
    # gets the callback's own error, not a failed candidate.
    with pytest.raises(KeyError, match="ui bug"):
        list(evaluator.evaluate([make_job(1, "swallow")], broken))
    results, _ = collect(evaluator, [make_job(2)])
    assert results[2].status == "ok"


def test_stopping_early_cancels_the_rest_and_leaves_nothing_behind(evaluator: Evaluator, tmp_path: Path) -> None:
    # Job 1 returns at once; job 2 (if it starts at all) would take 2 s, then sign off.
    quick, slow = make_job(1, meet=str(tmp_path), peers=1), make_job(2, seconds=2, meet=str(tmp_path), peers=1)
    iterator = evaluator.evaluate([quick, slow])
    job_id, metrics = next(iterator)
    assert (job_id, metrics.status) == (1, "ok")
    deadline = time.monotonic() + 0.5  # a backend with a free worker starts job 2 meanwhile
    while not (tmp_path / "2").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    running = (tmp_path / "2").exists()
    started = time.monotonic()
    iterator.close()
    assert time.monotonic() - started < 2  # it did not wait for job 2
    if running:
        time.sleep(3)  # job 2 would have finished by now
    assert not (tmp_path / "2.done").exists()
    results, _ = collect(evaluator, [make_job(3), make_job(4)])
    assert sorted(results) == [3, 4]  # and no stale result of job 2 comes with the next batch


@pytest.mark.parametrize("kind", WITH_WORKERS, indirect=True)
def test_a_dying_worker_fails_only_its_candidate(evaluator: Evaluator) -> None:
    # In this process a dying candidate takes the search with it: only backends with workers.
    results, _ = collect(evaluator, [make_job(1), make_job(2, "exit"), make_job(3, "kill"), make_job(4)])
    assert sorted(results) == [1, 2, 3, 4]
    assert results[1].status == results[4].status == "ok"
    for k in (2, 3):
        assert results[k].status == "failed" and results[k].error and results[k].fitness == 0.0
    again, _ = collect(evaluator, [make_job(5), make_job(6)])
    assert [again[k].status for k in (5, 6)] == ["ok", "ok"]
