"""The DEAP adapter against the real DEAP: novelty against the archive and the other individuals,
fitness sharing on 1 - similarity, the in-place operators inside DEAP's own loop."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("deap")
from deap import algorithms, base, creator

import pyevonas
from pyevonas.integrations.deap import (
    crossover_in_place,
    mutate_in_place,
    novelty,
    select_novelty,
    select_shared,
    shared_fitness,
)
from pyevonas.search.space import SearchSpace

SPACE = SearchSpace.load("paper")
if not hasattr(creator, "TestArchFitness"):
    creator.create("TestArchFitness", base.Fitness, weights=(1.0,))
    creator.create("TestArchIndividual", list, fitness=creator.TestArchFitness)
    creator.create("TestArchFitnessMin", base.Fitness, weights=(-1.0,))
    creator.create("TestArchIndividualMin", list, fitness=creator.TestArchFitnessMin)


def _individuals(n: int, seed: int = 0, fitness: list[float] | None = None) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ind = creator.TestArchIndividual(SPACE.sample(rng))
        ind.fitness.values = (1.0 if fitness is None else fitness[i],)
        out.append(ind)
    return out


def test_novelty_is_the_mean_distance_to_the_k_nearest_of_archive_and_others() -> None:
    pop = _individuals(6)
    archive = pyevonas.Archive("default", [list(i) for i in _individuals(4, seed=1)])
    got = novelty(pop, archive, k=3)
    plain = [list(i) for i in pop]
    for i in range(6):
        others = [plain[j] for j in range(6) if j != i] + list(archive)
        sims = sorted((pyevonas.similarity(plain[i], o) for o in others), reverse=True)[:3]
        assert got[i] == pytest.approx(np.mean([1 - s for s in sims]))
    assert novelty(pop[:1], pyevonas.Archive(), k=3)[0] == 1.0  # nobody to compare with
    twins = [pop[0], creator.TestArchIndividual(list(pop[0]))]
    assert list(novelty(twins, pyevonas.Archive(), k=1)) == [0.0, 0.0]


def test_select_novelty_keeps_the_most_novel_and_fills_the_archive() -> None:
    pop = _individuals(10)
    pop += [creator.TestArchIndividual(list(pop[0])) for _ in range(3)]  # a crowd of twins
    archive = pyevonas.Archive()
    chosen = select_novelty(pop, 5, archive, n_neighbours=3, add_above=0.0)
    scores = {id(i): i.novelty for i in pop}
    assert sorted(scores.values(), reverse=True)[:5] == [i.novelty for i in chosen]
    assert sum(1 for c in chosen if list(c) == list(pop[0])) <= 1
    assert len(archive) == 5
    select_novelty(pop, 5, archive, n_neighbours=3, add_above=2.0)
    assert len(archive) == 5


def test_shared_fitness_divides_by_the_niche_count() -> None:
    pop = _individuals(3, fitness=[2.0, 2.0, 3.0])
    pop.append(creator.TestArchIndividual(list(pop[2])))
    pop[3].fitness.values = (3.0,)
    d = 1.0 - pyevonas.similarity_matrix([list(i) for i in pop])
    sh = np.where(d < 0.3, 1 - d / 0.3, 0.0)
    assert shared_fitness(pop, 0.3) == pytest.approx(np.array([2.0, 2.0, 3.0, 3.0]) / sh.sum(axis=1))
    shared = shared_fitness(pop, 0.3)
    assert shared[2] == shared[3] <= 1.5  # two identical twins share their niche
    chosen = select_shared(pop, 2, sigma=0.3)
    assert [id(c) for c in chosen] == [id(pop[int(i)]) for i in np.argsort(-shared, kind="stable")[:2]]
    assert [i.shared_fitness for i in pop] == pytest.approx(list(shared))
    with pytest.raises(ValueError, match="sigma"):
        shared_fitness(pop, 0.0)
    minimised = creator.TestArchIndividualMin(list(pop[0]))
    minimised.fitness.values = (1.0,)
    with pytest.raises(ValueError, match="maximised"):
        shared_fitness([minimised], 0.3)


def test_operators_work_in_place_inside_deaps_loop() -> None:
    random.seed(1)
    rng = np.random.default_rng(1)
    toolbox = base.Toolbox()
    toolbox.register("evaluate", lambda ind: (1.0 + sum(g.get("filters", 0) for g in ind) / 1000,))
    toolbox.register("mate", crossover_in_place, space=SPACE, rng=rng)
    toolbox.register("mutate", mutate_in_place, space=SPACE, rng=rng, p_mutation=0.3)
    toolbox.register("select", select_shared, sigma=0.3)
    pop = _individuals(12)
    before = [list(i) for i in pop]
    a, b = toolbox.clone(pop[0]), toolbox.clone(pop[1])
    assert toolbox.mate(a, b) == (a, b) and isinstance(a, creator.TestArchIndividual)
    (m,) = toolbox.mutate(toolbox.clone(pop[2]))
    assert SPACE.is_valid(list(m))
    final, log = algorithms.eaMuPlusLambda(pop, toolbox, mu=12, lambda_=12, cxpb=0.5, mutpb=0.4, ngen=4, verbose=False)
    assert len(final) == 12 and all(SPACE.is_valid(list(i)) for i in final)
    assert all(i.fitness.valid for i in final) and [list(i) for i in final] != before
    assert len(log) == 5
