"""Reports: the paper's figures and tables from run stores (reading only; a report never trains).

- :mod:`~pyevonas.report.analysis`: runs loaded from their stores, per-generation statistics,
  Table 3, similar pairs, ``summary.json``.
- :mod:`~pyevonas.report.figures`: the figures, drawn with matplotlib from plain data.
- :mod:`~pyevonas.report.html`: the offline HTML report.
"""

from __future__ import annotations

from pyevonas.report.analysis import RunData, RunStats, analyse_run, load_run, similar_pairs, summary
from pyevonas.report.html import write_report

__all__ = ["RunData", "RunStats", "analyse_run", "load_run", "similar_pairs", "summary", "write_report"]
