"""Ray as a cluster user needs it (issue 26): bounded retries when a worker or node is lost, and
resources that fit the cluster (``--cpus-per-candidate``, ``--gpus-per-candidate``; a run on the
CPU never asks for a GPU).

The option tests need no Ray; the retry tests run on a local Ray instance (slow tier) and kill the
worker running a candidate with SIGKILL.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from executor_fakes import FakeMetrics, collect

from pyevonas.errors import ConfigError
from pyevonas.search.config import RunConfig
from pyevonas.search.executors import EvalJob, make_evaluator
from pyevonas.search.executors.ray import DEFAULT_RETRIES, task_options


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
