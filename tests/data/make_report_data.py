"""Regenerate the report/import test data from the published runs (run by hand, never by the tests).

Usage: python tests/data/make_report_data.py DATA

DATA holds the paper's published runs (docs/original.md#the-published-runs): the authors' files as
``DATA/evonas_original/results_compressed_paper_<run>.evonas`` and their plain-JSON extracts as
``DATA/paper_runs/<run>.json``.

Writes:
* ``evonas_cifar10_s1_div_g4.evonas``: ``results_compressed_paper_cifar10_s1_div.evonas`` cut to its
  first 4 generations, in the original format (DataFrames as JSON strings, the header-less
  crossover log whose first record is the column names), with the 625 stored pairwise
  alignments per generation cut to 3 (they are not imported);
* ``paper_cifar10_s1_div_g2.json``: the same run's plain-JSON extract cut to 2 generations;
* ``table3_cifar.json.gz``: for the 40 CIFAR-10/100 naive and rigid runs, per generation the
  chromosomes in population order (as indices into a shared gene table), the population index of
  the best trained individual and its fitness (the max fitness; ``null`` where none trained);
  enough to recompute the similarity matrices and Table 3 of the paper.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

KEEP_GENERATIONS = 4
HERE = Path(__file__).resolve().parent


def _frame_rows(frame: dict, keep) -> dict:
    """Keep the rows of a DataFrame dict (orient=columns) whose row label passes `keep`."""
    return {c: {r: v for r, v in col.items() if keep(int(r))} for c, col in frame.items()}


def trim_evonas(src: Path, dst: Path) -> None:
    doc = json.loads(src.read_text(encoding="utf-8"))
    total = doc["total"]
    best = json.loads(total["df_best_individuals"])
    total["df_best_individuals"] = json.dumps(_frame_rows(best, lambda r: r < KEEP_GENERATIONS), separators=(",", ":"))
    sim_best = json.loads(total["sim_best"])
    names = [sim_best["Unnamed: 0"][str(i)] for i in range(KEEP_GENERATIONS)]
    sim_best = {c: v for c, v in sim_best.items() if c == "Unnamed: 0" or c in names}
    total["sim_best"] = json.dumps(_frame_rows(sim_best, lambda r: r < KEEP_GENERATIONS), separators=(",", ":"))
    cx = json.loads(total["crossover"])
    first = next(iter(cx))
    # Records labelled g name children of g+1: keep those whose children are kept.
    keep = {r for r, v in cx[first].items() if int(v.split(":")[1]) < KEEP_GENERATIONS}
    total["crossover"] = json.dumps(_frame_rows(cx, lambda r: str(r) in keep), separators=(",", ":"))
    out = {"total": total}
    for g in range(1, KEEP_GENERATIONS + 1):
        gen = doc[f"Generation_{g}"]
        gen["alignment"] = dict(list(gen["alignment"].items())[:3])
        out[f"Generation_{g}"] = gen
    dst.write_text(json.dumps(out), encoding="utf-8")


def trim_paper_json(src: Path, dst: Path, n: int) -> None:
    doc = json.loads(src.read_text(encoding="utf-8"))
    doc["generations"] = doc["generations"][:n]
    doc["best_individuals"] = doc["best_individuals"][:n]
    doc.pop("sim_best", None)
    dst.write_text(json.dumps(doc), encoding="utf-8")


def table3_data(paper_runs: Path, dst: Path) -> None:
    genes: dict[str, int] = {}
    runs = {}
    for dataset in ("cifar10", "cifar100"):
        for suffix in ("", "_div"):
            for seed in range(1, 11):
                name = f"{dataset}_s{seed}{suffix}"
                doc = json.loads((paper_runs / f"{name}.json").read_text(encoding="utf-8"))
                gens = []
                for gen in doc["generations"]:
                    inds = sorted(gen["individuals"], key=lambda d: d["population_index"])
                    chroms = []
                    for ind in inds:
                        codes = []
                        for gene in ind["chromosome"]:
                            key = json.dumps(gene, sort_keys=True)
                            codes.append(genes.setdefault(key, len(genes)))
                        chroms.append(codes)
                    trained = [
                        (d["fitness"], -k)
                        for k, d in enumerate(inds)
                        if d["fitness"] is not None and d["fitness"] != -10001.0 and d["val_acc"] is not None
                    ]
                    best = max(trained) if trained else None
                    gens.append(
                        {
                            "chromosomes": chroms,
                            "best_index": None if best is None else -best[1],
                            "max_fitness": None if best is None else best[0],
                        }
                    )
                runs[name] = {
                    "dataset": dataset,
                    "seed": seed,
                    "control": "rigid" if suffix else "naive",
                    "generations": gens,
                }
    table = [json.loads(k) for k, _ in sorted(genes.items(), key=lambda kv: kv[1])]
    payload = {"genes": table, "runs": runs}
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    with dst.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:  # mtime 0: reproducible bytes
        fh.write(data)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = Path(sys.argv[1])
    trim_evonas(
        data / "evonas_original" / "results_compressed_paper_cifar10_s1_div.evonas",
        HERE / "evonas_cifar10_s1_div_g4.evonas",
    )
    trim_paper_json(data / "paper_runs" / "cifar10_s1_div.json", HERE / "paper_cifar10_s1_div_g2.json", 2)
    table3_data(data / "paper_runs", HERE / "table3_cifar.json.gz")


if __name__ == "__main__":
    main()
