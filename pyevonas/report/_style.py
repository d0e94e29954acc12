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


def plain_log_ticks(axis: Any) -> None:
    """Label a log ``axis`` with plain numbers (1,000 / 1,000,000 / 0.01) and no minor labels.

    The default log labels are mathtext (``$\\mathdefault{10^{5}}$``), which figures drawn under
    :func:`literal_text` would show as typed.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


__all__ = ["DPI", "literal_text", "new_figure", "plain_log_ticks"]
