"""Archive queries by their number: per-query time of ``Archive.nearest(queries, k)``.

An archive of 60,000 members drawn from the paper's published architectures
(benchmarks/data/paper_archs.json.gz) is queried with 32 to 1,024 architectures for their 5
nearest members. Each figure is the best of a few repeats; the ratio column is the per-query
time against that of 128 queries, measured in the same run. Per-query time should never rise
with the number of queries: up to ``engine::FEW_ROWS`` (256) queries take the few-rows tier,
whose batches are ranges of columns, each computed once; above it, the lane kernel.

Usage: ``python benchmarks/bench_archive_nearest.py [--members N] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from bench_similarity import best_of, load_archs

import pyevonas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=60_000, help="archive size")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--queries", type=int, nargs="+", default=[32, 128, 200, 256, 300, 512, 1024])
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    archs = load_archs()
    members = [archs[i % len(archs)] for i in rng.permutation(args.members)]
    ar = pyevonas.Archive("default", members)
    pool = [archs[i] for i in rng.choice(len(archs), size=max(args.queries), replace=False)]
    res: dict[str, object] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "members": args.members,
        "k": args.k,
        "per_query_ms": {},
    }
    per_query: dict[int, float] = {}
    for q in args.queries:
        queries = pool[:q]
        t = best_of(lambda queries=queries: ar.nearest(queries, args.k), 3)
        per_query[q] = t / q
    base = per_query.get(128, next(iter(per_query.values())))
    print(f"Archive.nearest(q, {args.k}) against {args.members:,} members")
    for q, t in per_query.items():
        print(
            f"  {q:>5} queries  {t * q * 1e3:>9.1f} ms  {t * 1e3:>6.2f} ms/query  {t / base:>5.2f}x the 128-query rate"
        )
    res["per_query_ms"] = {q: t * 1e3 for q, t in per_query.items()}
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
