"""The graph edit distance against an independent reference, and by its properties.

networkx's exact ``graph_edit_distance`` is the reference: on random labelled DAGs without pins, and
with a pinned input and output (emulated in networkx by costs that forbid moving, deleting or
inserting a pin), under unit and under custom costs. Hypothesis checks the metric's properties:
range, identity exactly for isomorphic graphs, symmetry, renumbering, the triangle inequality, the
bounded method's place between the distance and dmax, and every matrix path against the pair
path. Then NAS-Bench-201's isomorphic cells, the published DARTS genotypes, the auto/exact/bounded
choice, the API's errors, threads and progress, and the Archive of graphs.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_graphs import DARTS_V1, DARTS_V2, nb201

import pyevonas
from pyevonas import Archive, GraphError
from pyevonas.metric.graph_api import ApproximationWarning, graph_edit_distance, graph_similarity_matrix
from pyevonas.metric.graph_costs import GraphCosts, resolve_graph_costs
from pyevonas.metric.graphs import NB201_OPS, Cell, parse_graph

Dag = dict[str, Any]

NODE_OPS: tuple[str, ...] = ("a", "b", "c")
EDGE_OPS: tuple[str | None, ...] = (None, "x", "y")
#: What networkx pays for an edit that pinning rules out: more than any real edit path here.
FORBIDDEN = 1e6

#: Node and edge labels that give each built-in cost set something to tell apart.
LABELS: dict[str, tuple[tuple[str, ...], tuple[str | None, ...]]] = {
    "unit": (NODE_OPS, EDGE_OPS),
    "nb201": (("input", "node", "output"), ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")),
    "nb101": (("input", "output", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"), (None,)),
    "darts": (("input", "node", "output"), (None, "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_5x5")),
}

#: Costs that are neither unit nor symmetric: a directed pair, per-op insertions and deletions,
#: a parameter term. Every value is a dyadic fraction, so that any order of adding them up gives
#: the same double and the distances can be compared with ``==``.
CUSTOM_COSTS: dict[str, Any] = {
    "name": "custom",
    "node": {
        "substitute": 0.75,
        "insert": 1,
        "delete": 1.25,
        "ops": {"a": {"insert": 0.5}, "c": {"terms": [{"param": "k", "weight": 0.5, "norm": 2}]}},
        "pairs": [{"pairs": [["a", "b"]], "cost": 0.25, "directed": True}],
    },
    "edge": {
        "substitute": 0.5,
        "insert": 0.75,
        "delete": 1,
        "ops": {"y": {"delete": 1.5}},
        "pairs": [{"pairs": [["x", "y"]], "cost": 0.25}],
    },
}
CUSTOM_NODES: tuple[Any, ...] = ("a", "b", {"op": "c", "params": {"k": 1}}, {"op": "c", "params": {"k": 3}})


# ---------------------------------------------------------------------- random DAGs
def random_dag(
    rng: np.random.Generator,
    n: int,
    *,
    pinned: bool,
    node_ops: Sequence[Any] = NODE_OPS,
    edge_ops: Sequence[str | None] = EDGE_OPS,
) -> Dag:
    """A DAG of ``n`` nodes in a random topological order (so the pins fall anywhere), edges of a
    random density; pinned: node 0 is the input and node n - 1 the output."""
    density = (0.2, 0.4, 0.6)[rng.integers(3)]
    order = rng.permutation(n).tolist()
    edges: list[list[Any]] = []
    for i, j in itertools.combinations(range(n), 2):
        if rng.random() < density:
            op = edge_ops[rng.integers(len(edge_ops))]
            edges.append([order[i], order[j]] if op is None else [order[i], order[j], op])
    dag: Dag = {"nodes": [node_ops[rng.integers(len(node_ops))] for _ in range(n)], "edges": edges}
    if pinned:
        dag.update(inputs=[0], outputs=[n - 1])
    return dag


@st.composite
def dags(
    draw: st.DrawFn,
    *,
    pinned: bool,
    max_nodes: int = 6,
    node_ops: Sequence[Any] = NODE_OPS,
    edge_ops: Sequence[str | None] = EDGE_OPS,
) -> Dag:
    """Hypothesis's DAGs: as :func:`random_dag`, every choice drawn (and shrunk)."""
    n = draw(st.integers(2 if pinned else 1, max_nodes))
    order = draw(st.permutations(range(n)))
    pairs = list(itertools.combinations(range(n), 2))
    present = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    ops = draw(st.lists(st.sampled_from(edge_ops), min_size=len(pairs), max_size=len(pairs)))
    edges = [
        [order[i], order[j]] if op is None else [order[i], order[j], op]
        for (i, j), keep, op in zip(pairs, present, ops, strict=True)
        if keep
    ]
    dag: Dag = {"nodes": draw(st.lists(st.sampled_from(node_ops), min_size=n, max_size=n)), "edges": edges}
    if pinned:
        dag.update(inputs=[0], outputs=[n - 1])
    return dag


def renumber(dag: Dag, perm: Sequence[int]) -> Dag:
    """The same graph with node i called perm[i] (pins follow their nodes)."""
    nodes: list[Any] = [None] * len(dag["nodes"])
    for i, node in enumerate(dag["nodes"]):
        nodes[perm[i]] = node
    out: Dag = {"nodes": nodes, "edges": [[perm[e[0]], perm[e[1]], *e[2:]] for e in dag["edges"]]}
    for key in ("inputs", "outputs"):
        if key in dag:
            out[key] = [perm[i] for i in dag[key]]
    return out


# ---------------------------------------------------------------------- the networkx reference
def _pin(cell: Cell, i: int) -> tuple[str, int] | None:
    if i in cell.inputs:
        return ("input", cell.inputs.index(i))
    if i in cell.outputs:
        return ("output", cell.outputs.index(i))
    return None


def nx_graph(arch: Dag) -> nx.DiGraph:
    """The one cell of ``arch`` as a networkx graph: node label (op and params), pin, edge label."""
    (cell,) = parse_graph(arch).cells
    g = nx.DiGraph()
    for i, node in enumerate(cell.nodes):
        g.add_node(i, label=node, pin=_pin(cell, i))
    for e in cell.edges:
        g.add_edge(e.source, e.target, label=e.op)
    return g


def reference_distance(a: Dag, b: Dag, costs: GraphCosts) -> float:
    """networkx's exact edit distance under ``costs``, with pins emulated exactly for graphs that
    have the same pins: a pinned node maps onto its partner only, and is never deleted or inserted."""
    node, edge = costs.node, costs.edge

    def node_sub(x: dict[str, Any], y: dict[str, Any]) -> float:
        return node.substitution(x["label"], y["label"]) if x["pin"] == y["pin"] else FORBIDDEN

    d = nx.graph_edit_distance(
        nx_graph(a),
        nx_graph(b),
        node_subst_cost=node_sub,
        node_del_cost=lambda x: FORBIDDEN if x["pin"] else node.deletion(x["label"]),
        node_ins_cost=lambda y: FORBIDDEN if y["pin"] else node.insertion(y["label"]),
        edge_subst_cost=lambda x, y: edge.substitution(x["label"], y["label"]),
        edge_del_cost=lambda x: edge.deletion(x["label"]),
        edge_ins_cost=lambda y: edge.insertion(y["label"]),
    )
    assert d is not None and d < FORBIDDEN
    return float(d)


def _isomorphic(a: Dag, b: Dag) -> bool:
    """networkx's labelled isomorphism, pins kept."""
    return bool(
        nx.is_isomorphic(
            nx_graph(a),
            nx_graph(b),
            node_match=lambda x, y: x["label"] == y["label"] and x["pin"] == y["pin"],
            edge_match=lambda x, y: x["label"] == y["label"],
        )
    )


def _agree_with_networkx(
    rng: np.random.Generator, n_pairs: int, sizes: tuple[int, int], *, pinned: bool, costs: str | dict[str, Any]
) -> int:
    """Compare ``n_pairs`` random pairs with networkx; returns how many had a positive distance."""
    gc = GraphCosts.builtin(costs) if isinstance(costs, str) else GraphCosts.from_dict(costs)
    node_ops = NODE_OPS if isinstance(costs, str) else CUSTOM_NODES
    positive = 0
    for _ in range(n_pairs):
        n, m = (int(x) for x in rng.integers(sizes[0], sizes[1] + 1, size=2))
        a = random_dag(rng, n, pinned=pinned, node_ops=node_ops)
        b = random_dag(rng, m, pinned=pinned, node_ops=node_ops)
        d = graph_edit_distance(a, b, costs, method="exact")
        assert d.exact and float(d) == reference_distance(a, b, gc), (a, b)
        positive += float(d) > 0
    return positive


# ---------------------------------------------------------------------- 1. against networkx
def test_unit_costs_unpinned_equal_networkx() -> None:
    rng = np.random.default_rng(20)
    assert _agree_with_networkx(rng, 600, (1, 6), pinned=False, costs="unit") > 500


def test_unit_costs_pinned_equal_networkx_with_pins_emulated() -> None:
    rng = np.random.default_rng(21)
    assert _agree_with_networkx(rng, 800, (2, 6), pinned=True, costs="unit") > 700
    assert _agree_with_networkx(rng, 40, (7, 7), pinned=True, costs="unit") == 40


@pytest.mark.parametrize("pinned", [False, True], ids=["free", "pinned"])
def test_custom_directed_costs_equal_networkx(pinned: bool) -> None:
    rng = np.random.default_rng(22 + pinned)
    assert _agree_with_networkx(rng, 300, (1 + pinned, 6), pinned=pinned, costs=CUSTOM_COSTS) > 250


@pytest.mark.slow
@pytest.mark.parametrize("pinned", [False, True], ids=["free", "pinned"])
def test_thousands_of_dags_up_to_8_nodes_equal_networkx(pinned: bool) -> None:
    """Pinned: 1,000 pairs of 2-8 nodes, 150 of 7-8 nodes (unit costs) and 200 of 2-8 nodes (custom
    costs). Free: networkx's search is far slower without pins (3.5 s a pair of 7-8 nodes on average,
    up to ~25 s, on a busy 2-core machine), so 1,000 pairs of 2-7 nodes, 30 of 7-8 nodes and 200 of
    2-7 nodes (custom costs). About 4 minutes (free) and 2 (pinned) on that machine."""
    rng = np.random.default_rng(30 + pinned)
    if pinned:
        _agree_with_networkx(rng, 1000, (2, 8), pinned=True, costs="unit")
        _agree_with_networkx(rng, 150, (7, 8), pinned=True, costs="unit")
        _agree_with_networkx(rng, 200, (2, 8), pinned=True, costs=CUSTOM_COSTS)
    else:
        _agree_with_networkx(rng, 1000, (2, 7), pinned=False, costs="unit")
        _agree_with_networkx(rng, 30, (7, 8), pinned=False, costs="unit")
        _agree_with_networkx(rng, 200, (2, 7), pinned=False, costs=CUSTOM_COSTS)


def test_the_pin_emulation_is_what_the_distance_does() -> None:
    """Pinning changes the answer, and networkx agrees once the pins are emulated: a cell and the
    same cell upside down are free to match (distance 0) but not when pinned."""
    up: Dag = {"nodes": ["a", "b"], "edges": [[0, 1]]}
    down: Dag = {"nodes": ["b", "a"], "edges": [[1, 0]]}
    assert graph_edit_distance(up, down) == 0 == reference_distance(up, down, GraphCosts.builtin("unit"))
    up_pinned, down_pinned = (dict(g, inputs=[0], outputs=[1]) for g in (up, down))
    d = graph_edit_distance(up_pinned, down_pinned)
    # Both nodes substituted, the edge deleted and inserted the other way round.
    assert d == 4 == reference_distance(up_pinned, down_pinned, GraphCosts.builtin("unit"))


# ---------------------------------------------------------------------- 2. properties
COST_NAMES = st.sampled_from(sorted(LABELS))


@st.composite
def graphs_under(draw: st.DrawFn, names: Sequence[str], count: int, max_nodes: int = 6) -> tuple[Any, ...]:
    """A cost set's name and ``count`` graphs over its labels, all pinned or all free."""
    name = draw(st.sampled_from(names))
    pinned = draw(st.booleans())
    node_ops, edge_ops = LABELS[name]
    strategy = dags(pinned=pinned, max_nodes=max_nodes, node_ops=node_ops, edge_ops=edge_ops)
    return (name, *(draw(strategy) for _ in range(count)))


@settings(max_examples=150, deadline=None)
@given(graphs_under(sorted(LABELS), 2))
def test_similarity_lies_in_0_1_and_a_graph_is_its_own_match(case: tuple[Any, ...]) -> None:
    costs, a, b = case
    d = graph_edit_distance(a, b, costs)
    assert d.exact and 0 <= float(d) <= d.dmax and 0.0 <= d.similarity <= 1.0
    assert graph_edit_distance(a, a, costs) == 0.0 and graph_edit_distance(a, a, costs).similarity == 1.0
    assert pyevonas.similarity(a, a, costs) == 1.0


@settings(max_examples=150, deadline=None)
@given(graphs_under(sorted(LABELS), 2))
def test_symmetric_costs_give_symmetric_distances(case: tuple[Any, ...]) -> None:
    """Equal both ways, bit for bit under every symmetric cost set: the core rounds costs to a
    grid on which every sum is exact, so the order the search adds them in does not matter."""
    costs, a, b = case
    ab, ba = graph_edit_distance(a, b, costs), graph_edit_distance(b, a, costs)
    assert ab.dmax == ba.dmax
    assert float(ab) == float(ba)
    bounded = graph_edit_distance(a, b, costs, method="bounded"), graph_edit_distance(b, a, costs, method="bounded")
    assert float(bounded[0]) == float(bounded[1])


def _one_edit(rng_draw: st.DrawFn, dag: Dag, node_ops: Sequence[Any], edge_ops: Sequence[str | None]) -> Dag:
    """``dag`` with one node label or edge label changed, or one edge removed."""
    out: Dag = {**dag, "nodes": list(dag["nodes"]), "edges": [list(e) for e in dag["edges"]]}
    what = rng_draw(st.sampled_from(["node", "edge label", "no edge"] if dag["edges"] else ["node"]))
    if what == "node":
        out["nodes"][rng_draw(st.integers(0, len(out["nodes"]) - 1))] = rng_draw(st.sampled_from(node_ops))
        return out
    k = rng_draw(st.integers(0, len(out["edges"]) - 1))
    if what == "no edge":
        del out["edges"][k]
    else:
        op = rng_draw(st.sampled_from(edge_ops))
        out["edges"][k] = out["edges"][k][:2] + ([] if op is None else [op])
    return out


@settings(max_examples=200, deadline=None)
@given(case=graphs_under(sorted(LABELS), 1), data=st.data())
def test_similarity_is_1_exactly_for_isomorphic_graphs(case: tuple[Any, ...], data: st.DataObject) -> None:
    """sim == 1 iff networkx finds a labelled isomorphism that keeps the pins: against a renumbered
    copy, a copy with one edit (sometimes still isomorphic), and an unrelated graph."""
    costs, a = case
    node_ops, edge_ops = LABELS[costs]
    perm = data.draw(st.permutations(range(len(a["nodes"]))))
    kind = data.draw(st.sampled_from(["renumbered", "edited", "other"]))
    if kind == "renumbered":
        b = renumber(a, perm)
    elif kind == "edited":
        b = renumber(_one_edit(data.draw, a, node_ops, edge_ops), perm)
    else:
        b = data.draw(dags(pinned="inputs" in a, node_ops=node_ops, edge_ops=edge_ops))
    assert (pyevonas.similarity(a, b, costs) == 1.0) == _isomorphic(a, b)
    if kind == "renumbered":
        assert graph_edit_distance(a, b, costs) == 0.0


@settings(max_examples=100, deadline=None)
@given(case=graphs_under(sorted(LABELS), 2), data=st.data())
def test_renumbering_inner_nodes_changes_nothing(case: tuple[Any, ...], data: st.DataObject) -> None:
    costs, a, b = case
    perm = data.draw(st.permutations(range(len(a["nodes"]))))
    if "inputs" in a:  # the pins keep their numbers; every other node moves
        inner = data.draw(st.permutations(range(1, len(a["nodes"]) - 1)))
        perm = [0, *inner, len(a["nodes"]) - 1]
    moved = renumber(a, perm)
    assert pyevonas.similarity(a, moved, costs) == 1.0 and pyevonas.similarity(moved, a, costs) == 1.0
    before, after = graph_edit_distance(a, b, costs), graph_edit_distance(moved, b, costs)
    assert after.dmax == before.dmax
    if costs == "unit":
        assert float(after) == float(before)
    else:
        assert float(after) == pytest.approx(float(before), rel=1e-12, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(graphs_under(["unit", "nb201", "nb101"], 3, max_nodes=5))
def test_triangle_inequality_under_metric_costs(case: tuple[Any, ...]) -> None:
    """d(a, c) <= d(a, b) + d(b, c) for graphs with the same pins, under the metric built-ins."""
    costs, a, b, c = case
    ab, bc, ac = (float(graph_edit_distance(x, y, costs)) for x, y in ((a, b), (b, c), (a, c)))
    assert ac <= ab + bc + 1e-9


@settings(max_examples=150, deadline=None)
@given(graphs_under(sorted(LABELS), 2, max_nodes=7))
def test_bounded_lies_between_the_distance_and_dmax(case: tuple[Any, ...]) -> None:
    costs, a, b = case
    exact = graph_edit_distance(a, b, costs, method="exact")
    bounded = graph_edit_distance(a, b, costs, method="bounded")
    assert exact.exact and bounded.dmax == exact.dmax
    assert float(exact) - 1e-9 <= float(bounded) <= bounded.dmax
    assert bounded.similarity <= exact.similarity + 1e-12
    if not bounded.exact:  # only an identical pair is known exactly without a search
        assert float(bounded) > 0


def _check_matrix_paths(pop: list[Any], costs: Any, pairs: Callable[[int, int], bool]) -> None:
    """Every matrix path equals the pair paths bit for bit, on the entries ``pairs(i, j)`` picks."""
    n = len(pop)
    m = pyevonas.similarity_matrix(pop, schema=costs)
    distances = graph_similarity_matrix(pop, costs=costs, values="distance")
    for i, j in itertools.product(range(n), repeat=2):
        if not pairs(i, j):
            continue
        d = graph_edit_distance(pop[i], pop[j], costs)
        assert m[i, j] == pyevonas.similarity(pop[i], pop[j], costs) == d.similarity, (i, j)
        assert distances[i, j] == float(d), (i, j)
    np.testing.assert_array_equal(
        pyevonas.similarity_matrix(pop, schema=costs, dtype=np.float32), m.astype(np.float32), strict=True
    )
    k = n // 2
    others = pyevonas.similarity_matrix(pop[:k], others=pop[k:], schema=costs)
    for i, j in itertools.product(range(k), range(n - k)):
        assert others[i, j] == pyevonas.similarity(pop[i], pop[k + j], costs), (i, j)
    if resolve_graph_costs(costs).symmetric:
        cond = pyevonas.similarity_matrix(pop, schema=costs, condensed=True)
        np.testing.assert_array_equal(cond, m[np.triu_indices(n, k=1)], strict=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(dags(pinned=True, max_nodes=6), min_size=2, max_size=6))
def test_matrix_paths_equal_the_pair_path_bit_for_bit_unit(pop: list[Dag]) -> None:
    _check_matrix_paths(pop, "unit", lambda i, j: True)


@settings(max_examples=30, deadline=None)
@given(st.lists(dags(pinned=False, max_nodes=5, node_ops=CUSTOM_NODES), min_size=2, max_size=6))
def test_matrix_paths_equal_the_pair_path_bit_for_bit_directed(pop: list[Dag]) -> None:
    """Directed costs: every entry is computed in its own orientation (nothing mirrored)."""
    _check_matrix_paths(pop, CUSTOM_COSTS, lambda i, j: True)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from(NB201_OPS)] * 6).map(nb201), min_size=2, max_size=8))
def test_matrix_paths_equal_the_pair_path_bit_for_bit_nb201_upper_triangle(pop: list[str]) -> None:
    """Symmetric nb201 costs: the upper triangle is computed, the lower one mirrored (see the
    xfail below for the lower one against the pair path)."""
    _check_matrix_paths(pop, "nb201", lambda i, j: i <= j)


# Found by a search over random NAS-Bench-201 pairs (about one pair in 150).
ULP_A = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|skip_connect~2|"
ULP_B = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|avg_pool_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def test_symmetric_costs_symmetric_bit_for_bit() -> None:
    ab, ba = graph_edit_distance(ULP_A, ULP_B, "nb201"), graph_edit_distance(ULP_B, ULP_A, "nb201")
    assert float(ab) == pytest.approx(3.8) and ab.exact and ba.exact
    m = pyevonas.similarity_matrix([ULP_A, ULP_B])
    assert m[1, 0] == pyevonas.similarity(ULP_B, ULP_A)  # the pair path, in the row's orientation
    assert float(ab) == float(ba)


# The smallest pair found where the bounded method's answer depends on the order.
BOUNDED_A: Dag = {"nodes": ["a", "b", "a"], "edges": [[1, 2], [2, 0]]}
BOUNDED_B: Dag = {"nodes": ["b", "a"], "edges": [[0, 1]]}


def test_bounded_method_symmetric_under_symmetric_costs() -> None:
    ab = graph_edit_distance(BOUNDED_A, BOUNDED_B, method="bounded")
    ba = graph_edit_distance(BOUNDED_B, BOUNDED_A, method="bounded")
    assert graph_edit_distance(BOUNDED_A, BOUNDED_B, method="exact") == 2.0 == ab
    full = graph_similarity_matrix([BOUNDED_A, BOUNDED_B], method="bounded")
    against = graph_similarity_matrix([BOUNDED_A, BOUNDED_B], [BOUNDED_A, BOUNDED_B], method="bounded")
    np.testing.assert_array_equal(full, against)
    assert float(ba) == float(ab)


def test_an_input_never_matches_an_output_even_when_pin_counts_differ() -> None:
    g: Dag = {"nodes": ["a", "b"], "edges": [], "inputs": [0]}
    h: Dag = {"nodes": ["a", "b"], "edges": []}
    k: Dag = {"nodes": ["b", "a"], "edges": [], "inputs": [0]}
    assert graph_edit_distance(g, k) == 2.0  # pinned: a -> b and b -> a
    assert graph_edit_distance(g, k) <= graph_edit_distance(g, h) + graph_edit_distance(h, k)
    upward: Dag = {"nodes": ["a", "b"], "edges": [[0, 1]], "inputs": [0]}
    from_the_output: Dag = {"nodes": ["a", "b"], "edges": [[0, 1]], "outputs": [0]}
    assert pyevonas.similarity(upward, from_the_output) < 1.0


# ---------------------------------------------------------------------- 3. NAS-Bench-201 and DARTS
def _twin(ops: tuple[str, ...]) -> tuple[str, ...] | None:
    """The ops of the same cell with its inner nodes 1 and 2 swapped (possible only without an edge
    1 -> 2): edges (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""
    a, b, c, d, e, f = ops
    return None if c != "none" else (b, a, c, d, f, e)


def _key(ops: tuple[str, ...]) -> tuple[str, ...]:
    twin = _twin(ops)
    return ops if twin is None else min(ops, twin)


def test_nb201_cells_with_swapped_inner_nodes_are_the_same_cell() -> None:
    a = nb201(("nor_conv_3x3", "avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"))
    b = nb201(("avg_pool_3x3", "nor_conv_3x3", "none", "skip_connect", "nor_conv_3x3", "nor_conv_1x1"))
    assert a != b and _isomorphic(parse_graph(a).to_json(), parse_graph(b).to_json())
    assert pyevonas.similarity(a, b) == 1.0 and graph_edit_distance(a, b, "nb201") == 0.0
    assert pyevonas.similarity(a, b, "unit") == 1.0
    # With an edge 1 -> 2 the swap is another cell.
    c = nb201(("nor_conv_3x3", "avg_pool_3x3", "skip_connect", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"))
    d = nb201(("avg_pool_3x3", "nor_conv_3x3", "skip_connect", "skip_connect", "nor_conv_3x3", "nor_conv_1x1"))
    assert pyevonas.similarity(c, d) < 1.0


def test_nb201_cells_unique_up_to_isomorphism() -> None:
    """14,125 of the 15,625 cells are unique up to isomorphism (the only one: swapping the inner
    nodes, when no edge joins them). Every twin pair scores 1; on a sample, sim == 1 is exactly
    being twins."""
    cells = list(itertools.product(NB201_OPS, repeat=6))
    assert len({_key(ops) for ops in cells}) == 14_125
    twins = [(ops, t) for ops in cells if (t := _twin(ops)) is not None and t > ops]
    assert len(twins) == 1_500
    sims = graph_similarity_matrix([nb201(a) for a, _ in twins], [nb201(b) for _, b in twins])
    assert (np.diag(sims) == 1.0).all()
    rng = np.random.default_rng(201)
    sample = [cells[i] for i in rng.choice(len(cells), size=300, replace=False)]
    sample += [t for ops in sample[:100] if (t := _twin(ops)) is not None and t != ops]
    m = pyevonas.similarity_matrix([nb201(ops) for ops in sample])
    same_key = np.array([[_key(x) == _key(y) for y in sample] for x in sample])
    np.testing.assert_array_equal(m == 1.0, same_key)
    assert len({_key(ops) for ops in sample}) < len(set(sample))  # the sample holds twins


def test_published_darts_genotypes_compare_in_0_1_and_stay_put() -> None:
    """DARTS V1 against V2 under the darts costs: the normal cells differ in three ops (0 -> 3 and
    0 -> 5 skip/sep_conv_3x3 swapped, 2 -> 5 skip against dil_conv_3x3: 3 x 0.6), the reduction
    cells in two edges from input 0 that V2 takes from input 1 (2 deletions + 2 insertions); dmax is
    7 nodes and 12 edges deleted and inserted per cell: 2 x 38."""
    d = graph_edit_distance(DARTS_V1, DARTS_V2, "darts")
    assert d.exact and d.dmax == 76.0
    # The core rounds each cost to a multiple of 2^-36 (0.6 moves by about 1e-11).
    assert float(d) == pytest.approx(1.8 + 4.0, abs=1e-10)
    sim = pyevonas.similarity(DARTS_V1, DARTS_V2)
    assert 0 < sim < 1 and sim == d.similarity and sim == pytest.approx(1 - 5.8 / 76, abs=1e-10)
    assert pyevonas.similarity(DARTS_V2, DARTS_V1) == pytest.approx(sim, abs=1e-15)
    assert graph_edit_distance(DARTS_V1, DARTS_V2, "unit") == 7.0  # 3 substitutions + 4 edges


# ---------------------------------------------------------------------- 4. auto, bounded, exact
def _path(n: int, op: str = "a") -> Dag:
    return {"nodes": [op] * n, "edges": [[i, i + 1] for i in range(n - 1)], "inputs": [0], "outputs": [n - 1]}


def test_auto_above_the_exact_limit_warns_and_says_it_is_a_bound() -> None:
    big, other = _path(13), {**_path(13), "edges": _path(13)["edges"][:-1] + [[10, 12]]}
    with pytest.warns(ApproximationWarning, match="more than 12 nodes"):
        d = graph_edit_distance(big, other)
    assert not d.exact and "upper bound" in repr(d)
    with pytest.warns(ApproximationWarning, match="upper bound"):
        pyevonas.similarity(big, other)
    exact = graph_edit_distance(big, other, method="exact")
    assert exact.exact and float(exact) <= float(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert graph_edit_distance(big, other, exact_limit=13).exact
        assert not graph_edit_distance(big, other, method="bounded").exact  # asked for: no warning


def test_exact_above_32_nodes_is_refused_naming_the_limit() -> None:
    with pytest.raises(ValueError, match=r"limited to cells of 32 nodes; this pair has a cell of 33") as err:
        graph_edit_distance(_path(33), _path(32), method="exact")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="between 0 and 32"):
        graph_edit_distance(_path(3), _path(3), exact_limit=33)
    with pytest.raises(ValueError, match="method must be"):
        graph_edit_distance(_path(3), _path(3), method="fast")  # type: ignore[arg-type]
    assert not graph_edit_distance(_path(33), _path(32), method="bounded").exact


def test_a_matrix_with_big_cells_warns_with_the_count() -> None:
    """Every pair whose larger cell has more than 12 nodes is a bound, unless the two are identical."""
    cells = [_path(13), _path(14), _path(5), _path(6), _path(13)]
    with pytest.warns(ApproximationWarning, match=r"^8 graph edit distance\(s\) are upper bounds") as caught:
        m = pyevonas.similarity_matrix(cells)  # 10 pairs, less (2, 3) (small) and (0, 4) (identical)
    assert len(caught) == 1 and m[0, 4] == 1.0
    with pytest.warns(ApproximationWarning, match=r"^7 graph edit distance"):
        pyevonas.similarity_matrix(cells, others=cells[:2])  # 10 pairs, less (0, 0), (1, 1), (4, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph_similarity_matrix(cells, method="bounded")
        graph_similarity_matrix(cells, exact_limit=14)


# ---------------------------------------------------------------------- 5. errors, threads, progress
NB = [nb201(ops) for ops in itertools.islice(itertools.product(NB201_OPS, repeat=6), 0, 15_625, 97)]


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def test_chains_and_graphs_do_not_mix() -> None:
    chain = "C(32,3,1) B L g F(64)"
    for call in (
        lambda: pyevonas.similarity(NB[0], chain),
        lambda: pyevonas.similarity(chain, NB[0]),
        lambda: pyevonas.similarity_matrix([NB[0], chain]),
        lambda: pyevonas.similarity_matrix([NB[0]], others=[chain]),
        lambda: pyevonas.nearest([NB[0], NB[1], chain], 1),
        lambda: graph_edit_distance(NB[0], chain),
    ):
        with pytest.raises(GraphError, match="chains and graphs cannot be compared") as err:
            call()
        _one_line(err)


def test_chains_first_then_graphs_do_not_mix_either() -> None:
    with pytest.raises(
        GraphError, match=r"^architecture 1: expected a chain .*chains and graphs cannot be compared"
    ) as err:
        pyevonas.similarity_matrix(["C(32,3,1) g", NB[0]])
    _one_line(err)
    with pytest.raises(GraphError, match=r"^archs\[0\]: expected a graph architecture .*chains and graphs"):
        pyevonas.similarity_matrix(["C(32,3,1) g"], others=[DARTS_V1])  # graphs anywhere: the graph API
    with pytest.raises(GraphError, match=r"^others\[1\]: expected a chain .*chains and graphs"):
        pyevonas.similarity_matrix(["C(32,3,1) g"], others=["B g", DARTS_V1])
    with pytest.raises(GraphError, match="chains and graphs"):
        pyevonas.nearest(["C(32,3,1) g", "B g", {"nodes": ["a"], "edges": []}], 1)


def test_a_bad_graph_in_a_list_is_named_by_its_index() -> None:
    bad = "|nor_conv_3x3~0|+|conv_9x9~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(GraphError, match=r"^archs\[2\]: nb201 string: edge 1 \('conv_9x9~0'\): unknown") as err:
        pyevonas.similarity_matrix([NB[0], NB[1], bad])
    _one_line(err)
    with pytest.raises(GraphError, match=r"^others\[1\]: dag: edges\[0\]: node 5 does not exist"):
        pyevonas.similarity_matrix([NB[0]], others=[NB[1], {"nodes": ["a"], "edges": [[0, 5]]}])
    with pytest.raises(GraphError, match=r"^archs\[1\]: "):
        pyevonas.nearest([NB[0], bad], 1)
    with pytest.raises(GraphError, match=r"^similarity\[1\]: "):
        pyevonas.similarity(NB[0], bad)


def test_progress_is_called_with_done_and_total_ending_at_total() -> None:
    calls: list[tuple[int, int]] = []
    pyevonas.similarity_matrix(NB[:60], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1770, 1770)]  # small work (up to 4,096 pairs): one call
    calls.clear()
    big = NB * 5  # 810 cells: 327,645 pairs, the pool path in two blocks
    m = pyevonas.similarity_matrix(big, progress=lambda done, total: calls.append((done, total)))
    total = len(big) * (len(big) - 1) // 2
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert len(calls) == 2 and calls[0][0] < total  # blocks of whole rows of at least 262,144 pairs
    calls.clear()
    pyevonas.nearest(big[:200], 2, others=big, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (200 * len(big), 200 * len(big))
    np.testing.assert_array_equal(m[: len(NB), : len(NB)], pyevonas.similarity_matrix(NB))


@pytest.mark.parametrize("n_threads", [0, -1, 257, 1.5, "2"])
def test_n_threads_is_checked_as_for_chains(n_threads: Any) -> None:
    chains = ["C(32,3,1) g", "B g"]
    with pytest.raises((ValueError, TypeError)) as chain_err:
        pyevonas.similarity_matrix(chains, n_threads=n_threads)
    for call in (
        lambda: pyevonas.similarity_matrix(NB[:3], n_threads=n_threads),
        lambda: pyevonas.nearest(NB[:3], 1, n_threads=n_threads),
        lambda: Archive("nb201", NB[:3]).similarity_matrix(NB[:2], n_threads=n_threads),
    ):
        with pytest.raises(chain_err.type) as err:
            call()
        assert str(err.value) == str(chain_err.value)


def test_n_threads_gives_the_same_values() -> None:
    cells = NB * 2
    one = pyevonas.similarity_matrix(cells, n_threads=1)
    np.testing.assert_array_equal(pyevonas.similarity_matrix(cells, n_threads=2), one)
    np.testing.assert_array_equal(pyevonas.similarity_matrix(cells), one)


# ---------------------------------------------------------------------- the Archive of graphs
def test_archive_of_graphs_equals_the_functions(tmp_path: Path) -> None:
    members, queries = NB[:60], NB[60:90] + NB[:3]
    archive = Archive("nb201", members[:40])
    assert archive.add(members[40:]).tolist() == list(range(40, 60))
    assert len(archive) == 60 and archive.graph_costs is not None and archive.graph_costs.name == "nb201"
    m = archive.similarity_matrix(queries)
    np.testing.assert_array_equal(m, pyevonas.similarity_matrix(queries, others=members, schema="nb201"))
    assert (np.diag(m[-3:, :3]) == 1.0).all()  # the last queries are members
    indices, sims = archive.nearest(queries, 4)
    ref_indices, ref_sims = pyevonas.nearest(queries, 4, others=members)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_array_equal(sims, ref_sims)
    np.testing.assert_array_equal(archive.novelty(queries, k=4), np.mean(1.0 - ref_sims, axis=1))
    assert Archive("nb201").novelty(queries[:2]).tolist() == [1.0, 1.0]
    path = tmp_path / "archive.json.gz"
    archive.save(path)
    loaded = Archive.load(path)
    assert list(loaded) == members and loaded.graph_costs == archive.graph_costs
    np.testing.assert_array_equal(loaded.similarity_matrix(queries), m)


def test_archive_of_dags_and_genotypes_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    dag_members = [random_dag(rng, int(n), pinned=True) for n in rng.integers(2, 7, size=12)]
    archive = Archive(archs=[DARTS_V1, DARTS_V2])  # the format's costs by default
    assert archive.graph_costs is not None and archive.graph_costs.name == "darts"
    custom = Archive(GraphCosts.from_dict(CUSTOM_COSTS), dag_members)
    for a in (archive, custom):
        a.save(tmp_path / "a.json.gz")
        back = Archive.load(tmp_path / "a.json.gz")
        queries = [DARTS_V2] if a is archive else dag_members[:4]
        np.testing.assert_array_equal(back.similarity_matrix(queries), a.similarity_matrix(queries))
    np.testing.assert_array_equal(
        custom.similarity_matrix(dag_members), pyevonas.similarity_matrix(dag_members, schema=CUSTOM_COSTS)
    )


def test_an_archive_of_chains_refuses_graphs_in_one_line() -> None:
    archive = Archive("default", ["C(32,3,1) g"])
    for call in (lambda: archive.add([NB[0]]), lambda: archive.similarity_matrix([NB[0]])):
        with pytest.raises(GraphError, match="chains") as err:
            call()
        _one_line(err)
    assert len(archive) == 1
    graphs = Archive("nb201", NB[:2])
    with pytest.raises(GraphError, match=r"^archs\[0\]: expected a graph architecture") as err:
        graphs.add(["C(32,3,1) g"])
    _one_line(err)
    assert len(graphs) == 2
