"""Similarity of cell- and graph-structured architectures: graph edit distance in the Rust core.

Architectures are read by :func:`~pyevonas.metric.graphs.parse_graph` (generic DAGs, NAS-Bench-201
strings, NAS-Bench-101 cells, DARTS genotypes) and compared cell by cell under edit costs from a
:class:`~pyevonas.metric.graph_costs.GraphCosts` (``unit``, ``nb201``, ``nb101``, ``darts``, a file,
or the ``graph`` section of a scoring schema).

The distance is exact for cells up to ``exact_limit`` nodes (12 by default, at most 32) and an
upper bound above it (the bipartite assignment method); a bounded value is never silent: its
:class:`EditDistance` says ``exact=False``, and matrices computed with ``method="auto"`` warn with
:class:`ApproximationWarning`. The similarity is ``1 - GED / dmax``, ``dmax`` being the larger of
the cost of deleting one graph and inserting the other whole, and the cost of the trivial edit path
(pinned inputs and outputs kept, everything else deleted and inserted); see ``docs/graphs.md``.

``pyevonas.similarity``, ``similarity_matrix``, ``nearest`` and ``Archive`` hand graph
architectures to this module; nothing here imports torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pyevonas import _core
from pyevonas.errors import GraphError
from pyevonas.metric._args import check_threads, wants_float32
from pyevonas.metric.graph_costs import (
    BUILTIN_GRAPH_COSTS,
    GraphCosts,
    default_costs_for,
    resolve_graph_costs,
)
from pyevonas.metric.graphs import Cell, GraphArch, Node, looks_like_graph, parse_graph
from pyevonas.metric.schema import BUILTIN_SCHEMAS, Scoring

#: A graph architecture, or anything ``parse_graph`` reads.
GraphLike = GraphArch | str | Mapping[str, Any]
#: The ``costs`` argument: a built-in name, a file, a dict, a GraphCosts, a Scoring with a graph section.
CostsArg = str | Path | GraphCosts | Scoring | Mapping[str, Any]
Method = Literal["auto", "exact", "bounded"]
#: Cells up to this many nodes get the exact distance with ``method="auto"``.
DEFAULT_EXACT_LIMIT = 12
#: The exact search's hard limit (nodes per cell).
EXACT_MAX_NODES = 32


class ApproximationWarning(UserWarning):
    """Some values are upper bounds of the edit distance (cells above the exact limit)."""


class EditDistance(float):
    """A graph edit distance: a float that also says whether it is exact.

    Attributes:
        exact: False when the value is the cost of the edit path found by the bounded method
            (an upper bound of the true distance).
        dmax: the normaliser, the cost of the trivial edit path.
    """

    exact: bool
    dmax: float

    def __new__(cls, value: float, *, exact: bool, dmax: float) -> EditDistance:
        self = super().__new__(cls, value)
        self.exact = exact
        self.dmax = dmax
        return self

    @property
    def similarity(self) -> float:
        """``1 - distance / dmax`` (1 when ``dmax`` is 0)."""
        return 1.0 if self.dmax <= 0 else min(1.0, max(0.0, 1.0 - float(self) / self.dmax))

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "upper bound"
        return f"EditDistance({float(self)!r}, {kind}, dmax={self.dmax!r})"


def is_graph_input(archs: Iterable[Any]) -> bool:
    """True when the first architecture of ``archs`` is a graph (the rest must be graphs too)."""
    for a in archs:
        return looks_like_graph(a)
    return False


def as_graphs(archs: Iterable[Any], where: str = "archs") -> list[GraphArch]:
    """Every element read as a graph architecture (GraphError naming the first bad one)."""
    out = []
    for i, a in enumerate(archs):
        if a.__class__ is GraphArch:
            out.append(a)
        elif not looks_like_graph(a):
            raise GraphError(
                f"{where}[{i}]: expected a graph architecture (a DAG, NAS-Bench-201 string, NAS-Bench-101 cell or "
                f"DARTS genotype), got {type(a).__name__}; chains and graphs cannot be compared with each other"
            )
        else:
            out.append(parse_graph(a, where=f"{where}[{i}]"))
    return out


def costs_for(costs: CostsArg | None, graphs: Iterable[GraphArch]) -> GraphCosts:
    """The edit costs of a call: ``costs`` resolved; with ``None``, a chain schema's name
    (``default``, ``paper``) or a Scoring without a graph section, the built-in set of the
    graphs' format (``unit`` when formats are mixed)."""
    if isinstance(costs, Scoring) and costs.graph is not None:
        return costs.graph
    if costs is None or isinstance(costs, Scoring) or (isinstance(costs, str) and costs in BUILTIN_SCHEMAS):
        formats = {g.format for g in graphs}
        return GraphCosts.builtin(default_costs_for(formats.pop()) if len(formats) == 1 else "unit")
    return resolve_graph_costs(costs)


#: Cost tables of recent calls: (id of the costs, node labels, edge labels) -> (costs, table).
_TABLES: dict[tuple[int, tuple[Node, ...], tuple[str | None, ...]], tuple[GraphCosts, Any]] = {}
_TABLES_KEPT = 64


class _Compiled:
    """Graphs as the core's arrays over one label dictionary, with the cost table of its labels."""

    def __init__(self, costs: GraphCosts, groups: Sequence[Sequence[GraphArch]]) -> None:
        self.nodes: dict[Node, int] = {}
        self.edges: dict[str | None, int] = {}
        arrays = [self._arrays(group) for group in groups]
        self.table = self.table_for(costs)
        self.batches = [_core.GraphBatch(*a) for a in arrays]

    def table_for(self, costs: GraphCosts) -> Any:
        """The core's cost table over the labels met so far (the last few kept: a loop of pair
        calls over the same labels builds its table once)."""
        node_labels = tuple(self.nodes) or (Node("input"),)
        edge_labels = tuple(self.edges) or (None,)
        key = (id(costs), node_labels, edge_labels)
        hit = _TABLES.get(key)
        if hit is not None and hit[0] is costs:  # the same object, not a new one at a reused id
            return hit[1]
        table = _core.GraphCostTable(*costs.matrices(node_labels, edge_labels))
        _TABLES[key] = (costs, table)
        if len(_TABLES) > _TABLES_KEPT:
            del _TABLES[next(iter(_TABLES))]
        return table

    def _arrays(self, graphs: Sequence[GraphArch]) -> tuple[np.ndarray, ...]:
        arch_cells = [0]
        cell_nodes = [0]
        cell_edges = [0]
        labels: list[int] = []
        edges: list[tuple[int, int, int]] = []
        pins: list[tuple[int, int]] = []
        keys: list[int] = []
        for g in graphs:
            keys.append(_content_key(g))
            for cell in g.cells:
                order = _pinned_order(cell)
                position = {u: k for k, u in enumerate(order)}
                labels.extend(self.nodes.setdefault(cell.nodes[u], len(self.nodes)) for u in order)
                edges.extend(
                    (position[e.source], position[e.target], self.edges.setdefault(e.op, len(self.edges)))
                    for e in cell.edges
                )
                pins.append((len(cell.inputs), len(cell.outputs)))
                cell_nodes.append(len(labels))
                cell_edges.append(len(edges))
            arch_cells.append(len(pins))
        return (
            np.asarray(arch_cells, dtype=np.int64),
            np.asarray(cell_nodes, dtype=np.int64),
            np.asarray(labels, dtype=np.uint32),
            np.asarray(cell_edges, dtype=np.int64),
            np.asarray(edges, dtype=np.uint32).reshape(-1, 3),
            np.asarray(pins, dtype=np.int64).reshape(-1, 2),
            np.asarray(keys, dtype=np.uint64),
        )


@functools.lru_cache(maxsize=8192)  # a pair call asks again for the same graphs (GraphArch is immutable)
def _content_key(g: GraphArch) -> int:
    """A 64-bit key of a graph's labelled content, the same in every call: under symmetric
    costs the core computes a pair in the order of its keys, so that d(a, b) and d(b, a) are
    the same double whichever call asks (the search may add the same costs in another order)."""
    text = json.dumps(g.to_json(), sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class GraphMembers:
    """The graph side of :class:`~pyevonas.metric.archive.Archive`: members kept as the core's
    arrays over a label dictionary that only grows, so a query converts only itself."""

    def __init__(self, costs: GraphCosts) -> None:
        self.costs = costs
        self.members: list[GraphArch] = []
        self._labels = _Compiled(costs, [])
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._batch: Any = None

    def add(self, graphs: Sequence[GraphArch]) -> None:
        self._parts.append(self._labels._arrays(graphs))
        self.members.extend(graphs)
        self._batch = None

    def _members_batch(self) -> Any:
        if self._batch is None:
            self._batch = _core.GraphBatch(*_concatenate(self._parts))
            self._parts = [_concatenate(self._parts)]
        return self._batch

    def matrix(
        self, queries: Sequence[GraphArch], f32: bool, n_threads: int | None, progress: Callable[[int, int], Any] | None
    ) -> np.ndarray:
        """Similarities of ``queries`` (rows) against every member (columns)."""
        q = _core.GraphBatch(*self._labels._arrays(queries))
        table = self._labels.table_for(self.costs)
        out, approx = _core.graph_matrix(
            table,
            q,
            self._members_batch(),
            method="auto",
            exact_limit=DEFAULT_EXACT_LIMIT,
            float32=f32,
            n_threads=n_threads,
            progress=progress,
        )
        if approx:
            _warn(approx, DEFAULT_EXACT_LIMIT, stacklevel=4)
        return out


def _concatenate(parts: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """The arrays of several ``_Compiled._arrays`` results as one batch's."""
    if not parts:
        return (
            np.zeros(1, np.int64),
            np.zeros(1, np.int64),
            np.zeros(0, np.uint32),
            np.zeros(1, np.int64),
            np.zeros((0, 3), np.uint32),
            np.zeros((0, 2), np.int64),
            np.zeros(0, np.uint64),
        )
    shifted: list[list[np.ndarray]] = [[parts[0][k]] for k in range(7)]
    ends = [int(parts[0][0][-1]), int(parts[0][1][-1]), int(parts[0][3][-1])]
    for p in parts[1:]:
        shifted[0].append(p[0][1:] + ends[0])
        shifted[1].append(p[1][1:] + ends[1])
        shifted[3].append(p[3][1:] + ends[2])
        for k in (2, 4, 5, 6):
            shifted[k].append(p[k])
        ends = [ends[0] + int(p[0][-1]), ends[1] + int(p[1][-1]), ends[2] + int(p[3][-1])]
    return tuple(np.concatenate(a) for a in shifted)


def _pinned_order(cell: Cell) -> list[int]:
    """The cell's nodes with its inputs first and its outputs last, each in their order."""
    pinned = set(cell.inputs) | set(cell.outputs)
    if len(pinned) != len(cell.inputs) + len(cell.outputs):
        both = sorted(set(cell.inputs) & set(cell.outputs))
        raise GraphError(f"graph: node {both[0]} is both an input and an output; a pinned node is one or the other")
    inner = [u for u in range(len(cell.nodes)) if u not in pinned]
    return [*cell.inputs, *inner, *cell.outputs]


def _check_method(method: str, exact_limit: int) -> None:
    if method not in ("auto", "exact", "bounded"):
        raise ValueError(f"method must be 'auto', 'exact' or 'bounded', got {method!r}")
    if not 0 <= exact_limit <= EXACT_MAX_NODES:
        raise ValueError(f"exact_limit must be between 0 and {EXACT_MAX_NODES} nodes, got {exact_limit}")


def graph_edit_distance(
    a: GraphLike,
    b: GraphLike,
    costs: CostsArg = "unit",
    *,
    method: Method = "auto",
    exact_limit: int = DEFAULT_EXACT_LIMIT,
) -> EditDistance:
    """The graph edit distance of two graph architectures (the sum over their cells).

    Args:
        a, b: graph architectures, or anything :func:`parse_graph` reads.
        costs: the edit costs (``unit``: 0 for equal labels, 1 for every other edit).
        method: ``"auto"``: exact for cells up to ``exact_limit`` nodes, bounded above (with an
            :class:`ApproximationWarning`); ``"exact"``: always exact (cells up to 32 nodes; the
            search is exponential in the worst case); ``"bounded"``: the assignment upper bound.
        exact_limit: the largest cell (in nodes) that ``"auto"`` computes exactly.

    Returns:
        An :class:`EditDistance` (a float with ``.exact`` and ``.dmax``).

    Example:
        >>> graph_edit_distance("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|",
        ...                     "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|")
        EditDistance(1.0, exact, dmax=14.0)
    """
    ga, gb = as_graphs([a, b], "graph_edit_distance")
    return _pair(ga, gb, resolve_graph_costs(costs), method, exact_limit)


def _pair(ga: GraphArch, gb: GraphArch, costs: GraphCosts, method: Method, exact_limit: int) -> EditDistance:
    """The distance of one pair on the calling thread; warns (at the public caller) when
    ``method="auto"`` had to fall back to the bound."""
    _check_method(method, exact_limit)
    c = _Compiled(costs, [[ga, gb]])
    d, dmax, exact = _core.graph_distance(c.table, c.batches[0], 0, c.batches[0], 1, method, exact_limit)
    if not exact and method == "auto":
        warnings.warn(
            f"graph edit distance: a cell has more than {exact_limit} nodes, so the value {d:g} is an upper bound "
            "(method='bounded'); pass method='exact' or a larger exact_limit for the exact distance",
            ApproximationWarning,
            stacklevel=3,
        )
    return EditDistance(d, exact=exact, dmax=dmax)


def graph_similarity(
    a: GraphLike,
    b: GraphLike,
    costs: CostsArg | None = None,
    *,
    method: Method = "auto",
    exact_limit: int = DEFAULT_EXACT_LIMIT,
) -> float:
    """``1 - GED(a, b) / dmax(a, b)`` in [0, 1]: 1 exactly when a and b are isomorphic as labelled
    graphs with their pinned inputs and outputs (under costs that charge every real edit).

    ``costs`` None: the built-in costs of the graphs' format (``unit`` for generic DAGs).
    """
    ga, gb = as_graphs([a, b], "similarity")
    return _pair(ga, gb, costs_for(costs, (ga, gb)), method, exact_limit).similarity


def _warn(approx: int, exact_limit: int, stacklevel: int) -> None:
    warnings.warn(
        f"{approx} graph edit distance(s) are upper bounds (cells above {exact_limit} nodes, computed with the "
        "bounded method): their similarities are lower bounds; pass method='exact' or a larger exact_limit",
        ApproximationWarning,
        stacklevel=stacklevel,
    )


def graph_similarity_matrix(
    archs: Sequence[GraphLike],
    others: Sequence[GraphLike] | None = None,
    costs: CostsArg | None = None,
    *,
    values: Literal["similarity", "distance"] = "similarity",
    condensed: bool = False,
    dtype: Any = np.float64,
    method: Method = "auto",
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    n_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> np.ndarray:
    """The similarity (or edit-distance) matrix of graph architectures, N x N or N x M.

    The same arguments and layout as :func:`pyevonas.similarity_matrix` (``condensed`` needs
    symmetric costs), computed in parallel in the Rust core with the GIL released; Ctrl-C and
    ``progress(done, total)`` between blocks of rows.
    """
    _check_method(method, exact_limit)
    f32 = wants_float32(dtype)
    n_threads = check_threads(n_threads)
    if others is not None and condensed:
        raise ValueError("condensed=True needs others=None (a condensed matrix is one population's upper triangle)")
    rows = as_graphs(archs, "archs")
    cols = None if others is None else as_graphs(others, "others")
    groups = [rows] if cols is None else [rows, cols]
    c = _Compiled(costs_for(costs, [g for group in groups for g in group]), groups)
    out, approx = _core.graph_matrix(
        c.table,
        c.batches[0],
        None if cols is None else c.batches[1],
        values=values,
        method=method,
        exact_limit=exact_limit,
        float32=f32,
        condensed=condensed,
        n_threads=n_threads,
        progress=progress,
    )
    if approx and method == "auto":
        _warn(approx, exact_limit, stacklevel=3)
    return out


def graph_nearest(
    archs: Sequence[GraphLike],
    k: int,
    others: Sequence[GraphLike] | None = None,
    costs: CostsArg | None = None,
    *,
    method: Method = "auto",
    exact_limit: int = DEFAULT_EXACT_LIMIT,
    n_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar graph architectures of each row: ``(indices, similarities)`` of shape
    (N, k), most similar first, ties by lower index, as :func:`pyevonas.nearest`."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    m = graph_similarity_matrix(
        archs, others, costs, method=method, exact_limit=exact_limit, n_threads=n_threads, progress=progress
    )
    return top_k(m, k, exclude_self=others is None)


def top_k(m: np.ndarray, k: int, *, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    """The k largest similarities of each row of ``m``, most similar first, ties by lower column
    (as :func:`pyevonas.nearest` orders them); ``exclude_self`` leaves out the diagonal."""
    if exclude_self:
        m = m.copy()
        np.fill_diagonal(m, -np.inf)
    k = min(k, m.shape[1] - (1 if exclude_self else 0))
    order = np.lexsort((np.broadcast_to(np.arange(m.shape[1]), m.shape), -m), axis=1)[:, :k]
    return order.astype(np.int64), np.take_along_axis(m, order, axis=1)


__all__ = [
    "BUILTIN_GRAPH_COSTS",
    "DEFAULT_EXACT_LIMIT",
    "EXACT_MAX_NODES",
    "ApproximationWarning",
    "CostsArg",
    "EditDistance",
    "GraphLike",
    "GraphMembers",
    "Method",
    "as_graphs",
    "costs_for",
    "graph_edit_distance",
    "graph_nearest",
    "graph_similarity",
    "graph_similarity_matrix",
    "is_graph_input",
    "top_k",
]
