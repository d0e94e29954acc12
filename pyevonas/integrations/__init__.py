"""Adapters to the libraries researchers already use: pymoo, DEAP and Optuna.

Each adapter is a module of its own that imports its library at the top, so that
``import pyevonas`` (and this package) never loads any of them; import the one you need:

- :mod:`pyevonas.integrations.pymoo`: duplicate elimination above a similarity threshold, a
  survival that clears near-duplicates, and the paper's search space as pymoo operators.
- :mod:`pyevonas.integrations.deap`: novelty selection against a :class:`pyevonas.Archive`, fitness
  sharing on ``1 - similarity``, and the search space's crossover and mutation in DEAP's in-place form.
- :mod:`pyevonas.integrations.optuna`: a guard that prunes (or answers with the earlier result)
  a trial whose architecture is a near-duplicate of an earlier one, and records its novelty.

The libraries come with the ``integrations`` extra: ``pip install 'pyevonas[integrations]'``.
"""

__all__: list[str] = []
