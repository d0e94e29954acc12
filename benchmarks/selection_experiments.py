"""Selection methods side by side on the offline default (digits): docs/experiments.md.

Five variants, the same generations, population, epochs and seeds:

* ``naive``, ``rigid``, ``soft``: the paper's top-k selection under each diversity control;
* ``dns``: Dominated Novelty Search (``--selection dns``), no diversity control;
* ``novelty``: novelty selection (``--selection novelty``), no diversity control.

Every run is a real search (candidates trained on digits, CPU, one candidate at a time) stored
under ``--out``; a run already finished there is kept, a stopped one is resumed, so the script can
be stopped and started again. Then, per run: the best validation accuracy (the fitness) and the
test accuracy of that best candidate, the median similarity of the last generation, the number
of distinct architectures trained, and the hypervolume of ``val_accuracy, params`` against one
reference point shared by all runs (``pyevonas.report.pareto``); the table (mean ± std over the
seeds) is printed as Markdown and written with the raw numbers to ``--json``
(benchmarks/results_selection.json), the figures to ``--figures`` (docs/experiments/).

    python benchmarks/selection_experiments.py                       # the budget of docs/experiments.md
    python benchmarks/selection_experiments.py --seeds 0 1 2 3 4 --generations 8 --population 8 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.report.analysis import analyse_run, load_run
from pyevonas.report.pareto import pareto_analysis
from pyevonas.runs.records import is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve, resume

HERE = Path(__file__).resolve().parent

VARIANTS: dict[str, dict[str, Any]] = {
    "naive": {"control": "naive"},
    "rigid": {"control": "rigid"},
    "soft": {"control": "soft"},
    "dns": {"control": "naive", "selection": "dns"},
    "novelty": {"control": "naive", "selection": "novelty"},
}
COLOURS = {"naive": "#7f7f7f", "rigid": "#1f77b4", "soft": "#2ca02c", "dns": "#d62728", "novelty": "#9467bd"}


def run_one(out: Path, variant: str, seed: int, budget: dict[str, int]) -> Path:
    """Run (or resume, or keep) one search; returns its folder."""
    run_dir = out / f"{variant}_s{seed}"
    if RunStore.is_run(run_dir):
        with RunStore.open(run_dir, readonly=True) as store:
            finished = store.get_state("finished") is not None
        if not finished:
            print(f"resuming {run_dir}", flush=True)
            resume(run_dir)
        return run_dir
    settings = {
        **budget,
        **VARIANTS[variant],
        "seed": seed,
        "name": f"{variant}_s{seed}",
        "run_dir": str(run_dir),
        "device": "cpu",
        "workers": 1,
    }
    config = RunConfig.resolve(None, settings)
    started = time.monotonic()
    result = evolve(config)
    print(
        f"{variant} seed {seed}: best {result.best.fitness if result.best else None:.4f} "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    return run_dir


def measure(run_dirs: dict[tuple[str, int], Path]) -> dict[str, Any]:
    """Per-run numbers, the shared hypervolume reference and per-generation curves."""
    stats = {key: analyse_run(load_run(path)) for key, path in run_dirs.items()}
    pareto = pareto_analysis(list(stats.values()), "val_accuracy,params")
    hv = {run["name"]: run for run in pareto["runs"]}
    runs = []
    for (variant, seed), st in stats.items():
        individuals = [ind for g in st.run.generations for ind in g.individuals]
        trained = [ind for ind in individuals if is_trained(ind)]
        best = max(trained, key=lambda ind: (ind.fitness, -ind.id)) if trained else None
        distinct = {ind.canonical_key for ind in trained}
        own = hv[st.run.name]
        with RunStore.open(run_dirs[(variant, seed)], readonly=True) as store:
            finished = store.get_state("finished") or {}
            wall = finished.get("at", math.nan) - (store.created_at or math.nan)
        runs.append(
            {
                "variant": variant,
                "seed": seed,
                "name": st.run.name,
                "best_val_accuracy": None if best is None else best.fitness,
                "best_test_accuracy": None if best is None else best.test_accuracy,
                "best_params": None if best is None else best.params,
                "best_sequence": None if best is None else best.sequence,
                "final_median_similarity": st.generations[-1].median_similarity,
                "distinct_trained": len(distinct),
                "candidates": len(individuals),
                "hypervolume": own["hypervolume"],
                "front_size": own["generations"][-1]["front_size_so_far"],
                "wall_seconds": round(wall, 1),
                "train_seconds": sum(ind.train_seconds or 0.0 for ind in individuals if ind.status == "ok"),
                "curves": {
                    "best": [g.max_fitness for g in st.generations],
                    "best_so_far": list(np.maximum.accumulate([g.max_fitness or 0.0 for g in st.generations])),
                    "median_similarity": [g.median_similarity for g in st.generations],
                    "hypervolume_so_far": [g["hypervolume_so_far"] for g in own["generations"]],
                },
                "front": own["front"],
            }
        )
    return {"reference_point": pareto["reference_point"], "runs": runs}


def _mean_std(values: list[float | None], digits: int) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals, ddof=1):.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """The Markdown table: mean ± std over the seeds, per variant."""
    lines = [
        "| variant | best val accuracy | its test accuracy | final median similarity | distinct architectures trained | hypervolume (val_accuracy, params) | front size |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        rows = [r for r in results["runs"] if r["variant"] == variant]
        if not rows:
            continue
        lines.append(
            f"| {variant} | {_mean_std([r['best_val_accuracy'] for r in rows], 4)} | "
            f"{_mean_std([r['best_test_accuracy'] for r in rows], 4)} | "
            f"{_mean_std([r['final_median_similarity'] for r in rows], 3)} | "
            f"{_mean_std([float(r['distinct_trained']) for r in rows], 1)} | "
            f"{_mean_std([r['hypervolume'] for r in rows], 4)} | "
            f"{_mean_std([float(r['front_size']) for r in rows], 1)} |"
        )
    return "\n".join(lines)


def figures(results: dict[str, Any], folder: Path) -> list[Path]:
    """Curves per generation (mean over seeds, a band from min to max) and the final fronts."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (
        ("best_so_far", "best val accuracy so far"),
        ("median_similarity", "median similarity of the generation"),
        ("hypervolume_so_far", "hypervolume so far (val_accuracy, params)"),
    )
    for ax, (key, label) in zip(axes, panels, strict=True):
        for variant in VARIANTS:
            rows = [r["curves"][key] for r in results["runs"] if r["variant"] == variant]
            if not rows:
                continue
            data = np.array([[math.nan if v is None else v for v in row] for row in rows], dtype=float)
            gens = np.arange(1, data.shape[1] + 1)
            ax.plot(gens, np.nanmean(data, axis=0), "o-", ms=3, color=COLOURS[variant], label=variant)
            ax.fill_between(gens, np.nanmin(data, axis=0), np.nanmax(data, axis=0), color=COLOURS[variant], alpha=0.12)
        ax.set_xlabel("generation")
        ax.set_ylabel(label)
        ax.set_xticks(gens)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    curves = folder / "selection_curves.png"
    fig.savefig(curves, dpi=90)

    fig = Figure(figsize=(12, 3.4), layout="constrained")
    axes = fig.subplots(1, len(VARIANTS), sharex=True, sharey=True)
    for ax, variant in zip(axes, VARIANTS, strict=True):
        for r in results["runs"]:
            if r["variant"] != variant:
                continue
            pts = sorted((p["params"], p["val_accuracy"]) for p in r["front"] if p["params"] and p["val_accuracy"])
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.step(xs, ys, where="post", color=COLOURS[variant], alpha=0.8)
                ax.plot(xs, ys, "o", ms=3, color=COLOURS[variant])
        ax.set_title(variant, fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("params")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("val accuracy")
    fig.suptitle("Final Pareto fronts (one line per seed)", fontsize=10)
    fronts = folder / "selection_fronts.png"
    fig.savefig(fronts, dpi=90)
    return [curves, fronts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/selection_experiments"))
    parser.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "experiments")
    parser.add_argument("--json", type=Path, default=HERE / "results_selection.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    budget = {"generations": args.generations, "population": args.population, "epochs": args.epochs}
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run_dirs = {}
    for seed in args.seeds:  # seed-major: a stopped script leaves whole seeds of every variant
        for variant in args.variants:
            run_dirs[(variant, seed)] = run_one(args.out, variant, seed, budget)
    results = measure(run_dirs)
    results["budget"] = budget
    results["seeds"] = args.seeds
    results["machine"] = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    results["seconds"] = round(time.monotonic() - started, 1)  # this call's; each run stores its own time
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    paths = figures(results, args.figures)
    print(table(results))
    print(f"reference point: {results['reference_point']}")
    walls = [r["wall_seconds"] for r in results["runs"]]
    print(f"wall time per run: {min(walls):.0f}-{max(walls):.0f} s, {sum(walls) / 60:.0f} min in all")
    print("figures: " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
