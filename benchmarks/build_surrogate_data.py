"""Build ``pyevonas/surrogate/data/paper_evaluations.json.gz`` from the authors' 50 published runs.

The paper's authors published every evaluation of their 50 evolution runs (CIFAR-10: seeds 1-10
x naive/rigid/soft; CIFAR-100: seeds 1-10 x naive/rigid; 20 generations x 25 individuals each).
This script reads their plain-JSON extracts with pyevonas's importer
(:func:`pyevonas.runs.importer.read_run`, the same parsing ``pyevonas import`` uses) and writes one
compact file of all 25,000 evaluations, which ships with the package and is read by
:func:`pyevonas.surrogate.data.load_evaluations`. Nothing at run time or in the tests needs the
source folder; run this again only when the derivation changes.

The file (format ``pyevonas-paper-evaluations``, version 1; documented in docs/surrogate.md):

* ``chromosomes``: every distinct chromosome once, exactly as the importer returns it;
* ``runs``: one record per run (name, dataset, seed, control, source file and its SHA-256);
* ``evaluations``: columns of equal length, one row per evaluated individual, in run order, then
  generation, then population order: ``run`` (index into ``runs``), ``generation``, ``index``
  (population index), ``chromosome`` (index into ``chromosomes``), ``status`` (``ok``, ``failed``
  or ``oversized``), ``fitness`` and ``val_accuracy_per_epoch`` as *numbers of correct
  validation images of 10,000* (null / empty when not trained), ``size_bytes`` (the untrained
  Keras ``.h5`` footprint) and ``latency_s`` (null when not stored);
* ``provenance``: what was read, what was derived and the counts.

Accuracies are stored as integers because every published value is a float32 quotient k / 10,000
(the CIFAR validation split has 10,000 images): the value is ``float(numpy.float32(k / 10000))``,
bit for bit. The script checks this for every value and refuses to write the file otherwise.

Usage: ``python benchmarks/build_surrogate_data.py --source FOLDER_OF_PUBLISHED_RUNS
--out pyevonas/surrogate/data/paper_evaluations.json.gz``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.runs.importer import ImportedIndividual, ImportedRun, read_run

FORMAT = "pyevonas-paper-evaluations"
VERSION = 1
#: The CIFAR validation (test) split has 10,000 images: every accuracy is k / 10,000.
SCALE = 10_000
_CONTROL_ORDER = {"naive": 0, "rigid": 1, "soft": 2}


def correct_images(value: float, where: str) -> int:
    """The number of correct images k with ``float32(k / 10000) == value``; fails when there is none."""
    k = round(value * SCALE)
    if float(np.float32(k / SCALE)) != value:
        raise SystemExit(f"{where}: accuracy {value!r} is not a float32 quotient k / {SCALE}; not written")
    return k


def read_runs(source: Path) -> list[tuple[ImportedRun, str]]:
    """Every run file of ``source`` (``_``-prefixed files skipped) parsed, with the file's SHA-256, in a stable order."""
    runs = []
    for path in sorted(source.glob("*.json")):
        if path.name.startswith("_"):
            continue
        runs.append((read_run(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    if not runs:
        raise SystemExit(f"{source}: no run files (*.json)")
    runs.sort(key=lambda r: (r[0].dataset, r[0].seed or 0, _CONTROL_ORDER.get(r[0].control, 9)))
    return runs


def _row(ind: ImportedIndividual, where: str) -> dict[str, Any]:
    """The stored columns of one individual (accuracies as numbers of correct images)."""
    ok = ind.status.value == "ok"
    epochs = [correct_images(a, f"{where} epoch {e + 1}") for e, a in enumerate(ind.val_accuracy_per_epoch)]
    fitness = correct_images(ind.fitness, f"{where} fitness") if ok and ind.fitness is not None else None
    if ok and (not epochs or fitness != max(epochs)):
        raise SystemExit(f"{where}: fitness is not the best epoch's accuracy; the derivation assumes it is")
    return {
        "status": ind.status.value,
        "fitness": fitness,
        "val_accuracy_per_epoch": epochs,
        "size_bytes": ind.size_bytes,
        "latency_s": ind.latency_s,
    }


def build(source: Path) -> dict[str, Any]:
    """The whole document: provenance, runs, distinct chromosomes and the evaluation columns."""
    runs = read_runs(source)
    table: dict[str, int] = {}
    chromosomes: list[list[dict[str, Any]]] = []
    names = ("run", "generation", "index", "chromosome", "status", "fitness")
    cols: dict[str, list[Any]] = {k: [] for k in (*names, "val_accuracy_per_epoch", "size_bytes", "latency_s")}
    run_records = []
    for r, (run, digest) in enumerate(runs):
        run_records.append(
            {
                "run": run.name,
                "dataset": run.dataset,
                "seed": run.seed,
                "control": run.control,
                "source_file": Path(run.source_file).name,
                "extract_sha256": digest,
            }
        )
        for gen in run.generations:
            for ind in gen.individuals:
                key = json.dumps(ind.chromosome, sort_keys=True)
                if key not in table:
                    table[key] = len(chromosomes)
                    chromosomes.append(ind.chromosome)
                row = _row(ind, f"{run.name} generation {gen.generation} individual {ind.index}")
                cols["run"].append(r)
                cols["generation"].append(gen.generation)
                cols["index"].append(ind.index)
                cols["chromosome"].append(table[key])
                for k, v in row.items():
                    cols[k].append(v)
    return {
        "format": FORMAT,
        "version": VERSION,
        "provenance": provenance(source, run_records, cols, len(chromosomes)),
        "accuracy_scale": SCALE,
        "runs": run_records,
        "chromosomes": chromosomes,
        "evaluations": cols,
    }


def provenance(source: Path, runs: list[dict[str, Any]], cols: dict[str, list[Any]], n_chrom: int) -> dict[str, Any]:
    """Where the data came from, what was derived, and the counts (checked by the loader's tests)."""
    status = Counter(cols["status"])
    per_dataset: dict[str, dict[str, int]] = {}
    for r, s in zip(cols["run"], cols["status"], strict=True):
        d = per_dataset.setdefault(runs[r]["dataset"], {"evaluations": 0, "ok": 0, "failed": 0, "oversized": 0})
        d["evaluations"] += 1
        d[s] += 1
    epochs = Counter(len(e) for e, s in zip(cols["val_accuracy_per_epoch"], cols["status"], strict=True) if s == "ok")
    return {
        "source": (
            "the 50 evolution runs published with 'Sequence Alignment-based Similarity Metric in Evolutionary "
            "Neural Architecture Search' (Avila Pava, Groh, Kist; github.com/ankilab/evonas_similarity_metric, "
            "dashboard/Results/results_compressed_paper_*.evonas), read from their plain-JSON extracts"
        ),
        "source_folder": source.name,
        "built_by": "benchmarks/build_surrogate_data.py",
        "parsed_by": "pyevonas.runs.importer.read_run (the parsing of `pyevonas import`)",
        "derived": [
            "status: 'failed' where the original stored fitness -10001 (a crashed training), 'oversized' where it "
            "stored only {memory_footprint_h5, fitness: 0} above max_memory_footprint (never trained); 'ok' otherwise",
            "fitness and val_accuracy_per_epoch: the published float32 accuracies as numbers of correct images of "
            "10,000 (value = float32(k / 10000) exactly); fitness is the best epoch (checked for every row); "
            "fewer than 12 epochs where the original's early stopping ended training; none when not trained",
            "chromosome: index into 'chromosomes', the distinct chromosomes as the importer returns them "
            "(published key order; equal as JSON with sorted keys = one entry)",
            "size_bytes: memory_footprint_h5 (untrained Keras .h5 file); latency_s: inference_time "
            "(one first model.predict on a shared GPU; null where not stored)",
            "dropped: individual names, parents, similarity matrices (they are in the run files)",
        ],
        "counts": {
            "runs": len(runs),
            "evaluations": len(cols["status"]),
            "distinct_chromosomes": n_chrom,
            "status": dict(sorted(status.items())),
            "per_dataset": per_dataset,
            "epochs_trained": {str(k): v for k, v in sorted(epochs.items())},
            "runs_per_dataset_control": dict(sorted(Counter(f"{r['dataset']}/{r['control']}" for r in runs).items())),
        },
    }


def write(doc: dict[str, Any], out: Path) -> None:
    """Write ``doc`` as compact gzip-compressed JSON with a fixed gzip time stamp (same input, same bytes)."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))


def main() -> None:
    """Parse the arguments, build the document, write it and print the counts."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, required=True, help="folder of the published runs' JSON extracts")
    ap.add_argument("--out", type=Path, required=True, help="the .json.gz file to write")
    args = ap.parse_args()
    doc = build(args.source)
    write(doc, args.out)
    counts = doc["provenance"]["counts"]
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB")
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()
