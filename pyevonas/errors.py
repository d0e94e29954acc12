"""The exception tree of pyevonas: every error a user can cause is one of these.

Each class also subclasses the matching built-in (``ValueError``, ``OSError``,
``RuntimeError``), so ``except ValueError`` keeps working for callers that do not
know pyevonas. The Rust core raises these classes directly.
"""

from __future__ import annotations


class PyevonasError(Exception):
    """Base class of every error pyevonas raises on bad input or a failed run."""


class SchemaError(PyevonasError, ValueError):
    """A scoring schema is malformed or inconsistent (the message names the JSON path)."""


class EncodingError(PyevonasError, ValueError):
    """An architecture cannot be turned into a gene sequence (unknown layer, missing parameter...)."""


class GraphError(EncodingError):
    """A graph architecture (a cell: dag, NAS-Bench-201, NAS-Bench-101, DARTS) cannot be read; the
    message names the problem and its place."""


class SearchSpaceError(PyevonasError, ValueError):
    """A search-space file is invalid, or a chromosome breaks the search space's rules."""


class ConfigError(PyevonasError, ValueError):
    """A run or training setting is invalid (the message names the setting)."""


class DatasetError(PyevonasError, OSError):
    """A dataset is missing or corrupt (the message says where it looked)."""


class TrainingError(PyevonasError, RuntimeError):
    """A model could not be built or trained."""


class RunStoreError(PyevonasError, OSError):
    """A run folder is missing, corrupt, or not a pyevonas run."""


__all__ = [
    "ConfigError",
    "DatasetError",
    "EncodingError",
    "GraphError",
    "PyevonasError",
    "RunStoreError",
    "SchemaError",
    "SearchSpaceError",
    "TrainingError",
]
