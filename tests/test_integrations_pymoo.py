"""The pymoo adapter against the real pymoo: duplicate elimination above a threshold (as pymoo's
pair loop decides it, from one matrix), memory across generations, the clearing survival, and a GA
on the paper's space."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymoo")
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.population import Population
from pymoo.optimize import minimize

import pyevonas
from pyevonas.integrations.pymoo import (
    ArchitectureProblem,
    SimilarityClearing,
    SimilarityElimination,
    SpaceCrossover,
    SpaceMutation,
    SpaceSampling,
    evaluated_near_duplicates,
)
from pyevonas.search.space import SearchSpace

SPACE = SearchSpace.load("paper")


def _population(archs: list) -> Population:
    x = np.full((len(archs), 1), None, dtype=object)
    for i, arch in enumerate(archs):
        x[i, 0] = arch
    return Population.new("X", x)


def _archs(n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def fitness(chromosome: list[dict]) -> float:
    return 1.0 + sum(g.get("filters", 0) for g in chromosome) / 1000 - 0.02 * len(chromosome)


def test_it_is_pymoos_elementwise_elimination_and_agrees_with_its_pair_loop() -> None:
    archs = _archs(12)
    archs += [archs[0], archs[3], pyevonas.format_arch(archs[5])]  # exact twins, one as text
    pop = _population(archs)
    for threshold in (1.0, 0.7, 0.5):
        ours = SimilarityElimination(threshold)
        assert isinstance(ours, ElementwiseDuplicateElimination)
        pairwise = ElementwiseDuplicateElimination(cmp_func=ours.is_equal)
        kept = ours.do(pop)
        expected = pairwise.do(pop)
        assert [id(i) for i in kept] == [id(i) for i in expected]
        other = _population(_archs(5, seed=1) + [archs[1]])
        assert [id(i) for i in ours.do(pop, other)] == [id(i) for i in pairwise.do(pop, other)]
    assert len(SimilarityElimination(1.0).do(pop)) == 12
    with pytest.raises(ValueError, match="threshold"):
        SimilarityElimination(0.0)


def test_remember_rejects_twins_of_anything_let_through_before() -> None:
    archs = _archs(6)
    elim = SimilarityElimination(1.0, remember=True)
    assert len(elim.do(_population(archs[:4]))) == 4
    again = elim.do(_population([archs[0], archs[4], archs[5]]), return_indices=True)
    kept, no_dup, dup = again
    assert len(kept) == 2 and list(no_dup) == [1, 2] and list(dup) == [0]
    assert elim.archive is not None and len(elim.archive) == 6


def test_clearing_keeps_one_per_niche_first_and_never_shrinks() -> None:
    archs = _archs(4)
    pop = _population([archs[0], archs[0], archs[1], archs[1], archs[2], archs[3]])
    pop.set("F", np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [6.0]]))
    problem = ArchitectureProblem(fitness)
    survivors = SimilarityClearing(threshold=1.0).do(problem, pop, n_survive=4)
    assert [float(f) for f in survivors.get("F")[:, 0]] == [0.0, 0.2, 5.0, 6.0]  # twins 0.1 and 0.3 cleared
    survivors = SimilarityClearing(threshold=1.0).do(problem, pop, n_survive=6)
    assert [float(f) for f in survivors.get("F")[:, 0]] == [0.0, 0.2, 5.0, 6.0, 0.1, 0.3]


def test_a_ga_on_the_paper_space_evaluates_no_near_duplicates() -> None:
    problem = ArchitectureProblem(fitness)
    algorithm = GA(
        pop_size=16,
        sampling=SpaceSampling(SPACE, seed=0),
        crossover=SpaceCrossover(SPACE, seed=1),
        mutation=SpaceMutation(SPACE, p_mutation=0.2, seed=2),
        survival=SimilarityClearing(threshold=0.8),
        eliminate_duplicates=SimilarityElimination(threshold=0.85, remember=True),
    )
    result = minimize(problem, algorithm, ("n_gen", 8), seed=0)
    assert len(problem.evaluated) > 16
    assert evaluated_near_duplicates(problem.evaluated, 0.85) == 0
    assert all(SPACE.is_valid(c) for c in problem.evaluated)
    assert -result.F[0] == max(fitness(c) for c in problem.evaluated)
    # Without the adapter, the same GA evaluates near-duplicates: the check has teeth.
    plain = ArchitectureProblem(fitness)
    algorithm = GA(
        pop_size=16,
        sampling=SpaceSampling(SPACE, seed=0),
        crossover=SpaceCrossover(SPACE, seed=1),
        mutation=SpaceMutation(SPACE, p_mutation=0.2, seed=2),
        eliminate_duplicates=SimilarityElimination(threshold=1.0),
    )
    minimize(plain, algorithm, ("n_gen", 8), seed=0)
    assert evaluated_near_duplicates(plain.evaluated, 0.85) > 0
