"""Checks of the arguments that the similarity API and :class:`~pyevonas.metric.archive.Archive`
both take (``dtype``, ``n_threads``), written once."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyevonas import _core
from pyevonas.errors import ConfigError


def check_threads(n_threads: int | None) -> int | None:
    """``n_threads`` as given; a count below 1 is refused (None: the core's default, checked by
    :func:`check_thread_setting`)."""
    if n_threads is None:
        check_thread_setting()
    elif n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return n_threads


def check_thread_setting() -> int:
    """The default thread count (``PYEVONAS_NUM_THREADS`` or every core).

    Raises:
        ConfigError: ``PYEVONAS_NUM_THREADS`` is not a usable thread count (a ValueError, as the
            core's own refusal is, but one line at the command line).
    """
    try:
        return _core.default_threads()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def wants_float32(dtype: Any) -> bool:
    """Whether a ``dtype`` argument asks for float32 results (float64: False); any other is refused."""
    dt = np.dtype(dtype)
    if dt == np.float64:
        return False
    if dt == np.float32:
        return True
    raise ValueError(f"dtype must be float64 or float32, got {dt}")


__all__ = ["check_thread_setting", "check_threads", "wants_float32"]
