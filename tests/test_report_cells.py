"""The report's figures of a cell-space run: each generation's best cell drawn as its DAG, and the
share of the last generation's cells with each operation at each edge (or node). In a cell space
every individual has one skeleton, so the gene-letter figures alone show nothing that changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PatchTraining, stub_evaluate

pytest.importorskip("matplotlib")

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.metric.graphs import parse_graph
from pyevonas.report import cells as C
from pyevonas.runs.store import RunStore

CELL = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
OTHER = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|none~2|"
NODE_CELL = {
    "nodes": ["input", "conv", "max_pool_3x3", "output"],
    "edges": [[0, 1], [1, 2], [0, 2], [2, 3]],
    "inputs": [0],
    "outputs": [3],
}


def _chromosome(*cells: Any) -> list[dict[str, Any]]:
    genes: list[dict[str, Any]] = [{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1}]
    for cell in cells:
        genes += [{"layer": "cell", "cell": cell}, {"layer": "RED_2D", "filters": 32}]
    return genes


def test_the_cells_of_a_chromosome_are_its_distinct_cells_in_order() -> None:
    assert C.cells_of(_chromosome(CELL, CELL, CELL)) == list(parse_graph(CELL).cells)
    assert C.cells_of(_chromosome(OTHER, CELL, OTHER)) == [parse_graph(OTHER).cells[0], parse_graph(CELL).cells[0]]
    assert C.cells_of(_chromosome("|not a cell|")) == []  # unreadable: left out, the report goes on
    assert C.has_cells([_chromosome(CELL)]) and not C.has_cells([[{"layer": "C_2D"}]])
    assert not C.has_cells([[{"layer": "C_2D", "cell": CELL}]]) and C.cells_of([{"layer": "C_2D", "cell": CELL}]) == []


def test_operations_by_position_count_absent_edges_as_none() -> None:
    cells = [parse_graph(c).cells[0] for c in (CELL, CELL, OTHER)]
    names, table = C._positions(cells)
    assert names == ["0→1", "0→2", "1→2", "0→3", "1→3", "2→3"]
    assert table[0] == ["nor_conv_3x3", "skip_connect", C.NONE, C.NONE, C.NONE, "avg_pool_3x3"]
    assert table[2] == ["skip_connect", "nor_conv_3x3", C.NONE, C.NONE, "avg_pool_3x3", C.NONE]
    fig = C.operation_frequency(cells, title="three cells")
    (image,) = fig.axes[0].get_images()
    share = np.asarray(image.get_array())
    assert share.shape == (6, 4) and np.allclose(share.sum(axis=1), 1.0)  # every position sums to all cells
    ops = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert share[0, ops.index("nor_conv_3x3")] == pytest.approx(2 / 3)


def test_cells_with_operations_on_their_nodes() -> None:
    cell = parse_graph(NODE_CELL).cells[0]
    names, table = C._positions([cell])
    assert names == ["inner node 1", "inner node 2"]  # the pinned input and output are no position
    assert table == [["conv", "max_pool_3x3"]]
    fig = C.operation_frequency(
        [cell, parse_graph({**NODE_CELL, "nodes": ["input", "conv", "conv", "output"]}).cells[0]]
    )
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["every inner node", "inner node 1", "inner node 2"]
    (image,) = fig.axes[0].get_images()
    assert np.asarray(image.get_array())[0].tolist() == [0.75, 0.25]  # conv, max_pool_3x3 over all 4 inner nodes
    fig = C.cell_drawings([("G1 · 0.5", [cell])])
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"in", "1", "conv", "2", "max_pool_3x3", "out", "G1 · 0.5"} <= texts


def test_each_edge_is_drawn_and_named_by_its_operation() -> None:
    cell = parse_graph(CELL).cells[0]
    fig = C.cell_drawings([("G1 · 0.9", [cell]), ("G2 · 0.8", [])])  # a row without a cell is left out
    (ax,) = fig.axes
    assert len(ax.patches) == len(cell.edges) == 3  # NAS-Bench-201's none is no edge
    assert sorted(t.get_text() for t in ax.texts if "_" in t.get_text()) == sorted(e.op for e in cell.edges)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["nor_conv_3x3", "skip_connect", "avg_pool_3x3"]


def test_the_report_of_a_cell_space_run_shows_its_cells(
    tmp_path: Path, patch_training: PatchTraining, capsys: pytest.CaptureFixture[str]
) -> None:
    patch_training(stub_evaluate)
    run, chain = tmp_path / "run", tmp_path / "chain"
    args = ["evolve", "--generations", "2", "--population", "6", "--epochs", "1", "--quiet"]
    assert run_guarded(app, [*args, "--space", "nb201", "--run-dir", str(run)]) == 0
    assert run_guarded(app, [*args, "--run-dir", str(chain)]) == 0
    assert run_guarded(app, ["report", str(run), str(chain), "-o", str(tmp_path / "report")]) == 0
    figures = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    assert {"run_cells_best.png", "run_cells_operations.png"} <= figures
    assert not any(name.startswith("chain_cells") for name in figures)  # a chain run has no cells
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Cells of the best individual of each generation" in page
    with RunStore.open(run, readonly=True) as store:
        last = max(store.generations())
        n = len(store.individuals(last))
    assert f"the share of the {n} cells of the last generation with each operation" in page
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["runs"]
