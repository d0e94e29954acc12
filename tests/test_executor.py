"""Tests of the evaluation backends: in-process, the local process pool (worker deaths), and Ray.

The backends are exercised with `fake_evaluate`, a module-level (hence picklable by name)
stand-in for `pyevonas.training.loop.evaluate` whose behaviour each job chooses through its first gene:
finish, raise, exit, be killed, segfault, hang, or wait for other jobs to start. One test runs the
real training on digits.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import pyevonas
from pyevonas.errors import ConfigError, DatasetError, TrainingError
from pyevonas.search.executors import EvalJob, InProcessEvaluator, PoolEvaluator, failed, make_evaluator
from pyevonas.training.config import Metrics

REPO_ROOT = Path(pyevonas.__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent


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


def _meet(folder: Path, name: str, peers: int) -> None:
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
    folder (see `_meet`); a job that meets writes `<units>.done` there once its `seconds` are over.
    """
    mode = chrom[0].get("mode", "ok")
    meet = chrom[0].get("meet")
    if meet is not None:
        _meet(Path(meet), str(chrom[0]["units"]), chrom[0]["peers"])
    time.sleep(chrom[0].get("seconds", 0.0))
    if meet is not None:
        (Path(meet) / f"{chrom[0]['units']}.done").write_text("")
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
        if progress is not None:
            progress({"epoch": epoch, "epochs": epochs, "val_accuracy": epoch / epochs, "loss": 1.0})
    payload = (lambda: None) if mode == "unpicklable" else os.environ.get("CUDA_VISIBLE_DEVICES")
    return FakeMetrics("ok", None, float(chrom[0].get("units", 0)), config.get("device"),
                       os.getpid(), payload)  # fmt: skip


def swallowing_evaluate(chrom: list[dict[str, Any]], config: dict[str, Any], progress: Any = None) -> Any:
    """Like train.evaluate: any exception, the progress callback's included, becomes a failure."""
    try:
        progress({"epoch": 1, "epochs": 1})
    except Exception as exc:
        return failed(str(exc))
    return FakeMetrics("ok", None, 1.0, None, os.getpid())


def _job(job_id: int, mode: str = "ok", seconds: float = 0.0, epochs: int = 2, **gene_extra: Any) -> EvalJob:
    gene = {"layer": "D", "units": job_id, "mode": mode, "seconds": seconds, **gene_extra}
    return EvalJob(id=job_id, chromosome=[gene], config={"epochs": epochs, "device": "cpu"})


def _collect(evaluator: Any, jobs: list[EvalJob]) -> tuple[dict[int, Any], dict[int, list[dict]]]:
    events: dict[int, list[dict]] = defaultdict(list)
    results: dict[int, Any] = {}
    for job_id, metrics in evaluator.evaluate(jobs, lambda i, e: events[i].append(e)):
        assert job_id not in results, "a job reported twice"
        results[job_id] = metrics
    return results, events


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "threads"}, "unknown kind 'threads'"),
        ({"kind": "pool", "workers": 0}, "workers: must be at least 1"),
        ({"kind": "pool", "devices": []}, "devices: expected a non-empty list"),
        ({"kind": "pool", "timeout_s": 0}, "timeout_s: must be positive"),
        ({"kind": "pool", "evaluate_fn": lambda c, cfg, progress=None: None}, "not a module-level"),
    ],
)
def test_make_evaluator_refuses_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_evaluator(**kwargs)


def test_ray_kind_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install 'pyevonas\[ray\]'"):
        make_evaluator("ray")


# ---------------------------------------------------------------- in-process


def test_inprocess_yields_every_job_in_order_with_progress() -> None:
    with make_evaluator(evaluate_fn=fake_evaluate) as evaluator:
        assert isinstance(evaluator, InProcessEvaluator)
        results, events = _collect(evaluator, [_job(1), _job(2, "raise"), _job(3, epochs=3)])
    assert list(results) == [1, 2, 3]
    assert results[1].status == "ok" and results[1].fitness == 1.0 and results[1].pid == os.getpid()
    assert isinstance(results[2], Metrics)
    assert results[2].status == "failed" and results[2].error == "RuntimeError: bad candidate"
    assert results[2].to_dict()["fitness"] == 0.0
    assert events[3][0] == {"event": "started", "device": "cpu", "worker": 0, "pid": os.getpid()}
    assert [e["epoch"] for e in events[3][1:]] == [1, 2, 3]
    assert [e.get("epoch") for e in events[2]] == [None]  # started, then failed


def test_inprocess_pins_the_device() -> None:
    evaluator = make_evaluator(devices=["cuda:3"], evaluate_fn=fake_evaluate)
    [(_, metrics)] = list(evaluator.evaluate([_job(1)]))
    assert metrics.device == "cuda:3"


def test_inprocess_progress_callback_errors_reach_the_caller() -> None:
    def broken(job_id: int, event: dict) -> None:
        if "epoch" in event:
            raise KeyError("ui bug")

    evaluator = make_evaluator(evaluate_fn=swallowing_evaluate)
    with pytest.raises(KeyError, match="ui bug"):
        list(evaluator.evaluate([_job(1)], broken))


@pytest.mark.parametrize("kind", ["inprocess", pytest.param("pool", marks=pytest.mark.slow)])
def test_run_level_errors_are_raised_not_swallowed(kind: str) -> None:
    with make_evaluator(kind, evaluate_fn=fake_evaluate) as evaluator:
        with pytest.raises(DatasetError, match="no files in /nowhere"):
            list(evaluator.evaluate([_job(1, "dataset"), _job(2, seconds=30)]))
        # The backend stays usable once the cause is fixed.
        results, _ = _collect(evaluator, [_job(3)])
    assert results[3].status == "ok"


def test_duplicate_job_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        list(make_evaluator(evaluate_fn=fake_evaluate).evaluate([_job(1), _job(1)]))


# ---------------------------------------------------------------- process pool


@pytest.fixture(scope="module")
def pool() -> Any:
    """Two workers, one per (fake) device; spawned once for the module's pool tests."""
    with make_evaluator("pool", workers=1, devices=["dev:a", "dev:b"], evaluate_fn=fake_evaluate) as p:
        yield p


@pytest.mark.slow
def test_pool_runs_jobs_on_pinned_devices_and_forwards_progress(pool: PoolEvaluator) -> None:
    assert pool.size == 2
    results, events = _collect(pool, [_job(k, seconds=0.2) for k in range(1, 5)])
    assert sorted(results) == [1, 2, 3, 4]
    assert all(m.status == "ok" for m in results.values())
    assert {m.fitness for m in results.values()} == {1.0, 2.0, 3.0, 4.0}
    assert {m.device for m in results.values()} == {"dev:a", "dev:b"}
    assert os.getpid() not in {m.pid for m in results.values()}
    for job_id, metrics in results.items():
        started, *epochs = events[job_id]
        assert started["event"] == "started" and started["pid"] == metrics.pid
        assert started["device"] == metrics.device
        assert [e["epoch"] for e in epochs] == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize(("visible", "expected"), [(None, {"0", "2"}), ("5,6,7", {"5", "7"})])
def test_pool_pins_each_worker_to_its_gpu_by_visibility(
    monkeypatch: pytest.MonkeyPatch, visible: str | None, expected: set[str]
) -> None:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    # fake_evaluate never touches CUDA: this checks what each worker would see.
    with make_evaluator("pool", devices=["cuda:0", "cuda:2"], evaluate_fn=fake_evaluate) as gpus:
        results, events = _collect(gpus, [_job(1, seconds=0.3), _job(2, seconds=0.3)])
    assert {m.payload for m in results.values()} == expected
    assert {m.device for m in results.values()} == {"cuda:0"}  # the only GPU each one sees
    assert {events[k][0]["device"] for k in results} == {"cuda:0", "cuda:2"}


@pytest.mark.slow
def test_pool_marks_dead_workers_candidates_failed_and_goes_on(pool: PoolEvaluator) -> None:
    jobs = [
        _job(1), _job(2, "exit"), _job(3, "kill"), _job(4, "segv"), _job(5, "raise"),
        _job(6, "unpicklable"), _job(7), _job(8),
    ]  # fmt: skip
    results, _ = _collect(pool, jobs)
    assert sorted(results) == list(range(1, 9))
    assert [results[k].status for k in (1, 7, 8)] == ["ok", "ok", "ok"]
    errors = {k: results[k].error for k in (2, 3, 4, 5, 6)}
    assert all(results[k].status == "failed" for k in errors)
    assert "died with exit code 3" in errors[2] and "replaced" in errors[2]
    assert "died with signal SIGKILL" in errors[3]
    assert "died with signal SIGSEGV" in errors[4]
    assert errors[5] == "RuntimeError: bad candidate"
    assert errors[6].startswith("result not sendable")
    # The replaced workers serve the next batch.
    again, _ = _collect(pool, [_job(11), _job(12)])
    assert [again[k].status for k in (11, 12)] == ["ok", "ok"]


@pytest.mark.slow
def test_pool_runs_workers_in_parallel(pool: PoolEvaluator, tmp_path: Path) -> None:
    # Each pair of jobs can only finish if both of its jobs run at the same time.
    pairs = [tmp_path / "first", tmp_path / "second"]
    for folder in pairs:
        folder.mkdir()
    jobs = [_job(k, meet=str(pairs[(k - 1) // 2]), peers=2) for k in range(1, 5)]
    results, _ = _collect(pool, jobs)
    assert sorted(results) == [1, 2, 3, 4]
    assert all(m.status == "ok" for m in results.values()), [m.error for m in results.values()]
    for folder, pair in zip(pairs, [(1, 2), (3, 4)], strict=True):  # each pair ran on both workers
        assert len({(folder / str(k)).read_text() for k in pair}) == 2


@pytest.mark.slow
def test_pool_stopped_early_kills_running_jobs_and_stays_clean(pool: PoolEvaluator, tmp_path: Path) -> None:
    # Job 1 returns once job 2 has started too; job 2 would then take 60 s.
    iterator = pool.evaluate([_job(1, meet=str(tmp_path), peers=2), _job(2, seconds=60, meet=str(tmp_path), peers=2)])
    job_id, metrics = next(iterator)
    assert job_id == 1 and metrics.status == "ok", metrics.error
    worker_of_job_2 = int((tmp_path / "2").read_text())
    assert not _gone(worker_of_job_2)
    iterator.close()
    # Closing killed the running job's worker instead of waiting for the job to finish.
    assert _gone(worker_of_job_2)
    assert not (tmp_path / "2.done").exists()
    results, _ = _collect(pool, [_job(3), _job(4)])
    assert sorted(results) == [3, 4]  # no stale result of job 2


@pytest.mark.slow
def test_pool_time_limit_fails_the_slow_candidate() -> None:
    with make_evaluator("pool", workers=1, evaluate_fn=fake_evaluate, timeout_s=1.5) as slow:
        results, _ = _collect(slow, [_job(1, seconds=60), _job(2)])
    assert results[1].status == "failed" and "time limit of 1.5 s" in results[1].error
    assert results[2].status == "ok"


def _unloadable(chrom: Any, config: Any, progress: Any = None) -> Any:
    raise AssertionError("never called")


@pytest.mark.slow
def test_pool_that_cannot_load_evaluate_fn_raises() -> None:
    _unloadable.__module__ = "pyevonas_no_such_module"
    with (
        PoolEvaluator(1, None, _unloadable) as broken,
        pytest.raises(TrainingError, match=r"could not start.*pyevonas_no_such_module"),
    ):
        list(broken.evaluate([_job(1)]))


_ORPHAN_SCRIPT = """
import sys
sys.path[:0] = sys.argv[1:3]
from test_executor import _job, fake_evaluate
from pyevonas.search.executors import make_evaluator
evaluator = make_evaluator("pool", workers=1, evaluate_fn=fake_evaluate)
for _ in evaluator.evaluate([_job(1, seconds=120)], lambda i, e: print(e["pid"], flush=True)):
    pass
"""


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie nobody reaped counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_the_search_process_is_killed() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(TESTS_DIR), str(REPO_ROOT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), proc.stderr.read() if proc.stderr else line
        worker_pid = int(line)
        assert not _gone(worker_pid)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while not _gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker_pid), "an orphaned worker kept training after the search was killed"


# ---------------------------------------------------------------- real training


def _train_available() -> bool:
    return importlib.util.find_spec("torch") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _train_available(), reason="needs the train extra (torch)")
@pytest.mark.parametrize("kind", ["inprocess", "pool"])
def test_real_training_on_digits_for_one_epoch(kind: str) -> None:
    from pyevonas.training.config import TrainConfig

    chrom = [
        {"layer": "Rescaling", "f_name": "Rescaling", "scale": 1 / 255},
        {"layer": "C_2D", "f_name": "Conv2D", "filters": 8, "kernel_size": 3, "strides": 1,
         "padding": "same"},
        {"layer": "R_2D", "f_name": "ReLU"},
        {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D"},
        {"layer": "D", "f_name": "Dense", "units": 16, "activation": "relu"},
    ]  # fmt: skip
    config = TrainConfig(dataset="digits", epochs=1, device="cpu", seed=0, num_workers=1)
    with make_evaluator(kind, workers=1) as evaluator:
        results, events = _collect(evaluator, [EvalJob(id=7, chromosome=chrom, config=config)])
    metrics = results[7]
    assert metrics.status == "ok", metrics.error
    assert 0.0 <= metrics.fitness <= 1.0
    assert len(metrics.val_accuracy_per_epoch) == 1
    assert events[7][0]["event"] == "started"
    assert [e["epoch"] for e in events[7][1:]] == [1]


def _cuda_available() -> bool:
    if not _train_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
def test_pool_shares_one_gpu_between_workers() -> None:
    from pyevonas.training.config import TrainConfig

    chrom = [
        {"layer": "C_2D", "f_name": "Conv2D", "filters": 16, "kernel_size": 3, "strides": 1,
         "padding": "same"},
        {"layer": "BN_2D", "f_name": "BatchNormalization"},
        {"layer": "R_2D", "f_name": "ReLU"},
        {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D"},
    ]  # fmt: skip
    config = TrainConfig(dataset="digits", epochs=2, device="auto", seed=0)
    jobs = [EvalJob(id=k, chromosome=chrom, config=config) for k in range(4)]
    with make_evaluator("pool", workers=2, devices=["cuda:0"]) as evaluator:
        results, events = _collect(evaluator, jobs)
    assert sorted(results) == [0, 1, 2, 3]
    for job_id, metrics in results.items():
        assert metrics.status == "ok", metrics.error
        assert str(metrics.device).startswith("cuda")
        assert events[job_id][0]["device"] == "cuda:0"
    assert len({events[k][0]["pid"] for k in results}) == 2  # both workers trained


# ---------------------------------------------------------------- Ray


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        # The Ray workers import this module's fake_evaluate and pyevonas by name.
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS_DIR)])}},
    )
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_on_a_local_cpu_instance(local_ray: Any) -> None:
    with make_evaluator("ray", evaluate_fn=fake_evaluate) as evaluator:
        jobs = [_job(1, epochs=3), _job(2, "raise"), _job(3, "kill"), _job(4)]
        results, events = _collect(evaluator, jobs)
    assert local_ray.is_initialized()  # it did not shut down a Ray it did not start
    assert sorted(results) == [1, 2, 3, 4]
    assert results[1].status == "ok" and results[1].fitness == 1.0
    assert results[4].status == "ok" and results[1].pid != os.getpid()
    assert results[2].status == "failed" and results[2].error == "RuntimeError: bad candidate"
    assert results[3].status == "failed" and "Ray task failed" in results[3].error
    assert events[1][0]["event"] == "started"
    assert [e["epoch"] for e in events[1][1:]] == [1, 2, 3]
    with (
        make_evaluator("ray", evaluate_fn=fake_evaluate) as evaluator,
        pytest.raises(DatasetError, match="no files in /nowhere"),
    ):
        list(evaluator.evaluate([_job(5, "dataset")]))
