"""Near-duplicate reuse and successive halving against the full budget, over several seeds.

Each condition runs the same search (by default the default search of ``pyevonas evolve``: digits,
rigid control, 8 generations x 8 individuals x 4 epochs) for every seed, in this process, one
candidate at a time on one CPU thread, and records per run:

* ``trainings``: candidates trained (own evaluations; cached and reused copies are not trained);
* ``reused`` / ``cached``: candidates that took another's result;
* ``total_epochs``: epochs actually trained, summed over the trainings (halving trains fewer);
* ``best_fitness``: the run's best (validation accuracy; ranked by budget, then fitness) and its
  ``best_test_accuracy`` (test split, measured once with the best-validation weights);
* ``train_seconds`` and ``wall_seconds``.

The JSON is rewritten after every run, so an interrupted measurement keeps what it finished.

    python benchmarks/budget_experiments.py --seeds 0,1,2,3,4 --json benchmarks/results_budget.json
    python benchmarks/budget_experiments.py --generations 4 --population 8 --epochs 2 --conditions full,halving
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyevonas.runs.records import COPIES, Status
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve

#: name -> the settings that differ from the full-budget search.
CONDITIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "reuse-0.95": {"reuse_similarity": 0.95},
    "reuse-0.9": {"reuse_similarity": 0.9},
    "resample-0.9": {"reuse_similarity": 0.9, "near_duplicates": "resample"},
    "halving": {"budget": "halving"},
}


def measure(run_dir: Path) -> dict[str, Any]:
    """The numbers of one finished run."""
    with RunStore.open(run_dir, readonly=True) as store:
        individuals = store.individuals()
    own = [ind for ind in individuals if ind.status not in COPIES]
    trained = [ind for ind in individuals if ind.fitness is not None and ind.status is not Status.FAILED]
    return {
        "candidates": len(individuals),
        "trainings": len(own),
        "reused": sum(1 for ind in individuals if ind.status is Status.REUSED),
        "cached": sum(1 for ind in individuals if ind.status is Status.CACHED),
        "failed": sum(1 for ind in own if ind.status is Status.FAILED),
        "total_epochs": sum(int((ind.metrics or {}).get("epochs_run") or 0) for ind in own),
        "train_seconds": round(sum(ind.train_seconds or 0.0 for ind in own), 2),
        "n_with_fitness": len(trained),
    }


def run_one(condition: str, seed: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "seed": seed,
        "generations": args.generations,
        "population": args.population,
        "epochs": args.epochs,
        "device": "cpu",
        "executor": "inprocess",
        "workers": 1,
        "run_dir": str(root / f"{condition}_s{seed}"),
        **CONDITIONS[condition],
    }
    config = RunConfig.resolve(None, settings)
    start = time.perf_counter()
    result = evolve(config)
    wall = time.perf_counter() - start
    best = result.best
    return {
        "condition": condition,
        "seed": seed,
        **measure(result.run_dir),
        "best_fitness": None if best is None else best.fitness,
        "best_test_accuracy": None if best is None else best.test_accuracy,
        "best_budget_epochs": None if best is None else (best.metrics or {}).get("budget_epochs"),
        "wall_seconds": round(wall, 1),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation per condition."""
    out: dict[str, dict[str, Any]] = {}
    for condition in CONDITIONS:
        rows = [r for r in runs if r["condition"] == condition]
        if not rows:
            continue
        entry: dict[str, Any] = {"runs": len(rows)}
        for key in (
            "trainings",
            "reused",
            "cached",
            "total_epochs",
            "best_fitness",
            "best_test_accuracy",
            "wall_seconds",
        ):
            values = [float(r[key]) for r in rows if r[key] is not None]
            entry[key] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        out[condition] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated run seeds")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated: " + ", ".join(CONDITIONS))
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition {unknown[0]!r}")
    command = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pyevonas-budget-") as tmp:
        root = args.keep or Path(tmp)
        for seed in seeds:  # seeds outermost: a cut-short measurement still compares the conditions
            for condition in conditions:
                row = run_one(condition, seed, args, root)
                runs.append(row)
                print(json.dumps(row), flush=True)
                if args.json is not None:
                    payload = {
                        "command": command,
                        "budget": {"dataset": "digits", "generations": args.generations,
                                   "population": args.population, "epochs": args.epochs, "control": "rigid"},
                        "machine": {"python": platform.python_version(), "platform": platform.platform()},
                        "date": time.strftime("%Y-%m-%d"),
                        "runs": runs,
                        "summary": summarise(runs),
                    }  # fmt: skip
                    args.json.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    for condition, entry in summarise(runs).items():
        print(condition, json.dumps(entry))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
