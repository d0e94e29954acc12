"""Variation operators of the search: parent selection, one-point crossover, mutation, breeding.

Every function is pure: it takes the parents and an explicit ``rng: np.random.Generator``,
returns new chromosomes, and never modifies its inputs. Every child returned is valid in the
search space (``space.check`` passes), which the original code did not guarantee.

A chromosome has three parts (docs/contracts.md)::

    [start gene] + features (>= 1) + [global pooling] + dense block (0..max_dense_layers)

Differences from the original operators (``genepool.py``), each a bug fix:

* crossover cuts anywhere in the feature block, so any two valid parents can be crossed (the
  original needed a plain or depthwise conv in both and barred the rest from reproduction);
* a cut pair is drawn among the pairs whose junction the rules allow and whose child keeps the
  feature-length limits, so there is no 100-try loop and no silently failed pair;
* the mutation rate is the probability that a gene is mutated (the original's ``randint(0,100)
  <= 20`` meant 21%, and 1% at rate 0), and a mutation is drawn among the operations that are
  possible at that gene, so a chosen gene really changes;
* the global pooling cannot be dropped, the start gene is never touched, and the genes after an
  insertion are still visited (the original skipped the tail after every insertion).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pyevonas.metric._compiled import Chromosome
from pyevonas.search.cell_operators import crossover_nodes, crossover_uniform, mutate_cell
from pyevonas.search.cells import AnySpace, CellSpace

if TYPE_CHECKING:
    from pyevonas.search.space import SearchSpace


#: Draws of a new pair of parents before a child falls back to a mutated copy of parent 1.
MAX_PAIR_ATTEMPTS = 10
#: Re-draws of a gene's parameters looking for a value that differs from the current one.
MAX_CHANGE_ATTEMPTS = 16
#: Children bred again, at most, in place of one that ``breed``'s ``accept`` refuses (near duplicates).
MAX_RESAMPLE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Child:
    """One bred chromosome and how it came about.

    Attributes:
        chromosome: the child (valid in the space).
        parents: indices into the ranked parent list (one index for a mutated copy).
        crossover: ``{"cut1", "cut2", "tail"}``: parent 1 kept up to gene ``cut1``, parent 2 gave
            its features from gene ``cut2`` on, the pooling and dense block came from ``tail``
            (1 or 2); in a cell space ``{"mask"}``: the edges (NB201) or nodes (dag) taken from
            parent 2, as bits; None when no crossover happened.
        mutations: one line per applied mutation, e.g. ``"remove 4 BN_2D"``.
        resampled: children refused (by ``breed``'s ``accept``) and bred again before this one.
    """

    chromosome: Chromosome
    parents: tuple[int, ...]
    crossover: dict[str, int] | None = None
    mutations: tuple[str, ...] = field(default_factory=tuple)
    resampled: int = 0


# ---------------------------------------------------------------------- selection
def select_top_k(fitness: Sequence[float | None], k: int, budgets: Sequence[int] | None = None) -> list[int]:
    """Indices of the best ``k`` individuals, best first (truncation selection).

    Individuals without a fitness (failed, oversized) are not eligible. Ties keep population
    order, so the result is deterministic.

    Args:
        fitness: one value per individual, None where it has none.
        k: how many to keep.
        budgets: the training epochs behind each fitness (successive halving); a larger budget
            ranks first, fitness decides between equal budgets. None: fitness alone.

    Returns:
        Up to ``k`` indices into ``fitness``.
    """
    eligible = [i for i, f in enumerate(fitness) if f is not None and np.isfinite(f)]
    if budgets is None:
        eligible.sort(key=lambda i: -float(fitness[i]))  # type: ignore[arg-type]  # sort is stable
    else:
        eligible.sort(key=lambda i: (-budgets[i], -float(fitness[i])))  # type: ignore[arg-type]
    return eligible[:k]


def rank_weights(n: int) -> np.ndarray:
    """Rank-linear selection weights of ``n`` ranked parents: ``[n, n-1, ..., 1] / sum``.

    For n = 5 this is the original's [5, 4, 3, 2, 1] / 15.
    """
    if n < 1:
        raise ValueError("rank_weights needs at least one parent")
    w: np.ndarray = np.arange(n, 0, -1, dtype=np.float64)
    return w / float(w.sum())


def select_parents(n: int, rng: np.random.Generator) -> tuple[int, int]:
    """Draw two different parents among ``n`` ranked ones, rank-weighted.

    Parent 1 is drawn with :func:`rank_weights`; parent 2 with the same weights conditioned on
    differing from parent 1. That is the distribution of the original's "redraw until it differs"
    loop, computed directly, so it cannot loop forever.

    Args:
        n: number of ranked parents (best first), at least 2.
        rng: the generator.

    Returns:
        ``(i, j)`` with ``i != j``.
    """
    if n < 2:
        raise ValueError("select_parents needs at least two parents")
    w = rank_weights(n)
    i = int(rng.choice(n, p=w))
    w2 = w.copy()
    w2[i] = 0.0
    j = int(rng.choice(n, p=w2 / w2.sum()))
    return i, j


# ---------------------------------------------------------------------- structure helpers
def feature_span(chrom: Chromosome, space: SearchSpace) -> tuple[int, int]:
    """``(first, pool)``: index of the first feature gene and of the global pooling gene.

    Raises:
        ValueError: the chromosome has no global pooling gene.
    """
    first = 1 if chrom and chrom[0].get("layer") == space.start_layer else 0
    pooling = set(space.pooling_layers)
    for idx in range(first, len(chrom)):
        if chrom[idx].get("layer") in pooling:
            return first, idx
    raise ValueError("chromosome has no global pooling gene")


def _copy(chrom: Sequence[dict[str, Any]]) -> Chromosome:
    return [dict(gene) for gene in chrom]


# ---------------------------------------------------------------------- crossover
def crossover_one_point(
    parent1: Chromosome,
    parent2: Chromosome,
    space: SearchSpace,
    rng: np.random.Generator,
) -> tuple[Chromosome, dict[str, int]] | None:
    """One-point crossover of two variable-length parents.

    The child is parent 1 up to and including feature gene ``cut1``, then parent 2's features
    from gene ``cut2`` to its pooling, then the pooling and dense block of parent 1 or parent 2
    (probability 1/2 each, as the original). Each parent gives at least one feature gene. The
    pair ``(cut1, cut2)`` is drawn uniformly among the pairs whose junction the rules allow
    (``parent2[cut2]`` may follow ``parent1[cut1]``) and whose child keeps the space's feature-length
    limits; the whole child is then checked against the space.

    Args:
        parent1: first parent (valid).
        parent2: second parent (valid).
        space: the search space.
        rng: the generator.

    Returns:
        ``(child, {"cut1", "cut2", "tail"})``, or None when no cut pair yields a valid child.
    """
    f1, e1 = feature_span(parent1, space)
    f2, e2 = feature_span(parent2, space)
    tail_from = 1 if rng.random() < 0.5 else 2
    tail = parent1[e1:] if tail_from == 1 else parent2[e2:]
    lo = space.min_feature_layers
    hi = space.max_feature_layers if space.max_feature_layers is not None else len(parent1) + len(parent2)
    options: list[tuple[int, int]] = []
    for cut1 in range(f1, e1):
        allowed = set(space.successors(str(parent1[cut1]["layer"])))
        kept = cut1 - f1 + 1
        for cut2 in range(f2, e2):
            if parent2[cut2]["layer"] in allowed and lo <= kept + (e2 - cut2) <= hi:
                options.append((cut1, cut2))
    if not options:
        return None
    # Try the admissible pairs in random order; the first whose child passes the full check wins,
    # which is a uniform draw among the valid ones.
    for k in rng.permutation(len(options)):
        cut1, cut2 = options[int(k)]
        child = _copy(parent1[: cut1 + 1]) + _copy(parent2[cut2:e2]) + _copy(tail)
        if space.is_valid(child):
            return child, {"cut1": cut1, "cut2": cut2, "tail": tail_from}
    return None


# ---------------------------------------------------------------------- mutation
def mutate(
    chrom: Chromosome, space: SearchSpace, rng: np.random.Generator, p_mutation: float
) -> tuple[Chromosome, list[str]]:
    """Mutate each gene position with probability ``p_mutation``.

    A chosen gene gets one operation, drawn uniformly among those possible there:

    * ``remove`` the gene (never the start gene nor the global pooling),
    * ``add`` a fresh random gene right after it (the new gene is not mutated again),
    * ``change`` its parameters to a fresh draw that differs from the current ones.

    An operation is possible when the mutated chromosome is valid in the space (rules and length
    limits). When none is possible the gene stays as it is.

    Args:
        chrom: a valid chromosome (not modified).
        space: the search space.
        rng: the generator.
        p_mutation: per-gene mutation probability in [0, 1].

    Returns:
        ``(mutant, log)``: the new chromosome and one line per applied mutation.
    """
    if not 0.0 <= p_mutation <= 1.0:
        raise ValueError(f"p_mutation must be in [0, 1], got {p_mutation}")
    genes = _copy(chrom)
    log: list[str] = []
    pooling = set(space.pooling_layers)
    i = 0
    while i < len(genes):
        if rng.random() >= p_mutation:
            i += 1
            continue
        applied: str | None = None
        for op in rng.permutation(["remove", "add", "change"]):
            if op == "remove":
                applied = _try_remove(genes, i, space, pooling)
            elif op == "add":
                applied = _try_add(genes, i, space, rng)
            else:
                applied = _try_change(genes, i, space, rng)
            if applied is not None:
                break
        if applied is None:
            i += 1
            continue
        log.append(applied)
        if applied.startswith("remove"):
            continue  # the next gene moved into position i and gets its own chance
        i += 2 if applied.startswith("add") else 1
    return genes, log


def _try_remove(genes: Chromosome, i: int, space: SearchSpace, pooling: set[str]) -> str | None:
    layer = str(genes[i]["layer"])
    if (i == 0 and layer == space.start_layer) or layer in pooling:
        return None
    candidate = genes[:i] + genes[i + 1 :]
    if not space.is_valid(candidate):
        return None
    del genes[i]
    return f"remove {i} {layer}"


def _try_add(genes: Chromosome, i: int, space: SearchSpace, rng: np.random.Generator) -> str | None:
    nxt = str(genes[i + 1]["layer"]) if i + 1 < len(genes) else None
    layers = list(space.successors(str(genes[i]["layer"])))
    for k in rng.permutation(len(layers)):
        layer = layers[int(k)]
        # Cheap pre-filter by the junction rule before the full check of the chromosome.
        if nxt is not None and not space.can_follow(layer, nxt):
            continue
        gene = dict(space.random_gene(layer, rng))
        candidate = genes[: i + 1] + [gene] + genes[i + 1 :]
        if space.is_valid(candidate):
            genes.insert(i + 1, gene)
            return f"add {i + 1} {layer}"
    return None


def _try_change(genes: Chromosome, i: int, space: SearchSpace, rng: np.random.Generator) -> str | None:
    old = genes[i]
    layer = str(old["layer"])
    if i == 0 and layer == space.start_layer:
        return None
    if not any(len(values) > 1 for values in space.param_values(layer).values()):
        return None  # nothing to change in a gene without free parameters (BN, ReLU, GAP...)
    for _ in range(MAX_CHANGE_ATTEMPTS):
        new = dict(space.random_gene(layer, rng))
        if new != old:
            candidate = genes[:i] + [new] + genes[i + 1 :]
            if space.is_valid(candidate):
                genes[i] = new
                changed = sorted(k for k in new if new.get(k) != old.get(k))
                return f"change {i} {layer} {','.join(changed)}"
            return None
    return None


# ---------------------------------------------------------------------- breeding
def breed(
    parents: Sequence[Chromosome],
    n_children: int,
    space: AnySpace,
    rng: np.random.Generator,
    p_mutation: float,
    accept: Callable[[Chromosome], bool] | None = None,
) -> list[Child]:
    """Breed ``n_children`` children from ranked parents: crossover, then mutation.

    Each child gets a fresh rank-weighted pair (:func:`select_parents`). When a pair cannot be
    crossed, a new pair is drawn, up to ``MAX_PAIR_ATTEMPTS`` times; after that, and whenever there
    is only one parent, the child is a mutated copy of the first parent drawn. In a cell space
    (:class:`~pyevonas.search.cells.CellSpace`) the parents' cells are crossed and mutated
    (:mod:`pyevonas.search.cell_operators`) and the child is the skeleton around the new cell.

    Args:
        parents: the selected parents, best first (at least one).
        n_children: how many children to make.
        space: the search space.
        rng: the generator.
        p_mutation: per-gene mutation probability.
        accept: a child it refuses is bred again, up to ``MAX_RESAMPLE_ATTEMPTS`` times (then the
            last one is kept); ``--near-duplicates resample`` refuses near duplicates of evaluated
            architectures. None accepts every child (and draws exactly as without it).

    Returns:
        ``n_children`` children, each valid in ``space``.
    """
    if not parents:
        raise ValueError("breed needs at least one parent")
    children: list[Child] = []
    for _ in range(n_children):
        child = _breed_one(parents, space, rng, p_mutation)
        refused = 0
        while accept is not None and refused < MAX_RESAMPLE_ATTEMPTS and not accept(child.chromosome):
            refused += 1
            child = _breed_one(parents, space, rng, p_mutation)
        children.append(replace(child, resampled=refused) if refused else child)
    return children


def _breed_one(parents: Sequence[Chromosome], space: AnySpace, rng: np.random.Generator, p_mutation: float) -> Child:
    if isinstance(space, CellSpace):
        return _breed_cell(parents, space, rng, p_mutation)
    crossed: tuple[Chromosome, dict[str, int]] | None = None
    pair: tuple[int, ...] = (0,)
    if len(parents) >= 2:
        for _attempt in range(MAX_PAIR_ATTEMPTS):
            i, j = select_parents(len(parents), rng)
            crossed = crossover_one_point(parents[i], parents[j], space, rng)
            pair = (i, j) if crossed is not None else (i,)
            if crossed is not None:
                break
    base = crossed[0] if crossed is not None else _copy(parents[pair[0]])
    mutant, log = mutate(base, space, rng, p_mutation)
    # The operators keep every child valid by construction; check anyway so that a rule the
    # operators do not know about surfaces here, naming the gene, not later in training.
    space.check(mutant)
    return Child(
        chromosome=mutant,
        parents=pair,
        crossover=crossed[1] if crossed is not None else None,
        mutations=tuple(log),
    )


def _breed_cell(parents: Sequence[Chromosome], space: CellSpace, rng: np.random.Generator, p_mutation: float) -> Child:
    """One child of a cell space: the parents' cells crossed (NB201: uniform over edges; dag: node
    exchange), mutated, and put into the skeleton."""
    cells = [space.cell_of(p) for p in parents]
    crossed: tuple[Any, dict[str, int]] | None = None
    pair: tuple[int, ...] = (0,)
    if len(parents) >= 2:
        for _attempt in range(MAX_PAIR_ATTEMPTS):
            i, j = select_parents(len(parents), rng)
            if space.format == "nb201":
                crossed = crossover_uniform(cells[i], cells[j], space, rng)
            else:
                crossed = crossover_nodes(cells[i], cells[j], space, rng)
            pair = (i, j) if crossed is not None else (i,)
            if crossed is not None:
                break
    base = crossed[0] if crossed is not None else cells[pair[0]]
    mutant, log = mutate_cell(base, space, rng, p_mutation)
    chromosome = space.chromosome(mutant)
    space.check(chromosome)
    return Child(
        chromosome=chromosome,
        parents=pair,
        crossover=crossed[1] if crossed is not None else None,
        mutations=tuple(log),
    )


__all__ = [
    "MAX_CHANGE_ATTEMPTS",
    "MAX_PAIR_ATTEMPTS",
    "MAX_RESAMPLE_ATTEMPTS",
    "Child",
    "breed",
    "crossover_one_point",
    "feature_span",
    "mutate",
    "rank_weights",
    "select_parents",
    "select_top_k",
]
