"""Hybrid chains: chains whose genes may be cells, aligned as chains, each cell gene's match
score taken from the graph similarity of the two cells.

This is the paper's proposed extension: sequence alignment for the macro skeleton (stem, cells,
pooling, dense layers) and graph edit distance inside the cells. A scoring schema declares a
cell gene type with ``"cell": true``; a layer dict of that type holds its cell under ``"cell"``
(anything :func:`~pyevonas.metric.graphs.parse_graph` reads). Two cell genes of types X and Y
score

    mismatch(X, Y) + (base(X, Y) - mismatch(X, Y)) * sim(cell_a, cell_b)

where ``base(X, Y)`` is what the schema's rules score the pair (the score of two identical
cells), ``mismatch(X, Y)`` the schema's score of two gene types without a rule (its
``pair_mismatch`` setting), and ``sim`` the graph similarity under the schema's ``graph`` costs
(or the cells' format's built-in costs). Every other pair scores as in a plain chain; the
alignment, gaps and normalisation are the schema's, so a hybrid chain without cells scores
exactly as the chain does.

Hybrid pairs go through a dense substitution matrix per pair (on the calling thread), not the
lane kernels: fine for populations of hundreds, not for hundreds of thousands of pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyevonas.errors import EncodingError
from pyevonas.metric._compiled import Arch, CompiledScoring, Gene
from pyevonas.metric.graph_api import costs_for, graph_similarity_matrix
from pyevonas.metric.graphs import GraphArch, parse_graph


def cell_layers(c: CompiledScoring) -> frozenset[str]:
    """The layer names of the schema's cell gene types (empty for a schema without them)."""
    return frozenset(g.layer for g in c.scoring.genes if g.cell)


def is_hybrid(c: CompiledScoring, arch: Any) -> bool:
    """True when ``arch`` is a chromosome holding at least one cell gene of the schema."""
    layers = cell_layers(c)
    if not layers or isinstance(arch, str | Mapping) or not isinstance(arch, Sequence):
        return False
    return any(isinstance(layer, Mapping) and layer.get("layer") in layers for layer in arch)


def any_hybrid(c: CompiledScoring, archs: Sequence[Any]) -> bool:
    """True when any architecture of ``archs`` is a hybrid chain (cheap for schemas without cells)."""
    return bool(cell_layers(c)) and any(is_hybrid(c, a) for a in archs)


def cell_score_range(c: CompiledScoring, x: int, y: int) -> tuple[float, float]:
    """(score of two completely different cells, score of two identical ones) for cell gene
    types ``x`` and ``y``: the schema's mismatch of the pair and its rule's base."""
    return _pair_mismatch(c, x, y), float(c.table.substitutions(*_one_gene(c, x), *_one_gene(c, y))[0, 0])


def _pair_mismatch(c: CompiledScoring, x: int, y: int) -> float:
    """The schema's score of gene types ``x`` and ``y`` as a pair without a rule."""
    genes = c.scoring.genes
    return genes[x].mismatch if c.scoring.pair_mismatch == "first" else min(genes[x].mismatch, genes[y].mismatch)


def _one_gene(c: CompiledScoring, code: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array([code], dtype=np.uint32), np.full((1, len(c.param_names)), np.nan)


def cell_columns(
    c: CompiledScoring, pairs: Sequence[int], column_scores: Sequence[float], a: Arch, b: Arch
) -> list[dict[str, Any]]:
    """The columns of a traced alignment that match two cell genes: column, gene indices,
    letters, score and the cells' similarity (``(score - lo) / (hi - lo)`` of
    :func:`cell_score_range`)."""
    if not cell_layers(c):
        return []
    ga, gb = c.genes(a), c.genes(b)
    out = []
    for k, score in enumerate(column_scores):
        i, j = pairs[2 * k], pairs[2 * k + 1]
        if i < 0 or j < 0:
            continue
        x, y = c.code_of[ga[i].letter], c.code_of[gb[j].letter]
        if not (c.scoring.genes[x].cell and c.scoring.genes[y].cell):
            continue
        lo, hi = cell_score_range(c, x, y)
        sim = 1.0 if hi == lo else (score - lo) / (hi - lo)
        out.append(
            {
                "column": k,
                "a": i,
                "b": j,
                "letters": ga[i].letter + gb[j].letter,
                "score": score,
                "cell_similarity": sim,
            }
        )
    return out


@dataclass(frozen=True)
class HybridSeq:
    """One chain encoded: its genes' codes and parameter rows, and its cells by gene position."""

    codes: np.ndarray
    params: np.ndarray
    cells: dict[int, GraphArch]


def encode(c: CompiledScoring, arch: Arch, where: str) -> HybridSeq:
    """Encode a chain (hybrid or not) with its cells read (EncodingError naming the layer)."""
    if isinstance(arch, str) or not is_hybrid(c, arch):
        try:
            codes, params = c.encoded_one(arch, 0)
        except EncodingError as exc:
            raise EncodingError(f"{where}: {str(exc).removeprefix('architecture 0: ')}") from None
        return HybridSeq(codes, params, {})
    layers = cell_layers(c)
    genes: list[Gene] = []
    cells: dict[int, GraphArch] = {}
    for i, layer in enumerate(arch):
        try:
            gene = c.gene_of(layer, i)
        except EncodingError as exc:
            raise EncodingError(f"{where}: {exc}") from None
        if gene is None:
            continue
        if gene.layer in layers:
            if "cell" not in layer:
                raise EncodingError(f"{where}: layer {i} ({gene.layer}): a cell gene holds its cell under 'cell'")
            cells[len(genes)] = parse_graph(layer["cell"], where=f"{where}: layer {i} ({gene.layer}): cell")
        genes.append(gene)
    if not genes:
        raise EncodingError(f"{where}: empty architecture: no gene to align")
    codes, params = c.encode_genes(genes)
    return HybridSeq(codes, params, cells)


class HybridScorer:
    """Substitution matrices of hybrid chains under one compiled schema, with the cell
    similarities of every cell met computed once, in one graph-similarity matrix."""

    def __init__(self, c: CompiledScoring, seqs: Sequence[HybridSeq]) -> None:
        self.c = c
        scoring = c.scoring
        self.index: dict[tuple[int, int], int] = {}
        cells: list[GraphArch] = []
        for s, seq in enumerate(seqs):
            for pos, cell in seq.cells.items():
                self.index[(s, pos)] = len(cells)
                cells.append(cell)
        self.sims = graph_similarity_matrix(cells, None, costs_for(scoring, cells)) if cells else np.zeros((0, 0))
        self.seqs = seqs

    def substitutions(self, a: int, b: int) -> np.ndarray:
        """The substitution matrix of chain ``a`` (rows) against chain ``b`` (columns)."""
        sa, sb = self.seqs[a], self.seqs[b]
        sub = self.c.table.substitutions(sa.codes, sa.params, sb.codes, sb.params)
        for i in sa.cells:
            for j in sb.cells:
                lo = _pair_mismatch(self.c, int(sa.codes[i]), int(sb.codes[j]))
                sim = self.sims[self.index[(a, i)], self.index[(b, j)]]
                sub[i, j] = lo + (sub[i, j] - lo) * sim  # sub[i, j] was the rule's base
        return sub

    def self_score(self, a: int) -> float:
        return float(self.c.table.align_dense(self.substitutions(a, a), False)[2])

    def traced(self, a: int, b: int) -> tuple[list[int], list[float], float, float]:
        """(pairs flattened with -1 for gaps, column scores, raw score, similarity) of a pair."""
        pairs, columns, score = self.c.table.align_dense(self.substitutions(a, b), True)
        assert pairs is not None and columns is not None
        return pairs, columns, score, self.similarity_of(a, b, score)

    def similarity_of(self, a: int, b: int, score: float | None = None, selfs: Sequence[float] | None = None) -> float:
        """The similarity of chains ``a`` and ``b`` (their raw score computed unless given)."""
        if score is None:
            score = float(self.c.table.align_dense(self.substitutions(a, b), False)[2])
        sa, sb = (selfs[a], selfs[b]) if selfs is not None else (self.self_score(a), self.self_score(b))
        return float(self.c.table.normalise(score, len(self.seqs[a].codes), len(self.seqs[b].codes), sa, sb))


def hybrid_traced(c: CompiledScoring, a: Arch, b: Arch) -> tuple[list[int], list[float], float, float]:
    """The traced alignment of two chains of which at least one is hybrid."""
    return HybridScorer(c, [encode(c, a, "architecture 0"), encode(c, b, "architecture 1")]).traced(0, 1)


def hybrid_similarity(c: CompiledScoring, a: Arch, b: Arch) -> float:
    """The similarity of two chains of which at least one is hybrid."""
    return HybridScorer(c, [encode(c, a, "architecture 0"), encode(c, b, "architecture 1")]).similarity_of(0, 1)


def hybrid_matrix(
    c: CompiledScoring,
    archs: Sequence[Arch],
    others: Sequence[Arch] | None,
    *,
    float32: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> np.ndarray:
    """The similarity matrix of chains some of which are hybrid (rows ``archs``, columns
    ``others`` or ``archs``); the diagonal of all against all is exactly 1."""
    seqs = [encode(c, a, f"architecture {i}") for i, a in enumerate(archs)]
    if others is not None:
        seqs += [encode(c, a, f"others[{i}]") for i, a in enumerate(others)]
    scorer = HybridScorer(c, seqs)
    selfs = [scorer.self_score(k) for k in range(len(seqs))]
    n = len(archs)
    cols = range(n) if others is None else range(n, len(seqs))
    out = np.empty((n, len(cols)), dtype=np.float64)
    for i in range(n):
        for col, j in enumerate(cols):
            out[i, col] = 1.0 if others is None and i == j else scorer.similarity_of(i, j, selfs=selfs)
        if progress is not None:
            progress(i + 1, n)
    return out.astype(np.float32) if float32 else out


__all__ = [
    "HybridScorer",
    "HybridSeq",
    "any_hybrid",
    "cell_columns",
    "cell_layers",
    "cell_score_range",
    "encode",
    "hybrid_matrix",
    "hybrid_similarity",
    "hybrid_traced",
    "is_hybrid",
]
