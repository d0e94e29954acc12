"""The evolutionary search: settings, search space, operators, diversity control and the loop.

- :mod:`~pyevonas.search.config`: ``RunConfig`` (defaults < run.toml < CLI flags).
- :mod:`~pyevonas.search.space`: the chain search space (gene pool, sampling, validity).
- :mod:`~pyevonas.search.operators`: selection, crossover, mutation, breeding (pure functions).
- :mod:`~pyevonas.search.control`: the rigid, soft and custom control functions, Algorithm 1.
- :mod:`~pyevonas.search.expressions`: control margins written as expressions in run.toml.
- :mod:`~pyevonas.search.events`: what the loop tells its observers.
- :mod:`~pyevonas.search.loop`: ``evolve`` and ``resume``.
- :mod:`~pyevonas.search.warmstart`: the first generation seeded with given architectures.
- :mod:`~pyevonas.search.reuse`: near duplicates of earlier evaluations, reused or bred again.
- :mod:`~pyevonas.search.halving`: successive halving inside a generation, ranking at equal budget.
- :mod:`~pyevonas.search.executors`: where candidates train (in-process, process pool, Ray).

The loop never imports torch and knows no screen: it reaches training only through an evaluator.
"""

from __future__ import annotations

from pyevonas.search.config import RunConfig
from pyevonas.search.loop import RunResult, evolve, resume
from pyevonas.search.space import SearchSpace

__all__ = ["RunConfig", "RunResult", "SearchSpace", "evolve", "resume"]
