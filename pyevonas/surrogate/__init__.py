"""A surrogate of training: predicted accuracy of architectures, fitted on the paper's published evaluations.

``Surrogate.builtin("cifar10").predict(archs)`` gives the predicted 12-epoch validation accuracy
of architectures of the paper's search space in milliseconds, without torch; ``.coverage`` says
how close each is to what the published evaluations cover. ``pyevonas evolve --evaluator
surrogate:cifar10`` runs a whole search with it. docs/surrogate.md has the model, its measured
quality and its limits.
"""

from __future__ import annotations

from pyevonas.surrogate.data import Evaluations, load_evaluations
from pyevonas.surrogate.model import Rows, Settings, Surrogate, read_rows

__all__ = ["Evaluations", "Rows", "Settings", "Surrogate", "load_evaluations", "read_rows"]
