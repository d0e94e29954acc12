"""The canonical form of a graph (``canonical_key``): equal exactly for isomorphic cells, with the
pinned inputs and outputs kept in place, checked against networkx's labelled isomorphism."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyevonas.errors import GraphError
from pyevonas.metric.graphs import NB201_OPS, canonical_key, parse_graph

OPS = ["conv", "pool", "skip"]


def random_dag(rng: random.Random, n: int, *, pinned: bool = True, p_edge: float = 0.5) -> dict[str, Any]:
    """A dag cell of ``n`` nodes, edges only forward, ops on nodes and some edges."""
    nodes: list[Any] = ["input"] + [rng.choice(OPS) for _ in range(n - 2)] + ["output"]
    if rng.random() < 0.3:
        nodes[1] = {"op": "conv", "params": {"kernel": rng.choice([1, 3])}}
    edges = [
        [s, t] + ([rng.choice(["a", "b"])] if rng.random() < 0.3 else []) for s in range(n) for t in range(s + 1, n)
    ]
    edges = [e for e in edges if rng.random() < p_edge]
    cell: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if pinned:
        cell.update(inputs=[0], outputs=[n - 1])
    return cell


def renumbered(cell: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """``cell`` with its inner nodes renumbered at random (the pinned nodes move with their index)."""
    n = len(cell["nodes"])
    pinned = set(cell.get("inputs", [])) | set(cell.get("outputs", []))
    inner = [v for v in range(n) if v not in pinned]
    shuffled = inner[:]
    rng.shuffle(shuffled)
    new = dict(zip(inner, shuffled, strict=True)) | {v: v for v in pinned}
    nodes: list[Any] = [None] * n
    for v in range(n):
        nodes[new[v]] = cell["nodes"][v]
    edges = [[new[e[0]], new[e[1]], *e[2:]] for e in cell["edges"]]
    rng.shuffle(edges)
    return {**cell, "nodes": nodes, "edges": edges}


def as_networkx(cell: dict[str, Any]) -> nx.DiGraph:
    g = parse_graph(cell).cells[0]
    graph = nx.DiGraph()
    for v, node in enumerate(g.nodes):
        place = ("in", g.inputs.index(v)) if v in g.inputs else ("out", g.outputs.index(v)) if v in g.outputs else None
        graph.add_node(v, label=(node.op, node.params, place))
    for e in g.edges:
        graph.add_edge(e.source, e.target, label=e.op)
    return graph


def isomorphic(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        nx.is_isomorphic(
            as_networkx(a),
            as_networkx(b),
            node_match=lambda x, y: x["label"] == y["label"],
            edge_match=lambda x, y: x["label"] == y["label"],
        )
    )


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 8), pinned=st.booleans())
def test_a_renumbered_cell_has_the_same_key(seed: int, n: int, pinned: bool) -> None:
    rng = random.Random(seed)
    cell = random_dag(rng, n, pinned=pinned)
    copy = renumbered(cell, rng)
    assert canonical_key(copy) == canonical_key(cell)
    # The key is a dag of the same graph: it reads back, and its key is itself.
    key = canonical_key(cell)
    assert canonical_key(parse_graph(json.loads(key))) == key
    assert isomorphic(json.loads(key), cell)


def test_keys_are_equal_exactly_for_isomorphic_cells() -> None:
    rng = random.Random(7)
    # Few ops and nodes, so that many pairs are isomorphic without being identical.
    cells = [random_dag(rng, rng.randint(3, 5), p_edge=0.6) for _ in range(120)]
    cells += [renumbered(c, rng) for c in cells[:40]]
    keys = [canonical_key(c) for c in cells]
    same = different = 0
    for i, j in itertools.combinations(range(len(cells)), 2):
        iso = isomorphic(cells[i], cells[j])
        assert (keys[i] == keys[j]) == iso, (cells[i], cells[j])
        same += iso
        different += not iso
    assert same > 40 and different > 1000  # both cases are exercised


def test_nb201_cells_collapse_only_where_nodes_1_and_2_can_swap() -> None:
    # With no edge between nodes 1 and 2, swapping them is an isomorphism: 5**5 such cells, of
    # which the 5**3 with equal ops on 0->1 and 0->2 and on 1->3 and 2->3 map onto themselves.
    keys = {
        canonical_key("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops))
        for ops in itertools.product(NB201_OPS, repeat=6)
    }
    assert len(keys) == 5**6 - (5**5 - 5**3) // 2 == 14125


def test_none_edges_never_count_and_the_format_is_left_out() -> None:
    text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"
    g = parse_graph(text)
    assert canonical_key(text) == canonical_key(g.to_json()) == canonical_key(g)
    chain = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert canonical_key(text) != canonical_key(chain)


def test_pinned_nodes_keep_their_places() -> None:
    # The same unlabelled graph, but with input and output exchanged, is another cell.
    a = {"nodes": ["x", "x", "x"], "edges": [[0, 1], [1, 2]], "inputs": [0], "outputs": [2]}
    b = {"nodes": ["x", "x", "x"], "edges": [[0, 1], [1, 2]], "inputs": [2], "outputs": [0]}
    assert canonical_key(a) != canonical_key(b)
    # Without pins every node may move: a path is a path.
    c = {"nodes": ["x", "x", "x"], "edges": [[2, 1], [1, 0]]}
    assert canonical_key({"nodes": ["x", "x", "x"], "edges": [[0, 1], [1, 2]]}) == canonical_key(c)


def test_darts_genotypes_are_keyed_cell_by_cell() -> None:
    normal = "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1)]"
    reduce = "[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1)]"
    g1 = f"Genotype(normal={normal}, normal_concat=[2, 3], reduce={reduce}, reduce_concat=[2, 3])"
    swapped = "[('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]"
    g2 = f"Genotype(normal={swapped}, normal_concat=[2, 3], reduce={reduce}, reduce_concat=[2, 3])"
    assert canonical_key(g1) == canonical_key(g2)
    assert '"cells":{"normal"' in canonical_key(g1)


def test_twins_keep_a_very_symmetric_cell_cheap() -> None:
    # Ten parallel identical nodes: 10! orders, but all twins, so one is tried.
    n = 12
    cell = {
        "nodes": ["input"] + ["conv"] * (n - 2) + ["output"],
        "edges": [[0, v] for v in range(1, n - 1)] + [[v, n - 1] for v in range(1, n - 1)],
        "inputs": [0],
        "outputs": [n - 1],
    }
    assert canonical_key(cell) == canonical_key(renumbered(cell, random.Random(1)))


def test_a_too_symmetric_cell_is_refused_in_one_line() -> None:
    # Nine two-node chains in parallel: the chains' nodes are no twins of each other.
    nodes: list[Any] = ["input"]
    edges: list[list[int]] = []
    for _ in range(9):
        a, b = len(nodes), len(nodes) + 1
        nodes += ["conv", "conv"]
        edges += [[0, a], [a, b]]
    nodes.append("output")
    edges += [[v, len(nodes) - 1] for v in range(2, len(nodes) - 1, 2)]
    cell = {"nodes": nodes, "edges": edges, "inputs": [0], "outputs": [len(nodes) - 1]}
    with pytest.raises(GraphError, match=r"^cell 3: .*node orders to compare; at most 200000"):
        canonical_key(cell, where="cell 3")
