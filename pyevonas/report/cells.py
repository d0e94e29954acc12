"""Figures of the cells of a cell-space run (NAS-Bench-201, a DAG space of one's own).

In a cell space every architecture has the same skeleton (stem, stages, reductions, head) and
differs only in its cell, so the gene-letter figures (Fig. 7, 9) show one row of identical
letters. These figures show what changes instead:

* :func:`cell_drawings`: the cell of the best individual of each generation, drawn as its DAG:
  nodes left to right in topological order, every edge an arc labelled and coloured by its
  operation (or plain, when the operations sit on the nodes, which are then labelled by theirs);
* :func:`operation_frequency`: for a population, the share of its cells that has each operation
  at each position: an edge ``i→j`` (absent edges count as ``none``) or a node.

:func:`cells_of` reads the cells out of a chromosome (its genes that carry a ``cell``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pyevonas.metric.graphs import parse_graph
from pyevonas.report._style import literal_text, new_figure
from pyevonas.runs.records import cell_notation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pyevonas.metric._graph_cells import Cell

#: Operation colours, given to operations in order of first appearance (tab10, then tab20's light shades).
_OP_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)  # fmt: skip
#: The label of a position without an edge in :func:`operation_frequency`.
NONE = "none"
#: The most cells one drawing shows (rows).
MAX_DRAWN = 20


def cells_of(chromosome: Sequence[Any]) -> list[Cell]:
    """The distinct cells of a chromosome (its ``cell`` genes), in gene order (a NAS-Bench-201 network repeats one
    cell in every stage: one cell). Genes whose cell cannot be read are left out."""
    found: list[Cell] = []
    for gene in chromosome:
        if not isinstance(gene, dict) or gene.get("layer") != "cell" or "cell" not in gene:
            continue
        try:
            arch = parse_graph(gene["cell"])
        except Exception:  # a damaged or foreign cell: the letter figures still show the run
            continue
        for cell in arch.cells:
            if cell not in found:
                found.append(cell)
    return found


def has_cells(chromosomes: Sequence[Sequence[Any]]) -> bool:
    """Whether any chromosome is a cell-space architecture (the records' rule: a ``cell`` gene)."""
    return any(cell_notation(chrom) is not None for chrom in chromosomes)


def _op_colours(ops: Sequence[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for op in ops:
        if op not in colours:
            colours[op] = _OP_COLOURS[len(colours) % len(_OP_COLOURS)]
    return colours


def _topological(cell: Cell) -> list[int]:
    """The nodes in a topological order (Kahn's, smallest index first: stable for ordered cells)."""
    indegree = [0] * len(cell.nodes)
    for e in cell.edges:
        indegree[e.target] += 1
    ready = sorted(i for i, d in enumerate(indegree) if d == 0)
    order: list[int] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for e in cell.edges:
            if e.source == node:
                indegree[e.target] -= 1
                if indegree[e.target] == 0:
                    ready.append(e.target)
                    ready.sort()
    return order + [i for i in range(len(cell.nodes)) if i not in order]


def _node_label(cell: Cell, index: int) -> str:
    op = cell.nodes[index].op
    if index in cell.inputs:
        return "in" if len(cell.inputs) == 1 else f"in{cell.inputs.index(index)}"
    if index in cell.outputs:
        return "out" if len(cell.outputs) == 1 else f"out{cell.outputs.index(index)}"
    return str(index) if op in ("node", "input", "output") else f"{index}\n{cell.nodes[index]}"


def _draw_cell(ax: Any, cell: Cell, colours: dict[str, str]) -> None:
    from matplotlib.patches import FancyArrowPatch

    step = 1.8  # room for an operation's name between two neighbours
    x = {node: step * k for k, node in enumerate(_topological(cell))}
    top = 0.5
    for e in cell.edges:
        x0, x1 = x[e.source], x[e.target]
        hops = round(abs(x1 - x0) / step)
        span = abs(x1 - x0)
        rad = 0.0 if hops == 1 else -min(0.2 + 0.05 * hops, 0.45)
        colour = colours.get(e.op or "", "#555555")
        ax.add_patch(
            FancyArrowPatch(
                (x0, 0.0), (x1, 0.0), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>", mutation_scale=10,
                color=colour, lw=1.6, shrinkA=11, shrinkB=11,
            )
        )  # fmt: skip
        height = abs(rad) * span / 2
        top = max(top, height)
        if e.op is not None:
            label = ax.text((x0 + x1) / 2, height, e.op, ha="center", va="center", fontsize=6.5, color=colour,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})  # fmt: skip
            label.set_in_layout(False)
    for node, k in x.items():
        pinned = node in cell.inputs or node in cell.outputs
        ax.scatter([k], [0.0], s=330, zorder=3, color="#dddddd" if pinned else "white", edgecolors="#333333")
        label, _, op = _node_label(cell, node).partition("\n")
        ax.text(k, 0.0, label, ha="center", va="center", fontsize=7, zorder=4)
        if op:  # the node's operation under it
            ax.text(k, -0.28, op, ha="center", va="top", fontsize=6.5, zorder=4)
    ax.set_xlim(-0.6, step * max(len(x) - 1, 1) + 0.6)
    ax.set_ylim(-0.6, top + 0.35)
    ax.set_aspect("equal")  # arc3 bends in display units: equal units put each label on its arc's apex
    ax.set_axis_off()


@literal_text
def cell_drawings(rows: Sequence[tuple[str, Sequence[Cell]]], title: str = "") -> Figure:
    """Draw cells, one row per label (e.g. ``G3 · 0.812``) and one panel per distinct cell of it.

    Edge operations are coloured alike in every panel (a legend names them); with the
    operations on the nodes, the nodes carry them and the edges are plain.
    """
    from matplotlib.patches import Patch

    rows = [(label, list(cells)) for label, cells in rows if cells][:MAX_DRAWN]
    ops = [e.op for _, cells in rows for cell in cells for e in cell.edges if e.op is not None]
    colours = _op_colours(sorted(set(ops), key=ops.index))
    width = max((len(cells) for _, cells in rows), default=1)
    nodes = max((len(c.nodes) for _, cells in rows for c in cells), default=2)
    fig = new_figure(min(2.0 + 1.6 * nodes * width, 18.0), 0.8 + 1.7 * max(len(rows), 1) + (0.3 if colours else 0))
    axes = fig.subplots(max(len(rows), 1), width, squeeze=False)
    for r, (label, cells) in enumerate(rows):
        for c in range(width):
            ax = axes[r][c]
            if c >= len(cells):
                ax.set_axis_off()
                continue
            _draw_cell(ax, cells[c], colours)
            if c == 0:
                ax.text(-0.05, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=8)
    if colours:
        handles = [Patch(facecolor=colour, label=op) for op, colour in colours.items()]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=7, frameon=False)
    fig.suptitle(title or "Cells", fontsize=10)
    return fig


def _positions(cells: Sequence[Cell]) -> tuple[list[str], list[list[str]]]:
    """The positions of a population's cells and, per cell, the operation at each position."""
    if any(e.op is not None for cell in cells for e in cell.edges):
        found = {(e.source, e.target) for cell in cells for e in cell.edges}
        sizes = {len(cell.nodes) for cell in cells}
        if len(sizes) == 1 and all(s < t for s, t in found):
            # Cells of one size with ordered nodes (NAS-Bench-201's): every forward edge is a
            # position, so one that no cell uses still shows (as none everywhere).
            n = sizes.pop()
            found |= {(s, t) for t in range(n) for s in range(t)}
        pairs = sorted(found, key=lambda p: (p[1], p[0]))
        names = [f"{s}→{t}" for s, t in pairs]
        table = []
        for cell in cells:
            by_pair = {(e.source, e.target): e.op or "edge" for e in cell.edges}
            table.append([by_pair.get(p, NONE) for p in pairs])
        return names, table
    # Operations on the nodes: the inner nodes (not the pinned inputs and outputs) by their place
    # among them, under a first row over every inner node of a cell.
    inner = [
        [n.op for i, n in enumerate(cell.nodes) if i not in cell.inputs and i not in cell.outputs] for cell in cells
    ]
    size = max((len(ops) for ops in inner), default=0)
    names = [f"inner node {k + 1}" for k in range(size)]
    return names, [[ops[k] if k < len(ops) else NONE for k in range(size)] for ops in inner]


@literal_text
def operation_frequency(cells: Sequence[Cell], title: str = "") -> Figure:
    """Per position (an edge ``i→j`` or a node) the share of ``cells`` with each operation, as a heatmap."""
    names, table = _positions(cells)
    counts = Counter(op for row in table for op in row)
    ops = sorted(counts, key=lambda op: (op == NONE, -counts[op], op))
    share = np.zeros((len(names), len(ops)))
    for row in table:
        for p, op in enumerate(row):
            share[p, ops.index(op)] += 1
    share /= max(len(table), 1)
    if names and names[0].startswith("inner node"):  # the share over all inner nodes first
        used = [op for row in table for op in row if op != NONE]
        overall = np.array([[used.count(op) / max(len(used), 1) for op in ops]])
        names, share = ["every inner node", *names], np.vstack([overall, share])
    fig = new_figure(max(3.0 + 0.9 * len(ops), 6.0), 1.4 + 0.32 * max(len(names), 1))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for p in range(len(names)):
        for k in range(len(ops)):
            if share[p, k] > 0:
                ax.text(k, p, f"{share[p, k]:.0%}", ha="center", va="center", fontsize=6.5,
                        color="white" if share[p, k] > 0.6 else "#222222")  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of cells")
    ax.set_title(title or f"Operations of {len(cells)} cells", fontsize=10)
    return fig


__all__ = ["MAX_DRAWN", "NONE", "cell_drawings", "cells_of", "has_cells", "operation_frequency"]
