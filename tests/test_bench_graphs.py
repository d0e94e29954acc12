"""benchmarks/bench_graphs.py runs: its inputs are what its docstring says, and a quick run (tiny
inputs, a few seconds) writes every field that BENCHMARKS.md and docs/graphs.md read from
benchmarks/results_graphs.json, with networkx and pyevonas agreeing on every pair."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pyevonas.metric.graphs import parse_graph

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("networkx")


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_graphs", REPO / "benchmarks" / "bench_graphs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_the_nb201_cells_are_the_whole_space() -> None:
    cells = bench.nb201_cells()
    assert len(cells) == len(set(cells)) == 15_625
    assert parse_graph(cells[0]).cells[0].edges == ()  # every edge 'none'
    assert len(parse_graph(cells[-1]).cells[0].edges) == 6


def test_the_random_inputs_are_valid_seeded_and_of_the_stated_shape() -> None:
    specs = bench.random_nb101(30, np.random.default_rng(3))
    assert specs == bench.random_nb101(30, np.random.default_rng(3))
    for spec in specs:
        (cell,) = parse_graph(spec, format="nb101").cells
        assert len(cell.nodes) == 7 and len(cell.edges) <= 9
    for text in bench.random_darts(10, np.random.default_rng(0)):
        g = parse_graph(text, format="darts")
        assert g.cell_names == ("normal", "reduce")
        for cell in g.cells:  # 8 op edges into the 4 steps, 4 plain edges into the output
            assert sum(e.op is not None for e in cell.edges) == 8 and sum(e.op is None for e in cell.edges) == 4
    for nodes in (8, 12):
        (cell,) = parse_graph(bench.random_cell(nodes, np.random.default_rng(nodes))).cells
        assert len(cell.nodes) == nodes and round(1.3 * nodes) <= len(cell.edges) < 2 * nodes
        assert (cell.inputs, cell.outputs) == ((0,), (nodes - 1,))


def test_networkx_gets_the_same_distances_with_the_pins_emulated() -> None:
    cells = bench.nb201_cells()
    pairs = [(parse_graph(cells[i]), parse_graph(cells[j])) for i, j in [(5, 15_000), (777, 9_001)]]
    row = bench.against_networkx(pairs)
    assert row["pairs"] == 2 and row["values_differing"] == 0 and row["matrix_diagonal_differing"] == 0


def test_a_quick_run_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    bench.main(["--quick", "--json", str(out)])
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["quick"] is True
    assert {"cpu", "cores", "memory_gib", "python", "thread_variables"} <= set(doc["machine"])
    assert len(doc["load_average_start"]) == len(doc["load_average_end"]) == 3
    assert doc["started"].endswith("UTC") and doc["finished"].endswith("UTC") and doc["code"]["commit"]
    for name in ("nb201", "nb101", "darts"):
        rows = doc[name]["throughput"]
        assert [r["threads"] for r in rows] == [2, 1]
        assert all(r["pairs"] == r["n"] * (r["n"] - 1) // 2 and r["pairs_per_s"] > 0 for r in rows)
    for full in doc["nb201"]["full_matrix"]:
        assert full["pairs"] == full["n"] * (full["n"] - 1) // 2
        assert full["array_mb"] == pytest.approx(4 * full["pairs"] / 1e6)
        assert full["peak_rss_mb"] >= full["rss_before_call_mb"] > 0
        assert full["checked_pairs_max_error"] < 1e-6  # float32 of the exact similarity
    for name in ("nb201", "nb101"):
        r = doc["networkx"][name]
        assert r["values_differing"] == 0 and r["matrix_diagonal_differing"] == 0
        assert r["speedup_per_call"] > 0 and r["speedup_matrix"] > 0
    assert [row["nodes"] for row in doc["exact_vs_bounded"]] == [8, 10]
    assert set(doc["exact_vs_bounded_formats"]) == {"nb201", "nb101", "darts"}
    for row in [*doc["exact_vs_bounded"], *doc["exact_vs_bounded_formats"].values()]:
        assert row["exact_done"] + row["exact_cut_at_limit"] == row["pairs"]
        # a bound is never below the distance (up to the last bit: the two sum their costs in another order)
        assert row["bounded_over_exact_mean"] is None or row["bounded_over_exact_mean"] >= 1 - 1e-12
        assert row["similarity_lower_by_mean"] >= -1e-12 and row["exact_ms_max"] >= row["exact_ms_median"]
    assert [t["what"][:5] for t in doc["targets"]] == ["NB201", "NB101", "NB201", "its p"]
    assert all(isinstance(t["met"], bool) and t["measured"] is not None for t in doc["targets"])


def test_the_pair_call_benchmark_runs_and_both_paths_agree(tmp_path: Path) -> None:
    """benchmarks/bench_graph_calls.py: reading the graphs once gives the values reading them every
    call gives (it checks each pair), and it writes what BENCHMARKS.md quotes."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_graph_calls", REPO / "benchmarks" / "bench_graph_calls.py")
        assert spec is not None and spec.loader is not None
        calls = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(calls)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    calls.PAIRS, calls.ROUNDS = 10, 1
    out = tmp_path / "calls.json"
    doc = calls.main(["--json", str(out)])
    assert json.loads(out.read_text()) == doc
    assert [r["format"] for r in doc["results"]] == ["nb201", "nb101", "darts"]
    assert all(r["read_once_us"] > 0 and r["read_every_call_us"] > 0 for r in doc["results"])
