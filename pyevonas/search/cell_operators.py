"""Variation operators of cell search spaces: crossover and mutation of cells.

Every function is pure: it takes cells (as a chromosome's cell gene holds them) and an explicit
``rng: np.random.Generator``, returns a new cell, and never modifies its inputs. Every cell
returned is valid in the space (``space.check_cell`` passes). ``operators.breed`` puts the
skeleton around it, so a cell-space search breeds with the same parent selection, the same
mutation-rate decay of the diversity control and the same near-duplicate resampling as a chain one.

NAS-Bench-201 cells (a fixed graph: an op on each edge, ``none`` meaning no edge):

* **crossover** (:func:`crossover_uniform`): each edge's op from parent 1 or parent 2, 1/2 each;
* **mutation** (:func:`mutate_cell`): each edge is chosen with probability ``p_mutation`` and gets
  an op drawn uniformly among the *other* ops of the space.

DAG cells (nodes and edges vary within the space's limits):

* **crossover** (:func:`crossover_nodes`): each inner node that both parents have (by position)
  comes, with probability 1/2, from parent 2 with its inputs: its label (op and params, for ops
  on nodes) and its incoming edges (with their ops, for ops on edges) replace parent 1's. Masks
  are drawn until the child is valid (10 draws), else there is no crossover;
* **mutation** (:func:`mutate_cell`): each inner node and each edge is chosen with probability
  ``p_mutation``; for each chosen one, one change is drawn uniformly among the kinds possible:
  change an op (another op, or the same with other params), add an edge, remove an edge, add a
  node (splitting an edge: s -> new -> t), remove a node (its predecessors reconnected to its
  successors when the edge limit allows). A change is possible when the cell stays valid: every
  node on a path from the input to the output, within the node and edge limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyevonas.search.cells import CellSpace, DagCell, nb201_ops, nb201_string

#: Masks drawn for a dag crossover before giving up; concrete changes tried per kind of mutation.
MAX_CROSSOVER_ATTEMPTS = 10
MAX_CHANGE_ATTEMPTS = 8
_KINDS = ("change", "add_edge", "remove_edge", "add_node", "remove_node")


# ---------------------------------------------------------------------- crossover
def crossover_uniform(cell1: str, cell2: str, space: CellSpace, rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """Uniform crossover of two NAS-Bench-201 cells: each edge's op from either parent, 1/2 each.

    Returns:
        ``(child, {"mask": m})``: bit k of ``m`` set when edge k came from parent 2.
    """
    ops1, ops2 = nb201_ops(cell1), nb201_ops(cell2)
    from_2 = [bool(rng.random() < 0.5) for _ in ops1]
    child = [b if take else a for a, b, take in zip(ops1, ops2, from_2, strict=True)]
    return nb201_string(child, space.n_nodes), {"mask": sum(1 << k for k, take in enumerate(from_2) if take)}


def crossover_nodes(
    cell1: dict[str, Any], cell2: dict[str, Any], space: CellSpace, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """Node-exchange crossover of two dag cells (see the module docstring).

    Returns:
        ``(child, {"mask": m})`` (bit v set when inner node v came from parent 2), or None when no
        mask in :data:`MAX_CROSSOVER_ATTEMPTS` draws gave a valid child.
    """
    a, b = DagCell.read(cell1), DagCell.read(cell2)
    shared = range(1, min(len(a.nodes), len(b.nodes)) - 1)
    for _ in range(MAX_CROSSOVER_ATTEMPTS):
        taken = [v for v in shared if rng.random() < 0.5]
        child = a.copy()
        for v in taken:
            child.nodes[v] = (b.nodes[v][0], dict(b.nodes[v][1]))
            child.edges = {(s, t): op for (s, t), op in child.edges.items() if t != v}
            child.edges.update({(s, t): op for (s, t), op in b.edges.items() if t == v})
        if space.dag_problem(child) is None:
            return child.to_json(), {"mask": sum(1 << v for v in taken)}
    return None


# ---------------------------------------------------------------------- mutation
def mutate_cell(cell: Any, space: CellSpace, rng: np.random.Generator, p_mutation: float) -> tuple[Any, list[str]]:
    """Mutate a cell: NAS-Bench-201 edge by edge, a dag site by site (see the module docstring).

    Returns:
        ``(mutant, log)``: the new cell and one line per applied change, e.g. ``"edge 0->2
        nor_conv_3x3 -> skip_connect"`` or ``"add node 3 on 1->3"``.
    """
    if not 0.0 <= p_mutation <= 1.0:
        raise ValueError(f"p_mutation must be in [0, 1], got {p_mutation}")
    if space.format == "nb201":
        return _mutate_nb201(cell, space, rng, p_mutation)
    dag = DagCell.read(cell)
    sites = len(dag.nodes) - 2 + len(dag.edges)
    n_changes = sum(1 for _ in range(sites) if rng.random() < p_mutation)
    log: list[str] = []
    for _ in range(n_changes):
        line = _one_change(dag, space, rng)
        if line is not None:
            log.append(line)
    return dag.to_json(), log


def _mutate_nb201(cell: str, space: CellSpace, rng: np.random.Generator, p_mutation: float) -> tuple[str, list[str]]:
    ops = nb201_ops(cell)
    pairs = [(j, i) for i in range(1, space.n_nodes) for j in range(i)]
    log = []
    for k, (j, i) in enumerate(pairs):
        if rng.random() < p_mutation and len(space.ops) > 1:
            new = space.random_op(rng, other_than=ops[k])
            log.append(f"edge {j}->{i} {ops[k]} -> {new}")
            ops[k] = new
    return nb201_string(ops, space.n_nodes), log


def _one_change(dag: DagCell, space: CellSpace, rng: np.random.Generator) -> str | None:
    """Apply one change of a kind drawn among the possible ones; None when none is possible."""
    for kind in rng.permutation(_KINDS):
        for _ in range(MAX_CHANGE_ATTEMPTS):
            found = _try(str(kind), dag, space, rng)
            if found is None:
                break  # nothing of this kind to try
            candidate, line = found
            if space.dag_problem(candidate) is None:
                dag.nodes, dag.edges = candidate.nodes, candidate.edges
                return line
    return None


def _try(kind: str, dag: DagCell, space: CellSpace, rng: np.random.Generator) -> tuple[DagCell, str] | None:
    """One random concrete change of ``kind`` (not yet checked), or None when the kind has no candidate."""
    n = len(dag.nodes)
    edges = sorted(dag.edges)
    out = dag.copy()
    if kind == "change":
        return _try_change(dag, space, rng)
    if kind == "add_edge":
        free = [(s, t) for s in range(n) for t in range(s + 1, n) if (s, t) not in dag.edges]
        if not free:
            return None
        s, t = free[int(rng.integers(len(free)))]
        out.edges[(s, t)] = space.random_edge_op(rng)
        return out, f"add edge {s}->{t}" + (f" {out.edges[(s, t)]}" if out.edges[(s, t)] else "")
    if kind == "remove_edge":
        if not edges:
            return None
        s, t = edges[int(rng.integers(len(edges)))]
        del out.edges[(s, t)]
        return out, f"remove edge {s}->{t}"
    if kind == "add_node":
        if not edges:
            return None
        s, t = edges[int(rng.integers(len(edges)))]
        return _split(dag, s, t, space, rng), f"add node {t} on {s}->{t}"
    if n <= 2:  # remove_node
        return None
    v = int(rng.integers(1, n - 1))
    without = _without_node(dag, v, bypass=True)
    if len(without.edges) > space.max_edges:
        without = _without_node(dag, v, bypass=False)
    return without, f"remove node {v} {_label(dag.nodes[v])}"


def _try_change(dag: DagCell, space: CellSpace, rng: np.random.Generator) -> tuple[DagCell, str] | None:
    out = dag.copy()
    if space.ops_on == "edges":
        edges = sorted(dag.edges)
        if not edges or len(space.ops) < 2:
            return None
        s, t = edges[int(rng.integers(len(edges)))]
        old_op = dag.edges[(s, t)]
        out.edges[(s, t)] = space.random_op(rng, other_than=old_op)
        return out, f"edge {s}->{t} {old_op} -> {out.edges[(s, t)]}"
    inner = list(range(1, len(dag.nodes) - 1))
    if not inner:
        return None
    v = inner[int(rng.integers(len(inner)))]
    old = dag.nodes[v]
    for _ in range(MAX_CHANGE_ATTEMPTS):
        new = space.random_node(rng)
        if new != old:
            out.nodes[v] = new
            return out, f"node {v} {_label(old)} -> {_label(new)}"
    return None  # a space with one label for its nodes has nothing to change


def _split(dag: DagCell, s: int, t: int, space: CellSpace, rng: np.random.Generator) -> DagCell:
    """``dag`` with edge s -> t replaced by s -> new -> t, the new node numbered t (later ones shift)."""

    def shift(v: int) -> int:
        return v + 1 if v >= t else v

    op = dag.edges[(s, t)]
    nodes = [*dag.nodes[:t], space.random_node(rng), *dag.nodes[t:]]
    edges = {(shift(a), shift(b)): e for (a, b), e in dag.edges.items() if (a, b) != (s, t)}
    edges[(s, t)] = op
    edges[(t, t + 1)] = space.random_edge_op(rng)
    return DagCell(nodes, edges)


def _without_node(dag: DagCell, v: int, *, bypass: bool) -> DagCell:
    """``dag`` without node v; with ``bypass``, each predecessor joined to each successor."""

    def shift(u: int) -> int:
        return u - 1 if u > v else u

    edges = {(shift(a), shift(b)): e for (a, b), e in dag.edges.items() if v not in (a, b)}
    if bypass:
        for (p, x), op in dag.edges.items():
            if x != v:
                continue
            for (y, w), _ in dag.edges.items():
                if y == v and (shift(p), shift(w)) not in edges:
                    edges[(shift(p), shift(w))] = op
    return DagCell([node for u, node in enumerate(dag.nodes) if u != v], edges)


def _label(node: tuple[str, dict[str, Any]]) -> str:
    op, params = node
    return op if not params else f"{op}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"


__all__ = ["MAX_CHANGE_ATTEMPTS", "MAX_CROSSOVER_ATTEMPTS", "crossover_nodes", "crossover_uniform", "mutate_cell"]
