"""One pair at a time: ``pyevonas.similarity(a, b)`` on cells given as text or JSON, as a
third-party loop calls it, with the graphs read and keyed once (repeated calls) against every
call reading them again (the caches cleared before each call: the baseline, the path every call
took before the caches).

Inputs: 200 seeded pairs of NAS-Bench-201 strings, of NAS-Bench-101 specs and of DARTS genotype
texts (the generators of ``bench_graphs.py``). Each figure is the best of 5 rounds over the 200
pairs, in microseconds per call, on the calling thread.

    python benchmarks/bench_graph_calls.py --json benchmarks/results_graph_calls.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_graphs import machine, nb201_cells, random_darts, random_nb101

import pyevonas
from pyevonas.metric import graph_api, graphs

PAIRS = 200
ROUNDS = 5


def _clear() -> None:
    graphs._read_text.cache_clear()
    graph_api._content_key.cache_clear()


def _per_call(pairs: Sequence[tuple[Any, Any]], before: Callable[[], None] | None) -> float:
    """Best of ROUNDS rounds over the pairs, in microseconds per call."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for a, b in pairs:
            if before is not None:
                before()
            pyevonas.similarity(a, b)
        best = min(best, time.perf_counter() - start)
    return best / len(pairs) * 1e6


def _clear_only(pairs: Sequence[tuple[Any, Any]]) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS * len(pairs)):
        _clear()
    return (time.perf_counter() - start) / (ROUNDS * len(pairs)) * 1e6


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    cells = nb201_cells()
    inputs = {
        "nb201": [cells[i] for i in rng.choice(len(cells), 2 * PAIRS, replace=False)],
        "nb101": random_nb101(2 * PAIRS, rng),
        "darts": random_darts(2 * PAIRS, rng),
    }
    rows = []
    for name, archs in inputs.items():
        pairs = list(zip(archs[::2], archs[1::2], strict=True))
        for a, b in pairs:  # warm up, and check both paths give the same values
            cold = (_clear(), pyevonas.similarity(a, b))[1]
            assert pyevonas.similarity(a, b) == cold
        clear_cost = _clear_only(pairs)
        cold_us = _per_call(pairs, _clear) - clear_cost
        warm_us = _per_call(pairs, None)
        rows.append({"format": name, "pairs": len(pairs), "read_every_call_us": round(cold_us, 2),
                     "read_once_us": round(warm_us, 2), "speedup": round(cold_us / warm_us, 2)})  # fmt: skip
        print(f"{name}: {cold_us:.1f} us a call reading the graphs every call, {warm_us:.1f} us read once "
              f"({cold_us / warm_us:.2f}x)")  # fmt: skip
    doc = {
        "benchmark": "bench_graph_calls",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes"),
        "machine": machine(),
        "rounds": ROUNDS,
        "results": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


if __name__ == "__main__":
    main()
