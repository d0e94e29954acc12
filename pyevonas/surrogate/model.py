"""The surrogate of training: :class:`Surrogate` predicts an architecture's 12-epoch validation accuracy.

The model (chosen by leave-seeds-out Kendall tau on the paper's published evaluations; the table
and the alternatives tried are in docs/surrogate.md) has three parts, fitted on the trained rows of
every dataset in its sources at once, the dataset a feature:

* a **classifier** of "dead" trainings, those that ended at chance accuracy (fitness at most
  ``chance + 5 %`` of the way to 1): about 10 % of the published CIFAR-10 trainings and 8 % of the CIFAR-100 ones, for reasons
  that are partly the architecture's (instance normalisation of a 1 x 1 map) and partly chance;
* a **regressor** of the rank of an architecture's accuracy among the living ones of its
  dataset (its quantile, in [0, 1]), mapped back to an accuracy through that dataset's
  distribution of accuracies;
* both gradient-boosted trees (scikit-learn's ``HistGradientBoosting*``) on the chromosome's
  numbers (:mod:`pyevonas.surrogate.features`: parameters, MACs, depth, reductions, counts of
  each layer, consecutive pairs of layers...).

The prediction is the accuracy at the architecture's expected rank among all trainings of its
dataset: dead trainings hold the bottom share ``D`` of the ranks, so the expected rank is
``P(dead) x D / 2 + (1 - P(dead)) x (D + (1 - D) x q)`` with ``q`` the regressor's quantile
among the living, and the accuracy at that rank is read from the dataset's trainings (ranking by
it agreed better with held-out trainings than the expected accuracy itself). The per-epoch curve is that prediction times the mean shape (accuracy of
each epoch over the best) of the most similar published architectures, and the **coverage** of a
query is its similarity to the most similar one: below about 0.8 the surrogate extrapolates.
An optional **noise model**, fitted on architectures the data holds more than once, draws what
one training would give (dead with probability ``P(dead)``, else the prediction plus the spread
of repeated trainings), seeded.

A model file (:meth:`Surrogate.save`) holds the training rows and the settings, as JSON; loading
fits again (same rows, same settings, same seed: the same model), so a file never carries code.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import PyevonasError
from pyevonas.metric import Archive
from pyevonas.runs.importer import read_run
from pyevonas.runs.records import Status, canonical_key, is_trained
from pyevonas.runs.simulation import EVALUATOR_KEY
from pyevonas.runs.store import RunStore
from pyevonas.surrogate.data import EPOCHS, Evaluations, load_evaluations
from pyevonas.surrogate.features import features, sequence_features
from pyevonas.training.data import dataset_info

#: The ``format`` of a model file written by :meth:`Surrogate.save`.
MODEL_FORMAT = "pyevonas-surrogate"
MODEL_VERSION = 1
#: A training "died" when its fitness is at most chance plus this share of the way to 1.
DEAD_MARGIN = 0.05

Source = str | Path | Evaluations


@dataclass(frozen=True)
class Settings:
    """The surrogate's settings (saved with the model; the defaults are what docs/surrogate.md measures).

    Attributes:
        iterations: boosting iterations of each tree model.
        learning_rate: their learning rate.
        leaves: maximum leaves per tree.
        l2: L2 regularisation of the leaves.
        neighbours: published architectures whose curves shape the predicted curve.
        sharpness: neighbours are weighted by ``similarity ** sharpness``.
        schema: the similarity schema of the coverage and the neighbours (a built-in name).
        seed: the random state of the tree models.
    """

    iterations: int = 300
    learning_rate: float = 0.1
    leaves: int = 15
    l2: float = 1.0
    neighbours: int = 10
    sharpness: float = 8.0
    schema: str = "paper"
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "iterations": self.iterations >= 1,
            "learning_rate": 0 < self.learning_rate <= 1,
            "leaves": self.leaves >= 2,
            "l2": self.l2 >= 0,
            "neighbours": self.neighbours >= 1,
            "sharpness": self.sharpness >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise PyevonasError(f"surrogate setting {name!r} is out of range: {getattr(self, name)!r}")


@dataclass(frozen=True)
class Rows:
    """Trained evaluations a surrogate is fitted on (one row per training).

    Attributes:
        chromosomes: each row's chromosome.
        dataset: (n,) the dataset each row was trained on.
        seed: (n,) int64 the run's seed (-1 where unknown).
        fitness: (n,) float64 the best validation accuracy of the training.
        curves: (n, 12) float64 validation accuracy after each epoch; after a training stopped
            early, its last value repeated.
        source: where the rows came from (for the model file's provenance).
    """

    chromosomes: list[Any]
    dataset: np.ndarray
    seed: np.ndarray
    fitness: np.ndarray
    curves: np.ndarray
    source: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.chromosomes)

    def subset(self, mask: np.ndarray) -> Rows:
        picked = np.flatnonzero(mask)
        return Rows(
            [self.chromosomes[i] for i in picked],
            self.dataset[picked],
            self.seed[picked],
            self.fitness[picked],
            self.curves[picked],
            self.source,
        )

    @staticmethod
    def concat(parts: Sequence[Rows]) -> Rows:
        return Rows(
            [c for p in parts for c in p.chromosomes],
            np.concatenate([p.dataset for p in parts]).astype(str),
            np.concatenate([p.seed for p in parts]).astype(np.int64),
            np.concatenate([p.fitness for p in parts]).astype(np.float64),
            np.concatenate([p.curves for p in parts]).reshape(-1, EPOCHS).astype(np.float64),
            tuple(s for p in parts for s in p.source),
        )


# --------------------------------------------------------------------------------- reading rows
def _filled(curve: Sequence[float]) -> np.ndarray:
    """A curve of 12 epochs, the last value repeated after a training that stopped early."""
    out = np.full(EPOCHS, np.nan)
    values = [float(v) for v in list(curve)[:EPOCHS]]
    if values:
        out[: len(values)] = values
        out[len(values) :] = values[-1]
    return out


def _from_table(table: Evaluations, label: str) -> Rows:
    ok = table.subset(table.trained)
    curves = ok.val_accuracy_per_epoch.copy()
    for i in np.flatnonzero(np.isnan(curves).any(axis=1)):
        curves[i] = _filled(curves[i][~np.isnan(curves[i])])
    return Rows(ok.architectures(), ok.dataset.copy(), ok.seed.copy(), ok.fitness.copy(), curves, (label,))


def _from_store(path: Path) -> Rows:
    store = RunStore.open(path, readonly=True)
    try:
        if store.meta.get(EVALUATOR_KEY):
            raise PyevonasError(
                f"{path}: this run was simulated by a surrogate; fit on trained runs, not on predictions"
            )
        dataset, epochs = store.config.get("dataset"), store.config.get("epochs")
        if not isinstance(dataset, str):
            raise PyevonasError(f"{path}: the run records no dataset")
        if epochs != EPOCHS:
            raise PyevonasError(
                f"{path}: the run trained {epochs} epochs; the surrogate models {EPOCHS}-epoch training"
            )
        seed = store.config.get("seed")
        picked = [i for i in store.individuals() if i.status == Status.OK and is_trained(i)]
    finally:
        store.close()
    return Rows(
        [i.chromosome for i in picked],
        np.asarray([dataset] * len(picked), dtype=str),
        np.full(len(picked), seed if isinstance(seed, int) else -1, dtype=np.int64),
        np.asarray([float(i.fitness) for i in picked if i.fitness is not None], dtype=np.float64),
        np.asarray([_filled(i.val_accuracy_per_epoch or [float(i.fitness or 0)]) for i in picked]).reshape(-1, EPOCHS),
        (str(path),),
    )


def _from_file(path: Path) -> Rows:
    run = read_run(path)
    picked = [
        ind
        for gen in run.generations
        for ind in gen.individuals
        if ind.status == Status.OK and ind.fitness is not None and math.isfinite(ind.fitness)
    ]
    return Rows(
        [ind.chromosome for ind in picked],
        np.asarray([run.dataset] * len(picked), dtype=str),
        np.full(len(picked), run.seed if run.seed is not None else -1, dtype=np.int64),
        np.asarray([float(ind.fitness) for ind in picked if ind.fitness is not None], dtype=np.float64),
        np.asarray([_filled(ind.val_accuracy_per_epoch or [float(ind.fitness or 0)]) for ind in picked]).reshape(
            -1, EPOCHS
        ),
        (str(path),),
    )


def read_rows(sources: Source | Iterable[Source] | None = None) -> Rows:
    """The trained evaluations of ``sources``: the published ones shipped with pyevonas (None), an
    :class:`~pyevonas.surrogate.data.Evaluations` table, run folders of ``pyevonas evolve`` or
    ``pyevonas import``, or the authors' run files (``.evonas`` or their JSON extracts).

    Raises:
        PyevonasError: a source that does not exist or cannot be read, a simulated run, a run of
            another training length (the message names the source).
    """
    if sources is None:
        return _from_table(load_evaluations(), "the published evaluations shipped with pyevonas")
    if isinstance(sources, (str, Path, Evaluations)):
        sources = [sources]
    parts = []
    for source in sources:
        if isinstance(source, Evaluations):
            parts.append(_from_table(source, "an evaluations table"))
            continue
        path = Path(source).expanduser()
        if not path.exists():
            raise PyevonasError(f"surrogate source {path} does not exist")
        if path.is_dir():
            if not RunStore.is_run(path):
                raise PyevonasError(f"surrogate source {path} is a folder but not a pyevonas run")
            parts.append(_from_store(path))
        else:
            parts.append(_from_file(path))
    if not parts:
        raise PyevonasError("no surrogate sources given")
    return Rows.concat(parts)


# --------------------------------------------------------------------------------- the model
def _chance(dataset: str) -> float:
    return 1.0 / dataset_info(dataset)[1]


def _design(archs: Sequence[Any], dataset: str) -> np.ndarray:
    """The tree models' inputs: chromosome features for the dataset's input and classes, the order
    features, and log10 of the number of classes (the dataset)."""
    (_, side, _), classes = dataset_info(dataset)
    base = features(archs, classes, side)
    return np.hstack([base, sequence_features(archs), np.full((len(archs), 1), math.log10(classes))])


@dataclass(frozen=True)
class _PerDataset:
    """What the model keeps of each dataset: its distribution of living accuracies, the mean dead
    accuracy, the archive of its architectures and their curve shapes, the noise spread."""

    alive: np.ndarray  # sorted accuracies of living trainings
    everything: np.ndarray  # sorted accuracies of all trainings, dead ones included
    dead_share: float
    dead_mean: float
    archive: Archive
    shapes: np.ndarray  # (n, 12) accuracy of each epoch over the best
    spread: float  # standard deviation of repeated living trainings of one architecture


def _spread(archs: Sequence[Any], fitness: np.ndarray) -> float:
    """Pooled within-architecture standard deviation of repeated trainings (0 without repeats)."""
    groups: dict[str, list[float]] = {}
    for arch, value in zip(archs, fitness.tolist(), strict=True):
        groups.setdefault(canonical_key(arch), []).append(value)
    squares, dof = 0.0, 0
    for values in groups.values():
        if len(values) > 1:
            v = np.asarray(values)
            squares += float(((v - v.mean()) ** 2).sum())
            dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else 0.0


class Surrogate:
    """A fitted surrogate of training for one dataset. Make one with :meth:`fit`, :meth:`load` or
    :meth:`builtin`.

    Attributes:
        dataset: the dataset whose accuracies it predicts.
        settings: its :class:`Settings`.
        rows: the trained evaluations it was fitted on (every dataset of its sources).
        excluded_seeds: seeds left out of the fit.
    """

    def __init__(self, rows: Rows, dataset: str, settings: Settings, excluded_seeds: tuple[int, ...]) -> None:
        """Fit on ``rows`` (use :meth:`fit`, which reads the sources and checks the arguments)."""
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        self.dataset = dataset
        self.settings = settings
        self.rows = rows
        self.excluded_seeds = excluded_seeds
        s = settings
        knobs = {
            "max_iter": s.iterations,
            "learning_rate": s.learning_rate,
            "max_leaf_nodes": s.leaves,
            "l2_regularization": s.l2,
            "random_state": s.seed,
            "early_stopping": False,
        }
        datasets = sorted(set(rows.dataset.tolist()))
        x = np.zeros((len(rows), 0))
        dead = np.zeros(len(rows), dtype=bool)
        quantile = np.zeros(len(rows))
        self._data: dict[str, _PerDataset] = {}
        for name in datasets:
            mine = rows.dataset == name
            idx = np.flatnonzero(mine)
            archs = [rows.chromosomes[i] for i in idx]
            block = _design(archs, name)
            if x.shape[1] == 0:
                x = np.zeros((len(rows), block.shape[1]))
            x[idx] = block
            chance = _chance(name)
            died = rows.fitness[idx] <= chance + DEAD_MARGIN * (1 - chance)
            dead[idx] = died
            living = rows.fitness[idx][~died]
            if living.size:
                order = np.argsort(np.argsort(living, kind="stable"), kind="stable")
                quantile[idx[~died]] = (order + 0.5) / living.size
            best = np.maximum(rows.fitness[idx], 1e-9)
            self._data[name] = _PerDataset(
                alive=np.sort(living),
                everything=np.sort(rows.fitness[idx]),
                dead_share=float(died.mean()),
                dead_mean=float(rows.fitness[idx][died].mean()) if died.any() else chance,
                archive=Archive(s.schema, archs),
                shapes=np.clip(rows.curves[idx] / best[:, None], 0.0, 1.0),
                spread=_spread([archs[j] for j in np.flatnonzero(~died)], living),
            )
        if not self._data[dataset].alive.size:
            raise PyevonasError(f"no {dataset} training in the surrogate's sources got above chance accuracy")
        self._dead_share = float(dead.mean())
        # Columns that vary and are non-zero in at least 1 % of the rows (half the fitting time
        # of all 272, the same quality: docs/surrogate.md).
        self._columns = np.flatnonzero(((x != 0).mean(axis=0) >= 0.01) & (x.std(axis=0) > 0))
        x = x[:, self._columns]
        self._classifier = None
        if dead.any() and not dead.all():
            self._classifier = HistGradientBoostingClassifier(**knobs).fit(x, dead)
        self._regressor = HistGradientBoostingRegressor(**knobs).fit(x[~dead], quantile[~dead])

    # ------------------------------------------------------------------ constructors
    @classmethod
    def fit(
        cls,
        sources: Source | Iterable[Source] | None = None,
        *,
        dataset: str,
        exclude_seeds: Iterable[int] = (),
        settings: Settings | None = None,
    ) -> Surrogate:
        """Fit a surrogate of ``dataset`` on the trained evaluations of ``sources``.

        Args:
            sources: see :func:`read_rows`; None: the paper's published evaluations (both CIFAR
                datasets: a model of one learns from the other's too).
            dataset: the dataset to predict (its rows must be among the sources').
            exclude_seeds: seeds of runs to leave out (to score the surrogate on them).
            settings: the model's settings (default :class:`Settings`).

        Raises:
            PyevonasError: unreadable sources, or no trained row of ``dataset`` left.

        Example:
            >>> s = Surrogate.fit(dataset="cifar10", settings=Settings(iterations=20))
            >>> acc = s.predict(["C(64,3,1) B L M(2) C(128,3,1) B L g"])
            >>> bool(0.1 < acc[0] < 1.0), s.predict_curve(["C(64,3,1) B L g"]).shape
            (True, (1, 12))
        """
        rows = read_rows(sources)
        excluded = tuple(sorted({int(s) for s in exclude_seeds}))
        if excluded:
            rows = rows.subset(~np.isin(rows.seed, excluded))
        if not np.any(rows.dataset == dataset):
            known = sorted(set(rows.dataset.tolist()))
            raise PyevonasError(f"the surrogate's sources hold no trained {dataset} evaluation (they hold {known})")
        return cls(rows, dataset, settings or Settings(), excluded)

    @classmethod
    def builtin(cls, name: str) -> Surrogate:
        """The surrogate of ``cifar10`` or ``cifar100`` fitted on all published evaluations (once per process).

        Raises:
            KeyError: another name.
        """
        if name not in ("cifar10", "cifar100"):
            raise KeyError(f"no built-in surrogate {name!r} (there are 'cifar10' and 'cifar100')")
        with _builtin_lock:
            if name not in _builtin:
                _builtin[name] = cls.fit(dataset=name)
            return _builtin[name]

    # ------------------------------------------------------------------ predictions
    def _parts(self, archs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """P(dead) and the accuracy if alive, of each architecture."""
        from threadpoolctl import threadpool_limits

        x = _design(archs, self.dataset)[:, self._columns]
        # One OpenMP thread: a generation's few rows gain nothing from more, and on a busy machine
        # the threads' contention made a 25-candidate prediction 12-66x slower (BENCHMARKS.md).
        with threadpool_limits(limits=1, user_api="openmp"):
            dead = (
                self._classifier.predict_proba(x)[:, 1]
                if self._classifier is not None
                else np.full(len(archs), self._dead_share)
            )
            rank = np.clip(self._regressor.predict(x), 0.0, 1.0)
        return dead, rank

    def predict(self, archs: Sequence[Any], *, noise: bool = False, seed: int | None = None) -> np.ndarray:
        """Predicted 12-epoch validation accuracy of each architecture (float64, in [0, 1]).

        Args:
            archs: chromosomes (lists of gene dicts) or text notation.
            noise: draw what one training would give instead of the expectation (dead with the
                predicted probability, else the prediction plus the spread of repeated trainings).
            seed: the noise's random seed.

        Raises:
            EncodingError: an architecture the features cannot read (named by its index).
        """
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        dead, rank = self._parts(archs)
        here = self._data[self.dataset]
        if not noise:
            # The expected rank among all trainings of the dataset (dead ones share the bottom
            # D of the ranks, living ones the rest), as the accuracy found at that rank.
            d = here.dead_share
            expected = dead * d / 2 + (1 - dead) * (d + (1 - d) * rank)
            return np.asarray(np.quantile(here.everything, expected), dtype=np.float64)
        rng = np.random.default_rng(seed)
        died = rng.random(len(archs)) < dead
        drawn = np.quantile(here.alive, rank) + rng.normal(0.0, here.spread, len(archs))
        return np.asarray(np.clip(np.where(died, here.dead_mean, drawn), 0.0, 1.0), dtype=np.float64)

    def _neighbours(self, archs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        return self._data[self.dataset].archive.nearest(archs, self.settings.neighbours)

    def predict_curve(self, archs: Sequence[Any], *, noise: bool = False, seed: int | None = None) -> np.ndarray:
        """Predicted validation accuracy after each of the 12 epochs: (len(archs), 12) float64.

        The prediction of :meth:`predict` times the mean curve shape (each epoch's accuracy over
        the best) of the most similar published architectures, weighted by similarity.
        """
        archs = list(archs)
        if not archs:
            return np.zeros((0, EPOCHS))
        final = self.predict(archs, noise=noise, seed=seed)
        index, sims = self._neighbours(archs)
        weights = np.maximum(sims, 1e-6) ** self.settings.sharpness
        shapes = self._data[self.dataset].shapes[index]  # (q, k, 12)
        shape = (weights[:, :, None] * shapes).sum(axis=1) / weights.sum(axis=1)[:, None]
        return np.asarray(final[:, None] * shape, dtype=np.float64)

    def coverage(self, archs: Sequence[Any]) -> np.ndarray:
        """Similarity of each architecture to its most similar training row of the dataset, in [0, 1].

        Near 1: the surrogate has seen this architecture or a close one; below about 0.8 it
        extrapolates.
        """
        archs = list(archs)
        if not archs:
            return np.zeros(0)
        _, sims = self._data[self.dataset].archive.nearest(archs, 1)
        return np.asarray(sims[:, 0], dtype=np.float64)

    def __repr__(self) -> str:
        return f"Surrogate({self.dataset!r}, {len(self.rows)} trained evaluations)"

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Write the model file: the settings and the training rows, gzip-compressed JSON.

        The file holds data only; :meth:`load` fits the same model again from it.
        """
        table: dict[str, int] = {}
        distinct: list[Any] = []
        index = []
        for arch in self.rows.chromosomes:
            key = json.dumps(arch, sort_keys=True)
            if key not in table:
                table[key] = len(distinct)
                distinct.append(arch)
            index.append(table[key])
        doc = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "dataset": self.dataset,
            "settings": asdict(self.settings),
            "excluded_seeds": list(self.excluded_seeds),
            "sources": list(self.rows.source),
            "chromosomes": distinct,
            "rows": {
                "chromosome": index,
                "dataset": self.rows.dataset.tolist(),
                "seed": self.rows.seed.tolist(),
                "fitness": self.rows.fitness.tolist(),
                "curves": self.rows.curves.tolist(),
            },
        }
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
        p = Path(path)
        with open(p, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(text.encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Read a model file written by :meth:`save` and fit its model again.

        Raises:
            PyevonasError: the file is missing, not a surrogate model file, of another version,
                or damaged (one line naming the file and what is wrong).
        """
        p = Path(path)
        try:
            with gzip.open(p, "rt", encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise PyevonasError(f"surrogate model file {p} does not exist") from None
        except (OSError, EOFError, ValueError) as exc:
            raise PyevonasError(f"{p}: not a surrogate model file ({type(exc).__name__}: {exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
            raise PyevonasError(f"{p}: not a surrogate model file (no format {MODEL_FORMAT!r})")
        if doc.get("version") != MODEL_VERSION:
            raise PyevonasError(
                f"{p}: surrogate model version {doc.get('version')!r} is not supported (this pyevonas reads {MODEL_VERSION})"
            )
        try:
            rows, dataset, settings, excluded = _decode(doc, p)
        except PyevonasError as exc:
            raise PyevonasError(f"{p}: damaged surrogate model file ({exc})") from None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PyevonasError(f"{p}: damaged surrogate model file ({type(exc).__name__}: {exc})") from None
        return cls(rows, dataset, settings, excluded)


def _decode(doc: Mapping[str, Any], path: Path) -> tuple[Rows, str, Settings, tuple[int, ...]]:
    raw = doc["rows"]
    chromosomes = doc["chromosomes"]
    index = [int(i) for i in raw["chromosome"]]
    n = len(index)
    curves = np.asarray(raw["curves"], dtype=np.float64)
    columns = {"dataset": raw["dataset"], "seed": raw["seed"], "fitness": raw["fitness"]}
    if curves.shape != (n, EPOCHS) or any(len(c) != n for c in columns.values()):
        raise PyevonasError(f"its row columns differ in length or the curves are not {EPOCHS} epochs")
    if n == 0:
        raise PyevonasError("it holds no training rows")
    known = {f.name for f in fields(Settings)}
    unknown = set(doc["settings"]) - known
    if unknown:
        raise PyevonasError(f"unknown settings {sorted(unknown)}")
    rows = Rows(
        [chromosomes[i] for i in index],
        np.asarray(columns["dataset"], dtype=str),
        np.asarray(columns["seed"], dtype=np.int64),
        np.asarray(columns["fitness"], dtype=np.float64),
        curves,
        (str(path),),
    )
    if not np.isfinite(rows.fitness).all() or not np.isfinite(curves).all():
        raise PyevonasError("a fitness or curve value is not a number")
    dataset = str(doc["dataset"])
    if not np.any(rows.dataset == dataset):
        raise PyevonasError(f"it holds no {dataset} rows")
    return rows, dataset, Settings(**doc["settings"]), tuple(int(s) for s in doc.get("excluded_seeds", []))


_builtin_lock = threading.Lock()
_builtin: dict[str, Surrogate] = {}

__all__ = ["DEAD_MARGIN", "MODEL_FORMAT", "MODEL_VERSION", "Rows", "Settings", "Surrogate", "read_rows"]
