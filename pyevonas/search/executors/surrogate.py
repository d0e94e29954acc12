"""The surrogate evaluation backend: candidates scored in milliseconds by a model, not trained.

``pyevonas evolve --evaluator surrogate:cifar10`` (or ``surrogate:cifar100``, or
``surrogate:PATH`` to a saved model file) runs the whole search (diversity control, selection,
objectives, successive halving, the run store, resume, the live view, the reports) with every
candidate's accuracy predicted by :class:`pyevonas.surrogate.Surrogate`, a model fitted on the
published evaluations of the paper's runs. Nothing is trained and torch is never imported.

What a candidate's result holds (:class:`SimulatedMetrics`):

* ``fitness`` and ``val_accuracy``: the predicted final (12-epoch) validation accuracy; under
  successive halving, a rung that stops after ``stop_epoch`` epochs gets the best of the
  predicted per-epoch accuracies up to it (``val_accuracy_per_epoch``: the predicted curve up to
  the candidate's budget), as a training stopped there would report;
* ``params`` and ``size_mb``: counted from the chromosome (:func:`pyevonas.training.sizes.arch_size`,
  exactly what training measures); ``max_size_mb`` makes a larger candidate ``oversized`` as
  in training;
* ``coverage``: the similarity of the candidate to its nearest published evaluation, in [0, 1];
  below :data:`COVERAGE_THRESHOLD` the surrogate extrapolates;
* nothing for what only training measures: ``test_accuracy``, ``latency_ms``, ``flops`` and the
  training loss are ``None`` (a simulated run cannot rank by them: ``RunConfig`` refuses such
  objectives); ``train_seconds`` is the time the prediction took; ``device`` is ``"surrogate"``.

The contract of :mod:`pyevonas.search.executors.base` holds: the batch is predicted when the
results are first iterated, each job yields once (after its ``started`` event and one progress
event per predicted epoch), a candidate the surrogate cannot score is a failed result, and
stopping the iteration early leaves nothing behind. The run's metadata records the model
(:meth:`SurrogateEvaluator.describe`), so its reports say on every page that it was simulated.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pyevonas.errors import ConfigError, PyevonasError
from pyevonas.runs.simulation import Simulation, is_model_file
from pyevonas.search.config import RunConfig, surrogate_model
from pyevonas.search.executors._shared import check_ids, describe_error
from pyevonas.search.executors.base import EvalJob, Evaluator, MetricsLike, ProgressCallback, failed
from pyevonas.training.config import Metrics
from pyevonas.training.data import dataset_info
from pyevonas.training.sizes import arch_size

#: Epochs of the training the surrogate predicts (the paper's recipe: 12 epochs).
SURROGATE_EPOCHS = 12
#: A candidate whose coverage (similarity to the nearest published evaluation) is below this is
#: farther from the published evaluations than nine in ten candidates of a real search: there the
#: surrogate extrapolates most. It is the 10th percentile of the coverage of held-out published
#: runs (0.589 on CIFAR-10, 0.587 on CIFAR-100; benchmarks/results_surrogate_quality.json), so it
#: flags about one candidate in ten of a search like the paper's. (It was 0.8 before, which
#: flagged 98 % of them: every run records the threshold it was simulated with.)
COVERAGE_THRESHOLD = 0.59
#: The ``device`` a simulated result reports.
DEVICE = "surrogate"


class SurrogateModel(Protocol):
    """What the evaluator asks of a surrogate (:class:`pyevonas.surrogate.Surrogate` has it)."""

    def predict(self, chromosomes: Sequence[Any]) -> np.ndarray: ...

    def predict_curve(self, chromosomes: Sequence[Any]) -> np.ndarray: ...

    def coverage(self, chromosomes: Sequence[Any]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SimulatedMetrics(Metrics):
    """A result predicted by the surrogate: :class:`~pyevonas.training.config.Metrics` and its coverage.

    Attributes:
        coverage: similarity of the candidate to its nearest published evaluation, in [0, 1].
    """

    coverage: float | None = None


@dataclass(frozen=True)
class _Score:
    """The surrogate's prediction for one candidate, or why there is none."""

    final: float = math.nan
    curve: tuple[float, ...] = ()
    coverage: float | None = None
    error: str | None = None


def load_surrogate(model: str) -> tuple[SurrogateModel, str | None]:
    """The surrogate named by ``model`` and, for a file, its SHA-256.

    Args:
        model: a built-in surrogate's name (``cifar10``, ``cifar100``) or the path of a model
            file saved by ``pyevonas.surrogate.Surrogate.save``.

    Raises:
        ConfigError: an unknown name, a missing file, or a file that is not a surrogate (one
            line: the CLI prints it in red and exits with status 2).
    """
    path = Path(model).expanduser()
    if is_model_file(model) and not path.is_file():
        raise ConfigError(f"invalid setting 'evaluator': surrogate model file {path} does not exist")
    from pyevonas.surrogate import Surrogate

    if not is_model_file(model):
        try:
            return Surrogate.builtin(model), None
        except PyevonasError as exc:
            raise ConfigError(f"invalid setting 'evaluator': {exc}") from None
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"invalid setting 'evaluator': unknown surrogate {model!r} ({exc}); "
                "give surrogate:cifar10, surrogate:cifar100 or surrogate:PATH to a saved model file"
            ) from None
    try:
        loaded = Surrogate.load(path)
    except PyevonasError as exc:
        raise ConfigError(f"invalid setting 'evaluator': {exc}") from None
    return loaded, _sha256(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SurrogateEvaluator(Evaluator):
    """Score candidates with a surrogate model in this process; nothing is trained."""

    def __init__(
        self,
        surrogate: SurrogateModel,
        model: str,
        *,
        sha256: str | None = None,
        coverage_threshold: float = COVERAGE_THRESHOLD,
    ) -> None:
        """Args: surrogate: the model; model: what it was loaded from (a built-in name or a
        path), recorded with the run; sha256: the model file's digest; coverage_threshold: see
        :data:`COVERAGE_THRESHOLD`."""
        self._surrogate = surrogate
        self._model = model
        self._sha256 = sha256
        self._threshold = coverage_threshold
        self._shapes: dict[str, tuple[tuple[int, int, int], int] | None] = {}

    @classmethod
    def from_model(cls, model: str) -> SurrogateEvaluator:
        """The evaluator of a built-in surrogate (``cifar10``, ``cifar100``) or a saved model file.

        Raises:
            ConfigError: the model cannot be loaded (see :func:`load_surrogate`).
        """
        surrogate, sha256 = load_surrogate(model)
        return cls(surrogate, model, sha256=sha256)

    @classmethod
    def from_config(cls, config: RunConfig) -> SurrogateEvaluator:
        """The evaluator of a simulated run's settings (``evaluator = "surrogate:..."``), checked
        against its dataset and epochs.

        Raises:
            ConfigError: the run trains its candidates, the model cannot be loaded, or it does
                not model the run's dataset or training length.
        """
        model = surrogate_model(config.evaluator)
        if model is None:
            raise ConfigError(
                f"invalid setting 'evaluator': {config.evaluator!r} is not surrogate:NAME or surrogate:PATH"
            )
        evaluator = cls.from_model(model)
        evaluator.check(config.dataset, config.epochs)
        return evaluator

    @property
    def simulation(self) -> Simulation:
        """What the run's metadata records of this evaluator."""
        return Simulation(
            model=self._model,
            sha256=self._sha256,
            coverage_threshold=self._threshold,
            epochs=SURROGATE_EPOCHS,
        )

    def describe(self) -> dict[str, Any]:
        """See :meth:`Evaluator.describe`: the model, its file's digest, the coverage threshold."""
        return self.simulation.to_meta()

    def check(self, dataset: str, epochs: int) -> None:
        """Refuse a run the surrogate does not model (another dataset, another training length).

        Raises:
            ConfigError: naming the setting.
        """
        modelled = getattr(self._surrogate, "dataset", None)
        if not isinstance(modelled, str) and not is_model_file(self._model):
            modelled = self._model  # a built-in surrogate is named after its dataset
        if isinstance(modelled, str) and modelled != dataset:
            raise ConfigError(
                f"invalid setting 'dataset': {self.simulation.label} predicts {modelled} accuracies, "
                f"not {dataset}; give --dataset {modelled}"
            )
        if epochs != SURROGATE_EPOCHS:
            raise ConfigError(
                f"invalid setting 'epochs': {self.simulation.label} predicts {SURROGATE_EPOCHS}-epoch training "
                f"(the paper's recipe), so a simulated run has epochs = {SURROGATE_EPOCHS}, got {epochs}"
            )

    def evaluate(
        self, jobs: Sequence[EvalJob], on_progress: ProgressCallback | None = None
    ) -> Iterator[tuple[int, MetricsLike]]:
        """See :meth:`Evaluator.evaluate`."""
        check_ids(jobs)
        if not jobs:
            return
        for job in jobs:
            epochs = int(_setting(job.config, "epochs", SURROGATE_EPOCHS))
            if epochs != SURROGATE_EPOCHS:
                raise ConfigError(
                    f"invalid setting 'epochs': the surrogate predicts {SURROGATE_EPOCHS}-epoch training, got {epochs}"
                )
        started = time.perf_counter()
        scores = self._scores([job.chromosome for job in jobs])
        seconds = (time.perf_counter() - started) / len(jobs)
        for job, score in zip(jobs, scores, strict=True):
            if on_progress is not None:
                on_progress(job.id, {"event": "started", "device": DEVICE, "worker": 0, "pid": os.getpid()})
            if score.error is not None:
                yield job.id, failed(score.error)
                continue
            yield job.id, self._result(job, score, seconds, on_progress)

    # ------------------------------------------------------------------ helpers
    def _result(
        self, job: EvalJob, score: _Score, seconds: float, on_progress: ProgressCallback | None
    ) -> SimulatedMetrics | Metrics:
        """The metrics of one scored candidate (its progress events sent on the way)."""
        stop = _setting(job.config, "stop_epoch", None) or SURROGATE_EPOCHS
        stop = max(1, min(int(stop), SURROGATE_EPOCHS))
        try:
            size = self._size(job)
        except ValueError as exc:  # training could not build it either
            return failed(f"TrainingError: {exc}")
        sized: dict[str, Any] = {"device": DEVICE, "train_seconds": seconds}
        if size is not None:
            sized.update(params=size.params, size_mb=size.size_mb)
            limit = _setting(job.config, "max_size_mb", None)
            if limit is not None and size.size_mb > limit:
                return Metrics(
                    status="oversized", error=f"{size.size_mb:.1f} MB of weights > max_size_mb {limit}", **sized
                )
        curve = list(score.curve[:stop])
        for epoch, accuracy in enumerate(curve, 1):
            if on_progress is not None:
                on_progress(job.id, {"epoch": epoch, "epochs": stop, "val_accuracy": accuracy, "loss": None})
        fitness = score.final if stop >= SURROGATE_EPOCHS else max(curve)
        return SimulatedMetrics(
            status="ok",
            fitness=fitness,
            val_accuracy=fitness,
            val_accuracy_per_epoch=curve,
            epochs_run=stop,
            coverage=score.coverage,
            **sized,
        )

    def _size(self, job: EvalJob) -> Any:
        dataset = _setting(job.config, "dataset", None)
        if not isinstance(dataset, str):
            return None
        if dataset not in self._shapes:
            try:
                self._shapes[dataset] = dataset_info(dataset)
            except PyevonasError:
                self._shapes[dataset] = None
        shape = self._shapes[dataset]
        return None if shape is None else arch_size(job.chromosome, shape[0], shape[1])

    def _scores(self, chromosomes: list[Any]) -> list[_Score]:
        """The batch's predictions; when the batch fails, each candidate on its own, so that one
        architecture the surrogate cannot read fails alone (a ``ConfigError`` stops the run)."""
        try:
            return self._predict(chromosomes)
        except ConfigError:
            raise
        except Exception as exc:
            if len(chromosomes) == 1:
                return [_Score(error=describe_error(exc))]
        out = []
        for chrom in chromosomes:
            try:
                out.extend(self._predict([chrom]))
            except ConfigError:
                raise
            except Exception as exc:
                out.append(_Score(error=describe_error(exc)))
        return out

    def _predict(self, chromosomes: list[Any]) -> list[_Score]:
        n = len(chromosomes)
        final = np.asarray(self._surrogate.predict(chromosomes), dtype=np.float64).reshape(n)
        curves = np.asarray(self._surrogate.predict_curve(chromosomes), dtype=np.float64)
        if curves.shape != (n, SURROGATE_EPOCHS):
            raise ConfigError(
                f"the surrogate predicted curves of shape {curves.shape}, expected ({n}, {SURROGATE_EPOCHS})"
            )
        coverage = np.asarray(self._surrogate.coverage(chromosomes), dtype=np.float64).reshape(n)
        out = []
        for k in range(n):
            if not (math.isfinite(final[k]) and np.isfinite(curves[k]).all()):
                out.append(_Score(error="the surrogate predicted no finite accuracy"))
                continue
            cover = float(coverage[k]) if math.isfinite(coverage[k]) else None
            out.append(_Score(float(final[k]), tuple(float(v) for v in curves[k]), cover))
        return out


def _setting(config: Any, name: str, default: Any) -> Any:
    """A setting of a job's config (a ``TrainConfig``, a dataclass or a dict)."""
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


__all__ = [
    "COVERAGE_THRESHOLD",
    "DEVICE",
    "SURROGATE_EPOCHS",
    "SimulatedMetrics",
    "SurrogateEvaluator",
    "SurrogateModel",
    "load_surrogate",
]
