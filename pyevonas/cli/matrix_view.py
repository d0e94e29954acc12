"""What ``pyevonas matrix`` prints without ``-o``: a view of a similarity matrix that fits the console.

The first view that fits the console's width is shown:

1. the numbers, three decimals each, when every column fits (about 12 architectures at 80
   columns, 19 at 120);
2. a block heatmap, one cell per pair (two characters wide, or one when two do not fit), with a
   legend and the most similar pairs below it;
3. only the most similar pairs, with their sequences, for anything wider, or with more than
   ``MAX_HEATMAP_ROWS`` rows.

No line is longer than the console: rich would otherwise cut every cell to ``…``. The whole
matrix, whatever its size, is what ``-o FILE.csv`` or ``-o FILE.npy`` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rich.color import Color
from rich.console import Console, Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

#: Beyond this many rows a heatmap is no longer read cell by cell: the pairs view takes over.
MAX_HEATMAP_ROWS = 60
#: Pairs listed below a heatmap, and in the pairs view.
PAIRS_WITH_HEATMAP = 5
PAIRS_ALONE = 10

# A perceptually ordered ramp (viridis' stops): dark blue-violet for 0, yellow for 1.
_RAMP = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
# Without colour, five shades of the same block carry the value, one per fifth of [0, 1].
_SHADES = "·░▒▓█"


def _colour(value: float) -> Color:
    x = min(max(float(value), 0.0), 1.0) * (len(_RAMP) - 1)
    k = min(int(x), len(_RAMP) - 2)
    t = x - k
    lo, hi = _RAMP[k], _RAMP[k + 1]
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
    return Color.from_rgb(r, g, b)


def _shade(value: float) -> str:
    return _SHADES[min(int(min(max(float(value), 0.0), 1.0) * len(_SHADES)), len(_SHADES) - 1)]


def _cell(value: float, width: int, colour: bool) -> Text:
    if colour:
        return Text("█" * width, style=Style(color=_colour(value)))
    return Text(_shade(value) * width)


def matrix_view(
    m: np.ndarray,
    names: Sequence[str],
    other_names: Sequence[str] | None = None,
    sequence_of: Callable[[int], str] | None = None,
    other_sequence_of: Callable[[int], str] | None = None,
    *,
    width: int,
    colour: bool = True,
) -> tuple[RenderableType, bool]:
    """The view of ``m`` that fits ``width`` columns, and whether it shows every number.

    Args:
        m: an (N, N) population matrix, or (N, M) against ``other_names``.
        names: the N row names; ``other_names`` the M column names (default: ``names``).
        sequence_of: the letter sequence of row ``i`` (and ``other_sequence_of`` of column ``j``),
            shown beside the most similar pairs; asked only for the pairs shown.
        width: the console's width.
        colour: colour the heatmap (else five shades of a block).
    """
    n, k = m.shape
    label_w = len(str(n - 1))
    few_rows = n <= MAX_HEATMAP_ROWS  # more are not read cell by cell: only the pairs
    if few_rows and k * 6 + label_w + 1 <= width:  # " 0.788" per column
        return _numbers(m, label_w), True
    for cell_w in (2, 1):
        if few_rows and label_w + 1 + k * cell_w <= width:
            parts: list[RenderableType] = [
                _heatmap(m, label_w, cell_w, colour),
                _legend(colour, width),
                Text(f"most similar pairs ({'row, column' if other_names else 'i < j'}):", style="bold"),
                _pairs(m, names, other_names, sequence_of, other_sequence_of, PAIRS_WITH_HEATMAP, width),
            ]
            return Group(*parts), False
    title = Text(
        f"{n} x {k}: too large to show at {width} columns; the most similar pairs"
        f" ({'row, column' if other_names else 'i < j'}):",
        style="bold",
    )
    return Group(title, _pairs(m, names, other_names, sequence_of, other_sequence_of, PAIRS_ALONE, width)), False


def _numbers(m: np.ndarray, label_w: int) -> Table:
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False, padding=(0, 0, 0, 1))
    t.add_column("", justify="right", width=label_w, no_wrap=True)
    for j in range(m.shape[1]):
        t.add_column(str(j), justify="right", width=5, no_wrap=True)
    for i, row in enumerate(m):
        t.add_row(str(i), *(f"{v:.3f}" for v in row))
    return t


def _heatmap(m: np.ndarray, label_w: int, cell_w: int, colour: bool) -> Text:
    n, k = m.shape
    # Column indices every `step` columns, so that no two labels touch.
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if s * cell_w > len(str(k - 1)))
    ruler = [" "] * (k * cell_w)
    for j in range(0, k, step):
        label = str(j)
        start = j * cell_w
        if start + len(label) <= len(ruler):
            ruler[start : start + len(label)] = label
    out = Text(" " * (label_w + 1) + "".join(ruler).rstrip(), style="dim")
    for i in range(n):
        out.append("\n")
        out.append(str(i).rjust(label_w) + " ", style="dim")
        for v in m[i]:
            out.append_text(_cell(v, cell_w, colour))
    return out


def _legend(colour: bool, width: int) -> Text:
    out = Text("similarity ", style="dim")
    if colour:
        steps = max(10, min(20, width - 24))
        out.append("0 ")
        for s in range(steps):
            out.append("█", style=Style(color=_colour(s / (steps - 1))))
        out.append(" 1")
        return out
    fifths = ("< 0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", ">= 0.8")
    return out + Text("  ".join(f"{c} {label}" for c, label in zip(_SHADES, fifths, strict=True)))


def top_pairs(m: np.ndarray, count: int, square: bool, *, block_elements: int = 2**20) -> list[tuple[int, int, float]]:
    """The ``count`` most similar pairs ``(i, j, m[i, j])``, most similar first.

    ``square``: ``m`` compares a population with itself, so only ``i < j`` counts (the upper
    triangle: the diagonal is 1 and, under the symmetric schemas, the lower triangle repeats it).
    Works through blocks of about ``block_elements`` cells (whole rows), so a large matrix is
    never copied whole.
    """
    n, k = m.shape
    best: list[tuple[float, int, int]] = []
    rows_per_block = max(1, block_elements // max(k, 1))
    for r0 in range(0, n, rows_per_block):
        block = np.array(m[r0 : r0 + rows_per_block], dtype=np.float64)
        if square:
            cols = np.arange(k)
            block[np.arange(block.shape[0])[:, None] + r0 >= cols[None, :]] = -np.inf
        flat = block.ravel()
        take = min(count, flat.size)
        idx = np.argpartition(-flat, take - 1)[:take] if take < flat.size else np.arange(flat.size)
        for f in idx:
            if np.isfinite(flat[f]):
                best.append((float(flat[f]), r0 + int(f) // k, int(f) % k))
        best.sort(key=lambda p: (-p[0], p[1], p[2]))
        del best[count:]
    return [(i, j, v) for v, i, j in best]


def _pairs(
    m: np.ndarray,
    names: Sequence[str],
    other_names: Sequence[str] | None,
    sequence_of: Callable[[int], str] | None,
    other_sequence_of: Callable[[int], str] | None,
    count: int,
    width: int,
) -> Table:
    square = other_names is None
    cols = names if other_names is None else other_names
    col_seq = sequence_of if square else other_sequence_of
    t = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
    t.add_column("similarity", justify="right", no_wrap=True)
    t.add_column("pair", no_wrap=True, overflow="ellipsis", max_width=max(8, width // 4))
    if sequence_of is not None:
        t.add_column("sequences", no_wrap=True, overflow="ellipsis")
    for i, j, v in top_pairs(m, count, square):
        row = [f"{v:.3f}", f"{names[i]}, {cols[j]}"]
        if sequence_of is not None:
            row.append(f"{sequence_of(i)} / {col_seq(j) if col_seq is not None else ''}")
        t.add_row(*row)
    return t


def print_matrix_view(
    console: Console,
    m: np.ndarray,
    names: Sequence[str],
    other_names: Sequence[str] | None = None,
    sequence_of: Callable[[int], str] | None = None,
    other_sequence_of: Callable[[int], str] | None = None,
) -> bool:
    """Print :func:`matrix_view` for ``console``'s width and colours; whether it showed every number."""
    view, complete = matrix_view(
        m,
        names,
        other_names,
        sequence_of,
        other_sequence_of,
        width=console.width,
        colour=console.color_system is not None,
    )
    console.print(view, highlight=False, crop=True)
    return complete


__all__ = ["MAX_HEATMAP_ROWS", "PAIRS_ALONE", "PAIRS_WITH_HEATMAP", "matrix_view", "print_matrix_view", "top_pairs"]
