"""What the adapters share: an individual of another library as a pyevonas architecture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyevonas.metric import Arch


def as_arch(value: Any) -> Arch:
    """``value`` as something the similarity API takes: text notation stays text, and any
    sequence of gene dicts (a DEAP individual is a ``list`` subclass with a fitness) becomes a
    plain list of dicts, which the Rust fast lane reads directly."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(gene, Mapping) for gene in value):
        return [dict(gene) for gene in value]
    raise TypeError(f"expected an architecture (text notation or a list of gene dicts), got {type(value).__name__}")


def check_threshold(threshold: float) -> float:
    """A similarity threshold in (0, 1]: two architectures at or above it count as duplicates."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return float(threshold)
