"""Graph edit distance of cell architectures (issue 22): speed against the issue's targets, the
ratio to networkx's exact ``graph_edit_distance``, and the exact search against the bounded method.

Every figure comes from one run, and the baselines are measured in that run on the same inputs:

* **NAS-Bench-201**: all 15,625 cells (every op on each of the 6 edges). Pairs per second through
  ``pyevonas.similarity_matrix`` (the cells as strings, parsing included; ``condensed=True``,
  float32) on 2 threads and on 1, on a seeded sample; then the full 15,625 x 15,625 condensed
  float32 matrix in a fresh Python process per thread count: wall time of the call, the process's
  peak RSS (``resource.getrusage``) and the array's size. Targets: >= 1 M pairs/s on two cores;
  the full matrix in < 3 min and < 1 GB.
* **NAS-Bench-101**: seeded random 7x7 specs as NAS-Bench-101's ``random_spec`` draws them (each
  upper-triangular entry 0 or 1 with even odds, ops uniform), kept when the pruned cell keeps all
  7 nodes and has at most 9 edges. Pairs per second on 2 threads and 1. Target: >= 100,000 pairs/s
  on two cores.
* **DARTS**: seeded random genotypes as DARTS derives them (each of the 4 steps takes two
  different earlier nodes, each with one of the 7 ops other than ``none``; concat 2-5). Pairs per
  second on 2 threads and 1.
* **networkx**: its exact ``graph_edit_distance`` on seeded pairs of NB201 cells and of NB101
  cells, against pyevonas on the same pairs, both under unit costs with the pins: networkx is
  given costs that let a pinned node substitute only for its partner (anything else, deleting or
  inserting it, costs 1e6), so both compute the same distance, and the values are compared.
  pyevonas is timed per call (``graph_edit_distance``, the graphs parsed beforehand: Python's
  part included) and as a matrix on one thread (the pairs' first graphs against their second:
  N x N pairs, the diagonal being the N pairs, whose values are checked too).
* **Exact against bounded**: random cells of 10, 12, 14 and 16 nodes (``input``, ops drawn from
  NAS-Bench-101's three, ``output``; connected, about 1.3 edges per node, as NAS-Bench-101's 9
  edges on 7 nodes), ``nb101`` costs. The core's time per pair (``_core.graph_distance`` on arrays
  built beforehand: without it, the bounded method's fraction of a millisecond would be mostly
  Python) for ``method="exact"`` and ``"bounded"``, bounded / exact, and how much lower the
  bounded similarity is. Exact searches above 12 nodes are cut at ``--pair-limit`` seconds a pair
  (counted, not hidden). The same on 200 pairs each of NB201 cells, NB101 cells and DARTS
  genotypes under their own built-in costs.

The JSON holds the machine, the date, the load average at start and end, the thread settings
and, under ``targets``, each target next to its measurement.

    python benchmarks/bench_graphs.py --json benchmarks/results_graphs.json
    python benchmarks/bench_graphs.py --quick          # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import pyevonas
from pyevonas import _core
from pyevonas.metric.graph_api import _Compiled, graph_edit_distance, graph_similarity_matrix
from pyevonas.metric.graph_costs import GraphCosts
from pyevonas.metric.graphs import GraphArch, parse_graph

REPO = Path(__file__).resolve().parents[1]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
             "dil_conv_5x5")  # fmt: skip
#: A cost networkx pays for what pyevonas never does (a pinned node deleted, inserted or moved).
FORBIDDEN = 1e6
#: The environment variables that set thread counts.
THREAD_VARIABLES = ("PYEVONAS_NUM_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS")

#: What a run measures: sample sizes (architectures), best of ``repeat``, networkx's pairs, and
#: the exact-against-bounded pairs per cell size.
FULL: dict[str, Any] = {
    "nb201_sample": 4000,
    "nb201_full": 15_625,
    "nb101": 1200,
    "darts": 1000,
    "repeat": 2,
    "nx_nb201": 200,
    "nx_nb101": 50,
    "sizes": (10, 12, 14, 16),
    "pairs": {10: 200, 12: 200, 14: 50, 16: 20},
    "format_pairs": 200,
}
QUICK: dict[str, Any] = {
    "nb201_sample": 200,
    "nb201_full": 300,
    "nb101": 60,
    "darts": 60,
    "repeat": 1,
    "nx_nb201": 4,
    "nx_nb101": 2,
    "sizes": (8, 10),
    "pairs": {8: 4, 10: 4},
    "format_pairs": 4,
}


# ---------------------------------------------------------------------- the machine
def machine() -> dict[str, Any]:
    """CPU, cores, memory, Python and the thread settings of this run."""
    cpu = platform.processor() or platform.machine()
    memory_gib = None
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        kib = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
        memory_gib = round(int(kib) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": memory_gib,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "thread_variables": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }


def code() -> dict[str, Any]:
    """The commit measured, the changed files of the package and core beside it, and when the
    extension was built (the working tree is shared: a rebuilt extension is a different program)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        status = subprocess.run(["git", "status", "--porcelain", "--", "pyevonas", "rust"], cwd=REPO,
                                capture_output=True, text=True)  # fmt: skip
    except OSError:
        return {}
    built = Path(_core.__file__).stat().st_mtime
    return {
        "commit": commit.stdout.strip(),
        "changed_files": [line[3:] for line in status.stdout.splitlines()],
        "extension_built": datetime.datetime.fromtimestamp(built, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------- the inputs
def nb201_cells() -> list[str]:
    """All 15,625 NAS-Bench-201 cells as strings, in a fixed order."""
    return [f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|" for a, b, c, d, e, f in itertools.product(NB201_OPS, repeat=6)]


def random_nb101(count: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``count`` NAS-Bench-101 specs drawn as its ``random_spec`` draws them, kept when the pruned
    cell has all 7 nodes (every node on a path from input to output) and at most 9 edges."""
    specs: list[dict[str, Any]] = []
    while len(specs) < count:
        m = np.triu(rng.integers(0, 2, size=(100_000, 7, 7), dtype=np.int8), 1)
        # No node pruned: each of nodes 0-5 has a successor and each of nodes 1-6 a predecessor.
        keep = (m.sum(axis=(1, 2)) <= 9) & (m[:, :6, :].sum(axis=2) > 0).all(axis=1)
        keep &= (m[:, :, 1:].sum(axis=1) > 0).all(axis=1)
        for matrix in m[keep][: count - len(specs)]:
            ops = ["input", *(NB101_OPS[i] for i in rng.integers(0, 3, size=5)), "output"]
            specs.append({"matrix": matrix.tolist(), "ops": ops})
    return specs


def random_darts(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` DARTS genotypes: each step takes two different earlier nodes, each with an op."""

    def cell() -> list[tuple[str, int]]:
        steps = []
        for step in range(4):
            for node in sorted(rng.choice(step + 2, size=2, replace=False)):
                steps.append((DARTS_OPS[int(rng.integers(0, len(DARTS_OPS)))], int(node)))
        return steps

    return [
        f"Genotype(normal={cell()}, normal_concat=[2, 3, 4, 5], reduce={cell()}, reduce_concat=[2, 3, 4, 5])"
        for _ in range(count)
    ]


def random_cell(nodes: int, rng: np.random.Generator) -> dict[str, Any]:
    """A connected DAG cell of ``nodes`` nodes (input pinned first, output last) with NAS-Bench-101's
    ops and about 1.3 edges per node."""
    edges = {(int(rng.integers(0, v)), v) for v in range(1, nodes)}
    for u in range(nodes - 1):
        if not any(s == u for s, _ in edges):
            edges.add((u, int(rng.integers(u + 1, nodes))))
    while len(edges) < round(1.3 * nodes):
        u, v = sorted(int(x) for x in rng.choice(nodes, size=2, replace=False))
        edges.add((u, v))
    ops = ["input", *(NB101_OPS[i] for i in rng.integers(0, 3, size=nodes - 2)), "output"]
    return {"nodes": ops, "edges": sorted(list(e) for e in edges), "inputs": [0], "outputs": [nodes - 1]}


# ---------------------------------------------------------------------- throughput
def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def throughput(archs: Sequence[Any], threads: Sequence[int], repeat: int) -> list[dict[str, Any]]:
    """Pairs per second of ``similarity_matrix(archs, condensed=True, dtype=float32)``, per thread count."""
    pairs = len(archs) * (len(archs) - 1) // 2
    pyevonas.similarity_matrix(list(archs[:50]), condensed=True, dtype=np.float32)  # warm
    rows = []
    for n_threads in threads:
        seconds = best_of(
            partial(pyevonas.similarity_matrix, archs, condensed=True, dtype=np.float32, n_threads=n_threads), repeat
        )
        rows.append(
            {"threads": n_threads, "n": len(archs), "pairs": pairs, "seconds": seconds, "pairs_per_s": pairs / seconds}
        )
        print(f"  {len(archs):>6} archs, {n_threads} thread(s): {pairs / seconds:>12,.0f} pairs/s ({seconds:.2f} s)")
    return rows


def full_nb201_child(n_threads: int, n: int) -> dict[str, Any]:
    """In a fresh process: the condensed float32 matrix of the first ``n`` NB201 cells (strings in,
    parsing included), its time, the process's peak RSS and the array's size; a sample of values
    checked against ``pyevonas.similarity``."""
    cells = nb201_cells()[:n]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    m = pyevonas.similarity_matrix(cells, condensed=True, dtype=np.float32, n_threads=n_threads)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(1)
    worst = 0.0
    for i, j in (sorted(rng.choice(n, size=2, replace=False)) for _ in range(100)):
        k = n * i - i * (i + 1) // 2 + (j - i - 1)  # scipy's condensed index of (i, j), i < j
        worst = max(worst, abs(float(m[k]) - pyevonas.similarity(cells[i], cells[j])))
    return {
        "threads": n_threads,
        "n": n,
        "pairs": int(m.size),
        "seconds": seconds,
        "pairs_per_s": m.size / seconds,
        "array_mb": m.nbytes / 1e6,
        "rss_before_call_mb": rss_before,
        "peak_rss_mb": peak,
        "checked_pairs_max_error": worst,
        "similarity_min": float(m.min()),
        "similarity_median": float(np.median(m)),
    }


def full_nb201(n_threads: int, n: int) -> dict[str, Any]:
    """``full_nb201_child`` in a fresh Python process (so that its peak RSS is this matrix's)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child-full-nb201", str(n_threads), str(n)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_seconds"] = time.perf_counter() - started
    print(
        f"  full {n:,} x {n:,}, {n_threads} thread(s): {row['seconds']:.1f} s ({row['pairs_per_s']:,.0f} pairs/s), "
        f"peak RSS {row['peak_rss_mb']:.0f} MB, array {row['array_mb']:.0f} MB"
    )
    return row


# ---------------------------------------------------------------------- networkx
def to_networkx(g: GraphArch) -> Any:
    """A one-cell graph as a networkx DiGraph whose nodes carry their label and pin."""
    import networkx as nx

    (cell,) = g.cells
    out = nx.DiGraph()
    for u, node in enumerate(cell.nodes):
        pin = ("in", cell.inputs.index(u)) if u in cell.inputs else None
        pin = ("out", cell.outputs.index(u)) if u in cell.outputs else pin
        out.add_node(u, label=(node.op, node.params), pin=pin)
    for e in cell.edges:
        out.add_edge(e.source, e.target, label=e.op)
    return out


def _node_substitution(a: dict[str, Any], b: dict[str, Any]) -> float:
    if a["pin"] != b["pin"]:
        return FORBIDDEN
    return 0.0 if a["label"] == b["label"] else 1.0


def _node_insertion_or_deletion(a: dict[str, Any]) -> float:
    return FORBIDDEN if a["pin"] is not None else 1.0


def _edge_substitution(a: dict[str, Any], b: dict[str, Any]) -> float:
    return 0.0 if a["label"] == b["label"] else 1.0


def networkx_distance(a: Any, b: Any) -> float:
    """networkx's exact edit distance of two DiGraphs from ``to_networkx``: unit costs, pins kept."""
    import networkx as nx

    d = nx.graph_edit_distance(
        a,
        b,
        node_subst_cost=_node_substitution,
        node_del_cost=_node_insertion_or_deletion,
        node_ins_cost=_node_insertion_or_deletion,
        edge_subst_cost=_edge_substitution,
    )
    return float(d)


def against_networkx(pairs: Sequence[tuple[GraphArch, GraphArch]]) -> dict[str, Any]:
    """networkx and pyevonas on the same pairs (unit costs, pins kept): times and agreement."""
    graph_edit_distance(pairs[0][0], pairs[0][1], "unit")  # warm
    nx_pairs = [(to_networkx(a), to_networkx(b)) for a, b in pairs]
    started = time.perf_counter()
    nx_values = [networkx_distance(a, b) for a, b in nx_pairs]
    nx_seconds = time.perf_counter() - started
    started = time.perf_counter()
    values = [float(graph_edit_distance(a, b, "unit", method="exact")) for a, b in pairs]
    call_seconds = time.perf_counter() - started
    rows, cols = [a for a, _ in pairs], [b for _, b in pairs]
    started = time.perf_counter()
    m = graph_similarity_matrix(rows, cols, "unit", values="distance", method="exact", n_threads=1)
    matrix_seconds = time.perf_counter() - started
    errors = np.abs(np.array(values) - np.array(nx_values))
    n = len(pairs)
    return {
        "pairs": n,
        "networkx_ms_per_pair": 1e3 * nx_seconds / n,
        "pyevonas_call_us_per_pair": 1e6 * call_seconds / n,
        "pyevonas_matrix_pairs": m.size,
        "pyevonas_matrix_pairs_per_s_1_thread": m.size / matrix_seconds,
        "speedup_per_call": nx_seconds / call_seconds,
        "speedup_matrix": (nx_seconds / n) * (m.size / matrix_seconds),
        "values_differing": int((errors > 1e-9).sum()),
        "matrix_diagonal_differing": int((np.abs(np.diag(m) - np.array(values)) > 1e-9).sum()),
        "max_abs_difference": float(errors.max()),
        "mean_distance": float(np.mean(values)),
    }


# ---------------------------------------------------------------------- exact against bounded
class PairTimeout(Exception):
    """An exact search ran past its limit."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise PairTimeout in the main thread after ``seconds`` (the core's watched exact search
    above 12 nodes notices the signal and stops)."""
    if seconds is None or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise PairTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_distance(c: _Compiled, i: int, j: int, method: str, limit: float | None) -> tuple[float | None, float, float]:
    """(distance or None when cut, dmax, seconds) of graphs i and j in the core."""
    batch = c.batches[0]
    started = time.perf_counter()
    try:
        with time_limit(limit):
            d, dmax, _ = _core.graph_distance(c.table, batch, i, batch, j, method, 12)
    except PairTimeout:
        return None, 0.0, time.perf_counter() - started
    return d, dmax, time.perf_counter() - started


def compare_methods(graphs: Sequence[GraphArch], costs: GraphCosts, pair_limit: float | None) -> dict[str, Any]:
    """The exact and bounded methods on pairs (graphs 0 and 1, 2 and 3, ...): core time per pair,
    distances, bounded / exact, and how much lower the bounded similarity is."""
    c = _Compiled(costs, [graphs])
    check = graph_edit_distance(graphs[0], graphs[1], costs, method="bounded")
    assert float(check) == timed_distance(c, 0, 1, "bounded", None)[0], "the core call is the public one"
    exact_s, bounded_s, found, cut = [], [], [], 0
    for k in range(len(graphs) // 2):
        bounded, dmax, tb = timed_distance(c, 2 * k, 2 * k + 1, "bounded", None)
        exact, _, te = timed_distance(c, 2 * k, 2 * k + 1, "exact", pair_limit)
        bounded_s.append(tb)
        if exact is None:
            cut += 1
            continue
        assert bounded is not None and bounded >= exact - 1e-9, (bounded, exact)
        exact_s.append(te)
        found.append((exact, bounded, dmax))
    values = np.array(found).reshape(-1, 3)
    ratios = values[values[:, 0] > 0, 1] / values[values[:, 0] > 0, 0]
    similarity_gap = (values[:, 1] - values[:, 0]) / np.maximum(values[:, 2], 1e-300)

    def stat(fn: Callable[[Any], Any], xs: Any, scale: float = 1.0) -> float | None:
        return scale * float(fn(xs)) if len(xs) else None

    return {
        "pairs": len(graphs) // 2,
        "exact_done": len(exact_s),
        "exact_cut_at_limit": cut,
        "pair_limit_s": pair_limit,
        "exact_ms_mean": stat(np.mean, exact_s, 1e3),
        "exact_ms_median": stat(np.median, exact_s, 1e3),
        "exact_ms_max": stat(np.max, exact_s, 1e3),
        "bounded_ms_mean": stat(np.mean, bounded_s, 1e3),
        "bounded_ms_max": stat(np.max, bounded_s, 1e3),
        "bounded_over_exact_mean": stat(np.mean, ratios),
        "bounded_over_exact_max": stat(np.max, ratios),
        "bounded_equal_exact_share": stat(np.mean, np.isclose(values[:, 1], values[:, 0])),
        "similarity_lower_by_mean": stat(np.mean, similarity_gap),
        "similarity_lower_by_max": stat(np.max, similarity_gap),
    }


def _show_methods(label: str, row: dict[str, Any]) -> None:
    def value(key: str) -> float:
        return float("nan") if row[key] is None else float(row[key])

    print(
        f"  {label:>9}: exact {value('exact_ms_mean'):9.3f} ms/pair (max {value('exact_ms_max'):.1f}, "
        f"{row['exact_cut_at_limit']} cut), bounded {value('bounded_ms_mean'):.3f} ms/pair, bounded/exact "
        f"{value('bounded_over_exact_mean'):.3f}, equal {value('bounded_equal_exact_share'):.0%}"
    )


def exact_vs_bounded(nodes: int, n_pairs: int, rng: np.random.Generator, pair_limit: float) -> dict[str, Any]:
    """``compare_methods`` on random cells of ``nodes`` nodes under ``nb101`` costs; exact searches
    above 12 nodes cut at ``pair_limit`` seconds."""
    graphs = [parse_graph(random_cell(nodes, rng)) for _ in range(2 * n_pairs)]
    row = {
        "nodes": nodes,
        "edges_mean": float(np.mean([len(g.cells[0].edges) for g in graphs])),
        **compare_methods(graphs, GraphCosts.builtin("nb101"), pair_limit if nodes > 12 else None),
    }
    _show_methods(f"{nodes} nodes", row)
    return row


def methods_on_formats(
    nb201: Sequence[GraphArch], nb101: Sequence[GraphArch], n_pairs: int, rng: np.random.Generator
) -> dict[str, Any]:
    """``compare_methods`` on the benchmark formats, each under its built-in costs."""
    picks = rng.choice(len(nb201), size=2 * n_pairs, replace=False)
    darts = [parse_graph(g) for g in random_darts(2 * n_pairs, rng)]
    rows = {
        "nb201": compare_methods([nb201[i] for i in picks], GraphCosts.builtin("nb201"), None),
        "nb101": compare_methods(nb101[: 2 * n_pairs], GraphCosts.builtin("nb101"), None),
        "darts": compare_methods(darts, GraphCosts.builtin("darts"), None),
    }
    for name, row in rows.items():
        _show_methods(name, row)
    return rows


# ---------------------------------------------------------------------- the run
def _rate(rows: list[dict[str, Any]], threads: int) -> float | None:
    return next((r["pairs_per_s"] for r in rows if r["threads"] == threads), None)


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets next to what was measured."""
    full = next((r for r in doc["nb201"]["full_matrix"] if r["threads"] == 2), None)
    nb201 = _rate(doc["nb201"]["throughput"], 2)
    nb101 = _rate(doc["nb101"]["throughput"], 2)
    rows: list[dict[str, Any]] = [
        {"what": "NB201 pairs/s, 2 threads", "target": ">= 1,000,000", "measured": nb201,
         "met": nb201 is not None and nb201 >= 1e6},
        {"what": "NB101 (7 nodes) pairs/s, 2 threads", "target": ">= 100,000", "measured": nb101,
         "met": nb101 is not None and nb101 >= 1e5},
    ]  # fmt: skip
    if full is not None:
        rows += [
            {"what": f"NB201 full {full['n']:,} condensed float32, 2 threads, seconds", "target": "< 180",
             "measured": full["seconds"], "met": full["seconds"] < 180},
            {"what": "its process's peak RSS, MB", "target": "< 1,000", "measured": full["peak_rss_mb"],
             "met": full["peak_rss_mb"] < 1000},
        ]  # fmt: skip
    return rows


def _networkx_section(
    nb201: list[GraphArch], nb101: list[GraphArch], settings: dict[str, Any], rng: np.random.Generator
) -> dict[str, Any]:
    import networkx

    picks = rng.choice(len(nb201), size=(settings["nx_nb201"], 2), replace=False)
    doc = {
        "version": networkx.__version__,
        "nb201": against_networkx([(nb201[i], nb201[j]) for i, j in picks]),
        "nb101": against_networkx([(nb101[2 * k], nb101[2 * k + 1]) for k in range(settings["nx_nb101"])]),
    }
    for name in ("nb201", "nb101"):
        r = doc[name]
        print(
            f"  {name}: networkx {r['networkx_ms_per_pair']:.2f} ms/pair, pyevonas "
            f"{r['pyevonas_call_us_per_pair']:.0f} us per call ({r['speedup_per_call']:,.0f}x), matrix "
            f"{r['speedup_matrix']:,.0f}x; {r['values_differing']} values differ"
        )
    return doc


def run(settings: dict[str, Any], threads: Sequence[int], pair_limit: float) -> dict[str, Any]:
    """Every measurement with ``settings`` (``FULL`` or ``QUICK``); returns the results document."""
    doc: dict[str, Any] = {
        "benchmark": "bench_graphs",
        "started": now_utc(),
        "machine": machine(),
        "code": code(),
        "load_average_start": list(os.getloadavg()),
        "settings": {
            **settings,
            "sizes": list(settings["sizes"]),
            "threads": list(threads),
            "pair_limit_s": pair_limit,
        },
    }
    doc["settings"]["pairs"] = {str(k): v for k, v in settings["pairs"].items()}
    rng = np.random.default_rng(0)
    cells = nb201_cells()
    started = time.perf_counter()
    parsed = [parse_graph(s) for s in cells]
    doc["nb201"] = {"parse_all_15625_seconds": time.perf_counter() - started}
    print("NAS-Bench-201, condensed float32 through similarity_matrix (strings in):")
    sample = [cells[i] for i in rng.choice(len(cells), size=settings["nb201_sample"], replace=False)]
    doc["nb201"]["throughput"] = throughput(sample, threads, settings["repeat"])
    doc["nb201"]["full_matrix"] = [full_nb201(t, settings["nb201_full"]) for t in threads]

    print("NAS-Bench-101, 7 nodes, <= 9 edges:")
    specs = random_nb101(settings["nb101"], rng)
    nb101 = [parse_graph(s) for s in specs]
    assert all(len(g.cells[0].nodes) == 7 and len(g.cells[0].edges) <= 9 for g in nb101)
    doc["nb101"] = {"mean_edges": float(np.mean([len(g.cells[0].edges) for g in nb101]))}
    doc["nb101"]["throughput"] = throughput(specs, threads, settings["repeat"])

    print("DARTS genotypes:")
    doc["darts"] = {"throughput": throughput(random_darts(settings["darts"], rng), threads, settings["repeat"])}

    print("networkx's exact graph_edit_distance against pyevonas, same pairs, unit costs, pins kept:")
    doc["networkx"] = _networkx_section(parsed, nb101, settings, rng)

    print("exact against bounded (core time per pair, 1 thread; random cells under nb101 costs, then the formats):")
    doc["exact_vs_bounded"] = [exact_vs_bounded(n, settings["pairs"][n], rng, pair_limit) for n in settings["sizes"]]
    doc["exact_vs_bounded_formats"] = methods_on_formats(parsed, nb101, settings["format_pairs"], rng)
    doc["targets"] = targets(doc)
    doc["finished"] = now_utc()
    doc["load_average_end"] = list(os.getloadavg())
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs: a smoke run of a few seconds")
    parser.add_argument("--threads", default="2,1", help="thread counts to measure (default 2,1)")
    parser.add_argument(
        "--pair-limit", type=float, default=60.0, help="seconds an exact search above 12 nodes may take"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child-full-nb201", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_full_nb201:
        result = full_nb201_child(*args.child_full_nb201)
        print(json.dumps(result))
        return result
    threads = [int(t) for t in args.threads.split(",")]
    doc = run(QUICK if args.quick else FULL, threads, args.pair_limit)
    doc["quick"] = args.quick
    for t in doc["targets"]:
        print(f"target {t['what']}: {t['target']}; measured {t['measured']:,.1f}: {'met' if t['met'] else 'NOT met'}")
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


if __name__ == "__main__":
    main()
