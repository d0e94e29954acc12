"""DEAP adapters: novelty selection against an Archive, fitness sharing on ``1 - similarity``, and
the search space's operators in DEAP's in-place form.

A DEAP individual here is a chromosome: ``creator.create("Individual", list, fitness=...)`` filled
with gene dicts (text notation works as well for the selections). Selections follow DEAP's
signature ``select(individuals, k, ...) -> list`` so that ``toolbox.register("select",
select_shared, sigma=0.3)`` plugs them into ``eaMuPlusLambda`` and friends; the operators follow
``mate(ind1, ind2) -> (ind1, ind2)`` and ``mutate(ind) -> (ind,)``, changing the individuals in
place as DEAP's loops expect (they delete the fitness afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import deap  # noqa: F401  # nothing of it is needed at import time, but the adapter is its
import numpy as np

from pyevonas.integrations._common import as_arch
from pyevonas.metric import Archive, similarity_matrix
from pyevonas.metric.api import SchemaArg
from pyevonas.search.operators import crossover_one_point, mutate
from pyevonas.search.space import SearchSpace


def novelty(individuals: Sequence[Any], archive: Archive, k: int = 15) -> np.ndarray:
    """Each individual's novelty: the mean of ``1 - similarity`` over its k nearest neighbours
    among the archive's members and the *other* individuals (Lehman and Stanley's novelty).

    With fewer than k neighbours the mean is over all of them; with none at all it is 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    archs = [as_arch(ind) for ind in individuals]
    if not archs:
        return np.zeros(0)
    among = similarity_matrix(archs, schema=archive.schema)
    np.fill_diagonal(among, -np.inf)  # never one's own neighbour
    sims = np.hstack([archive.similarity_matrix(archs), among]) if len(archive) else among
    n_neighbours = min(k, sims.shape[1])
    top = -np.sort(-sims, axis=1)[:, :n_neighbours]
    valid = np.isfinite(top)
    dist = np.where(valid, 1.0 - top, 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    return np.where(count > 0, dist / np.maximum(count, 1), 1.0)


def select_novelty(
    individuals: Sequence[Any],
    k: int,
    archive: Archive,
    n_neighbours: int = 15,
    add_above: float | None = None,
) -> list[Any]:
    """The k most novel individuals (ties by order), each with its ``novelty`` attribute set.

    Args:
        individuals: the candidates (a population, or parents and offspring together).
        k: how many to select.
        archive: the archive of earlier architectures; it is queried, and added to when
            ``add_above`` is set.
        n_neighbours: the k of the k-nearest-neighbour novelty.
        add_above: add every selected individual whose novelty is at or above this to the
            archive (None adds nothing).
    """
    scores = novelty(individuals, archive, n_neighbours)
    order = np.argsort(-scores, kind="stable")[:k]
    chosen = [individuals[int(i)] for i in order]
    for ind, score in zip(individuals, scores, strict=True):
        _set_attr(ind, "novelty", float(score))
    if add_above is not None:
        new = [as_arch(individuals[int(i)]) for i in order if scores[int(i)] >= add_above]
        if new:
            archive.add(new)
    return chosen


def shared_fitness(
    individuals: Sequence[Any], sigma: float, alpha: float = 1.0, schema: SchemaArg = "default"
) -> np.ndarray:
    """Fitness sharing (Goldberg and Richardson): each individual's first fitness value divided by
    its niche count ``sum_j sh(d_ij)``, with ``d = 1 - similarity`` and
    ``sh(d) = 1 - (d / sigma) ** alpha`` for ``d < sigma``, else 0 (its own term is 1).

    Meant for a positive fitness that is maximised (``weights=(1.0,)``).
    """
    if not 0.0 < sigma <= 1.0:
        raise ValueError(f"sigma must be in (0, 1], got {sigma}")
    values = np.array([ind.fitness.values[0] for ind in individuals], dtype=float)
    if len(values) == 0:
        return values
    weights = individuals[0].fitness.weights
    if weights[0] <= 0:
        raise ValueError("fitness sharing needs a maximised fitness (a positive first weight)")
    d = 1.0 - similarity_matrix([as_arch(ind) for ind in individuals], schema=schema)
    sh = np.where(d < sigma, 1.0 - (np.clip(d, 0.0, None) / sigma) ** alpha, 0.0)
    return np.asarray(values / sh.sum(axis=1), dtype=float)


def select_shared(
    individuals: Sequence[Any], k: int, sigma: float = 0.3, alpha: float = 1.0, schema: SchemaArg = "default"
) -> list[Any]:
    """The k individuals of highest shared fitness (:func:`shared_fitness`), each with its
    ``shared_fitness`` attribute set; ties by order."""
    shared = shared_fitness(individuals, sigma, alpha, schema)
    for ind, value in zip(individuals, shared, strict=True):
        _set_attr(ind, "shared_fitness", float(value))
    return [individuals[int(i)] for i in np.argsort(-shared, kind="stable")[:k]]


def crossover_in_place(ind1: Any, ind2: Any, space: SearchSpace, rng: np.random.Generator) -> tuple[Any, Any]:
    """DEAP's ``mate``: ``ind1`` becomes the one-point child of (ind1, ind2), ``ind2`` that of
    (ind2, ind1); a pair that cannot be crossed is left as it is."""
    first, second = [dict(g) for g in ind1], [dict(g) for g in ind2]
    one = crossover_one_point(first, second, space, rng)
    two = crossover_one_point(second, first, space, rng)
    if one is not None:
        ind1[:] = one[0]
    if two is not None:
        ind2[:] = two[0]
    return ind1, ind2


def mutate_in_place(ind: Any, space: SearchSpace, rng: np.random.Generator, p_mutation: float = 0.1) -> tuple[Any]:
    """DEAP's ``mutate``: pyevonas's per-gene mutation, valid in the space, written into ``ind``."""
    ind[:] = mutate([dict(g) for g in ind], space, rng, p_mutation)[0]
    return (ind,)


def _set_attr(ind: Any, name: str, value: float) -> None:
    try:
        setattr(ind, name, value)
    except AttributeError:  # a plain str or list has no attributes: nothing to record on
        pass


__all__ = [
    "crossover_in_place",
    "mutate_in_place",
    "novelty",
    "select_novelty",
    "select_shared",
    "shared_fitness",
]
