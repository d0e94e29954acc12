"""`pyevonas evolve --executor ray --address HOST:PORT` against a separately started Ray cluster.

The other Ray tests start Ray inside the test process; these start a head node with
`ray start --head` (its own temp dir and port), as a user with a cluster would, and run the CLI
against it in a subprocess, real training included. Token authentication (Ray's default for
`ray start`) needs RAY_AUTH_MODE=token on the client too: docs/distributed.md says so.

The cluster's node has no pyevonas: its workers start with a `pyevonas` package first on their
path that refuses to import, so a search trains only with the code the job ships to them
(docs/distributed.md: the default `ray_code = "package"`). The CLI runs from a folder of its own,
since Ray also puts the driver's folder on its workers' path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("ray")
pytest.importorskip("torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: What the node's workers import as pyevonas: a package that refuses, as on a node without it.
BLOCKER = 'raise ImportError("pyevonas is not installed on this node")\n'


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("the ray command is not installed next to this Python")
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tmp_path_factory.mktemp("ray")
    blocker = temp / "site" / "pyevonas"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(BLOCKER)
    node_env = {**env, "PYTHONPATH": str(blocker.parent)}
    probe = subprocess.run(
        [sys.executable, "-c", "import pyevonas"], env=node_env, cwd=temp, capture_output=True, text=True
    )
    assert "not installed on this node" in probe.stderr  # the node's Python cannot import it
    start = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    subprocess.run(start, env=node_env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _evolve(address: str, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pyevonas", "evolve", "--executor", "ray", "--address", address,
            "--generations", "2", "--population", "4", "--epochs", "1", "--run-dir", str(run_dir),
            "--quiet", *extra]  # fmt: skip


def _export(run_dir: Path) -> list[dict[str, Any]]:
    export = subprocess.run(
        [sys.executable, "-m", "pyevonas", "export", str(run_dir)], capture_output=True, text=True, timeout=120
    )
    assert export.returncode == 0, export.stderr
    return list(json.loads(export.stdout)["individuals"])


def _results(individuals: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(i["id"], json.dumps(i["chromosome"]), i["status"], i["fitness"]) for i in individuals]


@pytest.fixture(scope="module")
def reference_run(ray_cluster: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search on the cluster with nothing lost (2 candidates at a time)."""
    address, env = ray_cluster
    folder = tmp_path_factory.mktemp("reference")
    run_dir = folder / "run"
    done = subprocess.run(_evolve(address, run_dir), env=env, cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"run stored in {run_dir}" in done.stdout
    assert "Connecting to existing Ray cluster" not in done.stderr  # Ray's INFO lines stay out of the view
    return run_dir


def test_evolve_on_a_ray_cluster_whose_nodes_lack_pyevonas(reference_run: Path) -> None:
    individuals = _export(reference_run)
    assert len(individuals) == 8 and all(i["status"] == "ok" for i in individuals)
    assert max(i["fitness"] for i in individuals) > 0.1  # trained on the cluster, not stubbed


def test_a_node_without_pyevonas_is_refused_when_nothing_is_shipped(
    ray_cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = ray_cluster
    cmd = _evolve(address, tmp_path / "run", "--ray-code", "installed")
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "a Ray worker cannot run pyevonas" in done.stderr and "not installed on this node" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # refused before the run folder


def _kill_first_task(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen training a candidate (once it has trained a moment)."""
    seen: dict[int, float] = {}
    while not stop.is_set() and not killed:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                title = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::_ray_task"):
                pid = int(proc.name)
                if time.monotonic() - seen.setdefault(pid, time.monotonic()) > 0.3:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray's workers in /proc")
def test_a_worker_killed_mid_search_changes_nothing(
    ray_cluster: tuple[str, dict[str, str]], reference_run: Path, tmp_path: Path
) -> None:
    address, env = ray_cluster
    run_dir = tmp_path / "run"
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_first_task, args=(killed, stop), daemon=True)
    watcher.start()
    try:
        done = subprocess.run(_evolve(address, run_dir), env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    finally:
        stop.set()
        watcher.join()
    assert done.returncode == 0, done.stderr[-2000:]
    assert killed, "no worker was found training a candidate"
    individuals = _export(run_dir)
    assert all(i["status"] == "ok" for i in individuals)  # every candidate trained, the killed one again
    assert _results(individuals) == _results(_export(reference_run))  # the search found exactly the same


def test_an_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    cmd = [sys.executable, "-m", "pyevonas", "evolve", "--executor", "ray", "--address", address,
           "--run-dir", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # Ray alone retries for minutes
    assert done.returncode == 2
    assert f"cannot connect to Ray at '{address}': nothing answers" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_halving_on_nodes_that_share_no_folder_continues_from_the_checkpoints(
    ray_cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Each continued candidate's checkpoint goes to its task through Ray's object store and back:
    the run equals the same search trained in this process, rung by rung."""
    address, env = ray_cluster
    halving = ("--budget", "halving", "--epochs", "4", "--seed", "1")  # a seed whose best learn (0.83)
    cluster, here = tmp_path / "cluster", tmp_path / "here"
    done = subprocess.run(_evolve(address, cluster, *halving), env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    local = [a for a in _evolve(address, here, *halving) if a not in ("--executor", "ray", "--address", address)]
    done = subprocess.run(local, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    individuals = _export(cluster)
    budgets = {i["extra_metrics"]["budget_epochs"] for i in individuals if i["status"] == "ok"}
    assert budgets == {1, 2, 4}  # continued from rung to rung
    assert max(i["fitness"] for i in individuals if i["extra_metrics"]["budget_epochs"] == 4) > 0.5
    assert _results(individuals) == _results(_export(here))
    assert not list((cluster / "checkpoints").glob("*"))  # every checkpoint dropped once its candidate finished
