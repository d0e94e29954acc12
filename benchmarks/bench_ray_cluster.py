"""A search on a local Ray cluster with 1 and with 2 worker processes, against the same search in-process.

For each worker count a head node is started with ``ray start --head --num-cpus=N`` (its own temp
dir and port; its workers cannot import the pyevonas installed here, so the job ships the code,
as on a cluster whose nodes lack it), and ``pyevonas evolve --executor ray --address`` runs a
seeded search against it; the baseline is the same search in this process (``--executor
inprocess``, one candidate at a time), and the local process pool with 2 workers is measured
beside it, all in the same session. Each search trains real candidates on the built-in
offline dataset. Wall time is the CLI's, start-up (connecting, shipping the package, the worker
check) included; the head node's own start is not.

    python benchmarks/bench_ray_cluster.py                           # 3 generations x 8, 2 epochs
    python benchmarks/bench_ray_cluster.py --generations 2 --json out.json

Writes benchmarks/results_ray_cluster.json by default.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()}


def _search(args: argparse.Namespace, run_dir: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pyevonas", "evolve", "--generations", str(args.generations),
           "--population", str(args.population), "--epochs", str(args.epochs), "--seed", str(args.seed),
           "--run-dir", str(run_dir), "--quiet", *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=run_dir.parent, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    export = subprocess.run([sys.executable, "-m", "pyevonas", "export", str(run_dir)], capture_output=True,
                            text=True, check=True)  # fmt: skip
    individuals = json.loads(export.stdout)["individuals"]
    trained = [i for i in individuals if i["status"] == "ok"]
    return {
        "wall_s": round(wall, 2),
        "candidates": len(individuals),
        "trained": len(trained),
        "candidates_per_min": round(60 * len(individuals) / wall, 2),
        "fitness": [i["fitness"] for i in individuals],
    }


def _on_cluster(args: argparse.Namespace, workers: int, folder: Path) -> dict[str, Any]:
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        raise SystemExit("the ray command is not installed next to this Python (pip install 'pyevonas[ray]')")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    blocker = folder / "site" / "pyevonas"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("pyevonas is not installed on this node")\n')
    port = _free_port()
    start = [ray_cli, "start", "--head", f"--port={port}", f"--num-cpus={workers}", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={folder / 'ray'}"]  # fmt: skip
    subprocess.run(start, env={**env, "PYTHONPATH": str(blocker.parent)}, check=True, capture_output=True)
    try:
        (folder / "cwd").mkdir()
        return _search(args, folder / "cwd" / "run", "--executor", "ray", "--address", f"127.0.0.1:{port}", env=env)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=HERE / "results_ray_cluster.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyevonas-bench-ray-") as tmp:
        root = Path(tmp)
        (root / "inprocess").mkdir()
        results: dict[str, Any] = {
            "inprocess": _search(args, root / "inprocess" / "run", "--executor", "inprocess", "--workers", "1")
        }
        print(f"in-process: {results['inprocess']['wall_s']} s", flush=True)
        (root / "pool").mkdir()
        results["pool_2_workers"] = _search(args, root / "pool" / "run", "--executor", "pool", "--workers", "2")
        print(f"pool, 2 workers: {results['pool_2_workers']['wall_s']} s", flush=True)
        for workers in (1, 2):
            folder = root / f"ray{workers}"
            folder.mkdir()
            results[f"ray_{workers}_workers"] = run = _on_cluster(args, workers, folder)
            print(f"ray, {workers} worker process(es): {run['wall_s']} s", flush=True)
    base = results["inprocess"]["wall_s"]
    for run in results.values():
        run["speedup_vs_inprocess"] = round(base / run["wall_s"], 3)
        run["same_results_as_inprocess"] = run["fitness"] == results["inprocess"]["fitness"]
    doc = {
        "benchmark": "bench_ray_cluster",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "settings": {k: getattr(args, k) for k in ("generations", "population", "epochs", "seed")},
        "results": results,
    }
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: {x: v[x] for x in ("wall_s", "candidates_per_min", "speedup_vs_inprocess",
                                             "same_results_as_inprocess")} for k, v in results.items()}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
