"""Checks of the arguments that the similarity API and :class:`~pyevonas.metric.archive.Archive`
both take (``dtype``, ``n_threads``), written once."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_threads(n_threads: int | None) -> int | None:
    """``n_threads`` as given; a count below 1 is refused (None: the core's default)."""
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return n_threads


def wants_float32(dtype: Any) -> bool:
    """Whether a ``dtype`` argument asks for float32 results (float64: False); any other is refused."""
    dt = np.dtype(dtype)
    if dt == np.float64:
        return False
    if dt == np.float32:
        return True
    raise ValueError(f"dtype must be float64 or float32, got {dt}")


__all__ = ["check_threads", "wants_float32"]
