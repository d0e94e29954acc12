"""Diversity controls and selections compared at the paper's scale, every candidate scored by the
built-in surrogate (``evaluator = "surrogate:DATASET"``): nothing is trained.

Settings (``--settings``; each is a RunConfig variant of the paper's search):

* ``naive``, ``rigid``, ``soft``: top-k selection under the paper's controls (none, Eq. 2, Eq. 3);
* ``target``: the control on the absolute measure and its change
  (``pyevonas.search.control.TARGET``);
* ``novelty``, ``dns``: novelty selection and Dominated Novelty Search, no diversity control.

For every dataset (``--datasets``), population size (``--populations``) and seed (``--seeds``),
each setting runs 20 generations (``--generations``) with the paper's other settings (top 5,
p_mutation 0.2, the ``paper`` schema, the control on the full-matrix median as in the authors'
loop: ``--diversity``). Per run: the best predicted fitness found, the median similarity of the
last generation (off-diagonal, recomputed as in surrogate_reality.py), and the share of scored
candidates outside the surrogate's coverage (similarity to the nearest published evaluation below
0.8: there the surrogate extrapolates). Per setting: mean, a 95 % bootstrap percentile interval
(10,000 resamples) and a t interval; against ``naive`` of the same dataset and population: the
difference of means with its bootstrap interval, and the two-sided Mann-Whitney U test (scipy),
with Holm's correction over the settings compared.

Every finished search is written to the JSON at once (the statistics at the end), and
``--resume`` keeps the searches a JSON already holds, so a long plan can be run in pieces.

    python benchmarks/surrogate_experiments.py --datasets cifar10 --populations 25 --seeds 1-5 \\
        --processes 2 --json benchmarks/results_surrogate_experiments.json
    # the issue's scale: 30 seeds, both datasets, three population sizes (hours on 2 cores)
    python benchmarks/surrogate_experiments.py --datasets cifar10,cifar100 --populations 10,25,50 \\
        --seeds 1-30 --processes 16 --json results.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from surrogate_reality import COVERAGE_THRESHOLD, PAPER, list_arg, machine, run_all, seeds_arg

#: Each setting's RunConfig settings.
SETTINGS: dict[str, dict[str, Any]] = {
    "naive": {"control": "naive"},
    "rigid": {"control": "rigid"},
    "soft": {"control": "soft"},
    "target": {"control": "target"},
    "novelty": {"control": "naive", "selection": "novelty"},
    "dns": {"control": "naive", "selection": "dns"},
}
BASELINE = "naive"
METRICS = ("best_fitness", "final_median", "outside_share")
RESAMPLES = 10_000


def key(dataset: str, population: int, setting: str, seed: int) -> str:
    return f"{dataset}/p{population}/{setting}/s{seed}"


def run_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The per-run numbers compared, and the curves they come from."""
    best = [b for b in result["best"] if math.isfinite(b)]
    return {
        "best_fitness": max(best) if best else math.nan,
        "final_median": result["median"][-1],
        "outside_share": result["outside_share"],
        "seconds": result["seconds"],
        "best_per_generation": result["best"],
        "median_per_generation": result["median"],
        "outside_per_generation": result["outside_coverage"],
        "scored_per_generation": result["scored"],
    }


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean."""
    if len(values) < 2:
        return math.nan, math.nan
    means = rng.choice(values, size=(RESAMPLES, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def t_interval(values: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if len(values) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return float(values.mean() - half), float(values.mean() + half)


def bootstrap_difference(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(a) - mean(b), the two resampled independently."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    da = rng.choice(a, size=(RESAMPLES, len(a)), replace=True).mean(axis=1)
    db = rng.choice(b, size=(RESAMPLES, len(b)), replace=True).mean(axis=1)
    return float(np.percentile(da - db, 2.5)), float(np.percentile(da - db, 97.5))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (same order)."""
    order = sorted(range(len(pvalues)), key=lambda k: pvalues[k])
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[k]))
        adjusted[k] = running
    return adjusted


def analyse(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per dataset and population: every setting's statistics, and each against the baseline."""
    from scipy import stats

    rng = np.random.default_rng(0)
    groups: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
    for run in runs.values():
        groups.setdefault((run["dataset"], run["population"]), {}).setdefault(run["setting"], []).append(run)
    out: dict[str, Any] = {}
    for (dataset, population), by_setting in sorted(groups.items()):
        table: dict[str, Any] = {}
        for setting in [s for s in SETTINGS if s in by_setting]:
            rows = by_setting[setting]
            entry: dict[str, Any] = {"n": len(rows), "seeds": sorted(r["seed"] for r in rows)}
            for metric in METRICS:
                values = np.asarray([r[metric] for r in rows], dtype=np.float64)
                entry[metric] = {
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "bootstrap95": bootstrap_mean(values, rng),
                    "t95": t_interval(values),
                }
            entry["seconds_mean"] = float(np.mean([r["seconds"] for r in rows]))
            table[setting] = entry
        if BASELINE in by_setting:
            compared = [s for s in table if s != BASELINE]
            for metric in METRICS:
                base = np.asarray([r[metric] for r in by_setting[BASELINE]], dtype=np.float64)
                pvalues = []
                for setting in compared:
                    values = np.asarray([r[metric] for r in by_setting[setting]], dtype=np.float64)
                    if len(values) and len(base) and np.ptp(np.concatenate([values, base])) != 0:
                        test = stats.mannwhitneyu(values, base, alternative="two-sided")
                        pvalue, u = float(test.pvalue), float(test.statistic)
                    else:
                        pvalue, u = 1.0, math.nan
                    pvalues.append(pvalue)
                    table[setting][metric]["vs_naive"] = {
                        "difference": float(values.mean() - base.mean()),
                        "bootstrap95": bootstrap_difference(values, base, rng),
                        "mannwhitney_u": u,
                        "p": pvalue,
                    }
                for setting, adjusted in zip(compared, holm(pvalues), strict=True):
                    table[setting][metric]["vs_naive"]["p_holm"] = adjusted
        out[f"{dataset}/p{population}"] = table
    return out


def markdown(analysis: dict[str, Any]) -> str:
    """The tables of docs/experiments.md."""
    lines = []
    for group, table in analysis.items():
        lines.append(f"**{group}**\n")
        lines.append(
            "| setting | n | best fitness: mean [95 % bootstrap] | vs naive: diff. [95 %], p (Holm) "
            "| final median similarity: mean [95 %] | vs naive: diff., p (Holm) | outside coverage | s/search |"
        )
        lines.append("|---|---:|---|---|---|---|---:|---:|")
        for setting, e in table.items():
            b, m, o = e["best_fitness"], e["final_median"], e["outside_share"]

            def vs(metric: dict[str, Any], digits: int) -> str:
                v = metric.get("vs_naive")
                if v is None:
                    return "-"
                lo, hi = v["bootstrap95"]
                return f"{v['difference']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}], {v['p']:.3g} ({v['p_holm']:.3g})"

            lines.append(
                f"| {setting} | {e['n']} | {b['mean']:.4f} [{b['bootstrap95'][0]:.4f}, {b['bootstrap95'][1]:.4f}] "
                f"| {vs(b, 4)} | {m['mean']:.3f} [{m['bootstrap95'][0]:.3f}, {m['bootstrap95'][1]:.3f}] "
                f"| {vs(m, 3)} | {o['mean']:.3f} | {e['seconds_mean']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=list_arg, default=["cifar10"], help="cifar10,cifar100")
    parser.add_argument("--settings", type=list_arg, default=list(SETTINGS), help=",".join(SETTINGS))
    parser.add_argument("--populations", type=lambda t: [int(v) for v in list_arg(t)], default=[25])
    parser.add_argument("--seeds", type=seeds_arg, default=list(range(1, 6)), help="e.g. 1-30")
    parser.add_argument("--generations", type=int, default=PAPER["generations"])
    parser.add_argument("--diversity", default="full", help="the measure the controls act on (full: the authors')")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", type=Path, required=True, help="results (written after every search)")
    parser.add_argument("--resume", action="store_true", help="keep the searches the JSON already holds")
    parser.add_argument("--markdown", action="store_true", help="print the tables for docs/experiments.md")
    args = parser.parse_args()
    unknown = sorted(set(args.settings) - set(SETTINGS))
    if unknown:
        parser.error(f"unknown settings {unknown}; known: {list(SETTINGS)}")
    runs: dict[str, dict[str, Any]] = {}
    doc: dict[str, Any] = {}
    if args.resume and args.json.is_file():
        doc = json.loads(args.json.read_text(encoding="utf-8"))
        runs = doc.get("runs", {})
    info = machine()
    doc.setdefault("sessions", []).append(
        {**info, "argv": sys.argv[1:], "cpu_count": os.cpu_count(), "processes": args.processes}
    )
    doc["coverage_threshold"] = COVERAGE_THRESHOLD
    doc["paper_settings"] = {**PAPER, "generations": args.generations, "diversity (control)": args.diversity}

    def save(final: bool = False) -> None:
        doc["runs"] = runs
        if final:  # the statistics once, at the end (a stopped session leaves the runs)
            doc["analysis"] = analyse(runs)
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="pyevonas-experiments-") as tmp:
        tasks = []
        for dataset in args.datasets:
            for population in args.populations:
                for seed in args.seeds:
                    for setting in args.settings:
                        name = key(dataset, population, setting, seed)
                        if name in runs:
                            continue
                        tasks.append(
                            {
                                "dataset": dataset,
                                "label": name,
                                **SETTINGS[setting],
                                "population": population,
                                "top_k": min(PAPER["top_k"], population),
                                "generations": args.generations,
                                "seed": seed,
                                "diversity": args.diversity,
                                "run_dir": str(Path(tmp) / name.replace("/", "-")),
                            }
                        )
        print(f"{len(tasks)} searches to run ({len(runs)} kept)", file=sys.stderr, flush=True)
        started = time.perf_counter()

        def done(result: dict[str, Any]) -> None:
            dataset, population, setting, seed = result["label"].split("/")
            runs[result["label"]] = {
                "dataset": dataset,
                "population": int(population[1:]),
                "setting": setting,
                "seed": int(seed[1:]),
                **run_metrics(result),
            }
            save()
            print(
                f"{result['label']}: {result['seconds']:.0f} s, best {runs[result['label']]['best_fitness']:.4f}, "
                f"elapsed {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )

        if tasks:
            run_all(tasks, args.processes, done)
    doc["sessions"][-1]["wall_seconds"] = time.perf_counter() - started
    doc["sessions"][-1]["load_average_end"] = os.getloadavg()
    save(final=True)
    if args.markdown:
        print(markdown(doc["analysis"]))


if __name__ == "__main__":
    main()
