"""The paper's 25,000 published evaluations, shipped with pyevonas: :func:`load_evaluations`.

``paper_evaluations.json.gz`` (in this folder) holds every evaluation of the authors' 50 published
evolution runs (CIFAR-10: seeds 1-10 x naive/rigid/soft; CIFAR-100: seeds 1-10 x naive/rigid; 20
generations x 25 individuals each): the chromosome, the run, its seed and control, the
generation, the status, the fitness and the validation accuracy of every epoch, the model size and
the latency. ``benchmarks/build_surrogate_data.py`` derives it from the published files; the file's
``provenance`` block says what was read, what was derived and the counts, and docs/surrogate.md
documents the format.
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import PyevonasError

#: The file that ships with the package.
DATA_FILE = Path(__file__).with_name("paper_evaluations.json.gz")
#: The ``format`` and ``version`` :func:`load_evaluations` reads.
DATA_FORMAT = "pyevonas-paper-evaluations"
DATA_VERSION = 1
#: The datasets of the published runs, with their number of classes.
DATASETS = {"cifar10": 10, "cifar100": 100}
#: Epochs of every published training (fewer where the original's early stopping ended it).
EPOCHS = 12

_lock = threading.Lock()
_cache: dict[str, Evaluations] = {}


@dataclass(frozen=True)
class Evaluations:
    """A table of published evaluations: one row per evaluated individual, as numpy columns.

    Rows are in run order (dataset, seed, control), then generation, then population order.
    Every array is read-only; :meth:`subset` gives a smaller table sharing the chromosome table.

    Attributes:
        chromosomes: the distinct chromosomes (lists of gene dicts, as the importer reads them);
            shared between tables, do not modify.
        chromosome: (n,) int64 index of each row's chromosome in ``chromosomes``.
        dataset: (n,) ``"cifar10"`` or ``"cifar100"``.
        run: (n,) the run's name (``cifar10_s1_div`` ...).
        seed: (n,) int64 the run's seed (1 to 10).
        control: (n,) ``"naive"``, ``"rigid"`` or ``"soft"``.
        generation: (n,) int64, 1 to 20.
        index: (n,) int64 position in the generation's population (the order of its similarity matrix).
        status: (n,) ``"ok"`` (trained), ``"failed"`` (the original stored fitness -10001: training
            crashed, e.g. no global pooling) or ``"oversized"`` (above the 40 MB limit, never trained).
        fitness: (n,) float64 the published fitness, the best validation accuracy of the epochs
            (NaN where not trained).
        val_accuracy_per_epoch: (n, 12) float64 validation accuracy after each epoch, NaN after the
            last epoch trained (early stopping ended 2,425 trainings after 8 to 11 epochs) and for
            rows not trained.
        epochs: (n,) int64 epochs trained (0 where not trained).
        size_bytes: (n,) int64 the untrained Keras ``.h5`` footprint in bytes.
        latency_s: (n,) float64 the original's one-image inference time in seconds (NaN where
            not stored; a number without meaning, see docs/original.md#training).
        provenance: the file's provenance block (source, what was derived, counts).
    """

    chromosomes: list[list[dict[str, Any]]] = field(repr=False)
    chromosome: np.ndarray
    dataset: np.ndarray
    run: np.ndarray
    seed: np.ndarray
    control: np.ndarray
    generation: np.ndarray
    index: np.ndarray
    status: np.ndarray
    fitness: np.ndarray
    val_accuracy_per_epoch: np.ndarray
    epochs: np.ndarray
    size_bytes: np.ndarray
    latency_s: np.ndarray
    provenance: dict[str, Any] = field(repr=False)

    def __len__(self) -> int:
        return int(self.chromosome.shape[0])

    @property
    def trained(self) -> np.ndarray:
        """(n,) bool: the rows with a fitness (status ``ok``)."""
        return np.asarray(self.status == "ok")

    def architectures(self) -> list[list[dict[str, Any]]]:
        """Each row's chromosome (the shared table's lists, not copies)."""
        return [self.chromosomes[i] for i in self.chromosome.tolist()]

    def subset(self, rows: np.ndarray | slice | list[int]) -> Evaluations:
        """The rows selected by a boolean mask, an index array or a slice, as a new table."""
        picked: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = _frozen(value[rows])
            picked[f.name] = value
        return Evaluations(**picked)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _fail(path: Path, what: str) -> PyevonasError:
    return PyevonasError(f"{path}: {what}")


def read_document(path: Path = DATA_FILE) -> dict[str, Any]:
    """The evaluations file as parsed JSON, its format and version checked.

    Raises:
        PyevonasError: the file is missing, not gzip-compressed JSON, or not this format/version.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, EOFError, ValueError) as exc:
        raise _fail(path, f"cannot read the published evaluations ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != DATA_FORMAT:
        raise _fail(path, f"not a {DATA_FORMAT} file")
    if doc.get("version") != DATA_VERSION:
        raise _fail(path, f"version {doc.get('version')!r} is not supported (this pyevonas reads {DATA_VERSION})")
    return doc


def _table(doc: dict[str, Any], path: Path) -> Evaluations:
    """Columns of the document as an :class:`Evaluations` table (accuracies decoded from counts of correct images)."""
    try:
        cols = doc["evaluations"]
        runs = doc["runs"]
        scale = float(doc["accuracy_scale"])
        run_idx = np.asarray(cols["run"], dtype=np.int64)
        n = run_idx.shape[0]
        per_run = {k: np.asarray([r[k] for r in runs]) for k in ("run", "dataset", "seed", "control")}
        curves = np.full((n, EPOCHS), np.nan)
        epochs = np.zeros(n, dtype=np.int64)
        for i, row in enumerate(cols["val_accuracy_per_epoch"]):
            epochs[i] = len(row)
            curves[i, : len(row)] = row
        fitness = np.asarray([np.nan if v is None else v for v in cols["fitness"]], dtype=np.float64)
        latency = np.asarray([np.nan if v is None else v for v in cols["latency_s"]], dtype=np.float64)
        table = Evaluations(
            chromosomes=doc["chromosomes"],
            chromosome=np.asarray(cols["chromosome"], dtype=np.int64),
            dataset=per_run["dataset"][run_idx].astype(str),
            run=per_run["run"][run_idx].astype(str),
            seed=per_run["seed"][run_idx].astype(np.int64),
            control=per_run["control"][run_idx].astype(str),
            generation=np.asarray(cols["generation"], dtype=np.int64),
            index=np.asarray(cols["index"], dtype=np.int64),
            status=np.asarray(cols["status"]).astype(str),
            # float32(k / scale), exactly the published values (see the build script).
            fitness=(fitness / scale).astype(np.float32).astype(np.float64),
            val_accuracy_per_epoch=(curves / scale).astype(np.float32).astype(np.float64),
            epochs=epochs,
            size_bytes=np.asarray(cols["size_bytes"], dtype=np.int64),
            latency_s=latency,
            provenance=doc.get("provenance", {}),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _fail(path, f"malformed evaluations table ({type(exc).__name__}: {exc})") from None
    for f in fields(table):
        value = getattr(table, f.name)
        if isinstance(value, np.ndarray):
            if value.shape[0] != n:
                raise _fail(path, f"column {f.name!r} has {value.shape[0]} rows, expected {n}")
            value.flags.writeable = False
    return table


def load_evaluations(dataset: str | None = None) -> Evaluations:
    """The published evaluations shipped with pyevonas, optionally of one dataset.

    The file is read once per process (about a second); later calls share the read-only arrays.

    Args:
        dataset: ``"cifar10"``, ``"cifar100"``, or None for both.

    Returns:
        The table (25,000 rows for both datasets: 15,000 CIFAR-10, 10,000 CIFAR-100).

    Raises:
        ValueError: an unknown dataset.
        PyevonasError: the shipped file is missing or damaged.

    Example:
        >>> ev = load_evaluations("cifar100")
        >>> len(ev), int(ev.trained.sum()), ev.val_accuracy_per_epoch.shape[1]
        (10000, 9677, 12)
    """
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)} or None, got {dataset!r}")
    with _lock:
        table = _cache.get("all")
        if table is None:
            table = _table(read_document(DATA_FILE), DATA_FILE)
            _cache["all"] = table
    if dataset is None:
        return table
    return table.subset(table.dataset == dataset)


__all__ = [
    "DATASETS",
    "DATA_FILE",
    "DATA_FORMAT",
    "DATA_VERSION",
    "EPOCHS",
    "Evaluations",
    "load_evaluations",
    "read_document",
]
