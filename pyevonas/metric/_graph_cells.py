"""The graph architecture's data: cells, nodes and edges, and how a graph is written back out.

Private: :mod:`pyevonas.metric.graphs` is the public face. The readers of each format
(``_graph_dag``, ``_graph_published``) build these classes; the helpers here give every reader the
same one-line errors.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, NoReturn

from pyevonas.errors import GraphError

GRAPH_FORMATS = ("dag", "nb201", "nb101", "darts")

#: The operations of NAS-Bench-201's search space, in its own order (``none``: no edge).
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The operations of NAS-Bench-101's intermediate nodes.
NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
NB101_MAX_NODES = 7
NB101_MAX_EDGES = 9
#: The operations of the DARTS code (its ``PRIMITIVES``, plus the two more of its ``OPS`` that the
#: published NASNet and AmoebaNet genotypes use); ``none`` means no edge.
DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_7x1_1x7",
)
DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

#: A node parameter's value. Integers beyond 2**53 are refused: the costs compare values as floats.
ParamValue = int | float | str | bool
MAX_PARAM_INT = 2**53


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a cell: its operation and its parameters, sorted by name."""

    op: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.op
        return f"{self.op}({', '.join(f'{k}={v!r}' for k, v in self.params)})"


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge of a cell, from node ``source`` to node ``target``; ``op`` None is a plain edge."""

    source: int
    target: int
    op: str | None = None


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell: a DAG of nodes, its edges sorted by (source, target), and its pinned nodes.

    The edges hold no duplicate, no self loop and no cycle. ``inputs`` and ``outputs`` are the
    designated input and output nodes, in order: the edit distance maps the i-th input of one cell
    onto the i-th input of the other (likewise the outputs).
    """

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphArch:
    """A graph architecture: one cell (dag, nb201, nb101) or two (darts: normal, reduce).

    ``format`` says which format it was read from; ``cell_names`` names the cells, in order
    (``("cell",)``, or ``("normal", "reduce")``).
    """

    cells: tuple[Cell, ...]
    format: str
    cell_names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The generic DAG JSON form (``parse_graph(g.to_json())`` equals ``g`` but for ``format``)."""
        if self.cell_names == ("cell",):
            return cell_json(self.cells[0])
        return {"cells": {name: cell_json(cell) for name, cell in zip(self.cell_names, self.cells, strict=True)}}

    def __str__(self) -> str:
        """The NAS-Bench-201 string for nb201, the ``Genotype(...)`` text for darts, compact JSON otherwise."""
        text = None
        if self.format == "nb201":
            text = nb201_text(self)
        elif self.format == "darts":
            text = darts_text(self)
        return text if text is not None else json.dumps(self.to_json(), separators=(",", ":"))


# ---------------------------------------------------------------------- helpers of the readers
def show_value(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, and never an error: an integer of more than
    4,300 digits cannot be printed (Python's limit), so the message says how long it is instead."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"<an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    try:
        text = repr(value)
    except ValueError:  # a container holding such an integer
        return f"a {type(value).__name__} holding an integer too large to print"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(at: str, message: str) -> NoReturn:
    """Raise the one-line GraphError ``at: message``."""
    raise GraphError(f"{at}: {message}")


def is_integer(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_genotype_tuple(obj: Any) -> bool:
    """A DARTS ``Genotype`` namedtuple (or any namedtuple with normal and reduce fields)."""
    fields = getattr(type(obj), "_fields", None)
    return isinstance(obj, tuple) and isinstance(fields, tuple) and {"normal", "reduce"} <= set(fields)


def key_text(key: Any) -> str:
    """A JSON key as a message shows it: as typed when it is plain text."""
    return key if isinstance(key, str) and key.isprintable() and key else show_value(key)


def cell_json(cell: Cell) -> dict[str, Any]:
    """One cell in the dag JSON form."""
    nodes: list[Any] = [n.op if not n.params else {"op": n.op, "params": dict(n.params)} for n in cell.nodes]
    edges = [[e.source, e.target] if e.op is None else [e.source, e.target, e.op] for e in cell.edges]
    return {"nodes": nodes, "edges": edges, "inputs": list(cell.inputs), "outputs": list(cell.outputs)}


# ---------------------------------------------------------------------- writing nb201 and darts text
def nb201_text(g: GraphArch) -> str | None:
    """The NAS-Bench-201 string of a graph of that shape (one cell, the ops on forward edges), else None."""
    if len(g.cells) != 1:
        return None
    cell = g.cells[0]
    n = len(cell.nodes)
    roles = ["input"] + ["node"] * (n - 2) + ["output"]
    if n < 2 or [node.op for node in cell.nodes] != roles or any(node.params for node in cell.nodes):
        return None
    if cell.inputs != (0,) or cell.outputs != (n - 1,) or any(e.source >= e.target for e in cell.edges):
        return None
    ops = {(e.source, e.target): e.op for e in cell.edges}
    if any(op not in NB201_OPS or op == "none" for op in ops.values()):
        return None
    groups = ["|" + "|".join(f"{ops.get((j, i), 'none')}~{j}" for j in range(i)) + "|" for i in range(1, n)]
    return "+".join(groups)


def darts_text(g: GraphArch) -> str | None:
    """The ``Genotype(...)`` text of a graph of that shape (normal and reduce cells as DARTS builds them), else None.

    Each node's two inputs are written in the order of their source nodes, and a node with fewer
    than two op edges gets ``('none', 0)``: the text reads back as the same graph.
    """
    if g.cell_names != ("normal", "reduce"):
        return None
    parts = []
    for name, cell in zip(g.cell_names, g.cells, strict=True):
        found = _darts_cell_text(cell)
        if found is None:
            return None
        ops, concat = found
        parts.append(f"{name}=[{', '.join(ops)}], {name}_concat={concat}")
    return f"Genotype({', '.join(parts)})"


def _darts_cell_text(cell: Cell) -> tuple[list[str], list[int]] | None:
    n = len(cell.nodes)
    roles = ["input", "input"] + ["node"] * (n - 3) + ["output"]
    if n < 4 or [node.op for node in cell.nodes] != roles or any(node.params for node in cell.nodes):
        return None
    if cell.inputs != (0, 1) or cell.outputs != (n - 1,):
        return None
    into: list[list[Edge]] = [[] for _ in range(n)]
    for e in cell.edges:
        into[e.target].append(e)
    concat = [e.source for e in into[n - 1]]
    if into[0] or into[1] or not concat or any(e.op is not None for e in into[n - 1]):
        return None
    ops: list[str] = []
    for step in range(2, n - 1):
        edges = into[step]
        if len(edges) > 2 or any(e.op not in DARTS_OPS or e.op == "none" or e.source >= step for e in edges):
            return None
        ops += [f"({e.op!r}, {e.source})" for e in edges] + ["('none', 0)"] * (2 - len(edges))
    return ops, concat
