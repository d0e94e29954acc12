"""What each evaluation backend does beyond the contract they share: in-process order and device
pinning, the local process pool (devices, worker deaths, parallelism, time limits, orphans) and Ray.

The contract itself (every job's result once under its id, failures as failed results, run-level
errors raised, progress, stopping early) runs against every backend in test_executor_contract.py.
Training is `executor_fakes.fake_evaluate`, whose behaviour each job chooses through its first gene.
One test runs the real training on digits.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from executor_fakes import collect, fake_evaluate, make_job

import pyevonas
from pyevonas.errors import ConfigError, TrainingError
from pyevonas.search.executors import EvalJob, InProcessEvaluator, PoolEvaluator, make_evaluator

REPO_ROOT = Path(pyevonas.__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent


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


def test_inprocess_runs_the_jobs_in_order_in_this_process() -> None:
    with make_evaluator(evaluate_fn=fake_evaluate) as evaluator:
        assert isinstance(evaluator, InProcessEvaluator)
        results, events = collect(evaluator, [make_job(3), make_job(1, "raise"), make_job(2)])
    assert list(results) == [3, 1, 2]
    assert results[3].pid == results[2].pid == os.getpid()
    assert events[3][0] == {"event": "started", "device": "cpu", "worker": 0, "pid": os.getpid()}


def test_inprocess_pins_the_device() -> None:
    evaluator = make_evaluator(devices=["cuda:3"], evaluate_fn=fake_evaluate)
    [(_, metrics)] = list(evaluator.evaluate([make_job(1)]))
    assert metrics.device == "cuda:3"


# ---------------------------------------------------------------- process pool


@pytest.fixture(scope="module")
def pool() -> Any:
    """Two workers, one per (fake) device; spawned once for the module's pool tests."""
    with make_evaluator("pool", workers=1, devices=["dev:a", "dev:b"], evaluate_fn=fake_evaluate) as p:
        yield p


@pytest.mark.slow
def test_pool_runs_jobs_on_pinned_devices_and_forwards_progress(pool: PoolEvaluator) -> None:
    assert pool.size == 2
    results, events = collect(pool, [make_job(k, seconds=0.2) for k in range(1, 5)])
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
        results, events = collect(gpus, [make_job(1, seconds=0.3), make_job(2, seconds=0.3)])
    assert {m.payload for m in results.values()} == expected
    assert {m.device for m in results.values()} == {"cuda:0"}  # the only GPU each one sees
    assert {events[k][0]["device"] for k in results} == {"cuda:0", "cuda:2"}


@pytest.mark.slow
def test_pool_says_how_a_worker_died_or_why_a_result_did_not_come_back(pool: PoolEvaluator) -> None:
    # That a death fails only its candidate and the pool goes on is the contract's (test_executor_contract.py).
    jobs = [make_job(1), make_job(2, "exit"), make_job(3, "kill"), make_job(4, "segv"), make_job(5, "unpicklable")]
    results, _ = collect(pool, jobs)
    assert results[1].status == "ok"
    errors = {k: results[k].error for k in (2, 3, 4, 5)}
    assert all(results[k].status == "failed" for k in errors)
    assert "died with exit code 3" in errors[2] and "replaced" in errors[2]
    assert "died with signal SIGKILL" in errors[3]
    assert "died with signal SIGSEGV" in errors[4]
    assert errors[5].startswith("result not sendable")


@pytest.mark.slow
def test_pool_runs_workers_in_parallel(pool: PoolEvaluator, tmp_path: Path) -> None:
    # Each pair of jobs can only finish if both of its jobs run at the same time.
    pairs = [tmp_path / "first", tmp_path / "second"]
    for folder in pairs:
        folder.mkdir()
    jobs = [make_job(k, meet=str(pairs[(k - 1) // 2]), peers=2) for k in range(1, 5)]
    results, _ = collect(pool, jobs)
    assert sorted(results) == [1, 2, 3, 4]
    assert all(m.status == "ok" for m in results.values()), [m.error for m in results.values()]
    for folder, pair in zip(pairs, [(1, 2), (3, 4)], strict=True):  # each pair ran on both workers
        assert len({(folder / str(k)).read_text() for k in pair}) == 2


@pytest.mark.slow
def test_pool_stopped_early_kills_the_running_jobs_worker(pool: PoolEvaluator, tmp_path: Path) -> None:
    # Job 1 returns once job 2 has started too; job 2 would then take 60 s. (That nothing of job 2
    # comes back is the contract's.)
    jobs = [make_job(1, meet=str(tmp_path), peers=2), make_job(2, seconds=60, meet=str(tmp_path), peers=2)]
    iterator = pool.evaluate(jobs)
    job_id, metrics = next(iterator)
    assert job_id == 1 and metrics.status == "ok", metrics.error
    worker_of_job_2 = int((tmp_path / "2").read_text())
    assert not _gone(worker_of_job_2)
    iterator.close()
    # Closing killed the running job's worker instead of waiting for the job to finish.
    assert _gone(worker_of_job_2)


@pytest.mark.slow
def test_pool_time_limit_fails_the_slow_candidate() -> None:
    with make_evaluator("pool", workers=1, evaluate_fn=fake_evaluate, timeout_s=1.5) as slow:
        results, _ = collect(slow, [make_job(1, seconds=60), make_job(2)])
    assert results[1].status == "failed" and "timed out after 1.5 s" in results[1].error
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
        list(broken.evaluate([make_job(1)]))


_ORPHAN_SCRIPT = """
import sys
sys.path[:0] = sys.argv[1:3]
from executor_fakes import fake_evaluate, make_job
from pyevonas.search.executors import make_evaluator
evaluator = make_evaluator("pool", workers=1, evaluate_fn=fake_evaluate)
for _ in evaluator.evaluate([make_job(1, seconds=120)], lambda i, e: print(e["pid"], flush=True)):
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
        results, events = collect(evaluator, [EvalJob(id=7, chromosome=chrom, config=config)])
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
        results, events = collect(evaluator, jobs)
    assert sorted(results) == [0, 1, 2, 3]
    for job_id, metrics in results.items():
        assert metrics.status == "ok", metrics.error
        assert str(metrics.device).startswith("cuda")
        assert events[job_id][0]["device"] == "cuda:0"
    assert len({events[k][0]["pid"] for k in results}) == 2  # both workers trained


# ---------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_runs_tasks_elsewhere_names_a_dead_task_and_leaves_the_ray_it_found(local_ray: Any) -> None:
    with make_evaluator("ray", evaluate_fn=fake_evaluate) as evaluator:
        results, _ = collect(evaluator, [make_job(1), make_job(2, "kill")])
    assert local_ray.is_initialized()  # it did not shut down a Ray it did not start
    assert results[1].status == "ok" and results[1].pid != os.getpid()
    assert results[2].status == "failed" and "Ray task failed" in results[2].error
