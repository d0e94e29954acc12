"""pymoo adapters: near-duplicate elimination, a clearing survival, and the chain search space as pymoo operators.

A pymoo individual here holds one architecture in ``X[0]`` (an object array of length 1, as in
pymoo's own example with string variables): a chromosome (list of gene dicts) or its text notation.

- :class:`SimilarityElimination` is an ``ElementwiseDuplicateElimination``: two architectures at
  or above ``threshold`` similarity are duplicates. A whole batch is compared in one
  ``similarity_matrix`` call rather than pair by pair; with ``remember=True`` it also rejects a
  candidate that is a near-duplicate of anything it let through before (so that nothing evaluated
  twice, even after its twin left the population).
- :class:`SimilarityClearing` is a single-objective ``Survival`` that keeps the best of each
  niche first: an individual within ``threshold`` of a better survivor is cleared and only fills
  the places left over (clearing, Petrowski 1996, on similarity instead of a distance).
- :class:`ArchitectureProblem`, :class:`SpaceSampling`, :class:`SpaceCrossover` and
  :class:`SpaceMutation` put a :class:`~pyevonas.search.space.SearchSpace` (the paper's by default)
  into a pymoo GA, with pyevonas's own one-point crossover and mutation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import ElementwiseProblem
from pymoo.core.sampling import Sampling
from pymoo.core.survival import Survival

from pyevonas.integrations._common import as_arch, check_threshold
from pyevonas.metric import Arch, Archive, Chromosome, similarity, similarity_matrix
from pyevonas.metric.api import SchemaArg
from pyevonas.search.operators import crossover_one_point, mutate
from pyevonas.search.space import SearchSpace


def architecture_of(individual: Any) -> Arch:
    """The architecture a pymoo individual holds (``individual.X[0]``)."""
    return as_arch(individual.X[0])


def _rng(kwargs: dict[str, Any], own: np.random.Generator) -> np.random.Generator:
    """pymoo's generator when the running version passes one (``random_state``, seeded by
    ``minimize(..., seed=)``), else the operator's own (seeded by its ``seed``)."""
    given = kwargs.get("random_state")
    return given if isinstance(given, np.random.Generator) else own


class SimilarityElimination(ElementwiseDuplicateElimination):  # type: ignore[misc]
    """Duplicates are architectures whose similarity is at or above ``threshold``.

    Args:
        threshold: in (0, 1]; 1.0 removes identical architectures only.
        schema: the scoring schema (a built-in name, a file, or a :class:`~pyevonas.Scoring`).
        remember: also reject candidates similar to any architecture this object let through
            before (kept in an :class:`~pyevonas.Archive`), not only to the population at hand.
    """

    def __init__(self, threshold: float = 1.0, schema: SchemaArg = "default", remember: bool = False) -> None:
        super().__init__()
        self.threshold = check_threshold(threshold)
        self.schema = schema
        self.archive: Archive | None = Archive(schema) if remember else None

    def is_equal(self, a: Any, b: Any) -> bool:
        return similarity(architecture_of(a), architecture_of(b), self.schema) >= self.threshold

    def __deepcopy__(self, memo: dict[int, Any]) -> SimilarityElimination:
        # pymoo's minimize() deep-copies the algorithm; an Archive holds compiled Rust state, so
        # the copy gets an archive of its own with the same members.
        twin = copy.copy(self)
        memo[id(self)] = twin
        for key, value in self.__dict__.items():
            if key != "archive":
                setattr(twin, key, copy.deepcopy(value, memo))
        if self.archive is not None:
            twin.archive = Archive(self.schema, list(self.archive))
        return twin

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        # The same answer as pymoo's pair loop (against itself, an individual is a duplicate
        # when a later one is equal to it), from one matrix instead of n^2 calls.
        archs = [architecture_of(ind) for ind in pop]
        if other is None:
            dup = similarity_matrix(archs, schema=self.schema) >= self.threshold
            is_duplicate |= np.triu(dup, k=1).any(axis=1)
        else:
            others = [architecture_of(ind) for ind in other]
            is_duplicate |= (similarity_matrix(archs, others=others, schema=self.schema) >= self.threshold).any(axis=1)
        return is_duplicate

    def do(self, pop: Any, *args: Any, return_indices: bool = False, to_itself: bool = True) -> Any:
        kept = super().do(pop, *args, return_indices=False, to_itself=to_itself)
        if self.archive is not None and len(kept) > 0:
            archs = [architecture_of(ind) for ind in kept]
            if len(self.archive) > 0:
                _, nearest = self.archive.nearest(archs, 1)
                fresh = nearest[:, 0] < self.threshold
                kept = kept[fresh]
                archs = [a for a, f in zip(archs, fresh, strict=True) if f]
            if archs:
                self.archive.add(archs)
        if not return_indices:
            return kept
        kept_ids = {id(ind) for ind in kept}
        no_duplicate = np.array([i for i, ind in enumerate(pop) if id(ind) in kept_ids], dtype=int)
        is_duplicate = np.array([i for i, ind in enumerate(pop) if id(ind) not in kept_ids], dtype=int)
        return kept, no_duplicate, is_duplicate


class SimilarityClearing(Survival):  # type: ignore[misc]
    """Single-objective survival that keeps one winner per niche of similar architectures first.

    Individuals are taken best first; one whose similarity to an already kept winner is at or
    above ``threshold`` is cleared. Winners survive first, then cleared ones best first while
    places remain (so the population never shrinks).
    """

    def __init__(self, threshold: float = 0.9, schema: SchemaArg = "default") -> None:
        super().__init__(filter_infeasible=True)
        self.threshold = check_threshold(threshold)
        self.schema = schema

    def _do(self, problem: Any, pop: Any, *args: Any, n_survive: int | None = None, **kwargs: Any) -> Any:
        fitness, cv = pop.get("F", "cv")
        order = np.lexsort([np.asarray(fitness, dtype=float)[:, 0], np.asarray(cv, dtype=float)])  # as FitnessSurvival
        sim = similarity_matrix([architecture_of(ind) for ind in pop], schema=self.schema)
        winners: list[int] = []
        cleared: list[int] = []
        for i in order:
            (cleared if winners and sim[i, winners].max() >= self.threshold else winners).append(int(i))
        ranked = winners + cleared
        n = len(pop) if n_survive is None else n_survive
        rank = np.empty(len(pop), dtype=int)
        rank[ranked] = np.arange(len(pop))
        pop.set("rank", rank)
        return pop[ranked[:n]]


class ArchitectureProblem(ElementwiseProblem):  # type: ignore[misc]
    """One objective, ``fitness(chromosome)``, maximised (pymoo minimises ``-fitness``).

    ``evaluated`` lists every architecture evaluated, in order: what the GA actually paid for.
    """

    def __init__(self, fitness: Callable[[Chromosome], float], **kwargs: Any) -> None:
        super().__init__(n_var=1, n_obj=1, vtype=object, **kwargs)
        self.fitness = fitness
        self.evaluated: list[Chromosome] = []

    def _evaluate(self, x: Any, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        chrom = as_arch(x[0])
        assert not isinstance(chrom, str), "ArchitectureProblem evaluates chromosomes"
        self.evaluated.append(chrom)  # type: ignore[arg-type]
        out["F"] = -float(self.fitness(chrom))  # type: ignore[arg-type]


def _space(space: SearchSpace | str) -> SearchSpace:
    return space if isinstance(space, SearchSpace) else SearchSpace.load(space)


class SpaceSampling(Sampling):  # type: ignore[misc]
    """Random chromosomes of a search space (the paper's by default), one per row of ``X``."""

    def __init__(self, space: SearchSpace | str = "paper", seed: int | None = None) -> None:
        super().__init__()
        self.space = _space(space)
        self.rng = np.random.default_rng(seed)

    def _do(self, problem: Any, n_samples: int, **kwargs: Any) -> np.ndarray:
        rng = _rng(kwargs, self.rng)
        x = np.full((n_samples, 1), None, dtype=object)
        for i in range(n_samples):
            x[i, 0] = self.space.sample(rng)
        return x


class SpaceCrossover(Crossover):  # type: ignore[misc]
    """pyevonas's one-point crossover of two variable-length parents; one child per mating
    (a copy of the first parent when no cut pair gives a valid child)."""

    def __init__(self, space: SearchSpace | str = "paper", seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(n_parents=2, n_offsprings=1, **kwargs)
        self.space = _space(space)
        self.rng = np.random.default_rng(seed)

    def _do(self, problem: Any, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        rng = _rng(kwargs, self.rng)
        _, n_matings, _ = X.shape
        y = np.full((1, n_matings, 1), None, dtype=object)
        for k in range(n_matings):
            first, second = X[0, k, 0], X[1, k, 0]
            crossed = crossover_one_point(first, second, self.space, rng)
            y[0, k, 0] = crossed[0] if crossed is not None else [dict(g) for g in first]
        return y


class SpaceMutation(Mutation):  # type: ignore[misc]
    """pyevonas's mutation: each gene is removed, followed by a new one, or redrawn with
    probability ``p_mutation``, keeping the chromosome valid in the space."""

    def __init__(
        self, space: SearchSpace | str = "paper", p_mutation: float = 0.1, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.space = _space(space)
        self.p_mutation = p_mutation
        self.rng = np.random.default_rng(seed)

    def _do(self, problem: Any, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        rng = _rng(kwargs, self.rng)
        y = np.full_like(X, None, dtype=object)
        for i in range(len(X)):
            y[i, 0] = mutate(X[i, 0], self.space, rng, self.p_mutation)[0]
        return y


def evaluated_near_duplicates(archs: Sequence[Arch], threshold: float, schema: SchemaArg = "default") -> int:
    """How many pairs of ``archs`` are at or above ``threshold`` similarity (a check for tests and examples)."""
    m = similarity_matrix(list(archs), schema=schema)
    return int(np.triu(m >= threshold, k=1).sum())


__all__ = [
    "ArchitectureProblem",
    "SimilarityClearing",
    "SimilarityElimination",
    "SpaceCrossover",
    "SpaceMutation",
    "SpaceSampling",
    "architecture_of",
    "evaluated_near_duplicates",
]
