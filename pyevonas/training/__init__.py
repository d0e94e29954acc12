"""Training: build a chromosome into a PyTorch model, train it with the paper's recipe, measure it.

- :mod:`~pyevonas.training.config`: ``TrainConfig`` and ``Metrics`` (torch-free: the search loop
  and the executors import them without the training stack).
- :mod:`~pyevonas.training.data`: the built-in datasets as uint8 arrays.
- :mod:`~pyevonas.training.layers`: the layer library (Keras semantics in PyTorch).
- :mod:`~pyevonas.training.cell_ops`: the ops a cell may hold, by name (torch-free: the search
  space checks them).
- :mod:`~pyevonas.training.cells`: cell modules (NAS-Bench-201's cell, cells of any DAG, the
  reduction block).
- :mod:`~pyevonas.training.builders`: the gene -> module registry, plugins, ``build_model``.
- :mod:`~pyevonas.training.measure`: parameters, size, latency, FLOPs.
- :mod:`~pyevonas.training.tuning`: the fastest exact depthwise kernel per shape.
- :mod:`~pyevonas.training.loop`: ``evaluate`` (train one candidate, never crash a search).
- :mod:`~pyevonas.training.profiling`: per-gene and whole-step timings.

Every module except ``config``, ``data`` and ``cell_ops`` imports torch; this ``__init__`` imports none of them.
"""

from __future__ import annotations

from pyevonas.training.config import FAILED_FITNESS, Metrics, TrainConfig

__all__ = ["FAILED_FITNESS", "Metrics", "TrainConfig"]
