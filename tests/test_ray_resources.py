"""Ray as a cluster user needs it (issue 26): bounded retries when a worker or node is lost,
resources that fit the cluster (``--cpus-per-candidate``, ``--gpus-per-candidate``; a run on the
CPU never asks for a GPU), the code shipped to the nodes (``ray_code``, ``ray_runtime_env``) and
halving checkpoints carried through Ray's object store instead of a shared folder.

The option tests need no Ray; the retry and checkpoint tests run on a local Ray instance (slow
tier). tests/test_ray_cluster.py runs whole searches on a cluster whose nodes lack pyevonas.
"""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path
from typing import Any

import pytest
from executor_fakes import FakeMetrics, collect, fake_evaluate, make_job

from pyevonas.errors import ConfigError
from pyevonas.search.config import RunConfig, check_ray_code
from pyevonas.search.executors import EvalJob, make_evaluator
from pyevonas.search.executors.ray import DEFAULT_RETRIES, runtime_env, task_options


@pytest.mark.parametrize(
    ("cluster_gpus", "workers", "device", "gpus", "expected_gpus", "pinned"),
    [
        (0.0, 2, "auto", None, 0.0, None),  # no GPU in the cluster: CPU tasks
        (4.0, 2, "auto", None, 0.5, "cuda"),  # the paper's sharing: workers per GPU
        (4.0, 4, "cuda:1", None, 0.25, "cuda"),
        (4.0, 2, "cpu", None, 0.0, None),  # a CPU run never waits for a GPU
        (4.0, 2, None, None, 0.5, "cuda"),
        (4.0, 2, "cpu", 1.0, 1.0, "cuda"),  # asked for explicitly
        (4.0, 2, "auto", 0.0, 0.0, None),
    ],
)
def test_task_options(
    cluster_gpus: float, workers: int, device: str | None, gpus: float | None, expected_gpus: float, pinned: str | None
) -> None:
    options, pin = task_options(cluster_gpus, workers, device, 2.0, gpus, 5)
    assert options == {"max_retries": 5, "num_cpus": 2.0, "num_gpus": expected_gpus}
    assert pin == pinned


def test_gpus_on_a_cluster_without_gpus_are_refused() -> None:
    with pytest.raises(ConfigError, match="no GPU"):
        task_options(0.0, 1, "cuda", 1.0, 0.5)


def test_the_settings_and_their_bounds() -> None:
    config = RunConfig.resolve(None, {"max_retries": 1, "cpus_per_candidate": 2, "gpus_per_candidate": 0.5})
    assert (config.max_retries, config.cpus_per_candidate, config.gpus_per_candidate) == (1, 2.0, 0.5)
    assert RunConfig.resolve(None).max_retries == DEFAULT_RETRIES
    for bad in ({"max_retries": -1}, {"max_retries": 10**6}, {"cpus_per_candidate": 0}, {"gpus_per_candidate": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RunConfig.resolve(None, bad)


def die_once(chromosome: list[dict[str, Any]], config: dict[str, Any], progress: Any = None) -> Any:
    """SIGKILL this worker the first time (a lost worker), succeed the second."""
    marker = Path(chromosome[0]["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return FakeMetrics("ok", None, 1.0, config.get("device"), os.getpid())


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 2])
def test_a_lost_worker_is_retried_a_bounded_number_of_times(
    retries: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("local_ray")
    job = EvalJob(id=1, chromosome=[{"layer": "D", "marker": str(tmp_path / "died")}], config={"device": "cpu"})
    with make_evaluator("ray", evaluate_fn=die_once, ray_resources={"max_retries": retries}) as evaluator:
        results, _ = collect(evaluator, [job])
    assert (tmp_path / "died").exists()  # the first worker was killed
    if retries:
        assert results[1].status == "ok", results[1].error
        assert results[1].pid != int((tmp_path / "died").read_text())  # on another worker
    else:
        assert results[1].status == "failed" and "Ray task failed" in results[1].error


def test_the_package_travels_with_the_job_unless_the_nodes_have_it() -> None:
    import pyevonas

    here = str(Path(pyevonas.__file__).parent)
    env = runtime_env("package")
    assert env is not None and env["py_modules"] == [here] and "__pycache__" in env["excludes"]
    assert runtime_env("installed") is None
    own = {"pip": ["torch"], "py_modules": ["s3://bucket/mine.zip"], "env_vars": {"A": "1"}}
    merged = runtime_env("package", own)
    assert merged is not None
    assert merged["py_modules"] == ["s3://bucket/mine.zip", here] and merged["pip"] == ["torch"]
    assert runtime_env("installed", own) == own
    with pytest.raises(ConfigError, match="py_modules must be a list"):
        runtime_env("package", {"py_modules": "mine"})


def test_a_bad_ray_code_is_refused() -> None:
    with pytest.raises(ValueError, match="expected package .* or installed"):
        check_ray_code("everything")
    with pytest.raises(ConfigError, match="expected package"):
        runtime_env("pyevonas.whl")


def test_ray_code_and_runtime_env_are_execution_settings() -> None:
    config = RunConfig.resolve(None, {"ray_code": "installed", "ray_runtime_env": {"pip": ["torch"]}})
    assert config.ray_code == "installed" and config.ray_runtime_env == {"pip": ["torch"]}
    assert RunConfig.resolve(None).ray_code == "package"
    with pytest.raises(ValueError, match="ray_code"):
        RunConfig.resolve(None, {"ray_code": "sometimes"})
    with pytest.raises(ValueError, match="ray_runtime_env"):
        RunConfig.resolve(None, {"ray_runtime_env": {"no_such_field": 1}})


def continue_training(chromosome: list[dict[str, Any]], config: dict[str, Any], progress: Any = None) -> Any:
    """A rung of halving as the task sees it: a checkpoint path of its own (never the driver's
    folder), holding what the driver's file held; the training appends its rung to it."""
    path = Path(config["checkpoint"])
    driver = Path(chromosome[0]["driver"])
    if path.parent == driver.parent:
        raise AssertionError(f"the task was given the driver's own checkpoint {path}")
    before = path.read_text() if path.exists() else ""
    path.write_text(before + chromosome[0]["rung"])
    return FakeMetrics("ok", None, float(len(before)), config.get("device"), os.getpid(), before)


@pytest.mark.slow
def test_halving_checkpoints_travel_through_the_object_store(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("local_ray")
    first, second = tmp_path / "checkpoints" / "1.pt", tmp_path / "checkpoints" / "2.pt"
    second.parent.mkdir()
    second.write_text("rung1;")  # a candidate continued from the rung before

    def job(id: int, path: Path, rung: str) -> EvalJob:
        gene = {"layer": "D", "driver": str(path), "rung": rung}
        return EvalJob(id=id, chromosome=[gene], config={"device": "cpu", "checkpoint": str(path)})

    with make_evaluator("ray", evaluate_fn=continue_training) as evaluator:
        results, _ = collect(evaluator, [job(1, first, "rung1;"), job(2, second, "rung2;")])
        assert results[1].status == "ok" and results[1].payload == ""  # nothing to continue from
        assert results[2].status == "ok" and results[2].payload == "rung1;"  # the driver's file reached the task
        assert first.read_text() == "rung1;" and second.read_text() == "rung1;rung2;"  # written back here
        results, _ = collect(evaluator, [job(1, first, "rung2;")])
        assert results[1].payload == "rung1;" and first.read_text() == "rung1;rung2;"
    assert sorted(p.name for p in first.parent.iterdir()) == ["1.pt", "2.pt"]  # no temporary files left


@pytest.mark.slow
def test_a_runtime_env_on_a_ray_started_elsewhere_is_named(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("local_ray")
    with pytest.warns(UserWarning, match="do not apply"):
        make_evaluator("ray", evaluate_fn=die_once, ray_resources={"ray_code": "installed"}).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_evaluator("ray", evaluate_fn=die_once).close()  # the default says nothing


@pytest.mark.slow
def test_progress_reports_keep_one_worker_per_cpu(request: pytest.FixtureRequest) -> None:
    """A task that waited on each progress report lent its CPU to the next task meanwhile, and Ray
    started a new worker process for it (torch imported again) on a CPU already busy: on one CPU
    a search ran at half speed. Reports are now sent without waiting, in order."""
    request.getfixturevalue("local_ray")  # one CPU
    jobs = [make_job(i, epochs=6, epoch_seconds=0.4) for i in range(1, 5)]
    with make_evaluator("ray", evaluate_fn=fake_evaluate) as evaluator:
        results, events = collect(evaluator, jobs)
    assert len({r.pid for r in results.values()}) == 1  # one worker ran them one after another
    for job_id, got in events.items():
        assert got[0]["event"] == "started" and [e["epoch"] for e in got[1:]] == list(range(1, 7)), job_id
