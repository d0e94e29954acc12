"""Graph architectures: cells read from the formats that publish them, as labelled DAGs.

The representations of a cell architecture, and what each becomes:

- **dag** (JSON object): ``{"nodes": [...], "edges": [...], "inputs": [0], "outputs": [5]}``, the
  generic form every other one converts to (:meth:`GraphArch.to_json`). Several cells:
  ``{"cells": {"normal": {...}, "reduce": {...}}}``.
- **nb201** (text): the NAS-Bench-201 / NATS topology string
  ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|``; ops on edges, ``none`` means no edge.
- **nb101** (JSON object): NAS-Bench-101's ``{"matrix": [[0, 1, ...], ...], "ops": ["input", ...,
  "output"]}``; ops on nodes, pruned as NAS-Bench-101's ``ModelSpec`` prunes.
- **darts** (text or JSON object): the ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[...],
  reduce=[...], reduce_concat=[...])`` of the DARTS code (read with :mod:`ast`, never evaluated), or
  the same as JSON; two cells, normal and reduce.
- **GraphArch**: what :func:`parse_graph` returns for all of them: one or more :class:`Cell`, each a
  DAG of :class:`Node` (an op and its parameters) and :class:`Edge` (an op, or none for a plain
  edge), with pinned input and output nodes. This is the form the graph edit distance reads.

Every bad input raises :class:`~pyevonas.errors.GraphError` with one line that names the problem and
its place. See ``docs/graphs.md``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any

from pyevonas.errors import GraphError
from pyevonas.metric._graph_canonical import canonical_cell, canonical_text
from pyevonas.metric._graph_cells import (
    DARTS_OPS,
    GRAPH_FORMATS,
    NB101_MAX_EDGES,
    NB101_MAX_NODES,
    NB101_OPS,
    NB201_OPS,
    Cell,
    Edge,
    GraphArch,
    Node,
    ParamValue,
    is_genotype_tuple,
    show_value,
)
from pyevonas.metric._graph_dag import check_graph, read_dag
from pyevonas.metric._graph_published import read_darts, read_nb101, read_nb201


# ---------------------------------------------------------------------- the public functions
def looks_like_graph(obj: Any) -> bool:
    """Whether ``obj`` is a graph architecture rather than a chain (a cheap check of its shape).

    A graph is a :class:`GraphArch`; a string that starts with ``|`` (NAS-Bench-201) or
    ``Genotype(`` (DARTS); a dict with ``matrix`` and ``ops`` (NAS-Bench-101), ``nodes`` and
    ``edges`` or ``cells`` (dag), ``normal`` and ``reduce`` (DARTS); or a DARTS ``Genotype``
    namedtuple. A list (a chain of layer dicts) is not.
    """
    if isinstance(obj, GraphArch):
        return True
    if isinstance(obj, str):
        text = obj.lstrip()
        return text.startswith(("|", "Genotype("))
    if isinstance(obj, Mapping):
        return _mapping_format(obj) is not None
    return is_genotype_tuple(obj)


def parse_graph(obj: Any, format: str = "auto", *, where: str = "graph") -> GraphArch:
    """Read a graph architecture in any of :data:`GRAPH_FORMATS`.

    Args:
        obj: a NAS-Bench-201 string, a DARTS ``Genotype(...)`` text or namedtuple, a JSON object
            (dag, nb101, darts), or a :class:`GraphArch` (checked, and returned as it is).
        format: ``"auto"`` (detected as :func:`looks_like_graph` does) or one of :data:`GRAPH_FORMATS`.
        where: names the graph in error messages (``"graph"``, ``"architecture 3"``...).

    Raises:
        GraphError: one line naming the problem and its place, e.g.
            ``graph: dag: edges[4]: [3, 1] makes a cycle (1 -> 2 -> 3 -> 1)``.

    Example:
        >>> g = parse_graph("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
        >>> len(g.cells[0].nodes), len(g.cells[0].edges)
        (4, 4)
        >>> parse_graph("|nor_conv_3x3~0|+|none~0|skip_connect~1|").to_json()
        {'nodes': ['input', 'node', 'output'], 'edges': [[0, 1, 'nor_conv_3x3'], [1, 2, 'skip_connect']], 'inputs': [0], 'outputs': [2]}
    """
    at = f"{where}: " if where else ""
    if format != "auto" and format not in GRAPH_FORMATS:
        raise GraphError(f"{at}unknown graph format {format!r} (choose from auto, {', '.join(GRAPH_FORMATS)})")
    if isinstance(obj, GraphArch):
        check_graph(obj, at)
        return obj
    fmt = format if format != "auto" else _detect(obj)
    if fmt is None:
        raise GraphError(f"{at}not a graph: {_not_a_graph(obj)}")
    if isinstance(obj, str) and fmt in ("nb201", "darts"):
        # Texts are read once (a pair call, a search's repeated cells); a text that fails is read
        # again below, for an error naming the caller's place.
        with contextlib.suppress(GraphError):
            return _read_text(obj, fmt)
    if fmt == "nb201":
        return read_nb201(obj, f"{at}nb201 string")
    if fmt == "nb101":
        return read_nb101(obj, f"{at}nb101")
    if fmt == "darts":
        return read_darts(obj, f"{at}darts")
    return read_dag(obj, f"{at}dag")


@functools.lru_cache(maxsize=4096)
def _read_text(text: str, fmt: str) -> GraphArch:
    """A NAS-Bench-201 string or DARTS text, read (GraphArch is immutable, so sharing it is safe)."""
    return read_nb201(text, "") if fmt == "nb201" else read_darts(text, "")


def canonical_key(obj: Any, format: str = "auto", *, where: str = "graph") -> str:
    """One text for a graph architecture and every isomorphic copy of it.

    Two cells are isomorphic when renumbering their inner nodes (all but the pinned inputs and
    outputs, which keep their places) maps one onto the other with every node label (op and
    params) and edge label (op) kept. The key is the compact dag JSON of the smallest such
    renumbering (:meth:`GraphArch.to_json` of it reads back with :func:`parse_graph`); the format
    the graph was read from is left out, so a NAS-Bench-201 string and the same cell as a dag give
    the same key. A NAS-Bench-201 string's ``none`` edges are no edges, so they never count.

    Args:
        obj: anything :func:`parse_graph` reads.
        format: as for :func:`parse_graph`.
        where: names the graph in error messages.

    Raises:
        GraphError: ``obj`` is not a graph (as :func:`parse_graph`), or a cell is so symmetric that
            more than 200,000 node orders would have to be compared (never for cells of up to ~10
            nodes with distinct structure).

    Example:
        Nodes 1 and 2 swapped (no edge between them): the same cell.

        >>> a = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
        >>> b = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|none~2|"
        >>> canonical_key(a) == canonical_key(b)
        True
        >>> canonical_key(a)
        '{"nodes":["input","node","node","output"],"edges":[[0,1,"nor_conv_3x3"],[0,2,"skip_connect"],[2,3,"avg_pool_3x3"]],"inputs":[0],"outputs":[3]}'
    """
    g = parse_graph(obj, format, where=where)
    return canonical_text(g, where)


# ---------------------------------------------------------------------- detection and messages
def _mapping_format(obj: Mapping[Any, Any]) -> str | None:
    if "matrix" in obj and "ops" in obj:
        return "nb101"
    if ("nodes" in obj and "edges" in obj) or isinstance(obj.get("cells"), Mapping):
        return "dag"
    if "normal" in obj and "reduce" in obj:
        return "darts"
    return None


def _detect(obj: Any) -> str | None:
    if isinstance(obj, str):
        text = obj.lstrip()
        return "nb201" if text.startswith("|") else "darts" if text.startswith("Genotype(") else None
    if isinstance(obj, Mapping):
        return _mapping_format(obj)
    return "darts" if is_genotype_tuple(obj) else None


def _not_a_graph(obj: Any) -> str:
    expected = (
        "expected a NAS-Bench-201 string '|op~0|+...', a DARTS 'Genotype(...)', or a JSON object with "
        "nodes and edges (dag), matrix and ops (nb101) or normal and reduce (darts)"
    )
    if isinstance(obj, str):
        return f"{expected}; got the text {show_value(obj)}"
    if isinstance(obj, Mapping):
        keys = ", ".join(show_value(k) for k in list(obj)[:8]) or "none"
        return f"{expected}; got an object with keys {keys}"
    if isinstance(obj, list):
        return f"{expected}; got a list (a list of layer dicts is a chain architecture, not a graph)"
    return f"{expected}; got {type(obj).__name__}"


__all__ = [
    "DARTS_OPS",
    "GRAPH_FORMATS",
    "NB101_MAX_EDGES",
    "NB101_MAX_NODES",
    "NB101_OPS",
    "NB201_OPS",
    "Cell",
    "Edge",
    "GraphArch",
    "Node",
    "ParamValue",
    "canonical_cell",
    "canonical_key",
    "looks_like_graph",
    "parse_graph",
]
