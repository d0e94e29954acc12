"""Reading the generic dag format, and checking a GraphArch built by hand (private; see ``graphs``)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from pyevonas.metric._graph_cells import (
    GRAPH_FORMATS,
    MAX_PARAM_INT,
    Cell,
    Edge,
    GraphArch,
    Node,
    ParamValue,
    cell_json,
    fail,
    is_integer,
    key_text,
    show_value,
)

_DAG_KEYS = ("nodes", "edges", "inputs", "input", "outputs", "output")


def read_dag(obj: Any, at: str) -> GraphArch:
    """A dag JSON object (one cell, or ``{"cells": {name: cell}}``); errors start with ``at``."""
    if not isinstance(obj, Mapping):
        fail(at, f"expected a JSON object with nodes and edges, got {type(obj).__name__}")
    if "cells" not in obj:
        return GraphArch(cells=(_dag_cell(obj, at, ""),), format="dag", cell_names=("cell",))
    extra = [k for k in obj if k != "cells"]
    if extra:
        fail(at, f"unknown key {show_value(extra[0])} beside cells (each cell holds its own nodes and edges)")
    cells = obj["cells"]
    if not isinstance(cells, Mapping) or not cells:
        fail(at, "cells: expected a non-empty object of name -> cell")
    names: list[str] = []
    parsed: list[Cell] = []
    for name, cell in cells.items():
        if not isinstance(name, str) or not name:
            fail(at, f"cells: a cell name must be a non-empty string, got {show_value(name)}")
        names.append(name)
        parsed.append(_dag_cell(cell, at, f"cells.{name}."))
    return GraphArch(cells=tuple(parsed), format="dag", cell_names=tuple(names))


def _dag_cell(obj: Any, at: str, path: str) -> Cell:
    if not isinstance(obj, Mapping):
        fail(at, f"{path.rstrip('.') or 'cell'}: expected a JSON object with nodes and edges, got {type(obj).__name__}")
    for key in obj:
        if key not in _DAG_KEYS:
            fail(at, f"{path}{key_text(key)}: unknown key (a dag has nodes, edges, inputs or input, outputs or output)")
    for key in ("nodes", "edges"):
        if key not in obj:
            fail(at, f"{path}{key}: missing")
    raw_nodes = obj["nodes"]
    if not isinstance(raw_nodes, Sequence) or isinstance(raw_nodes, str):
        fail(at, f"{path}nodes: expected a list, got {type(raw_nodes).__name__}")
    if not raw_nodes:
        fail(at, f"{path}nodes: the graph has no nodes")
    nodes = tuple(_dag_node(n, at, f"{path}nodes[{i}]") for i, n in enumerate(raw_nodes))
    raw_edges = obj["edges"]
    if not isinstance(raw_edges, Sequence) or isinstance(raw_edges, str):
        fail(at, f"{path}edges: expected a list, got {type(raw_edges).__name__}")
    edges = [_dag_edge(e, at, f"{path}edges[{i}]", len(nodes)) for i, e in enumerate(raw_edges)]
    _check_edges(edges, len(nodes), at, f"{path}edges")
    inputs = _pinned(obj, "inputs", "input", len(nodes), at, path)
    outputs = _pinned(obj, "outputs", "output", len(nodes), at, path)
    for i, node in enumerate(outputs):
        if node in inputs:
            name = f"{path}output" if "output" in obj else f"{path}outputs[{i}]"
            fail(at, f"{name}: node {node} is also an input")
    return Cell(
        nodes=nodes, edges=tuple(sorted(edges, key=lambda e: (e.source, e.target))), inputs=inputs, outputs=outputs
    )


def _dag_node(obj: Any, at: str, path: str) -> Node:
    if isinstance(obj, str):
        return Node(_op_name(obj, at, path))
    if not isinstance(obj, Mapping):
        fail(at, f"{path}: expected an op name or {{'op': ..., 'params': {{...}}}}, got {show_value(obj)}")
    for key in obj:
        if key not in ("op", "params"):
            fail(at, f"{path}.{key_text(key)}: unknown key (a node has op and params)")
    if "op" not in obj:
        fail(at, f"{path}.op: missing")
    op = _op_name(obj["op"], at, f"{path}.op")
    raw = obj.get("params", {})
    if not isinstance(raw, Mapping):
        fail(at, f"{path}.params: expected an object of name -> value, got {type(raw).__name__}")
    params: list[tuple[str, ParamValue]] = []
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            fail(at, f"{path}.params: a parameter name must be a non-empty string, got {show_value(name)}")
        params.append((name, _param_value(value, at, f"{path}.params.{key_text(name)}")))
    return Node(op, tuple(sorted(params, key=lambda p: p[0])))


def _op_name(value: Any, at: str, path: str) -> str:
    if not isinstance(value, str) or not value:
        fail(at, f"{path}: an op must be a non-empty string, got {show_value(value)}")
    return value


def _param_value(value: Any, at: str, path: str) -> ParamValue:
    if isinstance(value, bool | str):
        return value
    if is_integer(value):
        if abs(value) > MAX_PARAM_INT:
            fail(at, f"{path}: {show_value(value)} is beyond ±2**53, where floats lose integers")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(at, f"{path}: {value} is not finite")
        return value
    fail(at, f"{path}: a parameter is a number, a string or a boolean, got {show_value(value)}")


def _dag_edge(obj: Any, at: str, path: str, n_nodes: int) -> Edge:
    op: Any = None
    if isinstance(obj, Mapping):
        for key in obj:
            if key not in ("source", "target", "op"):
                fail(at, f"{path}.{key_text(key)}: unknown key (an edge has source, target and op)")
        for key in ("source", "target"):
            if key not in obj:
                fail(at, f"{path}.{key}: missing")
        source, target, op = obj["source"], obj["target"], obj.get("op")
    elif isinstance(obj, Sequence) and not isinstance(obj, str) and len(obj) in (2, 3):
        source, target = obj[0], obj[1]
        op = obj[2] if len(obj) == 3 else None
    else:
        fail(at, f"{path}: expected [source, target], [source, target, op] or an object, got {show_value(obj)}")
    for node in (source, target):
        if not is_integer(node):
            fail(at, f"{path}: a node is an integer index, got {show_value(node)}")
        if not 0 <= node < n_nodes:
            fail(at, f"{path}: node {show_value(node)} does not exist ({n_nodes} nodes)")
    if op is not None:
        op = _op_name(op, at, f"{path}: op")
    return Edge(int(source), int(target), op)


def _check_edges(edges: Sequence[Edge], n_nodes: int, at: str, path: str) -> None:
    """No self loop, no edge twice, no cycle; every message names the edge by its index."""
    first: dict[tuple[int, int], int] = {}
    for i, e in enumerate(edges):
        if e.source == e.target:
            fail(at, f"{path}[{i}]: [{e.source}, {e.target}] is a self loop")
        pair = (e.source, e.target)
        if pair in first:
            fail(
                at, f"{path}[{i}]: [{e.source}, {e.target}] repeats {path}[{first[pair]}] (one edge per pair of nodes)"
            )
        first[pair] = i
    pairs = list(first)
    if _acyclic(pairs, n_nodes):
        return
    # The first edge that closes a cycle: the shortest cyclic prefix, found by bisection.
    k = bisect_left(range(len(pairs) + 1), True, key=lambda m: not _acyclic(pairs[:m], n_nodes))
    source, target = pairs[k - 1]
    cycle = _path(pairs[: k - 1], n_nodes, target, source) + [target]
    fail(at, f"{path}[{k - 1}]: [{source}, {target}] makes a cycle ({' -> '.join(map(str, cycle))})")


def _acyclic(pairs: Sequence[tuple[int, int]], n_nodes: int) -> bool:
    """Kahn's algorithm: every node can be ordered."""
    indegree = [0] * n_nodes
    out: list[list[int]] = [[] for _ in range(n_nodes)]
    for s, t in pairs:
        out[s].append(t)
        indegree[t] += 1
    ready = [v for v in range(n_nodes) if indegree[v] == 0]
    seen = 0
    while ready:
        v = ready.pop()
        seen += 1
        for w in out[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return seen == n_nodes


def _path(pairs: Sequence[tuple[int, int]], n_nodes: int, start: int, end: int) -> list[int]:
    """The nodes of a shortest path from ``start`` to ``end`` (which exists)."""
    out: list[list[int]] = [[] for _ in range(n_nodes)]
    for s, t in pairs:
        out[s].append(t)
    parent = {start: start}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(out[v]):
            if w not in parent:
                parent[w] = v
                queue.append(w)
    nodes = [end]
    while nodes[-1] != start:
        nodes.append(parent[nodes[-1]])
    return nodes[::-1]


def _pinned(obj: Mapping[str, Any], many: str, one: str, n_nodes: int, at: str, path: str) -> tuple[int, ...]:
    if many in obj and one in obj:
        fail(at, f"{path}{one}: give either {many} (a list) or {one} (one node), not both")
    if one in obj:
        values: Any = [obj[one]]
        names = [f"{path}{one}"]
    else:
        values = obj.get(many, [])
        if not isinstance(values, Sequence) or isinstance(values, str):
            fail(at, f"{path}{many}: expected a list of node indices, got {type(values).__name__}")
        names = [f"{path}{many}[{i}]" for i in range(len(values))]
    seen: set[int] = set()
    for name, node in zip(names, values, strict=True):
        if not is_integer(node):
            fail(at, f"{name}: a node is an integer index, got {show_value(node)}")
        if not 0 <= node < n_nodes:
            fail(at, f"{name}: node {show_value(node)} does not exist ({n_nodes} nodes)")
        if node in seen:
            fail(at, f"{name}: node {node} is listed twice")
        seen.add(node)
    return tuple(int(v) for v in values)


def check_graph(g: GraphArch, at: str) -> None:
    """A GraphArch built by hand holds what parse_graph would have produced."""
    where = f"{at}GraphArch"
    if g.format not in GRAPH_FORMATS:
        fail(where, f"format {show_value(g.format)} is not one of {', '.join(GRAPH_FORMATS)}")
    names = g.cell_names
    if not g.cells or len(g.cells) != len(names) or len(set(names)) != len(names):
        fail(where, f"{len(g.cells)} cells with names {show_value(names)}: one distinct name per cell")
    for name, cell in zip(names, g.cells, strict=True):
        path = f"cells.{name}"
        if not isinstance(cell, Cell):
            fail(where, f"{path}: expected a Cell, got {type(cell).__name__}")
        for i, node in enumerate(cell.nodes):
            if not isinstance(node, Node):
                fail(where, f"{path}.nodes[{i}]: expected a Node, got {type(node).__name__}")
        for i, edge in enumerate(cell.edges):
            if not isinstance(edge, Edge):
                fail(where, f"{path}.edges[{i}]: expected an Edge, got {type(edge).__name__}")
        # Through the dag reader: the same checks and messages, and the canonical form to compare with.
        if _dag_cell(cell_json(cell), where, f"{path}.") != cell:
            fail(where, f"{path}: not in canonical form (edges sorted by (source, target), params by name)")
