"""Runs on disk: the records of a search, the crash-safe run store, and the importer of the paper's runs.

- :mod:`~pyevonas.runs.records`: ``Individual``, ``GenerationRecord``, ``Status``, ``is_trained``, ``canonical_key``.
- :mod:`~pyevonas.runs.store`: ``RunStore``, one SQLite database per run folder.
- :mod:`~pyevonas.runs.importer`: the authors' ``.evonas`` files and their JSON extracts into a store.

The importer derives the original control windows with the search's control functions
(``pyevonas.search.control``), so it is loaded on first use of ``import_run`` or ``read_run``:
the records and the store, which the search loop itself builds on, never load the search.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pyevonas.runs.records import GenerationRecord, Individual, Status, canonical_key, is_trained
from pyevonas.runs.store import RunStore

if TYPE_CHECKING:
    from pyevonas.runs.importer import import_run, read_run

_LAZY = {"import_run": "pyevonas.runs.importer", "read_run": "pyevonas.runs.importer"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyevonas.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
