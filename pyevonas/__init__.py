"""pyevonas: sequence-alignment similarity of neural architectures and diversity-controlled NAS.

The similarity API (``similarity``, ``similarity_matrix``, ``align``, ``diversity``, ``Archive``...) is loaded on
first use, so ``import pyevonas`` stays cheap and never pulls in the training stack (torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pyevonas.errors import (
    ConfigError,
    DatasetError,
    EncodingError,
    GraphError,
    PyevonasError,
    RunStoreError,
    SchemaError,
    SearchSpaceError,
    TrainingError,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ (PEP 562).
_LAZY: dict[str, str] = {
    "similarity": "pyevonas.metric",
    "similarity_matrix": "pyevonas.metric",
    "nearest": "pyevonas.metric",
    "align": "pyevonas.metric",
    "diversity": "pyevonas.metric",
    "Alignment": "pyevonas.metric",
    "Archive": "pyevonas.metric",
    "Gene": "pyevonas.metric",
    "sequence": "pyevonas.metric",
    "parse_arch": "pyevonas.metric",
    "format_arch": "pyevonas.metric",
    "Scoring": "pyevonas.metric",
    "parse_graph": "pyevonas.metric",
    "graph_edit_distance": "pyevonas.metric",
    "GraphArch": "pyevonas.metric",
    "GraphCosts": "pyevonas.metric",
    "EditDistance": "pyevonas.metric",
    "ApproximationWarning": "pyevonas.metric",
    "build_model": "pyevonas.training.builders",
}

if TYPE_CHECKING:
    from pyevonas.metric import (
        Alignment,
        ApproximationWarning,
        Archive,
        EditDistance,
        Gene,
        GraphArch,
        GraphCosts,
        Scoring,
        align,
        diversity,
        format_arch,
        graph_edit_distance,
        nearest,
        parse_arch,
        parse_graph,
        sequence,
        similarity,
        similarity_matrix,
    )
    from pyevonas.training.builders import build_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyevonas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Alignment",
    "ApproximationWarning",
    "Archive",
    "ConfigError",
    "DatasetError",
    "EditDistance",
    "EncodingError",
    "Gene",
    "GraphArch",
    "GraphCosts",
    "GraphError",
    "PyevonasError",
    "RunStoreError",
    "SchemaError",
    "Scoring",
    "SearchSpaceError",
    "TrainingError",
    "__version__",
    "align",
    "build_model",
    "diversity",
    "format_arch",
    "graph_edit_distance",
    "nearest",
    "parse_arch",
    "parse_graph",
    "sequence",
    "similarity",
    "similarity_matrix",
]
