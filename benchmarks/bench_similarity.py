"""Similarity-matrix benchmark: pyevonas against the ways people align sequences today.

Workloads are architectures from the paper's 50 published runs (benchmarks/data/paper_archs.json.gz,
lengths 2..43 genes, median 13) and, separately, architectures of exactly 20 genes built from the
same gene pool. Every method runs on the same architectures in the same process:

- pyevonas (Rust lane kernel, rayon), default and paper schemas, 1 and 2 threads;
- Biopython's PairwiseAligner with a substitution matrix over the population's distinct genes
  (the fastest way to use it: one C call per pair, no Python match function);
- parasail's nw_scan_16 with the same matrix scaled to integers (speed only: parasail takes
  integer scores and at most a byte-sized alphabet, so its scores are approximations);
- a pure-Python reference of the authors' algorithm (Python NW + Python match function),
  timed on a sample of pairs.

Throughput is alignments per second (a symmetric schema aligns N(N-1)/2 pairs for an N x N
matrix, the directed `paper` schema N(N-1)). Usage:

    python benchmarks/bench_similarity.py                       # N = 25, 400, 2000
    python benchmarks/bench_similarity.py --sizes 100,1000,5000,20000 --scaling --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the pure-Python oracle lives with the tests

import pyevonas  # noqa: E402
from pyevonas.metric._compiled import compiled  # noqa: E402


def load_archs() -> list[list[dict[str, Any]]]:
    with gzip.open(ROOT / "benchmarks" / "data" / "paper_archs.json.gz", "rt") as f:
        return json.load(f)["chromosomes"]


def fixed_length(archs: list[list[dict]], n: int, length: int, rng: np.random.Generator) -> list[list[dict]]:
    """Architectures of exactly `length` genes, drawing genes from the real ones."""
    genes = [layer for a in archs for layer in a if layer["layer"] != "Rescaling"]
    return [[genes[i] for i in rng.integers(0, len(genes), size=length)] for _ in range(n)]


def best_of(fn: Callable[[], Any], repeat: int, min_time: float = 0.2) -> float:
    times = []
    t_end = time.perf_counter() + min_time
    for k in range(max(repeat, 1)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if k >= 1 and time.perf_counter() > t_end and times[-1] > 1.0:
            break
    return min(times)


def gene_strings(pop: list[list[dict]], schema: str) -> tuple[list[str], np.ndarray]:
    """Each architecture as a string over one symbol per distinct gene, and the score matrix."""
    c = compiled(schema)
    ids: dict[tuple, int] = {}
    seqs = []
    for a in pop:
        s = []
        for g in c.genes(a):
            key = (g.letter, tuple(sorted(g.params.items())))
            s.append(ids.setdefault(key, len(ids)))
        seqs.append(s)
    keys = list(ids)
    from pyevonas.metric._compiled import Gene

    genes = [Gene(k[0], c.scoring.gene(k[0]).layer, dict(k[1])) for k in keys]
    codes, params = c.encode_genes(genes)
    sub = np.array(
        [
            [
                c.table.substitution(int(codes[a]), list(params[a]), int(codes[b]), list(params[b]))
                for b in range(len(genes))
            ]
            for a in range(len(genes))
        ]
    )
    alphabet = "".join(chr(0x4E00 + i) for i in range(len(genes)))
    return ["".join(alphabet[i] for i in s) for s in seqs], sub


def bench_biopython(pop: list[list[dict]], schema: str, max_pairs: int) -> dict[str, Any] | None:
    try:
        from Bio import Align
        from Bio.Align import substitution_matrices
    except ImportError:
        return None
    strs, sub = gene_strings(pop, schema)
    alphabet = "".join(chr(0x4E00 + i) for i in range(len(sub)))
    arr = substitution_matrices.Array(alphabet=alphabet, dims=2, data=sub)
    al = Align.PairwiseAligner(mode="global", open_gap_score=-0.5, extend_gap_score=-0.5)
    al.substitution_matrix = arr
    pairs = [(i, j) for i in range(len(strs)) for j in range(i + 1, len(strs))][:max_pairs]
    t = best_of(lambda: [al.score(strs[i], strs[j]) for i, j in pairs], 2)
    # Sanity: Biopython's raw scores equal pyevonas's.
    from pyevonas.metric.api import score_matrix

    i, j = pairs[len(pairs) // 2]
    assert abs(al.score(strs[i], strs[j]) - score_matrix([pop[i]], [pop[j]], schema)[0, 0]) < 1e-9
    return {"pairs": len(pairs), "seconds": t, "pairs_per_s": len(pairs) / t}


def bench_parasail(pop: list[list[dict]], schema: str, max_pairs: int) -> dict[str, Any] | None:
    try:
        import parasail
    except ImportError:
        return None
    strs, sub = gene_strings(pop, schema)
    # parasail: byte alphabet, integer scores -> fold genes onto 94 printable symbols, scale x10.
    k = min(len(sub), 94)
    alphabet = "".join(chr(33 + i) for i in range(k))
    m = parasail.matrix_create(alphabet, 0, 0)
    for a in range(k):
        for b in range(k):
            m[a, b] = int(round(sub[a, b] * 10))
    seqs = ["".join(alphabet[(ord(ch) - 0x4E00) % k] for ch in s) for s in strs]
    pairs = [(i, j) for i in range(len(seqs)) for j in range(i + 1, len(seqs))][:max_pairs]
    t = best_of(lambda: [parasail.nw_scan_16(seqs[i], seqs[j], 5, 5, m).score for i, j in pairs], 2)
    return {"pairs": len(pairs), "seconds": t, "pairs_per_s": len(pairs) / t, "note": "approximate scores"}


def bench_python(pop: list[list[dict]], n_pairs: int, rng: np.random.Generator) -> dict[str, Any]:
    import reference

    idx = rng.integers(0, len(pop), size=(n_pairs, 2))
    t = time.perf_counter()
    for i, j in idx:
        reference.similarity(pop[i], pop[j])
    dt = time.perf_counter() - t
    # reference.similarity also aligns both sequences with themselves: count 3 alignments.
    return {"pairs": n_pairs, "seconds": dt, "pairs_per_s": 3 * n_pairs / dt}


def bench_pyevonas(pop: list[list[dict]], schema: str, threads: int, condensed: bool = False) -> dict[str, Any]:
    n = len(pop)
    pairs = n * (n - 1) // 2 * (1 if compiled(schema).table.symmetric else 2)
    repeat = 20 if n <= 100 else (5 if n <= 2000 else 1)
    t = best_of(lambda: pyevonas.similarity_matrix(pop, schema=schema, n_threads=threads, condensed=condensed), repeat)
    return {"n": n, "schema": schema, "threads": threads, "pairs": pairs, "seconds": t, "pairs_per_s": pairs / t}


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,400,2000")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--schemas", default="default,paper")
    ap.add_argument("--baseline-pairs", type=int, default=20000, help="pairs for Biopython/parasail")
    ap.add_argument("--python-pairs", type=int, default=300, help="pairs for the pure-Python reference")
    ap.add_argument("--scaling", action="store_true", help="also run N=20,000 condensed float32 (memory check)")
    ap.add_argument("--json", type=Path, help="write all results here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    archs = load_archs()
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    schemas = args.schemas.split(",")
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "rows": [],
    }
    pyevonas.similarity_matrix(archs[:4000])  # warm the gene cache, as a long-running search would

    def row(workload: str, method: str, r: dict[str, Any], base: float | None) -> None:
        r = {"workload": workload, "method": method, **r}
        if base:
            r["x_python"] = r["pairs_per_s"] / base
        results["rows"].append(r)
        ratio = f"{r['x_python']:>9.0f}x" if base else ""
        print(f"{workload:<22} {method:<34} {r['pairs_per_s'] / 1e6:>9.3f} M/s {ratio}", flush=True)

    workloads = []
    for n in sizes:
        idx = rng.choice(len(archs), size=min(n, len(archs)), replace=False)
        workloads.append((f"paper runs N={n}", [archs[i] for i in idx]))
    workloads.append(("length 20 N=2000", fixed_length(archs, 2000, 20, rng)))
    print(f"{'workload':<22} {'method':<34} {'alignments/s':>13} {'vs Python':>10}")
    for name, pop in workloads:
        py = bench_python(pop, args.python_pairs, rng)
        row(name, "pure Python (authors' algorithm)", py, py["pairs_per_s"])
        if len(pop) >= 400:
            bp = bench_biopython(pop, "default", args.baseline_pairs)
            if bp:
                row(name, "Biopython PairwiseAligner", bp, py["pairs_per_s"])
            ps = bench_parasail(pop, "default", args.baseline_pairs)
            if ps:
                row(name, "parasail nw_scan_16 (approx.)", ps, py["pairs_per_s"])
        for schema in schemas:
            for th in threads:
                r = bench_pyevonas(pop, schema, th)
                row(name, f"pyevonas {schema} {th} thread{'s' if th > 1 else ''}", r, py["pairs_per_s"])
        n = len(pop)
        t25 = best_of(lambda pop=pop: pyevonas.similarity_matrix(pop[:25]), 200)
        if n == sizes[0]:
            print(f"{'':<22} 25x25 matrix through the Python API: {t25 * 1e3:.3f} ms")
            results["matrix_25_ms"] = t25 * 1e3
    if args.scaling:
        big = [archs[i % len(archs)] for i in rng.permutation(20000)]
        for th in threads:
            t = time.perf_counter()
            m = pyevonas.similarity_matrix(big, condensed=True, dtype=np.float32, n_threads=th)
            dt = time.perf_counter() - t
            pairs = m.size
            print(
                f"N=20000 condensed float32, {th} thread(s): {dt:.2f} s, {pairs / dt / 1e6:.2f} M/s, "
                f"peak RSS {peak_rss_mb():.0f} MB"
            )
            results["rows"].append(
                {
                    "workload": "N=20000 condensed f32",
                    "method": f"pyevonas default {th} threads",
                    "pairs": pairs,
                    "seconds": dt,
                    "pairs_per_s": pairs / dt,
                    "peak_rss_mb": peak_rss_mb(),
                }
            )
            del m
        t = time.perf_counter()
        pyevonas.nearest(big, 5, n_threads=max(threads))
        dt = time.perf_counter() - t
        print(f"N=20000 nearest k=5: {dt:.2f} s, peak RSS {peak_rss_mb():.0f} MB")
        results["nearest_20000_s"] = dt
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
