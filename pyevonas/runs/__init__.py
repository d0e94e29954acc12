"""Runs on disk: the records of a search, the crash-safe run store, and the importer of the paper's runs.

- :mod:`~pyevonas.runs.records`: ``Individual``, ``GenerationRecord``, ``Status``, ``is_trained``, ``canonical_key``.
- :mod:`~pyevonas.runs.store`: ``RunStore``, one SQLite database per run folder.
- :mod:`~pyevonas.runs.importer`: the authors' ``.evonas`` files and their JSON extracts into a store.
"""

from __future__ import annotations

from pyevonas.runs.importer import import_run, read_run
from pyevonas.runs.records import GenerationRecord, Individual, Status, canonical_key, is_trained
from pyevonas.runs.store import RunStore

__all__ = [
    "GenerationRecord",
    "Individual",
    "RunStore",
    "Status",
    "canonical_key",
    "import_run",
    "is_trained",
    "read_run",
]
