"""Runs on disk: the records of a search, the crash-safe run store, and the importer of the paper's runs.

- :mod:`~pyevonas.runs.records`: ``Individual``, ``GenerationRecord``, ``Status``, ``is_trained``, ``canonical_key``.
- :mod:`~pyevonas.runs.store`: ``RunStore``, one SQLite database per run folder.
- :mod:`~pyevonas.runs.objectives`: the objectives of candidates (accuracy, params, latency...),
  Pareto ranks, crowding distance and hypervolume, for the search and the reports.
- :mod:`~pyevonas.runs.importer`: ``import_run`` and ``read_run``, the authors' ``.evonas`` files and
  their JSON extracts into a store. Import it by its name: it derives the original control
  windows with the search's control functions (``pyevonas.search.control``), so this package
  does not load it; the records and the store, which the search loop itself builds on, never
  load the search.
"""

from __future__ import annotations

from pyevonas.runs.records import GenerationRecord, Individual, Status, canonical_key, is_trained
from pyevonas.runs.store import RunStore

__all__ = ["GenerationRecord", "Individual", "RunStore", "Status", "canonical_key", "is_trained"]
