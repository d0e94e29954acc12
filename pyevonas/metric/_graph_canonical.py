"""The canonical form of a graph architecture: one text for all its isomorphic copies (private; see ``graphs``).

Two cells are isomorphic when a renumbering of their *inner* nodes (every node but the pinned inputs
and outputs, which keep their places) maps one onto the other, node labels (op and params) and edge
labels (op) included. The canonical form is the smallest serialisation of the cell over the
renumberings that keep the labels:

1. colour refinement (1-dimensional Weisfeiler-Leman): a node's colour starts as its label (a
   pinned node's as its place), then becomes the colour with the sorted colours and edge labels of
   its in- and out-neighbours, until the number of colours stops growing. Colours are ranks of
   sorted signatures, so they do not depend on the numbering;
2. the inner nodes are ordered by colour, and only the orders *within* each colour class are tried;
   nodes of a class with the same in- and out-neighbours (twins) are interchangeable, so only the
   distinct arrangements of the twin groups are tried;
3. the smallest ``(labels, edges)`` over those orders wins.

Exact for every cell; the number of orders tried is the product over colour classes of their
distinct arrangements, small for the cells of the benchmarks (up to ~10 nodes).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence

from pyevonas.metric._graph_cells import Cell, Edge, GraphArch, Node, cell_json, fail

#: Orders tried at most per cell: beyond it a cell is too symmetric for the exhaustive search.
MAX_ORDERS = 200_000


def canonical_cell(cell: Cell, at: str = "graph") -> Cell:
    """The canonical renumbering of ``cell`` (pinned nodes first and last, inner nodes in between).

    Raises:
        GraphError: the cell has more than :data:`MAX_ORDERS` orders to try.
    """
    n = len(cell.nodes)
    pinned = set(cell.inputs) | set(cell.outputs)
    inner = [v for v in range(n) if v not in pinned]
    edge_label = {(e.source, e.target): _label_text(e.op) for e in cell.edges}
    colours = _refined_colours(cell, edge_label)
    classes: dict[int, list[int]] = {}
    for v in inner:
        classes.setdefault(colours[v], []).append(v)
    groups = [_twin_groups(members, cell, edge_label) for _, members in sorted(classes.items())]
    n_orders = math.prod(_arrangements(g) for g in groups)
    if n_orders > MAX_ORDERS:
        fail(at, f"the cell has {n_orders} equally labelled node orders to compare; at most {MAX_ORDERS} are tried")
    node_text = [_node_text(node) for node in cell.nodes]
    best: tuple[tuple[str, ...], tuple[tuple[int, int, str], ...]] | None = None
    best_order: list[int] = []
    for parts in itertools.product(*(_distinct_orders(g) for g in groups)):
        order = [*cell.inputs, *(v for part in parts for v in part), *(v for v in cell.outputs)]
        position = {v: k for k, v in enumerate(order)}
        labels = tuple(node_text[v] for v in order)
        edges = tuple(sorted((position[s], position[t], lab) for (s, t), lab in edge_label.items()))
        if best is None or (labels, edges) < best:
            best, best_order = (labels, edges), order
    position = {v: k for k, v in enumerate(best_order)}
    nodes = tuple(cell.nodes[v] for v in best_order)
    new_edges = tuple(
        sorted(
            (Edge(position[e.source], position[e.target], e.op) for e in cell.edges), key=lambda e: (e.source, e.target)
        )
    )
    k_in = len(cell.inputs)
    outputs = tuple(range(n - len(cell.outputs), n))
    return Cell(nodes, new_edges, tuple(range(k_in)), outputs)


def canonical_text(g: GraphArch, at: str = "graph") -> str:
    """The compact dag JSON of the canonical form of every cell of ``g`` (its format left out)."""
    cells = [cell_json(canonical_cell(cell, at)) for cell in g.cells]
    data = cells[0] if g.cell_names == ("cell",) else {"cells": dict(zip(g.cell_names, cells, strict=True))}
    return json.dumps(data, separators=(",", ":"), sort_keys=False)


# ---------------------------------------------------------------------- helpers
def _label_text(op: str | None) -> str:
    return json.dumps(op)


def _node_text(node: Node) -> str:
    return json.dumps([node.op, [list(p) for p in node.params]], separators=(",", ":"))


def _ranks(signatures: Sequence[str]) -> list[int]:
    """Each signature's rank among the distinct signatures, sorted: colours that ignore numbering."""
    order = {s: k for k, s in enumerate(sorted(set(signatures)))}
    return [order[s] for s in signatures]


def _refined_colours(cell: Cell, edge_label: dict[tuple[int, int], str]) -> list[int]:
    n = len(cell.nodes)
    start = []
    for v in range(n):
        if v in cell.inputs:
            start.append(f"in{cell.inputs.index(v)}")
        elif v in cell.outputs:
            start.append(f"out{cell.outputs.index(v)}")
        else:
            start.append("node" + _node_text(cell.nodes[v]))
    colours = _ranks(start)
    into: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    out: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for (s, t), lab in edge_label.items():
        into[t].append((s, lab))
        out[s].append((t, lab))
    while True:
        signatures = [
            json.dumps(
                [
                    colours[v],
                    sorted([colours[u], lab] for u, lab in into[v]),
                    sorted([colours[w], lab] for w, lab in out[v]),
                ]
            )
            for v in range(n)
        ]
        refined = _ranks(signatures)
        if len(set(refined)) == len(set(colours)):
            return refined
        colours = refined


def _twin_groups(members: list[int], cell: Cell, edge_label: dict[tuple[int, int], str]) -> list[list[int]]:
    """The class's nodes grouped by identical in- and out-neighbourhoods (with edge labels):
    swapping two twins maps the cell onto itself, so their relative order never matters."""
    keyed: dict[tuple[frozenset[tuple[int, str]], frozenset[tuple[int, str]]], list[int]] = {}
    for v in members:
        ins = frozenset((s, lab) for (s, t), lab in edge_label.items() if t == v)
        outs = frozenset((t, lab) for (s, t), lab in edge_label.items() if s == v)
        keyed.setdefault((ins, outs), []).append(v)
    return list(keyed.values())


def _arrangements(groups: list[list[int]]) -> int:
    """Distinct orders of the twin groups' members, twins being interchangeable: a multinomial."""
    total = sum(len(g) for g in groups)
    return math.factorial(total) // math.prod(math.factorial(len(g)) for g in groups)


def _distinct_orders(groups: list[list[int]]) -> Iterator[list[int]]:
    """Every distinct order of the class, twins taken in a fixed order among themselves."""
    tags = [k for k, g in enumerate(groups) for _ in g]
    for arrangement in _multiset_permutations(sorted(tags)):
        taken = [0] * len(groups)
        order = []
        for k in arrangement:
            order.append(groups[k][taken[k]])
            taken[k] += 1
        yield order


def _multiset_permutations(items: list[int]) -> Iterator[list[int]]:
    """The distinct permutations of a sorted list, in lexicographic order (each once)."""
    a = list(items)
    while True:
        yield list(a)
        i = len(a) - 2
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            return
        j = len(a) - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1 :] = reversed(a[i + 1 :])
