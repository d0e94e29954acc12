"""A stand-in for ``pyevonas.surrogate.Surrogate`` in the tests of the surrogate evaluator (never shipped).

:class:`SurrogateDouble` has the surrogate's API (``predict``, ``predict_curve``, ``coverage``) with
values that are fixed functions of the chromosome, so two searches with one seed agree on every
generation, and it counts its calls. A chromosome with a gene ``{"layer": "UNREADABLE"}`` makes it
raise, as the real surrogate does on an architecture it cannot encode. :func:`patch_surrogate`
makes ``--evaluator surrogate:NAME`` load it; child processes call it to do the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import EncodingError

EPOCHS = 12


def _hash(chromosome: Any, salt: str) -> float:
    text = salt + json.dumps(chromosome, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


class SurrogateDouble:
    """Predicted accuracy in [0.5, 0.9) from a hash of the chromosome, a rising curve that ends
    there, and a coverage in [0, 1) from another hash.

    Attributes:
        dataset: what it models.
        calls: ``(method, number of chromosomes)`` of every call.
        marker, after: when set, the ``after``-th call of ``predict`` writes ``marker`` and sleeps
            (a kill-and-resume test's kill point).
    """

    def __init__(self, dataset: str = "cifar10") -> None:
        self.dataset = dataset
        self.calls: list[tuple[str, int]] = []
        self.marker: Path | None = None
        self.after = 0

    def _check(self, chromosomes: Any) -> None:
        for chromosome in chromosomes:
            if any(gene.get("layer") == "UNREADABLE" for gene in chromosome):
                raise EncodingError("layer 0 (UNREADABLE): unknown layer")

    def predict(self, chromosomes: Any) -> np.ndarray:
        self.calls.append(("predict", len(chromosomes)))
        self._check(chromosomes)
        if self.marker is not None and sum(1 for name, _ in self.calls if name == "predict") == self.after:
            import time

            self.marker.write_text("predicting")
            time.sleep(60)
        return np.array([0.5 + 0.4 * _hash(c, "final") for c in chromosomes])

    def predict_curve(self, chromosomes: Any) -> np.ndarray:
        self.calls.append(("predict_curve", len(chromosomes)))
        self._check(chromosomes)
        final = np.array([0.5 + 0.4 * _hash(c, "final") for c in chromosomes])
        shape = 1.0 - 0.6 * np.exp(-np.arange(1, EPOCHS + 1) / 3.0)
        return final[:, None] * (shape / shape[-1])[None, :]

    def coverage(self, chromosomes: Any) -> np.ndarray:
        self.calls.append(("coverage", len(chromosomes)))
        self._check(chromosomes)
        return np.array([_hash(c, "coverage") for c in chromosomes])


def patch_surrogate(monkeypatch: Any = None, double: SurrogateDouble | None = None) -> SurrogateDouble:
    """Make the surrogate evaluator load ``double`` (a new one by default) for every built-in name.

    With a pytest ``monkeypatch`` the change is undone after the test; without, it lasts for the
    process (a child process of a test).
    """
    import pyevonas.search.executors.surrogate as module

    double = double if double is not None else SurrogateDouble()

    def load(model: str) -> tuple[SurrogateDouble, str | None]:
        return double, None

    if monkeypatch is not None:
        monkeypatch.setattr(module, "load_surrogate", load)
    else:
        module.load_surrogate = load  # type: ignore[assignment]
    return double
