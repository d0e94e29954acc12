"""`pyevonas evolve --executor ray --address HOST:PORT` against a separately started Ray cluster.

The other Ray test starts Ray inside the test process; this one starts a head node with
`ray start --head` (its own temp dir and port), as a user with a cluster would, and runs the CLI
against it in a subprocess, real training included. Token authentication (Ray's default for
`ray start`) needs RAY_AUTH_MODE=token on the client too: docs/evolution.md says so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("ray")
pytest.importorskip("torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("the ray command is not installed next to this Python")
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tmp_path_factory.mktemp("ray")
    start = [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_evolve_on_a_ray_cluster_by_address(ray_cluster: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    address, env = ray_cluster
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "pyevonas", "evolve", "--executor", "ray", "--address", address,
           "--workers", "2", "--generations", "2", "--population", "4", "--epochs", "1",
           "--run-dir", str(run_dir), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"run stored in {run_dir}" in done.stdout
    export = subprocess.run(
        [sys.executable, "-m", "pyevonas", "export", str(run_dir)], capture_output=True, text=True, timeout=120
    )
    doc = json.loads(export.stdout)
    individuals = doc["individuals"]
    assert len(individuals) == 8 and all(i["status"] == "ok" for i in individuals)
    assert max(i["fitness"] for i in individuals) > 0.1  # trained on the cluster, not stubbed


def test_an_unreachable_cluster_is_one_clear_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    cmd = [sys.executable, "-m", "pyevonas", "evolve", "--executor", "ray", "--address", address,
           "--run-dir", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # Ray alone retries for minutes
    assert done.returncode == 2
    assert f"cannot connect to Ray at '{address}': nothing answers" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing written
