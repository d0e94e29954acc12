"""Graph architectures and their edit costs: every format read (all 15,625 NAS-Bench-201 cells, the
published DARTS genotypes, NAS-Bench-101 pruning), written back, refused with one exact line, and the
cost model: the built-ins load, are metrics, and bad cost files name their JSON path."""

from __future__ import annotations

import ast
import copy
import itertools
import json
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import pyevonas
from pyevonas.errors import EncodingError, GraphError, SchemaError
from pyevonas.metric.graph_costs import (
    BUILTIN_GRAPH_COSTS,
    GraphCosts,
    default_costs_for,
    graph_costs_json_schema,
    resolve_graph_costs,
)
from pyevonas.metric.graphs import (
    DARTS_OPS,
    NB101_OPS,
    NB201_OPS,
    Cell,
    Edge,
    GraphArch,
    Node,
    looks_like_graph,
    parse_graph,
)
from pyevonas.metric.schema import Scoring

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"

# The DARTS paper's cells as published in the authors' code (quark0/darts, cnn/genotypes.py).
DARTS_V1 = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


def nb201(ops: tuple[str, ...]) -> str:
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


def error(obj: Any, **kwargs: Any) -> str:
    """The message parse_graph gives, which must be one line."""
    with pytest.raises(GraphError) as err:
        parse_graph(obj, **kwargs)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


# ---------------------------------------------------------------------- NAS-Bench-201
def test_every_nb201_cell_parses_writes_back_and_round_trips() -> None:
    start = time.perf_counter()
    seen = set()
    for ops in itertools.product(NB201_OPS, repeat=6):
        text = nb201(ops)
        g = parse_graph(text)
        assert g.format == "nb201" and g.cell_names == ("cell",)
        (cell,) = g.cells
        assert [n.op for n in cell.nodes] == ["input", "node", "node", "output"]
        assert (cell.inputs, cell.outputs) == ((0,), (3,))
        assert len(cell.edges) == sum(op != "none" for op in ops)
        assert str(g) == text
        assert parse_graph(g.to_json()).cells == g.cells
        seen.add(g.cells)
    assert len(seen) == 15_625
    assert time.perf_counter() - start < 30  # about one second on a laptop


def test_nb201_edges_carry_their_ops_from_earlier_nodes() -> None:
    g = parse_graph("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
    assert g.cells[0].edges == (
        Edge(0, 1, "nor_conv_3x3"),
        Edge(0, 2, "skip_connect"),
        Edge(0, 3, "avg_pool_3x3"),
        Edge(1, 3, "nor_conv_1x1"),
        Edge(2, 3, "skip_connect"),
    )


def test_nb201_general_nats_form_with_other_node_counts() -> None:
    two = parse_graph("|skip_connect~0|")
    assert [n.op for n in two.cells[0].nodes] == ["input", "output"] and two.cells[0].outputs == (1,)
    five = parse_graph("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|none~1|none~2|skip_connect~3|")
    assert len(five.cells[0].nodes) == 5 and five.cells[0].edges == (Edge(3, 4, "skip_connect"),)
    assert str(five).endswith("|none~0|none~1|none~2|skip_connect~3|")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "|skip_connect~0|+|skip_connect~0|none~1|+|conv_9x9~0|none~1|none~2|",
            "graph: nb201 string: edge 3 ('conv_9x9~0'): unknown operation 'conv_9x9' "
            "(known: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)",
        ),
        ("|skip_connect~1|", "graph: nb201 string: edge 0 ('skip_connect~1'): node 1 is not before node 1"),
        (
            "|skip_connect~0|+|skip_connect~0|none~0|",
            "graph: nb201 string: edge 2 ('none~0'): a second edge from node 0 to node 2",
        ),
        (
            "|skip_connect|",
            "graph: nb201 string: edge 0 ('skip_connect'): expected op~j with j the index of an earlier node",
        ),
        ("|skip_connect~0|+", "graph: nb201 string: node 2: '' is not of the form |op~j|op~j|...|"),
        ("|", "graph: nb201 string: node 1: '|' is not of the form |op~j|op~j|...|"),
        (
            "|skip_connect~" + "9" * 5000 + "|",
            f"graph: nb201 string: edge 0 ({repr('skip_connect~' + '9' * 5000)[:57]}...): "
            "expected op~j with j the index of an earlier node",
        ),
    ],
)
def test_nb201_errors_name_the_edge(text: str, message: str) -> None:
    assert error(text) == message


# ---------------------------------------------------------------------- dag
def test_dag_nodes_edges_and_pins_in_every_accepted_form() -> None:
    g = parse_graph(
        {
            "nodes": ["input", {"op": "conv", "params": {"kernel": 3, "channels": 16}}, {"op": "pool"}, "output"],
            "edges": [[2, 3], [0, 1, "relu"], {"source": 1, "target": 2}, {"source": 0, "target": 2, "op": None}],
            "input": 0,
            "outputs": [3],
        }
    )
    (cell,) = g.cells
    assert cell.nodes[1] == Node("conv", (("channels", 16), ("kernel", 3)))
    assert cell.edges == (Edge(0, 1, "relu"), Edge(0, 2), Edge(1, 2), Edge(2, 3))
    assert (cell.inputs, cell.outputs, g.format, g.cell_names) == ((0,), (3,), "dag", ("cell",))
    assert str(cell.nodes[1]) == "conv(channels=16, kernel=3)"
    assert parse_graph({"nodes": ["a"], "edges": []}).cells[0] == Cell((Node("a"),), (), (), ())


def test_dag_with_several_cells_keeps_their_order() -> None:
    g = parse_graph(
        {"cells": {"reduce": {"nodes": ["a", "b"], "edges": [[0, 1]]}, "normal": {"nodes": ["a"], "edges": []}}}
    )
    assert g.cell_names == ("reduce", "normal") and len(g.cells[0].edges) == 1


def test_round_trips_through_the_dag_json_form() -> None:
    for obj in (
        DARTS_V1,
        DARTS_V2,
        nb201(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1")),
        {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]},
        {"nodes": ["x", {"op": "c", "params": {"k": 3, "s": "same", "b": True, "r": 0.5}}], "edges": [[0, 1, "e"]]},
    ):
        g = parse_graph(obj)
        again = parse_graph(json.loads(json.dumps(g.to_json())))
        assert (again.cells, again.cell_names, again.format) == (g.cells, g.cell_names, "dag")
        assert parse_graph(json.loads(str(again))) == again  # a dag's str is its compact JSON
    assert (
        str(parse_graph({"nodes": ["a", "b"], "edges": [[0, 1]]}))
        == '{"nodes":["a","b"],"edges":[[0,1]],"inputs":[],"outputs":[]}'
    )


DAG_ERRORS = [
    (
        {"nodes": list("abcd"), "edges": [[0, 1], [1, 2], [2, 3], [3, 1]]},
        "graph: dag: edges[3]: [3, 1] makes a cycle (1 -> 2 -> 3 -> 1)",
    ),
    (
        {"nodes": list("abcde"), "edges": [[3, 4], [0, 1], [1, 2], [4, 0], [2, 3], [1, 4]]},
        "graph: dag: edges[4]: [2, 3] makes a cycle (3 -> 4 -> 0 -> 1 -> 2 -> 3)",
    ),
    (
        {"nodes": list("abcdefg"), "edges": [[0, 1], [1, 2], [2, 9]]},
        "graph: dag: edges[2]: node 9 does not exist (7 nodes)",
    ),
    ({"nodes": list("ab"), "edges": [[0, -1]]}, "graph: dag: edges[0]: node -1 does not exist (2 nodes)"),
    ({"nodes": list("ab"), "edges": [[1, 1]]}, "graph: dag: edges[0]: [1, 1] is a self loop"),
    (
        {"nodes": list("ab"), "edges": [[0, 1], [0, 1, "x"]]},
        "graph: dag: edges[1]: [0, 1] repeats edges[0] (one edge per pair of nodes)",
    ),
    ({"nodes": [], "edges": []}, "graph: dag: nodes: the graph has no nodes"),
    ({"cells": {"c": {"nodes": ["a"]}}}, "graph: dag: cells.c.edges: missing"),
    (
        {"nodes": ["a"], "edges": [], "edgs": []},
        "graph: dag: edgs: unknown key (a dag has nodes, edges, inputs or input, outputs or output)",
    ),
    ({"nodes": [""], "edges": []}, "graph: dag: nodes[0]: an op must be a non-empty string, got ''"),
    ({"nodes": [3], "edges": []}, "graph: dag: nodes[0]: expected an op name or {'op': ..., 'params': {...}}, got 3"),
    (
        {"nodes": [{"op": "c", "kind": 1}], "edges": []},
        "graph: dag: nodes[0].kind: unknown key (a node has op and params)",
    ),
    (
        {"nodes": [{"op": "c", "params": {"k": [3]}}], "edges": []},
        "graph: dag: nodes[0].params.k: a parameter is a number, a string or a boolean, got [3]",
    ),
    (
        {"nodes": [{"op": "c", "params": {"k": float("nan")}}], "edges": []},
        "graph: dag: nodes[0].params.k: nan is not finite",
    ),
    (
        {"nodes": [{"op": "c", "params": {"k": 2**60}}], "edges": []},
        "graph: dag: nodes[0].params.k: 1152921504606846976 is beyond ±2**53, where floats lose integers",
    ),
    ({"nodes": ["a", "b"], "edges": [[0, True]]}, "graph: dag: edges[0]: a node is an integer index, got True"),
    (
        {"nodes": ["a", "b"], "edges": [[0]]},
        "graph: dag: edges[0]: expected [source, target], [source, target, op] or an object, got [0]",
    ),
    ({"nodes": ["a", "b"], "edges": [{"source": 0}]}, "graph: dag: edges[0].target: missing"),
    ({"nodes": ["a", "b"], "edges": [[0, 1, 7]]}, "graph: dag: edges[0]: op: an op must be a non-empty string, got 7"),
    (
        {"nodes": ["a", "b"], "edges": [], "inputs": [0], "input": 0},
        "graph: dag: input: give either inputs (a list) or input (one node), not both",
    ),
    ({"nodes": ["a", "b"], "edges": [], "inputs": [0, 0]}, "graph: dag: inputs[1]: node 0 is listed twice"),
    ({"nodes": ["a", "b"], "edges": [], "outputs": [2]}, "graph: dag: outputs[0]: node 2 does not exist (2 nodes)"),
    ({"nodes": ["a", "b"], "edges": [], "input": 1, "output": 1}, "graph: dag: output: node 1 is also an input"),
    (
        {"cells": {"normal": {"nodes": ["a"], "edges": [[0, 1]]}}},
        "graph: dag: cells.normal.edges[0]: node 1 does not exist (1 nodes)",
    ),
    ({"cells": {}}, "graph: dag: cells: expected a non-empty object of name -> cell"),
    (
        {"cells": {"n": {"nodes": ["a"], "edges": []}}, "nodes": []},
        "graph: dag: unknown key 'nodes' beside cells (each cell holds its own nodes and edges)",
    ),
]


@pytest.mark.parametrize(("obj", "message"), DAG_ERRORS, ids=[m.split(": ", 2)[-1][:40] for _, m in DAG_ERRORS])
def test_dag_errors_name_the_place(obj: Any, message: str) -> None:
    assert error(obj) == message


def test_huge_integers_give_one_line_not_a_traceback() -> None:
    huge = 10**5000
    assert error({"nodes": ["a", "b"], "edges": [[0, huge]]}) == (
        "graph: dag: edges[0]: node <an integer of about 5001 digits> does not exist (2 nodes)"
    )
    assert "beyond ±2**53" in error({"nodes": [{"op": "c", "params": {"k": -huge}}], "edges": []})
    assert "<an integer of about 5001 digits> is not 0 or 1" in error(
        {"matrix": [[0, huge], [0, 0]], "ops": ["input", "output"]}
    )
    assert "input <an integer of about 5001 digits> is not a node before node 2" in error(
        {
            "normal": [["skip_connect", huge], ["skip_connect", 1]],
            "normal_concat": [2],
            "reduce": [],
            "reduce_concat": [2],
        }
    )
    assert "cannot read the Genotype text (Exceeds the limit (4300 digits)" in error(
        "Genotype(normal=[('skip_connect', " + "9" * 5000 + ")])"
    )


# ---------------------------------------------------------------------- NAS-Bench-101
def test_nb101_cell_keeps_ops_on_nodes_and_plain_edges() -> None:
    # The example cell of NAS-Bench-101's README: nothing to prune.
    matrix = [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    ops = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output"]
    g = parse_graph({"matrix": matrix, "ops": ops})
    (cell,) = g.cells
    assert [n.op for n in cell.nodes] == ops and len(cell.edges) == 9
    assert all(e.op is None for e in cell.edges) and (cell.inputs, cell.outputs) == ((0,), (6,))
    assert parse_graph({"matrix": np.array(matrix), "ops": ops}) == g  # NAS-Bench-101 gives numpy arrays


def test_nb101_prunes_nodes_off_every_input_output_path() -> None:
    matrix = [
        [0, 1, 1, 0, 0],  # 0 -> 1 -> 4 is the path; 2 is a dead end
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],  # 3 is not reachable from the input
        [0, 0, 0, 0, 0],
    ]
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]
    (cell,) = parse_graph({"matrix": matrix, "ops": ops}).cells
    assert [n.op for n in cell.nodes] == ["input", "conv3x3-bn-relu", "output"]
    assert cell.edges == (Edge(0, 1), Edge(1, 2)) and cell.outputs == (2,)


NB101_ERRORS = [
    (
        {"matrix": [[0] * 8 for _ in range(8)], "ops": ["input"] + ["maxpool3x3"] * 6 + ["output"]},
        "graph: nb101: matrix is 8x8; NAS-Bench-101 cells have at most 7 nodes",
    ),
    (
        {
            "matrix": [[int(j > i) for j in range(7)] for i in range(7)],
            "ops": ["input"] + ["maxpool3x3"] * 5 + ["output"],
        },
        "graph: nb101: 21 edges after pruning; NAS-Bench-101 cells have at most 9 edges",
    ),
    (
        {"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]},
        "graph: nb101: invalid spec: no path from the input to the output",
    ),
    (
        {"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]},
        "graph: nb101: matrix[1][0]: an edge on or below the diagonal (the matrix must be upper triangular)",
    ),
    ({"matrix": [[0, 2], [0, 0]], "ops": ["input", "output"]}, "graph: nb101: matrix[0][1]: 2 is not 0 or 1"),
    (
        {"matrix": [[0, 1], [0]], "ops": ["input", "output"]},
        "graph: nb101: matrix[1]: 1 entries in a matrix of 2 rows (it must be square)",
    ),
    ({"matrix": [], "ops": []}, "graph: nb101: matrix: empty (the graph has no nodes)"),
    ({"matrix": [[0, 1], [0, 0]], "ops": ["input"]}, "graph: nb101: ops: 1 operations for a 2x2 matrix (one per node)"),
    (
        {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]},
        "graph: nb101: ops[1]: unknown operation 'conv5x5' (known: conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3)",
    ),
    (
        {"matrix": [[0, 1], [0, 0]], "ops": ["output", "input"]},
        "graph: nb101: ops[0]: 'output': the first node's op must be 'input'",
    ),
    (
        {"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"], "hash": "x"},
        "graph: nb101: hash: unknown key (a NAS-Bench-101 cell has matrix and ops)",
    ),
]


@pytest.mark.parametrize(("obj", "message"), NB101_ERRORS, ids=[m.split(": ", 2)[-1][:40] for _, m in NB101_ERRORS])
def test_nb101_errors(obj: Any, message: str) -> None:
    assert error(obj) == message


# ---------------------------------------------------------------------- DARTS
@pytest.mark.parametrize("text", [DARTS_V1, DARTS_V2], ids=["V1", "V2"])
def test_published_darts_genotypes_become_two_cells(text: str) -> None:
    g = parse_graph(text)
    assert g.format == "darts" and g.cell_names == ("normal", "reduce")
    for cell in g.cells:
        assert [n.op for n in cell.nodes] == ["input", "input", "node", "node", "node", "node", "output"]
        assert (cell.inputs, cell.outputs) == ((0, 1), (6,))
        op_edges = [e for e in cell.edges if e.op is not None]
        assert len(op_edges) == 8 and all(2 <= e.target <= 5 for e in op_edges)
        assert [e.source for e in cell.edges if e.op is None] == [2, 3, 4, 5]
    assert parse_graph(str(g)) == g
    # The same genotype as JSON, and as the DARTS code's namedtuple.
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call)
    fields = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    assert parse_graph(json.loads(json.dumps(fields))) == g
    assert parse_graph(Genotype(**fields)) == g


def test_darts_v2_normal_cell_edges() -> None:
    normal = parse_graph(DARTS_V2).cells[0]
    assert normal.edges[:8] == (
        Edge(0, 2, "sep_conv_3x3"),
        Edge(0, 3, "sep_conv_3x3"),
        Edge(0, 4, "skip_connect"),
        Edge(0, 5, "skip_connect"),
        Edge(1, 2, "sep_conv_3x3"),
        Edge(1, 3, "sep_conv_3x3"),
        Edge(1, 4, "sep_conv_3x3"),
        Edge(2, 5, "dil_conv_3x3"),
    )


def test_darts_range_concat_none_ops_and_other_step_counts() -> None:
    g = parse_graph(
        "Genotype(normal=[('none', 0), ('skip_connect', 1), ('sep_conv_7x7', 2), ('conv_7x1_1x7', 0)], "
        "normal_concat=range(2, 4), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[0, 2])"
    )
    normal, reduce = g.cells
    assert normal.edges == (
        Edge(0, 3, "conv_7x1_1x7"),
        Edge(1, 2, "skip_connect"),
        Edge(2, 3, "sep_conv_7x7"),
        Edge(2, 4),
        Edge(3, 4),
    )
    assert reduce.edges == (Edge(0, 2, "max_pool_3x3"), Edge(0, 3), Edge(1, 2, "max_pool_3x3"), Edge(2, 3))
    assert parse_graph(str(g)) == g and "('none', 0)" in str(g)


DARTS_ERRORS = [
    (
        # AmoebaNet's normal cell (same file): node 5 takes input 1 twice.
        {
            "normal": [["sep_conv_3x3", 0], ["skip_connect", 0], ["sep_conv_3x3", 1], ["skip_connect", 1]],
            "normal_concat": [2, 3],
            "reduce": [["skip_connect", 0], ["skip_connect", 1]],
            "reduce_concat": [2],
        },
        "graph: darts: normal[1]: ('skip_connect', 0) is a second edge from node 0 to node 2 (also normal[0]); a graph has one edge per pair of nodes",
    ),
    (
        "Genotype(normal=[('sep_conv_9x9', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[], reduce_concat=[])",
        "graph: darts: normal[0]: unknown operation 'sep_conv_9x9' (known: none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, sep_conv_7x7, dil_conv_3x3, dil_conv_5x5, conv_7x1_1x7)",
    ),
    (
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 2)], normal_concat=[2], reduce=[], reduce_concat=[])",
        "graph: darts: normal[1]: input 2 is not a node before node 2 (0 to 1)",
    ),
    (
        "Genotype(normal=[('skip_connect', 0)], normal_concat=[2], reduce=[], reduce_concat=[])",
        "graph: darts: normal: 1 operations; each intermediate node takes two (an even number, at least 2)",
    ),
    (
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2, 2], reduce=[], reduce_concat=[])",
        "graph: darts: normal_concat[1]: node 2 is listed twice",
    ),
    (
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[3], reduce=[], reduce_concat=[])",
        "graph: darts: normal_concat[0]: 3 is not a node of the cell (0 to 2)",
    ),
    (
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[])",
        "graph: darts: reduce_concat: expected a non-empty list of the nodes the output concatenates, got []",
    ),
    (
        "Genotype(normal=[], normal_concat=[2], reduce=[], colour=[])",
        "graph: darts: colour: unknown key (a genotype has normal, normal_concat, reduce, reduce_concat)",
    ),
    ("Genotype(normal=[], normal_concat=[2], reduce=[])", "graph: darts: reduce_concat: missing"),
    ("Genotype(normal=[('skip_connect', 0)", "graph: darts: cannot read the Genotype text ('[' was never closed)"),
    (
        "Genotype(normal=__import__('os').system('echo hacked'))",
        "graph: darts: normal: not a literal list (only lists, tuples, strings and integers can be read)",
    ),
    (
        "Genotype(normal=range(10**9))",
        "graph: darts: normal: only range(stop) or range(start, stop) with small integers can be read",
    ),
    ("Genotype(**d)", "graph: darts: Genotype(**...) cannot be read; write the fields out"),
    ("Genotype(normal=[], normal=[])", "graph: darts: normal: given twice"),
]


@pytest.mark.parametrize(("obj", "message"), DARTS_ERRORS, ids=[m.split(": ", 2)[-1][:40] for _, m in DARTS_ERRORS])
def test_darts_errors(obj: Any, message: str) -> None:
    assert error(obj) == message


# ---------------------------------------------------------------------- detection, where, hand-built graphs
def test_looks_like_graph_by_shape() -> None:
    graphs = [
        nb201(("none",) * 6),
        "  |skip_connect~0|",
        DARTS_V1,
        {"matrix": [], "ops": []},
        {"nodes": [], "edges": []},
        {"cells": {}},
        {"normal": [], "reduce": []},
        Genotype([], [], [], []),
        parse_graph(DARTS_V2),
    ]
    chains = [
        "C(32,3,1) B L g F(64)",
        [{"layer": "C_2D"}],
        [],
        {"layer": "C_2D"},
        ({"layer": "C_2D"},),
        3,
        None,
        {"cells": []},
    ]
    assert all(looks_like_graph(g) for g in graphs)
    assert not any(looks_like_graph(c) for c in chains)


def test_format_detection_and_explicit_format() -> None:
    for obj, fmt in ((DARTS_V1, "darts"), (nb201(("none",) * 6), "nb201"), ({"nodes": ["a"], "edges": []}, "dag")):
        assert parse_graph(obj).format == fmt == parse_graph(obj, fmt).format
    assert error({"nodes": ["a"], "edges": []}, format="nb201") == (
        "graph: nb201 string: expected the topology string '|op~0|+|op~0|op~1|+...', got dict"
    )
    assert error("|none~0|", format="dag") == "graph: dag: expected a JSON object with nodes and edges, got str"
    assert (
        error("x", format="cell") == "graph: unknown graph format 'cell' (choose from auto, dag, nb201, nb101, darts)"
    )
    assert error([{"layer": "C_2D"}]).endswith(
        "got a list (a list of layer dicts is a chain architecture, not a graph)"
    )
    assert error("C(32,3,1) g").endswith("; got the text 'C(32,3,1) g'")


def test_where_names_the_graph_and_errors_are_encoding_errors() -> None:
    assert error("|x~0|", where="architecture 3").startswith("architecture 3: nb201 string: edge 0 ('x~0'): ")
    assert error("|x~0|", where="").startswith("nb201 string: edge 0")
    assert issubclass(GraphError, EncodingError) and issubclass(GraphError, ValueError)
    assert pyevonas.GraphError is GraphError


def test_a_hand_built_graph_is_checked() -> None:
    g = parse_graph(DARTS_V1)
    assert parse_graph(g) is g
    a, b = Node("a"), Node("b")
    unsorted = GraphArch((Cell((a, b, b), (Edge(1, 2), Edge(0, 1))),), "dag", ("cell",))
    assert error(unsorted) == (
        "graph: GraphArch: cells.cell: not in canonical form (edges sorted by (source, target), params by name)"
    )
    cyclic = GraphArch((Cell((a, b), (Edge(0, 1), Edge(1, 0))),), "dag", ("cell",))
    assert error(cyclic) == "graph: GraphArch: cells.cell.edges[1]: [1, 0] makes a cycle (0 -> 1 -> 0)"
    assert error(GraphArch((), "dag", ())) == "graph: GraphArch: 0 cells with names (): one distinct name per cell"
    assert error(GraphArch((Cell(("a",), ()),), "dag", ("cell",))) == (  # type: ignore[arg-type]
        "graph: GraphArch: cells.cell.nodes[0]: expected a Node, got str"
    )
    # A graph that does not fit its format's text is written as JSON.
    odd = GraphArch((Cell((a, b), (Edge(0, 1, "x"),), (0,), (1,)),), "nb201", ("cell",))
    assert str(odd) == '{"nodes":["a","b"],"edges":[[0,1,"x"]],"inputs":[0],"outputs":[1]}'


# ---------------------------------------------------------------------- costs: built-ins
def test_builtin_costs_load_and_each_format_has_its_default() -> None:
    assert BUILTIN_GRAPH_COSTS == ("unit", "nb201", "nb101", "darts")
    for name in BUILTIN_GRAPH_COSTS:
        costs = GraphCosts.builtin(name)
        assert costs.name == name and costs.symmetric and costs.description
        assert resolve_graph_costs(name) is costs
        assert GraphCosts.from_json(costs.to_json()) == costs
    assert [default_costs_for(f) for f in ("dag", "nb201", "nb101", "darts")] == ["unit", "nb201", "nb101", "darts"]
    with pytest.raises(GraphError, match="unknown graph format 'cell'"):
        default_costs_for("cell")


def test_builtin_files_are_the_published_format() -> None:
    published = json.loads((SCHEMAS / "graph_costs.schema.json").read_text())
    assert published == graph_costs_json_schema(), "regenerate with `make schemas`"
    jsonschema = pytest.importorskip("jsonschema")
    for name in BUILTIN_GRAPH_COSTS:
        jsonschema.validate(json.loads((SCHEMAS / f"graph_costs.{name}.json").read_text()), published)


def test_matrices_shapes_zero_diagonal_and_values() -> None:
    costs = GraphCosts.builtin("nb201")
    nodes = [Node("input"), Node("node"), Node("output"), Node("node")]
    edges = ["nor_conv_1x1", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", None]
    matrices = costs.matrices(nodes, edges)
    shapes = [(4, 4), (4,), (4,), (5, 5), (5,), (5,)]
    assert [m.shape for m in matrices] == shapes
    assert all(m.dtype == np.float64 and m.flags.c_contiguous for m in matrices)
    node_sub, node_del, node_ins, edge_sub, edge_del, edge_ins = matrices
    assert node_sub[1, 3] == 0 and node_sub[0, 1] == 1 and (np.diag(node_sub) == 0).all()
    assert (np.diag(edge_sub) == 0).all() and (edge_sub == edge_sub.T).all()
    assert edge_sub[0, 1] == 0.4 and edge_sub[2, 3] == 0.4 and edge_sub[3, 0] == 0.8 and edge_sub[4, 0] == 1
    assert (edge_del == 1).all() and (edge_ins == 1).all() and (node_del == 1).all()
    empty = costs.matrices([], [])
    assert [m.shape for m in empty] == [(0, 0), (0,), (0,), (0, 0), (0,), (0,)]


def test_unit_costs_one_per_edit() -> None:
    unit = GraphCosts.builtin("unit")
    labels = [Node("a"), Node("a", (("k", 1),)), Node("b"), Node("a", (("k", 2),))]
    sub, delete, insert, *_ = unit.matrices(labels, [])
    assert (sub == 1 - np.eye(4)).all() and (delete == 1).all() and (insert == 1).all()


def _extended_distance(side: Any) -> Any:
    """Label distance with deletion as the distance to the empty label (None of ``eps``)."""
    eps = object()

    def d(a: Any, b: Any) -> float:
        if a is eps and b is eps:
            return 0.0
        if a is eps:
            return float(side.insertion(b))
        if b is eps:
            return float(side.deletion(a))
        return float(side.substitution(a, b))

    return d, eps


def _assert_metric(side: Any, labels: list[Any]) -> None:
    d, eps = _extended_distance(side)
    points = [*labels, eps]
    for a, b in itertools.product(points, repeat=2):
        assert d(a, b) == d(b, a), (a, b)
        assert (d(a, b) == 0) == (a == b or (a is eps and b is eps)), (a, b)
    for a, b, c in itertools.product(points, repeat=3):
        assert d(a, c) <= d(a, b) + d(b, c) + 1e-12, (a, b, c)


@pytest.mark.parametrize("name", BUILTIN_GRAPH_COSTS)
def test_every_builtin_is_a_metric_on_its_ops(name: str) -> None:
    costs = GraphCosts.builtin(name)
    ops = sorted(
        {op for op in (*NB201_OPS, *NB101_OPS, *DARTS_OPS, "input", "node", "output", "other") if op != "none"}
    )
    _assert_metric(costs.node, [Node(op) for op in ops])
    _assert_metric(costs.edge, [*ops, None])
    # substitution never costs more than deleting one label and inserting the other
    for a, b in itertools.product(ops, repeat=2):
        assert costs.edge.substitution(a, b) <= costs.edge.deletion(a) + costs.edge.insertion(b)


NODE_LABELS = st.builds(
    Node,
    op=st.sampled_from(["input", "node", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "sep_conv_3x3", "x"]),
    params=st.dictionaries(
        st.sampled_from(["k", "c"]), st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"])), max_size=2
    ).map(lambda d: tuple(sorted(d.items()))),
)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(BUILTIN_GRAPH_COSTS), a=NODE_LABELS, b=NODE_LABELS, c=NODE_LABELS)
def test_builtins_stay_metrics_on_labels_with_params(name: str, a: Node, b: Node, c: Node) -> None:
    side = GraphCosts.builtin(name).node
    d = side.substitution
    assert d(a, b) == d(b, a) and (d(a, b) == 0) == (a == b)
    assert d(a, c) <= d(a, b) + d(b, c) + 1e-12
    assert d(a, b) <= side.deletion(a) + side.insertion(b)


# ---------------------------------------------------------------------- costs: the model
TERMS = {
    "name": "terms",
    "node": {
        "same_op": 0.7,
        "substitute": 2,
        "ops": {
            "conv": {
                "terms": [{"param": "channels", "weight": 0.5, "norm": 64}, {"param": "padding", "weight": 0.3}],
                "delete": 3,
                "insert": 3,
            },
        },
        "pairs": [{"pairs": [["conv", "sep"]], "cost": 0.4, "terms": [{"param": "kernel", "weight": 0.2, "norm": 4}]}],
    },
}


def test_same_op_terms_pair_terms_and_defaults() -> None:
    node = GraphCosts.from_dict(TERMS).node
    c16 = Node("conv", (("channels", 16), ("kernel", 3), ("padding", "same")))
    c48 = Node("conv", (("channels", 48), ("kernel", 5), ("padding", "same")))
    c48v = Node("conv", (("channels", 48), ("kernel", 5), ("padding", "valid")))
    assert node.substitution(c16, c16) == 0
    assert node.substitution(c16, c48) == pytest.approx(0.5 * 32 / 64)  # kernel is not a term of conv: free
    assert node.substitution(c48, c48v) == pytest.approx(0.3)  # strings differ: the full weight
    assert node.substitution(c16, Node("conv", (("channels", 1000),))) == pytest.approx(
        0.5 + 0.3
    )  # capped; padding on one side
    assert (
        node.substitution(Node("pool", (("k", 2),)), Node("pool", (("k", 3),))) == 0.7
    )  # same_op: pool lists no terms
    assert node.substitution(c16, Node("sep", (("kernel", 7),))) == pytest.approx(0.4 + 0.2 * 4 / 4)
    assert node.substitution(Node("sep"), c16) == 0.4  # pair terms count only params both labels have
    assert node.substitution(c16, Node("pool")) == 2
    assert (node.deletion(c16), node.insertion(c16), node.deletion(Node("pool"))) == (3, 3, 1)
    edge = GraphCosts.from_dict(TERMS).edge
    assert edge.substitution(None, None) == 0 and edge.substitution(None, "x") == 1


def test_symmetric_only_when_every_cost_is() -> None:
    def with_node(**node: Any) -> GraphCosts:
        return GraphCosts.from_dict({"name": "x", "node": node})

    assert with_node(pairs=[{"pairs": [["a", "b"]], "cost": 0.5}]).symmetric
    assert not with_node(pairs=[{"pairs": [["a", "b"]], "cost": 0.5, "directed": True}]).symmetric
    assert with_node(
        pairs=[{"pairs": [["a", "b"]], "cost": 1, "directed": True}]
    ).symmetric  # the reverse costs substitute: 1
    assert with_node(pairs=[{"pairs": [["a", "b"], ["b", "a"]], "cost": 0.5, "directed": True}]).symmetric
    assert not with_node(insert=1, delete=2).symmetric
    assert not with_node(ops={"a": {"insert": 0.5}}).symmetric
    directed = with_node(pairs=[{"pairs": [["a", "b"]], "cost": 0.5, "directed": True}])
    sub = directed.matrices([Node("a"), Node("b")], [])[0]
    assert sub.tolist() == [[0, 0.5], [1, 0]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({"channels": st.integers(0, 200), "act": st.sampled_from(["relu", "gelu"])}),
        min_size=3,
        max_size=3,
    )
)
def test_parameter_terms_are_a_metric(params: list[dict[str, Any]]) -> None:
    node = GraphCosts.from_dict(TERMS).node
    a, b, c = (Node("conv", tuple(sorted(p.items()))) for p in params)
    d = node.substitution
    assert d(a, b) == d(b, a) and d(a, c) <= d(a, b) + d(b, c) + 1e-12


# ---------------------------------------------------------------------- costs: bad files, resolution, the scoring schema
def _bad(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(TERMS)
    edit(data)
    return data


BAD_COSTS = [
    (lambda d: d.__setitem__("colour", 1), "  colour: unknown key"),
    (
        lambda d: d["node"].__setitem__("substitute", -1),
        "  node.substitute: Input should be greater than or equal to 0",
    ),
    (
        lambda d: d["node"].__setitem__("insert", 1e13),
        "  node.insert: Input should be less than or equal to 1000000000000",
    ),
    (
        lambda d: d["node"]["ops"]["conv"]["terms"][0].__setitem__("norm", 0),
        "  node.ops.conv.terms[0].norm: Input should be greater than 0",
    ),
    (
        lambda d: d["node"]["pairs"][0].__setitem__("cost", "x"),
        "  node.pairs[0].cost: Input should be a valid number, unable to parse string as a number",
    ),
    (
        lambda d: d["node"]["pairs"][0]["pairs"].append(["a"]),
        "  node.pairs[0].pairs[1][1]: Field required",
    ),
    (lambda d: d.pop("name"), "  name: Field required"),
    (
        lambda d: d.__setitem__("edge", {"pairs": [{"pairs": [["a", "a"]], "cost": 1}]}),
        "  edge.pairs[0].pairs[0]: pairs 'a' with itself (the costs of one op's params are edge.ops.a.terms)",
    ),
    (
        lambda d: d["node"]["pairs"].append({"pairs": [["sep", "conv"]], "cost": 1}),
        "  node.pairs[1].pairs[0]: 'sep' -> 'conv' already has a cost (node.pairs[0].pairs[0])",
    ),
    (
        lambda d: d["node"]["ops"]["conv"]["terms"].append({"param": "channels", "weight": 1}),
        "  node.ops.conv.terms[2].param: 'channels' is listed twice (also node.ops.conv.terms[0])",
    ),
]


@pytest.mark.parametrize(("edit", "line"), BAD_COSTS, ids=[line.strip()[:40] for _, line in BAD_COSTS])
def test_bad_cost_files_name_the_json_path(tmp_path: Path, edit: Any, line: str) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_bad(edit)))
    with pytest.raises(SchemaError) as err:
        resolve_graph_costs(path)
    assert str(err.value) == f"invalid graph costs {path}:\n{line}"


def test_unreadable_cost_files_give_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    for text, message in (
        (
            "{",
            f"cannot read graph costs {str(path)!r}: not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)",
        ),
        (
            '{"name": "x", "node": {"insert": 1' + "0" * 5000 + "}}",
            f"cannot read graph costs {str(path)!r}: the number 10000000000000000000... is too large",
        ),
        ("[]", f"{path}: graph costs must be a JSON object, got list"),
    ):
        path.write_text(text)
        with pytest.raises(SchemaError) as err:
            resolve_graph_costs(path)
        assert str(err.value) == message
    huge = {"name": "x", "node": {"insert": 10**5000}}
    with pytest.raises(SchemaError) as err:
        resolve_graph_costs(huge)
    assert str(err.value).splitlines()[1].startswith("  node.insert: ")
    with pytest.raises(
        SchemaError,
        match=r"^no graph costs 'nope': not a built-in name \(unit, nb201, nb101, darts\) and no file there$",
    ):
        resolve_graph_costs("nope")
    with pytest.raises(
        SchemaError, match="^graph costs must be a name, a path, a dict, a GraphCosts or a Scoring, got int$"
    ):
        resolve_graph_costs(3)  # type: ignore[arg-type]
    with pytest.raises(
        SchemaError, match=r"^no built-in graph costs 'nope' \(choose from unit, nb201, nb101, darts\)$"
    ):
        GraphCosts.builtin("nope")


def test_resolution_of_every_accepted_form(tmp_path: Path) -> None:
    costs = GraphCosts.from_dict(TERMS)
    assert resolve_graph_costs(costs) is costs
    assert resolve_graph_costs(TERMS) == costs
    path = tmp_path / "costs.json"
    path.write_text(costs.to_json())
    assert resolve_graph_costs(path) == costs == resolve_graph_costs(str(path)) == GraphCosts.load(path)
    scoring = Scoring.builtin("default").to_dict()
    scoring["graph"] = TERMS
    (tmp_path / "scoring.json").write_text(json.dumps(scoring))
    assert resolve_graph_costs(tmp_path / "scoring.json") == costs
    assert resolve_graph_costs(Scoring.from_dict(scoring)) == costs
    assert resolve_graph_costs(scoring) == costs
    with pytest.raises(
        SchemaError, match=r"^scoring schema 'default' has no graph section, so it holds no graph costs$"
    ):
        resolve_graph_costs(Scoring.builtin("default"))
    scoring["graph"]["node"]["substitute"] = -1
    with pytest.raises(SchemaError) as err:
        resolve_graph_costs(scoring)
    assert str(err.value) == (
        "invalid scoring schema <dict>:\n  graph.node.substitute: Input should be greater than or equal to 0"
    )


def test_a_scoring_schema_with_a_graph_section_round_trips_and_chains_do_not_change() -> None:
    default = Scoring.builtin("default")
    assert default.graph is None and "graph" not in default.to_dict()
    data = {**default.to_dict(), "graph": GraphCosts.builtin("nb201").to_dict()}
    with_graph = Scoring.from_dict(data)
    assert with_graph.graph == GraphCosts.builtin("nb201")
    assert Scoring.from_json(with_graph.to_json()) == with_graph
    assert pyevonas.similarity("C(32,3,1) g", "C(64,3,1) g", schema=with_graph) == pyevonas.similarity(
        "C(32,3,1) g", "C(64,3,1) g", schema=default
    )


def test_the_cli_exports_the_graph_cost_format() -> None:
    from pyevonas.cli import app

    result = CliRunner().invoke(app, ["schema", "export", "--graph-costs"])
    assert result.exit_code == 0 and json.loads(result.output) == graph_costs_json_schema()
    result = CliRunner().invoke(app, ["schema", "export", "--graph-costs", "--builtin", "darts"])
    assert result.exit_code == 0 and GraphCosts.from_dict(json.loads(result.output)) == GraphCosts.builtin("darts")


# ---------------------------------------------------------------------- the documentation
DOCS = Path(__file__).resolve().parent.parent / "docs" / "graphs.md"


@pytest.mark.parametrize(("name", "side"), [("nb201", "edge"), ("nb101", "node"), ("darts", "edge")])
def test_the_docs_tables_are_the_builtin_costs(name: str, side: str) -> None:
    text = DOCS.read_text(encoding="utf-8").split(f"**`{name}`**", 1)[1].split("\n\n**", 1)[0]
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| `")]
    costs = getattr(GraphCosts.builtin(name), side)
    ops = [row[0].strip(" `") for row in rows]
    assert len(ops) >= 3
    for op, row in zip(ops, rows, strict=True):
        assert [float(v) for v in row[1:]] == [costs.substitution(op, other) for other in ops], op


# AmoebaNet's and NASNet's genotypes from the DARTS code (cnn/genotypes.py): steps take one input twice.
AMOEBANET_NORMAL = [("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
                    ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
                    ("skip_connect", 0), ("avg_pool_3x3", 1)]  # fmt: skip
NASNET_NORMAL = [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
                 ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
                 ("sep_conv_3x3", 1), ("skip_connect", 1)]  # fmt: skip


def test_the_docs_error_lines_are_real() -> None:
    text = DOCS.read_text(encoding="utf-8").split("### Errors", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    inputs = [
        "|skip_connect~0|+|skip_connect~0|none~1|+|conv_9x9~0|none~1|none~2|",
        {"nodes": list("abcd"), "edges": [[0, 1], [1, 2], [2, 3], [3, 1]]},
        {"nodes": list("abcdefg"), "edges": [[0, 1], [1, 2], [2, 9]]},
        {"matrix": [[0] * 8 for _ in range(8)], "ops": ["input"] + ["maxpool3x3"] * 6 + ["output"]},
        {"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", "maxpool3x3", "output"]},
        str(Genotype(AMOEBANET_NORMAL, [4, 5, 6], AMOEBANET_NORMAL, [4, 5, 6])),
    ]
    assert [error(obj) for obj in inputs] == text.splitlines()
    assert error(Genotype(NASNET_NORMAL, [2, 3, 4, 5, 6], NASNET_NORMAL, [4, 5, 6])) == (
        "graph: darts: normal[3]: ('sep_conv_3x3', 0) is a second edge from node 0 to node 3 (also normal[2]); "
        "a graph has one edge per pair of nodes"
    )
