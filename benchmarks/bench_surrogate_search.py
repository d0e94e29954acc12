"""A paper-scale search simulated by the surrogate (``pyevonas evolve --evaluator surrogate:...``), timed
against the same search scored by the tests' stub evaluator, in one run.

Three measurements, each on the paper's settings (20 generations x 25 individuals, rigid control,
the seed given):

* ``command``: ``pyevonas evolve --evaluator surrogate:MODEL --quiet`` in a fresh Python process,
  wall time from start to exit: imports, fitting the built-in surrogate, the search, the store;
  what a user waits for;
* ``surrogate``: the search in this process through ``pyevonas.search.loop.evolve``, the
  surrogate loaded beforehand (``load_seconds``), with the summed prediction time of its batches;
* ``stub`` (the baseline): the same search with every candidate scored by a hash of its
  chromosome (the tests' ``stub_evaluate``): the loop alone (breeding under control, similarity
  matrices, the store), with an evaluation that costs nothing.

``surrogate / stub`` is what the surrogate adds to the loop. The JSON holds every number with the
machine, the date, the load average and ``OMP_NUM_THREADS`` (scikit-learn's trees use OpenMP
threads; on a machine busy with other work, ``OMP_NUM_THREADS=1`` changes the times).

    python benchmarks/bench_surrogate_search.py --json benchmarks/results_surrogate_search.json
    python benchmarks/bench_surrogate_search.py --model cifar100 --seed 2
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyevonas.runs.records import is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.executors import SurrogateEvaluator
from pyevonas.search.loop import evolve

REPO = Path(__file__).resolve().parents[1]


def stub_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """The tests' stub (tests/helpers.py): a fixed pseudo-fitness of the chromosome, nothing trained."""
    text = json.dumps(chromosome, sort_keys=True)
    fitness = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32
    return {"status": "ok", "fitness": fitness, "val_accuracy": fitness, "val_accuracy_per_epoch": [fitness]}


def _summary(run_dir: Path) -> dict[str, Any]:
    with RunStore.open(run_dir, readonly=True) as store:
        individuals = store.individuals()
        trained = [i for i in individuals if is_trained(i)]
        return {
            "generations": len(store.generations()),
            "candidates": len(individuals),
            "evaluated": sum(1 for i in individuals if i.status == "ok"),
            "best_fitness": max((i.fitness for i in trained if i.fitness is not None), default=None),
            "prediction_seconds": sum(float((i.metrics or {}).get("train_seconds") or 0.0) for i in individuals),
        }


def measure(model: str, seed: int, folder: Path) -> dict[str, Any]:
    settings = {"evaluator": f"surrogate:{model}", "control": "rigid", "seed": seed}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pyevonas", "evolve", "--evaluator", f"surrogate:{model}", "--seed", str(seed),
         "--run-dir", str(folder / "command"), "--quiet"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    command = {"wall_seconds": time.perf_counter() - started, **_summary(folder / "command")}

    started = time.perf_counter()
    evaluator = SurrogateEvaluator.from_model(model)
    load = time.perf_counter() - started
    config = RunConfig.resolve(None, {**settings, "run_dir": str(folder / "surrogate")})
    started = time.perf_counter()
    evolve(config, evaluator=evaluator)
    surrogate = {"wall_seconds": time.perf_counter() - started, "load_seconds": load, **_summary(config.run_path)}

    stub_config = RunConfig.resolve(
        None, {"dataset": model, "control": "rigid", "seed": seed, "run_dir": str(folder / "stub")}
    )
    started = time.perf_counter()
    evolve(stub_config, evaluate_fn=stub_evaluate)
    stub = {"wall_seconds": time.perf_counter() - started, **_summary(stub_config.run_path)}
    return {
        "command": command,
        "surrogate": surrogate,
        "stub": stub,
        "surrogate_over_stub": surrogate["wall_seconds"] / stub["wall_seconds"],
        "ms_per_prediction": 1000 * surrogate["prediction_seconds"] / max(surrogate["evaluated"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cifar10", help="cifar10, cifar100 or a saved model file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyevonas-bench-") as tmp:
        result = measure(args.model, args.seed, Path(tmp))
    doc = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.processor() or ''}".strip(
            ", "
        ),
        "load_average": os.getloadavg(),
        # scikit-learn's trees use OpenMP threads: on a busy machine their number changes the times.
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "model": args.model,
        "settings": {"generations": 20, "population": 25, "control": "rigid", "seed": args.seed},
        **result,
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
