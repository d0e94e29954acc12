"""The paper's diversity controls in the NAS-Bench-201 cell space on digits: docs/experiments.md.

``naive``, ``rigid`` and ``soft`` with the same budget and seeds, ``--space nb201`` (its cell in the
macro skeleton at the CPU size: one cell per stage from 16 channels), every candidate trained for
real on digits on the CPU, one at a time in-process. Runs are stored under ``--out``; a finished run
there is kept, a stopped one resumed. Per run: the best validation accuracy and its test accuracy,
the median similarity of each generation (the ``cells`` schema, ``offdiag``), the distinct cells
trained, the children that were an isomorphic copy of a trained cell with another string (cached,
not trained), and the control's tries. The table (mean ± sd over the seeds) is printed as Markdown
and written with the raw numbers to ``--json``.

    python benchmarks/cell_experiments.py                                  # docs/experiments.md's budget
    python benchmarks/cell_experiments.py --seeds 0 1 2 3 4 5 6 7 --generations 6 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from pyevonas.runs.records import Status, is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search.cells import CellSpace
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve, resume

HERE = Path(__file__).resolve().parent
CONTROLS = ("naive", "rigid", "soft")
SPACE = CellSpace.load("nb201")


def run_one(out: Path, control: str, seed: int, budget: dict[str, int]) -> tuple[Path, float]:
    """Run (or resume, or keep) one search; its folder and the seconds this call took."""
    run_dir = out / f"{control}_s{seed}"
    started = time.monotonic()
    if RunStore.is_run(run_dir):
        with RunStore.open(run_dir, readonly=True) as store:
            finished = store.get_state("finished") is not None
        if not finished:
            resume(run_dir)
        return run_dir, time.monotonic() - started
    settings = {**budget, "space": "nb201", "control": control, "seed": seed, "run_dir": str(run_dir)}
    evolve(RunConfig.resolve(None, {**settings, "device": "cpu", "workers": 1}))
    seconds = time.monotonic() - started
    print(f"{control} seed {seed}: {seconds:.0f} s", flush=True)
    return run_dir, seconds


def measure(run_dir: Path) -> dict[str, Any]:
    """What docs/experiments.md reports of one run."""
    with RunStore.open(run_dir, readonly=True) as store:
        individuals = store.individuals()
        generations = store.generations()
        similarity = [store.generation_record(g).diversity for g in generations]
        tries = [len(store.control_iterations(g)) for g in generations[1:]]
        elapsed = store.get_state("elapsed_s")
    by_id = {ind.id: ind for ind in individuals}
    trained = [ind for ind in individuals if is_trained(ind) and ind.status is Status.OK]
    best = max(trained, key=lambda ind: (ind.fitness or 0.0, -ind.id))
    isomorphic = [
        ind
        for ind in individuals
        if ind.status is Status.CACHED
        and ind.cached_from is not None
        and SPACE.describe(ind.chromosome) != SPACE.describe(by_id[ind.cached_from].chromosome)
    ]
    return {
        "best_val_accuracy": best.fitness,
        "best_test_accuracy": best.test_accuracy,
        "best_cell": SPACE.describe(best.chromosome),
        "best_params": best.params,
        "median_similarity": similarity,
        "trained": len(trained),
        "distinct_cells": len({ind.canonical_key for ind in trained}),
        "cached": sum(ind.status is Status.CACHED for ind in individuals),
        "isomorphic_copies": len(isomorphic),
        "control_tries": tries,
        "elapsed_s": elapsed,
    }


def _mean_sd(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """The Markdown tables of docs/experiments.md: means ± sd, then every run."""
    lines = [
        "| control | best val accuracy | its test accuracy | median similarity, gen 1 → last | distinct cells trained"
        " | repeats not retrained (isomorphic copies) | control tries per generation |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    runs = results["runs"]
    for control in CONTROLS:
        rows = [r for r in runs if r["control"] == control]
        first = [r["median_similarity"][0] for r in rows]
        last = [r["median_similarity"][-1] for r in rows]
        tries = [t for r in rows for t in r["control_tries"]]
        lines.append(
            f"| {control} | {_mean_sd([r['best_val_accuracy'] for r in rows], 4)}"
            f" | {_mean_sd([r['best_test_accuracy'] for r in rows], 4)}"
            f" | {statistics.fmean(first):.3f} → {_mean_sd(last, 3)}"
            f" | {_mean_sd([r['distinct_cells'] for r in rows], 1)}"
            f" | {sum(r['cached'] for r in rows)} ({sum(r['isomorphic_copies'] for r in rows)})"
            f" | {statistics.fmean(tries):.1f} (max {max(tries)}) |"
        )
    lines += [
        "",
        "| seed | control | best val acc. | test acc. | best cell | median similarity per generation | tries | s |",
        "|---:|---|---:|---:|---|---|---|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], CONTROLS.index(r["control"]))):
        sims = " → ".join(f"{s:.3f}" for s in r["median_similarity"])
        lines.append(
            f"| {r['seed']} | {r['control']} | {r['best_val_accuracy']:.4f} | {r['best_test_accuracy']:.4f}"
            f" | `{r['best_cell']}` | {sims} | {', '.join(map(str, r['control_tries']))} | {r['elapsed_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/cell_experiments"))
    parser.add_argument("--json", type=Path, default=HERE / "results_cell_controls.json")
    args = parser.parse_args()
    budget = {"generations": args.generations, "population": args.population, "epochs": args.epochs}
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for control in CONTROLS:
            run_dir, seconds = run_one(args.out, control, seed, budget)
            runs.append({"control": control, "seed": seed, "seconds": seconds, **measure(run_dir)})
    results = {
        "budget": budget,
        "seeds": args.seeds,
        "space": SPACE.to_dict(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "runs": runs,
    }
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
