"""The report figures' shared matplotlib setup: their resolution, a new figure, literal text.

Used by :mod:`pyevonas.report.figures` and :mod:`pyevonas.report.pareto`. matplotlib is imported
inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of the report figures, in dots per inch.
DPI = 90


def new_figure(width: float, height: float, layout: Literal["constrained"] | None = "constrained") -> Figure:
    """A pyplot-free figure of ``width`` x ``height`` inches at :data:`DPI`."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


_F = TypeVar("_F", bound=Callable[..., Any])


def literal_text(fn: _F) -> _F:
    """Draw every string as typed: run names and labels are never parsed as TeX (``$...$``).

    Text objects take the setting when they are created, tick labels when they are drawn, so
    both the figure functions and :func:`~pyevonas.report.figures.png_bytes` run under it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)

    return cast(_F, wrapper)


__all__ = ["DPI", "literal_text", "new_figure"]
