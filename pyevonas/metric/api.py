"""The similarity API: pairwise similarity, matrices, nearest neighbours, alignments, diversity.

``pyevonas`` re-exports it (``pyevonas.similarity``, ``pyevonas.similarity_matrix``, ...).

Everything runs in the Rust core (``pyevonas._core``) on plain data: the schema compiles to a
score table once, a population compiles to gene codes over its distinct genes, and matrices
are computed in parallel with the GIL released. Nothing here imports torch.

Orientation: ``M[i, j]`` is the similarity of ``archs[i]`` as the first sequence (A) against
``others[j]`` (or ``archs[j]``) as the second (B). Under a symmetric schema (``default``)
``M == M.T``; under ``paper`` a few pairs differ, as in the authors' code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, overload

import numpy as np

from pyevonas import _core
from pyevonas.metric._args import check_threads, wants_float32
from pyevonas.metric._compiled import COMPILED_BY_NAME, KITS_BY_NAME, Arch, CompiledScoring, Gene, compiled, file_entry
from pyevonas.metric.graph_api import graph_nearest, graph_similarity, graph_similarity_matrix, is_graph_input, top_k
from pyevonas.metric.graphs import looks_like_graph
from pyevonas.metric.hybrid import any_hybrid, cell_layers, hybrid_matrix, hybrid_similarity, hybrid_traced, is_hybrid
from pyevonas.metric.schema import BUILTIN_SCHEMAS, Scoring

SchemaArg = str | Path | Scoring | dict[str, Any]
#: Which cells of a similarity matrix the diversity median runs over (see :func:`diversity`).
DiversityHow = Literal["offdiag", "upper", "full"]
DIVERSITY_KINDS: tuple[DiversityHow, ...] = get_args(DiversityHow)


def _cached(schema: SchemaArg) -> CompiledScoring | None:
    """The compiled form of a built-in name or a Scoring that has one, else None (then
    ``compiled`` does the rest): the per-call functions' fast lane, a dict lookup either way."""
    if schema.__class__ is str:
        return COMPILED_BY_NAME.get(schema)
    if schema.__class__ is Scoring:
        private = schema.__pydantic_private__
        return private.get("_compiled") if private else None
    return None


def _similarity(a: Arch, b: Arch, schema: SchemaArg = "default") -> float:
    """``similarity`` for what its Rust fast lane leaves to Python: text notation and odd values
    (the validating encoder), schema paths, dicts, a Scoring met for the first time, graph
    architectures (the graph edit distance; ``schema`` then names their edit costs), errors."""
    if looks_like_graph(a) or looks_like_graph(b):
        return graph_similarity(a, b, schema)  # type: ignore[arg-type]
    c = _cached(schema)
    if c is None:
        if isinstance(schema, (str, Path)) and schema not in BUILTIN_SCHEMAS:
            key, c = file_entry(schema)
            if key is not None and not cell_layers(c):
                _core.remember_file(key, c.kit)  # the next call with this file version stays in Rust
        else:
            c = compiled(schema)
    if cell_layers(c):
        # A schema with cell genes never gets the Rust fast lane (which would score cell genes
        # without their cells): every call comes here.
        if is_hybrid(c, a) or is_hybrid(c, b):
            return hybrid_similarity(c, a, b)
    elif schema.__class__ is Scoring:
        _core.remember_schema(schema, c.kit)
    return c.similarity(a, b)


if TYPE_CHECKING:

    def similarity(a: Arch, b: Arch, schema: SchemaArg = "default") -> float:
        """Similarity of two architectures, in [0, 1] (1 for identical sequences)."""
        ...

else:
    # The per-call entry point is native (see ``_core.similarity``, which carries the
    # docstring): a built-in name or a Scoring met before costs no Python frame at all.
    similarity = _core.similarity
    _core.install_similarity(KITS_BY_NAME, _similarity)


def similarity_matrix(
    archs: Sequence[Arch],
    others: Sequence[Arch] | None = None,
    schema: SchemaArg = "default",
    *,
    condensed: bool = False,
    dtype: Any = np.float64,
    n_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> np.ndarray:
    """Similarity matrix of a population (N x N), or of ``archs`` against ``others`` (N x M).

    Args:
        archs: the architectures of the rows (each the first sequence).
        others: the architectures of the columns; ``None`` for all pairs of ``archs``.
        schema: scoring schema (name, path or Scoring).
        condensed: return only the strict upper triangle as a 1-D array in the layout of
            ``scipy.spatial.distance.pdist`` (symmetric schemas only; N*(N-1)/2 values). Use this
            for large N: 20,000 architectures take 1.6 GB instead of 3.2 GB (0.8 GB as float32).
        dtype: ``numpy.float64`` (default, exact) or ``numpy.float32`` (halves memory; values are
            the float64 results rounded to the nearest float32, error <= 3e-8).
        n_threads: threads to use (default: ``PYEVONAS_NUM_THREADS`` or all cores).
        progress: called as ``progress(done, total)`` between blocks of work (the GIL is held
            there, so Ctrl-C is also noticed between blocks).

    Returns:
        float64 (or float32) array; the diagonal of an N x N matrix is exactly 1.

    Graph architectures (DAGs, NAS-Bench-201/101 cells, DARTS genotypes) are compared by graph
    edit distance (:func:`~pyevonas.metric.graph_api.graph_similarity_matrix`); ``schema`` then
    gives their edit costs (a chain schema's name: the built-in costs of their format).
    """
    if is_graph_input(archs) or (others is not None and is_graph_input(others)):
        return graph_similarity_matrix(
            archs,  # type: ignore[arg-type]
            others,  # type: ignore[arg-type]
            schema,
            condensed=condensed,
            dtype=dtype,
            n_threads=n_threads,
            progress=progress,
        )
    f32 = wants_float32(dtype)
    c = compiled(schema)
    n_threads = check_threads(n_threads)
    if others is not None and condensed:
        raise ValueError("condensed=True needs others=None (a condensed matrix is one population's upper triangle)")
    if any_hybrid(c, archs) or (others is not None and any_hybrid(c, others)):
        if condensed:
            raise ValueError("condensed=True is not available for chains with cell genes; use the full matrix")
        return hybrid_matrix(c, archs, others, float32=f32, progress=progress)
    split = None if others is None else len(archs)
    everything = archs if others is None else list(archs) + list(others)
    # Plain chromosomes: encoded, and small work computed, in one call.
    fast = _core.plain_matrix(
        c.table,
        c.encoder,
        everything if everything.__class__ is list else list(everything),
        split,
        float32=f32,
        condensed=condensed,
        n_threads=n_threads,
    )
    if fast.__class__ is np.ndarray:
        if progress is not None:
            progress(1, 1)
        return fast
    codes, params, offsets = fast if fast is not None else c.encode(everything, split)
    rows = int(offsets[split if split is not None else -1])
    cols = int(offsets[-1]) - (rows if split is not None else 0)
    if rows * cols <= _core.SMALL_CELLS:
        # Small work (a generation's 25 x 25): on this thread, no pool, no GIL release.
        out = _core.matrix_here(
            c.table, codes, params, offsets, split, float32=f32, condensed=condensed, n_threads=n_threads
        )
        if progress is not None:
            progress(1, 1)
        return out
    pop = _core.Population(c.table, codes, params, offsets)
    if condensed:
        return pop.condensed(float32=f32, n_threads=n_threads, progress=progress)
    return pop.matrix(split=split, float32=f32, n_threads=n_threads, progress=progress)


def score_matrix(
    archs: Sequence[Arch],
    others: Sequence[Arch] | None = None,
    schema: SchemaArg = "default",
    *,
    n_threads: int | None = None,
) -> np.ndarray:
    """Raw global alignment scores (before normalisation), N x N or N x M, float64."""
    c = compiled(schema)
    if others is None:
        return c.population(archs).scores(n_threads=check_threads(n_threads))
    return c.population(list(archs) + list(others), len(archs)).scores(
        split=len(archs), n_threads=check_threads(n_threads)
    )


def nearest(
    archs: Sequence[Arch],
    k: int,
    others: Sequence[Arch] | None = None,
    schema: SchemaArg = "default",
    *,
    n_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar architectures of each row, without building the full matrix.

    Args:
        archs: the query architectures (rows, each the first sequence).
        k: how many neighbours per row, capped at the number of candidates (``len(others)``,
            or ``len(archs) - 1``).
        others: the candidates; ``None`` searches ``archs`` itself, excluding each row's own index.
        schema: scoring schema.
        n_threads: threads to use.
        progress: called as ``progress(done, total)`` between blocks of work.

    Returns:
        ``(indices, similarities)``, both of shape (N, k) with k capped as above: int64 indices
        into ``others`` (or ``archs``), most similar first (ties by lower index).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if is_graph_input(archs) or (others is not None and is_graph_input(others)):
        return graph_nearest(
            archs,  # type: ignore[arg-type]
            k,
            others,  # type: ignore[arg-type]
            schema,
            n_threads=n_threads,
            progress=progress,
        )
    c = compiled(schema)
    if any_hybrid(c, archs) or (others is not None and any_hybrid(c, others)):
        return top_k(hybrid_matrix(c, archs, others, progress=progress), k, exclude_self=others is None)
    if others is None:
        return c.population(archs).nearest(k, n_threads=check_threads(n_threads), progress=progress)
    pop = c.population(list(archs) + list(others), len(archs))
    return pop.nearest(k, split=len(archs), n_threads=check_threads(n_threads), progress=progress)


@dataclass(frozen=True)
class Alignment:
    """A global alignment of two architectures.

    Attributes:
        pairs: one ``(i, j)`` per column: gene ``i`` of A against gene ``j`` of B, ``-1`` on
            the side that has a gap.
        column_scores: the score of each column (match score, or the gap score).
        score: the raw alignment score (the sum of ``column_scores``; may be below the lower bound).
        similarity: the normalised similarity in [0, 1].
        columns_a: the genes of A per column, ``None`` where A has a gap (built on first use).
        columns_b: the genes of B per column, ``None`` where B has a gap (built on first use).
    """

    flat_pairs: list[int] = field(repr=False)
    column_scores: list[float]
    score: float
    similarity: float
    _genes: Callable[[], tuple[list[Gene], list[Gene]]] = field(repr=False, compare=False)

    @classmethod
    def _of(cls, traced: tuple[list[int], list[float], float, float], genes: Callable[[], Any]) -> Alignment:
        # The dataclass __init__ of a frozen class sets each field through object.__setattr__,
        # which costs more than the alignment; this fills the same fields directly.
        al = object.__new__(cls)
        al.__dict__.update(
            flat_pairs=traced[0], column_scores=traced[1], score=traced[2], similarity=traced[3], _genes=genes
        )
        return al

    @cached_property
    def pairs(self) -> list[tuple[int, int]]:
        """One ``(i, j)`` per column, ``-1`` on the side that has a gap."""
        it = iter(self.flat_pairs)
        return list(zip(it, it, strict=True))

    @cached_property
    def _both(self) -> tuple[list[Gene], list[Gene]]:
        return self._genes()

    @cached_property
    def columns_a(self) -> list[Gene | None]:
        """The genes of A per column, ``None`` where A has a gap."""
        genes = self._both[0]
        return [genes[i] if i >= 0 else None for i in self.flat_pairs[0::2]]

    @cached_property
    def columns_b(self) -> list[Gene | None]:
        """The genes of B per column, ``None`` where B has a gap."""
        genes = self._both[1]
        return [genes[j] if j >= 0 else None for j in self.flat_pairs[1::2]]

    @property
    def aligned_a(self) -> str:
        """A's letters with ``-`` for gaps."""
        return "".join(g.letter if g else "-" for g in self.columns_a)

    @property
    def aligned_b(self) -> str:
        """B's letters with ``-`` for gaps."""
        return "".join(g.letter if g else "-" for g in self.columns_b)

    def __str__(self) -> str:
        marks = "".join(
            "|" if a and b and a.letter == b.letter else ("." if a and b else " ")
            for a, b in zip(self.columns_a, self.columns_b, strict=True)
        )
        return f"{self.aligned_a}\n{marks}\n{self.aligned_b}\nscore {self.score:g}, similarity {self.similarity:.3f}"


def align(a: Arch, b: Arch, schema: SchemaArg = "default") -> Alignment:
    """One optimal global alignment of two architectures, with its scores.

    The alignment is computed on the calling thread; the genes of its columns
    (``columns_a``, ``columns_b``) are built from ``a`` and ``b`` when first asked for.

    Example:
        >>> print(align("C(32,3,1) B L g F(64)", "C(32,3,1) L g F(64)").aligned_b)
        C-LgF
    """
    c = COMPILED_BY_NAME.get(schema) if schema.__class__ is str else _cached(schema)
    if c is None:
        c = compiled(schema)
    if is_hybrid(c, a) or is_hybrid(c, b):
        return Alignment._of(hybrid_traced(c, a, b), lambda: (c.genes(a), c.genes(b)))
    traced = c.traced_fast(a, b)
    if traced is None:
        traced = c.traced(a, b)
    return Alignment._of(traced, lambda: (c.genes(a), c.genes(b)))


def diversity(
    matrix: np.ndarray | Sequence[Sequence[float]], how: DiversityHow = "offdiag", *, condensed: bool = False
) -> float:
    """Median similarity of a population: 1 means no diversity, 0 maximal diversity.

    Args:
        matrix: an N x N similarity matrix, or with ``condensed=True`` the condensed upper
            triangle of a symmetric one (what ``similarity_matrix(..., condensed=True)`` returns).
        how: ``"offdiag"``: all off-diagonal cells (the paper's text, the default);
            ``"upper"``: the strict upper triangle (the paper's Table 3 and the authors' dashboard);
            ``"full"``: every cell, diagonal included (the authors' evolution loop).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if how not in DIVERSITY_KINDS:
        raise ValueError(f"how must be one of {', '.join(DIVERSITY_KINDS)}, got {how!r}")
    if condensed != (m.ndim == 1):
        if condensed:
            raise ValueError(f"condensed=True needs the 1-D upper triangle, got shape {m.shape}")
        raise ValueError(
            f"diversity needs a square matrix, got a 1-D array of {m.size} values; pass condensed=True "
            "if it is the upper triangle from similarity_matrix(..., condensed=True)"
        )
    if m.ndim == 1:
        n = int(round((1 + np.sqrt(1 + 8 * m.size)) / 2))
        if n * (n - 1) // 2 != m.size or n < 2:
            raise ValueError(f"a condensed matrix has N*(N-1)/2 values with N >= 2; got {m.size}")
        if how == "full":
            return float(np.median(np.concatenate([m, m, np.ones(n)])))
        return float(np.median(m))
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"diversity needs a square matrix, got shape {m.shape}")
    n = m.shape[0]
    if n < 2:
        raise ValueError("diversity needs at least 2 individuals")
    if how == "full":
        return float(np.median(m))
    if how == "upper":
        return float(np.median(m[np.triu_indices(n, k=1)]))
    return float(np.median(m[~np.eye(n, dtype=bool)]))


@overload
def round3(values: float) -> float: ...
@overload
def round3(values: np.ndarray | Sequence[Any]) -> float | np.ndarray: ...
def round3(values: Any) -> float | np.ndarray:
    """Round to 3 decimals exactly as the authors' code did (Python's ``round``, half-to-even on
    the exact double). ``numpy.round`` disagrees on about 1 value in 2,000 of real matrices.

    Accepts a float or an array; returns the same kind.
    """
    if np.ndim(values) == 0:
        return round(float(values), 3)
    a = np.asarray(values, dtype=np.float64)
    flat = np.fromiter((round(v, 3) for v in a.ravel().tolist()), dtype=np.float64, count=a.size)
    return flat.reshape(a.shape)


__all__ = [
    "DIVERSITY_KINDS",
    "Alignment",
    "DiversityHow",
    "SchemaArg",
    "align",
    "diversity",
    "nearest",
    "round3",
    "score_matrix",
    "similarity",
    "similarity_matrix",
]
