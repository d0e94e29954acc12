"""A pure-Python oracle of the paper's similarity metric, written from its description alone.

The description is docs/original.md#the-similarity-metric. This module does not use pyevonas's
schema or core: the match function is that page's table, typed out by hand, and the alignment is
the textbook linear-gap Needleman-Wunsch. The tests check the Rust engine (driven by
schemas/paper.json and default.json) against it.
"""

from __future__ import annotations

from typing import Any

LETTER = {
    "C_2D": "C",
    "DC_2D": "D",
    "MP_2D": "M",
    "AP_2D": "A",
    "GAP_2D": "g",
    "GMP_2D": "G",
    "FLAT": "E",
    "R_2D": "L",
    "BN_2D": "B",
    "IN_2D": "I",
    "DO": "O",
    "D": "F",
}
PARAMS = {
    "C": ("filters", "kernel_size", "strides"),
    "D": ("kernel_size", "strides"),
    "M": ("pool_size",),
    "A": ("pool_size",),
    "O": ("rate",),
    "F": ("units",),
    "R": ("filters", "kernel_size", "strides"),
    "r": ("filters", "kernel_size", "strides"),
    "T": ("filters", "kernel_size", "strides"),
    "t": ("filters", "kernel_size", "strides"),
}
BLOCKS = set("RrTt")
GAP = -0.5


def to_genes(chrom: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    out = []
    for layer in chrom:
        name = layer["layer"]
        if name in ("Rescaling", "MAG"):
            continue
        if name in ("RES_2D", "BOT_2D"):
            letter = (
                ("R" if name == "RES_2D" else "T")
                if layer["skip_connection"] == 1
                else ("r" if name == "RES_2D" else "t")
            )
        else:
            letter = LETTER[name]
        out.append((letter, {p: layer[p] for p in PARAMS.get(letter, ())}))
    return out


def _d(x: dict, y: dict, terms: list[tuple[str, float, float]]) -> float:
    d = 0.0
    for p, w, n in terms:
        d += (abs(x[p] - y[p]) * w) / n
    return d


CONV = [("filters", 0.6, 112), ("kernel_size", 0.8, 6), ("strides", 0.6, 1)]
DW = [("kernel_size", 1.2, 6), ("strides", 0.8, 1)]
BLOCK = [("filters", 0.6, 112), ("kernel_size", 0.8, 4), ("strides", 0.6, 1)]


def match(gx: tuple[str, dict], gy: tuple[str, dict], symmetric_flatten: bool = False) -> float:
    """The match score of two genes: the table's rows in order, else the mismatch score."""
    (a, x), (b, y) = gx, gy
    for rows in (_conv_pool_rows, _flatten_rows, _dense_block_rows):
        score = rows(a, x, b, y, symmetric_flatten)
        if score is not None:
            return score
    return -2.0 if a in "CDFRrTt" else -1.0


def _conv_pool_rows(a: str, x: dict, b: str, y: dict, symmetric_flatten: bool) -> float | None:
    """The table's convolution, depthwise and pooling rows (None: no row of these matches)."""
    pair = {a, b}
    if a == b == "C":
        return 3 - _d(x, y, CONV)
    if pair == {"C", "D"}:
        return 2 - _d(x, y, DW)
    if a == b == "D":
        return 3 - _d(x, y, DW)
    if a == b and a in "MA":
        return 3 - _d(x, y, [("pool_size", 1, 2)])
    if pair == {"M", "A"}:
        return 2 - _d(x, y, [("pool_size", 1, 2)])
    return None


def _flatten_rows(a: str, x: dict, b: str, y: dict, symmetric_flatten: bool) -> float | None:
    """The table's global pooling and flatten rows (None: no row of these matches)."""
    if a == b and a in "gGE":
        return 1.5
    if {a, b} == {"g", "G"}:
        return 0.5
    if a == "E" and b in "gG":
        return 0.5
    if symmetric_flatten and b == "E" and a in "gG":
        return 0.5
    return None


def _dense_block_rows(a: str, x: dict, b: str, y: dict, symmetric_flatten: bool) -> float | None:
    """The table's rescaling, normalisation, dropout, dense and block rows (None: no row of these matches)."""
    pair = {a, b}
    if a == b == "L":
        return 1
    if a == b and a in "BI":
        return 2
    if pair == {"B", "I"}:
        return 1
    if a == b == "O":
        return 2 - _d(x, y, [("rate", 2, 0.5)])
    if a == b == "F":
        return 3 - _d(x, y, [("units", 2, 80)])
    if a in BLOCKS and b in BLOCKS:
        if a == b:
            base = 7
        elif pair in ({"R", "T"}, {"R", "r"}, {"T", "t"}):
            base = 5
        elif pair == {"r", "t"}:
            base = 4
        else:
            base = 3
        return base - _d(x, y, BLOCK)
    return None


def nw(sa: list, sb: list, f) -> float:
    m, n = len(sa), len(sb)
    h = [[0.0] * (n + 1) for _ in range(m + 1)]
    for i in range(1, m + 1):
        h[i][0] = h[i - 1][0] + GAP
    for j in range(1, n + 1):
        h[0][j] = h[0][j - 1] + GAP
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            h[i][j] = max(h[i - 1][j - 1] + f(sa[i - 1], sb[j - 1]), h[i][j - 1] + GAP, h[i - 1][j] + GAP)
    return h[m][n]


def similarity(a: list[dict], b: list[dict], symmetric_flatten: bool = False, clamp: bool = True) -> float:
    ga, gb = to_genes(a), to_genes(b)

    def f(x: Any, y: Any) -> float:
        return match(x, y, symmetric_flatten)

    score = nw(ga, gb, f)
    lo = GAP * max(len(ga), len(gb))
    hi = max(nw(ga, ga, f), nw(gb, gb, f))
    s = (score - lo) / (hi - lo)
    return max(s, 0.0) if clamp else s
