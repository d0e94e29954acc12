"""Near-duplicate reuse and successive halving against the full budget, over several seeds.

Each condition runs the same search (by default the default search of ``pyevonas evolve``: digits,
rigid control, 8 generations x 8 individuals x 4 epochs) for every seed, in this process, one
candidate at a time on one CPU thread, and records per run:

* ``trainings``: candidates trained (own evaluations; cached and reused copies are not trained);
* ``reused`` / ``cached``: candidates that took another's result; ``resampled``: children bred
  again in place of near duplicates (``resample`` only);
* ``total_epochs``: epochs actually trained, summed over the trainings (halving trains fewer);
* ``best_fitness``: the run's best (validation accuracy; ranked by budget, then fitness) and its
  ``best_test_accuracy`` (test split, measured once with the best-validation weights);
* ``train_seconds`` and ``wall_seconds``.

The JSON is rewritten after every run, so an interrupted measurement keeps what it finished; run
the same command again and it skips the runs the file already holds (for the same budget).

    python benchmarks/budget_experiments.py --seeds 0,1,2,3,4 --json benchmarks/results_budget.json
    python benchmarks/budget_experiments.py --generations 4 --population 8 --epochs 2 --conditions full,halving
    python benchmarks/budget_experiments.py --table benchmarks/results_budget.json   # the Markdown table
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
        decisions = [store.generation_record(g).decision or {} for g in store.generations()]
    own = [ind for ind in individuals if ind.status not in COPIES]
    trained = [ind for ind in individuals if ind.fitness is not None and ind.status is not Status.FAILED]
    return {
        "candidates": len(individuals),
        "trainings": len(own),
        "reused": sum(1 for ind in individuals if ind.status is Status.REUSED),
        "resampled": sum(int(d.get("resampled", 0)) for d in decisions),
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
            "resampled",
            "cached",
            "total_epochs",
            "best_fitness",
            "best_test_accuracy",
            "wall_seconds",
        ):
            if any(key not in r for r in rows):
                continue  # not recorded by every run (an older version of this script)
            values = [float(r[key]) for r in rows if r[key] is not None]
            entry[key] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        out[condition] = entry
    return out


def table(path: Path) -> str:
    """The Markdown table of docs/budget.md and BENCHMARKS.md from a results file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    summary = data["summary"]
    full = summary.get("full")

    def pm(entry: dict[str, Any], key: str, digits: int) -> str:
        value = entry[key]
        return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"

    lines = [
        "| setting | runs | trainings | reused | bred again | total epochs | vs full | best fitness (val) |"
        " its test accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for condition, entry in summary.items():
        epochs = entry["total_epochs"]["mean"]
        share = f"{epochs / full['total_epochs']['mean']:.0%}" if full else "-"
        lines.append(
            f"| {condition} | {entry['runs']} | {pm(entry, 'trainings', 1)} | {pm(entry, 'reused', 1)} |"
            f" {pm(entry, 'resampled', 1) if 'resampled' in entry else '-'} |"
            f" {pm(entry, 'total_epochs', 1)} | {share} | {pm(entry, 'best_fitness', 4)} |"
            f" {pm(entry, 'best_test_accuracy', 4)} |"
        )
    return "\n".join(lines)


def _write(path: Path, command: str, budget: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    payload = {
        "command": command,
        "budget": budget,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
        "summary": summarise(runs),
    }
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated run seeds")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated: " + ", ".join(CONDITIONS))
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    parser.add_argument("--table", type=Path, default=None, help="print the Markdown table of a results file and exit")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(table(args.table))
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition {unknown[0]!r}")
    command = " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])
    budget = {
        "dataset": "digits",
        "generations": args.generations,
        "population": args.population,
        "epochs": args.epochs,
        "control": "rigid",
    }
    runs: list[dict[str, Any]] = []
    if args.json is not None and args.json.exists():
        earlier = json.loads(args.json.read_text(encoding="utf-8"))
        if earlier.get("budget") == budget:
            runs = list(earlier["runs"])
    done = {(r["condition"], r["seed"]) for r in runs}
    with tempfile.TemporaryDirectory(prefix="pyevonas-budget-") as tmp:
        root = args.keep or Path(tmp)
        for seed in seeds:  # seeds outermost: a cut-short measurement still compares the conditions
            for condition in conditions:
                if (condition, seed) in done:
                    continue
                row = run_one(condition, seed, args, root)
                runs.append(row)
                print(json.dumps(row), flush=True)
                if args.json is not None:
                    _write(args.json, command, budget, runs)
    if args.json is not None and runs:
        _write(args.json, command, budget, runs)
    for condition, entry in summarise(runs).items():
        print(condition, json.dumps(entry))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
