"""The generational loop of the search: sample, evaluate, store, measure, select, breed under control.

One generation::

    evaluate the pending candidates (cache by canonical form; a failure never stops the search)
    -> rank by fitness, keep the top k (or by Pareto rank, novelty or DNS: search.selection)
    -> breed the next generation under the diversity control (Algorithm 1)
    -> store the children, their similarity matrix, diversity, control iterations and decision

Crash safety. Every state change is one store transaction: a generation is written together with
its similarity matrix, its control loop and the state of the random generator that comes after it.
A finished evaluation is written as soon as it finishes. ``resume(run_dir)`` therefore finds either
a whole generation or none, re-evaluates only candidates without a result, and breeds from the
saved generator state, so a resumed run has exactly the chromosomes of an uninterrupted one.

The loop knows no screen: it reports through observers (callables receiving the events of
:mod:`pyevonas.search.events`); ``pyevonas.cli.live`` turns them into a terminal view.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import ConfigError, EncodingError, RunStoreError, TrainingError
from pyevonas.metric import Arch, Chromosome, diversity, format_arch, sequence, similarity_matrix
from pyevonas.metric._args import check_thread_setting
from pyevonas.metric.schema import Scoring, resolve_scoring
from pyevonas.runs.objectives import Objective, named_values
from pyevonas.runs.records import (
    EVALUATED_STATUSES,
    OUTCOMES,
    UNFINISHED,
    Individual,
    Status,
    at_chance,
    cell_notation,
    finite_json,
    is_trained,
    outcome,
)
from pyevonas.runs.store import RunStore
from pyevonas.search import halving, reuse, warmstart
from pyevonas.search.cells import AnySpace, CellSpace, check_schema, load_space, space_from_dict
from pyevonas.search.config import (
    EXECUTION_SETTINGS,
    RAY_SETTINGS,
    TRAIN_EVALUATOR,
    RunConfig,
    check_recorded_objectives,
)
from pyevonas.search.control import ControlFunction, breed_under_control, control_from_config
from pyevonas.search.events import (
    CandidateInfo,
    CandidateProgress,
    CandidateUpdate,
    ControlStep,
    Event,
    FrontMeasured,
    GenerationBred,
    GenerationEvaluated,
    GenerationStarted,
    Observer,
    RunFinished,
    RunStarted,
)
from pyevonas.search.executors import (
    EvalJob,
    EvaluateFn,
    Evaluator,
    SurrogateEvaluator,
    detect_devices,
    make_evaluator,
)
from pyevonas.search.loggers import make_loggers
from pyevonas.search.operators import Child, breed
from pyevonas.search.selection import Selection, SelectionSettings, choose_parents
from pyevonas.training.config import TrainConfig
from pyevonas.training.data import dataset_info

_log = logging.getLogger("pyevonas.search.loop")

#: The file in a run folder that holds the best candidate so far (see :func:`best_record`).
BEST_NAME = "best.json"


@dataclass(frozen=True)
class RunResult:
    """What :func:`evolve` and :func:`resume` return.

    Attributes:
        run_dir: the run folder.
        best: the fittest evaluated individual of the whole run (None if none succeeded); with
            several objectives the first member of ``front``.
        n_generations: generations completed.
        elapsed_s: wall time of this call.
        front: with several objectives, the run's final Pareto front, best first in the
            objectives' order (:func:`~pyevonas.runs.objectives.pareto_front`); empty with one.
    """

    run_dir: Path
    best: Individual | None
    n_generations: int
    elapsed_s: float
    front: tuple[Individual, ...] = ()


class GenerationFailed(TrainingError):
    """No candidate of a generation trained, so there are no parents to breed the next one from.

    Attributes:
        generation: the generation.
        setting: the run setting that stopped every candidate (``"max_size_mb"`` when every one
            was oversized), or ``None`` when the errors do not point to one. A resumed run keeps
            its settings, so resuming cannot help when this names one.
    """

    def __init__(self, message: str, generation: int, setting: str | None = None) -> None:
        super().__init__(message)
        self.generation = generation
        self.setting = setting


def metrics_dict(metrics: Any) -> dict[str, Any]:
    """A metrics object (``Metrics`` or a mapping) as a plain dict with a ``status``."""
    if hasattr(metrics, "to_dict"):
        data = dict(metrics.to_dict())
    elif isinstance(metrics, Mapping):
        data = dict(metrics)
    else:
        return {
            "status": Status.FAILED,
            "error": f"evaluator returned {type(metrics).__name__}, not metrics",
        }
    status = data.get("status") or Status.OK
    if status not in OUTCOMES:
        return {
            **data,
            "status": Status.FAILED,
            "error": f"evaluator returned unknown status {status!r}",
        }
    data["status"] = Status(status)
    if status == Status.OK:
        fitness = data.get("fitness")
        if not isinstance(fitness, (int, float)) or not math.isfinite(float(fitness)):
            return {
                **data,
                "status": Status.FAILED,
                "error": f"evaluator returned no finite fitness ({fitness!r})",
            }
    return data


# ---------------------------------------------------------------------- public entry points
def evolve(
    config: RunConfig,
    *,
    evaluate_fn: EvaluateFn | None = None,
    evaluator: Evaluator | None = None,
    control: ControlFunction | None = None,
    observers: Iterable[Observer] = (),
    space: AnySpace | None = None,
    initial: Sequence[Arch] | None = None,
) -> RunResult:
    """Run a new search and store it in ``config.run_path``.

    Args:
        config: the resolved settings.
        evaluate_fn: evaluate in-process with this function instead of training
            (``fn(chromosome, train_config, progress) -> Metrics``); for tests and custom fitness.
        evaluator: an evaluation backend (a :class:`~pyevonas.search.executors.Evaluator`); default:
            ``pyevonas.search.executors.make_evaluator`` per config.
        control: a Python control function (see ``pyevonas.search.control.custom_control``); replaces the
            config's control, which is then recorded as ``"python"``.
        observers: callables receiving the loop's events.
        space: the search space (chains or cells); default ``load_space(config.space)``.
        initial: architectures (chromosomes or text notation) that open the first generation, in
            place of ``config.init`` (see :mod:`pyevonas.search.warmstart`).

    Returns:
        The run's folder, best individual and timing.

    Raises:
        RunStoreError: the run folder exists and is not empty.
        ConfigError, SearchSpaceError, SchemaError: bad settings.
        TrainingError: every candidate of a generation failed.
    """

    if control is not None:
        config = config.with_updates(control="python", control_upper=None, control_lower=None)
    elif config.control == "python":
        raise ConfigError("control = 'python' needs the control functions: pass control=custom_control(f, g)")
    if evaluate_fn is None and evaluator is None:
        check_recorded_objectives(config.objectives)
    check_thread_setting()  # a bad PYEVONAS_NUM_THREADS stops the run before its folder exists
    space = space if space is not None else load_space(config.space)
    scoring = _load_scoring(config.schema_name)
    check_schema(space, scoring)
    run_dir = config.run_path
    if initial is not None and config.init is not None:
        raise ConfigError("give the first architectures as initial= or as config.init, not both")
    init = None
    if initial is not None:
        init = warmstart.from_architectures(initial, space, scoring, config.population)
    elif config.init is not None:
        init = warmstart.load_initial(config.init, space, scoring, config.population)
    if control is None:
        control = control_from_config(config)
    observers = [*observers, *make_loggers(config.log)]  # a logger without its library: no run folder either
    # The backend first: one that cannot start (Ray unreachable or missing) leaves no run folder.
    backend, owned = _evaluator(config, evaluate_fn, evaluator)
    try:
        store = RunStore.create(
            run_dir,
            config=config.to_dict(),
            scoring=_scoring_dict(scoring),
            space=space.to_dict(),
            meta={
                "source": "pyevonas",
                "dataset": config.dataset,
                "control": f"python:{control.name}" if config.control == "python" and control else config.control,
                "seed": config.seed,
                "name": config.run_name,
                **({warmstart.META_KEY: init.to_meta()} if init is not None else {}),
                **_selection_meta(config, control),
                **_evaluator_meta(backend),
            },
        )
        try:
            return _Loop(store, config, space, scoring, control, backend, observers).run(resumed=False)
        finally:
            store.close()
    finally:
        if owned:
            backend.close()


def resume(
    run_dir: str | Path,
    *,
    evaluate_fn: EvaluateFn | None = None,
    evaluator: Evaluator | None = None,
    control: ControlFunction | None = None,
    observers: Iterable[Observer] = (),
    execution: Mapping[str, Any] | None = None,
) -> RunResult:
    """Continue a stopped run where it stopped, with its saved settings.

    Candidates without a result are evaluated (finished ones are kept, never repeated); a
    generation whose breeding was interrupted is bred again from the saved generator state.

    Args:
        run_dir: the run folder.
        evaluate_fn / evaluator / observers: as for :func:`evolve`.
        control: the Python control function, needed when the run was started with one.
        execution: new execution settings (``workers``, ``executor``, ``address``, ``device``), and
            ``log`` (where to log the rest of the run).

    Raises:
        RunStoreError: the folder is missing, corrupt or not a pyevonas run (it is not modified).
    """

    store = RunStore.open(run_dir)
    try:
        if store.meta.get("source") != "pyevonas":
            raise RunStoreError(
                f"{run_dir} holds an imported run ({store.meta.get('source')}); only pyevonas runs can be resumed"
            )
        config = RunConfig.from_dict(store.config, source=f"the config saved in {run_dir}")
        if execution:
            allowed = set(EXECUTION_SETTINGS)
            unknown = set(execution) - allowed
            if unknown:
                raise ConfigError(
                    f"--resume continues with the run's saved settings; {', '.join(sorted(unknown))} cannot be changed"
                )
            changes = {k: v for k, v in execution.items() if v is not None}
            workers = changes.get("workers")
            if "executor" not in changes and config.executor == "inprocess" and workers and workers > 1:
                changes["executor"] = "pool"  # as for a new run: several workers mean the pool
            config = config.with_updates(**changes)
        if config.control == "python":
            if control is None:
                raise ConfigError(
                    "this run was started with a Python control function; pass the same control= to resume it"
                )
        elif control is not None:
            raise ConfigError(f"this run uses control {config.control!r} from its config; control= cannot replace it")
        else:
            control = control_from_config(config)
        space = space_from_dict(store.space, origin=f"the search space saved in {run_dir}")
        scoring = _scoring_from_dict(store.scoring, f"the scoring schema saved in {run_dir}")
        observers = [*observers, *make_loggers(config.log)]
        backend, owned = _evaluator(config, evaluate_fn, evaluator)
        try:
            _check_same_evaluator(store.meta, backend, run_dir)
            return _Loop(store, config, space, scoring, control, backend, observers).run(resumed=True)
        finally:
            if owned:
                backend.close()
    finally:
        store.close()


# ---------------------------------------------------------------------- helpers
def _load_scoring(schema: str) -> Scoring:

    return resolve_scoring(schema)


def _scoring_dict(scoring: Any) -> dict[str, Any]:
    return dict(scoring.to_dict())


def _scoring_from_dict(data: Mapping[str, Any], source: str) -> Scoring:

    return Scoring.from_dict(dict(data), source=source)


def _selection_meta(config: RunConfig, control: ControlFunction | None) -> dict[str, Any]:
    """What the run's meta says of a selection other than the paper's (nothing for the default): the
    settings, and a ``control`` label naming it too (``naive + dns``), so that reports, which group
    runs by control, keep such runs apart from the paper's."""
    settings = SelectionSettings.from_config(config)
    if settings.is_default:
        return {}
    base = f"python:{control.name}" if config.control == "python" and control else config.control
    return {"control": f"{base} + {settings.label}", "selection": settings.describe()}


def _evaluator_meta(backend: Evaluator) -> dict[str, Any]:
    """What the run's metadata records of a backend that does not train (the surrogate's model)."""
    described = backend.describe()
    return {} if described is None else {"evaluator": described}


def _check_same_evaluator(meta: Mapping[str, Any], backend: Evaluator, run_dir: str | Path) -> None:
    """Refuse to resume a simulated run with a surrogate model file that changed since it started."""
    before, now = meta.get("evaluator"), backend.describe()
    if not isinstance(before, Mapping) or now is None or before.get("sha256") == now.get("sha256"):
        return
    raise ConfigError(
        f"{run_dir} was simulated with the surrogate model {before.get('model')} (SHA-256 {before.get('sha256')}); "
        f"that file now has SHA-256 {now.get('sha256')}, and a resumed run must score with the same model"
    )


def _evaluator(
    config: RunConfig, evaluate_fn: EvaluateFn | None, evaluator: Evaluator | None
) -> tuple[Evaluator, bool]:
    """The backend to use and whether the loop owns it (and must close it)."""
    if evaluator is not None and evaluate_fn is not None:
        raise ValueError("give evaluate_fn or evaluator, not both")
    if evaluator is not None:
        return evaluator, False
    if config.evaluator != TRAIN_EVALUATOR:
        if evaluate_fn is not None:
            raise ConfigError(
                f"evaluate_fn trains candidates, but this run's evaluator is {config.evaluator!r} (a surrogate)"
            )
        return SurrogateEvaluator.from_config(config), True

    devices = None
    if config.executor == "pool":
        if config.device in ("auto", "cuda"):
            # Spread the workers over every visible GPU (`workers` per GPU), not all on cuda:0.
            found = detect_devices()
            devices = found if config.device == "auto" else [d for d in found if d.startswith("cuda")] or None
        elif config.device.startswith("cuda:"):
            devices = [config.device]
    made = make_evaluator(
        config.executor,
        workers=config.workers,
        address=config.address,
        devices=devices,
        evaluate_fn=evaluate_fn,
        timeout_s=config.candidate_timeout,
        ray_resources={"device": config.device, **{k: getattr(config, k) for k in RAY_SETTINGS}},
    )
    return made, True


def train_seed(seed: int, key: str) -> int:
    """The training seed of a candidate: a function of the run seed and the architecture only.

    Two identical architectures train identically, which is what makes the cache exact.
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def candidate_train_config(config: RunConfig, key: str, **overrides: Any) -> TrainConfig:
    """The training recipe of a candidate of a run: the run's dataset, epochs, device and
    ``train`` settings, with the candidate's own seed (:func:`train_seed` of the run seed and the
    candidate's canonical key). ``pyevonas train --from-run`` retrains a candidate with it,
    ``overrides`` being where it runs (``device``, ``data_dir``, ``download``).
    """
    settings = {
        "dataset": config.dataset,
        "data_dir": config.data_dir,
        "epochs": config.epochs,
        "device": config.device,
        "seed": train_seed(config.seed, key),
        **({"image_size": config.image_size} if config.image_size is not None else {}),
        **config.train,
        **overrides,
    }
    return TrainConfig.build(**settings)


def arch_notation(chromosome: Chromosome, scoring: Any = None) -> str:
    """The text notation of a chromosome with its parameters, as ``pyevonas train`` reads it.

    Written with the default schema's letters (``pyevonas train``'s default); a gene that schema
    does not know is written with ``scoring``'s (then ``train`` needs ``--schema``). A cell-space
    architecture is written as its cell (:func:`~pyevonas.runs.records.cell_notation`: a
    NAS-Bench-201 string or compact dag JSON), which ``pyevonas train CELL --space SPACE`` reads.
    """
    cell = cell_notation(chromosome)
    if cell is not None:
        return cell
    try:
        return format_arch(chromosome)
    except EncodingError:
        if scoring is None:
            raise
        return format_arch(chromosome, scoring)


def best_record(ind: Individual, config: RunConfig, scoring: Any = None) -> dict[str, Any]:
    """What ``best.json`` holds for an individual: who it is, its metrics, its text notation, the
    training seed it had, and its chromosome (``pyevonas train best.json`` reads the file)."""
    metrics = ("fitness", "val_accuracy", "test_accuracy", "params", "size_mb", "latency_ms", "flops", "train_seconds")
    record: dict[str, Any] = {
        "format": "pyevonas-best",
        "name": ind.name,
        "generation": ind.generation,
        "index": ind.index,
        "id": ind.id,
        "status": str(ind.status),
        **{key: getattr(ind, key) for key in metrics},
        "val_accuracy_per_epoch": list(ind.val_accuracy_per_epoch),
        "dataset": config.dataset,
        "epochs": config.epochs,
        "train_seed": train_seed(config.seed, ind.canonical_key),
        "sequence": ind.sequence,
        "notation": arch_notation(ind.chromosome, scoring),
        "chromosome": ind.chromosome,
    }
    return dict(finite_json(record))


def best_file(
    best: Individual, config: RunConfig, scoring: Any = None, front: Sequence[Individual] = ()
) -> dict[str, Any]:
    """What ``best.json`` holds: :func:`best_record` of the best and, in a run with several
    objectives, ``objectives`` (their names) and ``pareto_front``: every member of the run's front
    (``best`` is the first), each a :func:`best_record` without ``format``, with its
    ``objectives`` values by name. The top level stays one architecture, the one ``pyevonas train
    best.json`` trains."""
    record = best_record(best, config, scoring)
    objectives = _objectives(config)
    if len(objectives) < 2:
        return record
    members = []
    for ind in front:
        member = best_record(ind, config, scoring)
        del member["format"]
        members.append({**member, "objectives": named_values(ind, objectives)})
    record["objectives"] = [o.name for o in objectives]
    record["pareto_front"] = finite_json(members)
    return record


def _objectives(config: RunConfig) -> tuple[Objective, ...]:
    return SelectionSettings.from_config(config).objectives


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON beside ``path`` and rename it over ``path``: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def candidate_name(generation: int, index: int) -> str:
    """The name of a candidate: ``g<generation>-<index>``."""
    return f"g{generation}-{index}"


# ---------------------------------------------------------------------- the loop
@dataclass
class _Loop:
    store: RunStore
    config: RunConfig
    space: AnySpace
    scoring: Any
    control: ControlFunction | None
    evaluator: Evaluator
    observers: Iterable[Observer]
    _observers: list[Observer] = field(init=False)
    _num_classes: int | None = field(init=False, default=None)
    _elapsed_before: float = field(init=False, default=0.0)
    _session_start: float = field(init=False, default_factory=time.monotonic)
    _best: Individual | None = field(init=False, default=None)
    _front: list[Individual] = field(init=False, default_factory=list)
    _objectives: tuple[Objective, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self._observers = list(self.observers)
        self._objectives = _objectives(self.config)
        with contextlib.suppress(Exception):  # a dataset without a known class count: no marks
            self._num_classes = dataset_info(self.config.dataset, image_size=self.config.image_size)[1]

    def info(self, ind: Individual, *, starting: bool = False, budget: int | None = None) -> CandidateInfo:
        """A candidate as observers see it. ``starting``: at the start of a generation nothing
        runs yet, so a candidate left ``running`` by a stopped session is shown as pending.
        ``budget``: the epochs of the halving rung it starts training for (else its result's)."""
        status = Status.PENDING if starting and ind.status is Status.RUNNING else ind.status
        trained = is_trained(ind)
        costs: tuple[tuple[str, float | None], ...] = ()
        if len(self._objectives) >= 2:
            shown = ("fitness", "val_accuracy")
            costs = tuple(
                (name, value)
                for (name, value), o in zip(named_values(ind, self._objectives).items(), self._objectives, strict=True)
                if o.metric not in shown
            )
        if budget is None and self.config.budget == "halving" and halving.reached(ind):
            budget = halving.budget_of(ind, self.config.epochs)
        return CandidateInfo(
            ind.id,
            ind.index,
            ind.name,
            self.space.describe(ind.chromosome) if isinstance(self.space, CellSpace) else ind.sequence,
            status,
            ind.fitness,
            ind.error,
            trained,
            ind.val_accuracy,
            ind.test_accuracy,
            trained and at_chance(ind.val_accuracy if ind.val_accuracy is not None else ind.fitness, self._num_classes),
            costs,
            budget if self.config.budget == "halving" else None,
        )

    # ---------------------------------------------------------------- elapsed time and the best
    def elapsed(self) -> float:
        """Seconds spent on the run, earlier sessions included."""
        return self._elapsed_before + time.monotonic() - self._session_start

    def save_elapsed(self) -> None:
        self.store.set_state("elapsed_s", self.elapsed())

    def note_result(self, ind: Individual) -> None:
        """Keep ``best.json`` up to date: rewrite it as soon as a candidate beats the best so far."""
        if not is_trained(ind) or ind.fitness is None:
            return
        if len(self._objectives) >= 2:  # the front's first member; best.json holds the front
            before = [m.id for m in self._front]
            self._front = self.front([m for m in self._front if m.id != ind.id] + [ind])
            if [m.id for m in self._front] != before or ind.id in before:
                self._best = self._front[0] if self._front else self._best
                self.write_best()
            return
        best = self._best
        epochs = self.config.epochs
        if (
            best is not None
            and best.fitness is not None
            and ((*halving.rank_key(best, epochs), -best.id) >= (*halving.rank_key(ind, epochs), -ind.id))
        ):
            return
        self._best = ind
        self.write_best()

    def write_best(self) -> None:
        if self._best is None:
            return
        try:
            write_json_atomic(
                self.store.run_dir / BEST_NAME, best_file(self._best, self.config, self.scoring, self._front)
            )
        except OSError as exc:  # the store holds the result; a missing best.json must not end the run
            _log.warning("cannot write %s: %s", self.store.run_dir / BEST_NAME, exc)

    # ---------------------------------------------------------------- plumbing
    def emit(self, event: Event) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                # A broken display must not end a search that may have run for hours.
                _log.exception("observer %r failed; it will get no more events", observer)
                self._observers.remove(observer)

    def measure(self, chromosomes: Sequence[Chromosome]) -> tuple[np.ndarray, float]:

        matrix = np.asarray(
            similarity_matrix(list(chromosomes), schema=self.scoring),
            dtype=np.float64,
        )
        return matrix, float(diversity(matrix, how=self.config.diversity))

    def sequence(self, chrom: Chromosome) -> str:

        return str(sequence(chrom, schema=self.scoring))

    def train_config(self, key: str, stop_epoch: int | None = None, checkpoint: Path | None = None) -> TrainConfig:
        extra: dict[str, Any] = {}
        if stop_epoch is not None:  # a rung of successive halving
            extra = {"stop_epoch": stop_epoch, "checkpoint": str(checkpoint) if checkpoint is not None else None}
        return candidate_train_config(self.config, key, **extra)

    # ---------------------------------------------------------------- phases
    def run(self, resumed: bool) -> RunResult:
        start = self._session_start = time.monotonic()
        n_gen = self.config.generations
        stored = self.store.generations()
        if stored and resumed:
            self.retry_if_all_failed()
        self._elapsed_before = float(self.store.get_state("elapsed_s", 0.0, kind=(int, float)) or 0.0)
        individuals = self.store.individuals()
        unfinished = sum(1 for ind in individuals if ind.status in UNFINISHED)
        self.emit(
            RunStarted(
                self.store.run_dir,
                self.config,
                resumed,
                elapsed_before=self._elapsed_before,
                generations_stored=len(stored),
                finished=len(individuals) - unfinished,
                to_evaluate=unfinished,
            )
        )
        # best.json follows the store: after a resume it is rewritten from what the store holds.
        self._front = self.front()
        self._best = self.best()
        self.write_best()
        try:
            if not stored:
                self.create_initial()
            g = 1
            while True:
                self.evaluate_generation(g)
                self.record_selection(g)
                if g >= n_gen:
                    break
                if not self.store.individuals(g + 1):
                    self.breed_next(g)
                g += 1
        finally:
            # Elapsed time is also saved with every result; this keeps the time of an interruption.
            with contextlib.suppress(RunStoreError, sqlite3.Error):
                self.save_elapsed()
        self.store.set_state("finished", {"generations": n_gen, "at": time.time()})
        front = tuple(self.front())
        best = front[0] if front else self.best()
        elapsed = time.monotonic() - start
        self.emit(RunFinished(self.store.run_dir, best, elapsed, front))
        return RunResult(self.store.run_dir, best, n_gen, elapsed, front)

    def retry_if_all_failed(self) -> None:
        """On resume, give a generation that stopped the run (every candidate failed) a second try.

        Such a run stopped with an error, e.g. a missing dataset; once the cause is fixed, resuming
        must train those candidates again rather than stop at once with the same error.
        """
        last = self.store.generations()[-1]
        individuals = self.store.individuals(last)
        finished = all(ind.status not in UNFINISHED for ind in individuals)
        if individuals and finished and not any(is_trained(ind) for ind in individuals):
            with self.store.transaction():
                for ind in individuals:
                    if ind.status is Status.FAILED:
                        self.store.set_status(ind.id, Status.PENDING)
                for budget in halving.rungs(self.config.epochs):  # successive halving starts again
                    self.store.delete_state(halving.state_key(last, budget))

    def front(self, individuals: Sequence[Individual] | None = None) -> list[Individual]:
        """The Pareto front of ``individuals`` (default: the whole run's), with several objectives;
        empty with one."""
        chosen = self.store.individuals() if individuals is None else individuals
        return halving.final_front(chosen, self._objectives, self.config.epochs)

    def best(self) -> Individual | None:
        front = self.front()
        if front:
            return front[0]
        candidates = [ind for ind in self.store.individuals() if is_trained(ind)]
        if not candidates:
            return None
        return max(candidates, key=lambda ind: (*halving.rank_key(ind, self.config.epochs), -ind.id))

    # ---------------------------------------------------------------- parent selection
    def selection(self, g: int, individuals: Sequence[Individual] | None = None) -> Selection:
        """The ranked parents of the evaluated generation ``g`` (see :mod:`pyevonas.search.selection`)."""
        return choose_parents(
            self.store.individuals(g) if individuals is None else individuals,
            SelectionSettings.from_config(self.config),
            self.config.top_k,
            budget=lambda ind: halving.budget_of(ind, self.config.epochs),
            earlier=lambda: [ind for ind in self.store.individuals() if ind.generation < g],
            similarity=lambda rows, cols: np.asarray(
                similarity_matrix(list(rows), list(cols), schema=self.scoring), dtype=np.float64
            ),
        )

    def record_selection(self, g: int) -> None:
        """Store how generation ``g`` ranks (Pareto ranks, scores, parents) and report its front;
        nothing for the paper's selection. Recomputed identically on a resume."""
        if SelectionSettings.from_config(self.config).is_default:
            return
        chosen = self.selection(g)
        extras = dict(self.store.generation_record(g).extras or {})
        if extras.get("selection") != chosen.record:
            extras["selection"] = chosen.record
            self.store.save_generation(g, extras=extras)
        front = chosen.front
        if front is not None:
            self.emit(FrontMeasured(**vars(front)))

    def create_initial(self) -> None:
        rng = np.random.default_rng(self.config.seed)
        init_meta = self.store.meta.get(warmstart.META_KEY)
        init = warmstart.InitialArchitectures.from_meta(init_meta) if init_meta else None
        seeded = init.chromosomes[: self.config.population] if init is not None else []
        population = seeded + [self.space.sample(rng) for _ in range(self.config.population - len(seeded))]
        matrix, diversity = self.measure(population)
        with self.store.transaction():
            for index, chrom in enumerate(population):
                self.store.add_individual(1, index, candidate_name(1, index), chrom, self.sequence(chrom))
            self.store.save_generation(
                1,
                matrix=matrix,
                diversity=diversity,
                decision={
                    "control": "initial",
                    "sampled": len(population) - len(seeded),
                    **({"seeded": len(seeded), "init": init.source} if init is not None else {}),
                },
                rng_state=rng.bit_generator.state,
            )
            self.save_elapsed()

    def evaluate_generation(self, g: int) -> None:

        started = time.monotonic()
        individuals = self.store.individuals(g)
        record = self.store.generation_record(g)
        self.emit(
            GenerationStarted(
                g,
                self.config.generations,
                tuple(self.info(i, starting=True) for i in individuals),
                record.diversity,
                record.window,
                record.decision,
                record.matrix,
            )
        )
        pending = [ind for ind in individuals if ind.status in UNFINISHED]
        first_of_key: dict[str, Individual] = {}
        duplicates: dict[str, list[Individual]] = {}
        jobs: list[Individual] = []
        misses: list[Individual] = []
        for ind in pending:
            hit = self.store.find_evaluated(ind.canonical_key)
            if hit is not None:
                self.store.set_result(ind.id, hit.metrics or {}, status=Status.CACHED, cached_from=hit.id)
                self.emit(CandidateUpdate(g, self.info(self.store.individual(ind.id))))
            else:
                misses.append(ind)
        for ind in self.reuse_near_duplicates(g, misses):
            if ind.canonical_key in first_of_key:
                duplicates.setdefault(ind.canonical_key, []).append(ind)
            else:
                first_of_key[ind.canonical_key] = ind
                jobs.append(ind)
        if self.config.budget == "halving":
            self.evaluate_halving(g)
        elif jobs:
            self.train(g, jobs, duplicates)
        self.finish_generation(g, started, record, bool(pending))

    # ---------------------------------------------------------------- near duplicates, halving
    def reuse_near_duplicates(self, g: int, candidates: list[Individual]) -> list[Individual]:
        """Give near duplicates of earlier evaluations their neighbour's result; return the others."""
        c = self.config
        if c.reuse_similarity >= 1.0 or c.near_duplicates != "reuse" or not candidates:
            return candidates
        archive = reuse.evaluated_archive(self.store.individuals(), before_generation=g)
        finder = reuse.NearDuplicates(c.reuse_similarity, archive, self.scoring)
        rest = []
        for ind, match in zip(candidates, finder.matches([i.chromosome for i in candidates]), strict=True):
            if match is None:
                rest.append(ind)
                continue
            source, sim = match
            data = {**(source.metrics or {}), reuse.SIMILARITY_KEY: sim}
            self.store.set_result(ind.id, data, status=Status.REUSED, cached_from=source.id)
            self.emit(CandidateUpdate(g, self.info(self.store.individual(ind.id))))
        return rest

    def evaluate_halving(self, g: int) -> None:
        """Successive halving over the generation's own candidates (see :mod:`pyevonas.search.halving`)."""
        run_dir = self.store.run_dir
        field = halving.entrants(self.store.individuals(g))
        entrant_ids = [ind.id for ind in field]
        for k, budget in enumerate(halving.rungs(self.config.epochs)):
            if k > 0:
                key = halving.state_key(g, budget)
                promoted = self.store.get_state(key, kind=list)
                if promoted is None:
                    promoted = halving.promote(field)
                    self.store.set_state(key, promoted)
                strangers = [i for i in promoted if i not in {ind.id for ind in field}]
                if strangers:  # the right type, the wrong ids: a hand edit, or another run's record
                    raise RunStoreError(
                        f"{self.store.path} is damaged: the loop state {key!r} promotes {strangers[:5]!r}, "
                        f"which are not candidates of generation {g}'s halving"
                    )
                halving.drop_checkpoints(run_dir, [ind.id for ind in field if ind.id not in promoted])
                by_id = {ind.id: ind for ind in self.store.individuals(g)}
                field = [by_id[i] for i in promoted]
            todo = [ind for ind in field if halving.reached(ind) < budget]
            if todo:
                self.train(g, todo, {}, stop_epoch=budget)
            field = [self.store.individual(ind.id) for ind in field]
        halving.drop_checkpoints(run_dir, entrant_ids)
        # Candidates with the architecture of an entrant copy its final result.
        sources = {ind.canonical_key: ind for ind in self.store.individuals(g) if ind.id in entrant_ids}
        for ind in self.store.individuals(g):
            source = sources.get(ind.canonical_key)
            if source is None or ind.id == source.id or ind.status is Status.REUSED:
                continue
            if ind.status in UNFINISHED or ind.metrics != source.metrics:
                copied = source.status in EVALUATED_STATUSES
                self.store.set_result(
                    ind.id,
                    source.metrics or {},
                    status=Status.CACHED if copied else None,
                    cached_from=source.id if copied else None,
                )
                self.emit(CandidateUpdate(g, self.info(self.store.individual(ind.id))))

    def train(
        self,
        g: int,
        jobs: list[Individual],
        duplicates: dict[str, list[Individual]],
        stop_epoch: int | None = None,
    ) -> None:
        """Train candidates (to ``stop_epoch`` of a halving rung, else all epochs) and store their results."""
        if jobs:
            by_id = {ind.id: ind for ind in jobs}
            budget = stop_epoch or self.config.epochs

            def on_progress(job_id: int, info: Mapping[str, Any]) -> None:
                if job_id not in by_id:
                    return
                if info.get("event") == "started":
                    # A job is "running" from when a worker takes it, so the view shows what trains.
                    self.store.set_status(job_id, Status.RUNNING)
                    self.emit(CandidateUpdate(g, self.info(self.store.individual(job_id), budget=budget)))
                    return
                if "epoch" not in info:
                    return
                self.emit(
                    CandidateProgress(
                        g,
                        job_id,
                        int(info.get("epoch", 0)),
                        int(info.get("epochs", self.config.epochs)),
                        info.get("val_accuracy"),
                    )
                )

            requests = [
                EvalJob(
                    ind.id,
                    ind.chromosome,
                    self.train_config(
                        ind.canonical_key,
                        stop_epoch,
                        halving.checkpoint_path(self.store.run_dir, ind.id) if stop_epoch is not None else None,
                    ),
                )
                for ind in jobs
            ]
            done: set[int] = set()
            for job_id, metrics in self.evaluator.evaluate(requests, on_progress):
                if job_id not in by_id or job_id in done:
                    continue
                done.add(job_id)
                data = metrics_dict(metrics)
                source = by_id[job_id]
                data[halving.BUDGET_KEY] = budget
                if stop_epoch is not None:  # the fitness at every rung the candidate went through
                    earlier = (source.metrics or {}).get("rungs", []) if halving.reached(source) else []
                    data["rungs"] = [*earlier, {"epochs": budget, "fitness": data.get("fitness")}]
                with self.store.transaction():
                    self.store.set_result(job_id, data)
                    for dup in duplicates.get(source.canonical_key, []):
                        if data["status"] in EVALUATED_STATUSES:
                            self.store.set_result(dup.id, data, status=Status.CACHED, cached_from=job_id)
                        else:
                            self.store.set_result(dup.id, data)
                    self.save_elapsed()
                self.note_result(self.store.individual(job_id))
                for changed in [source, *duplicates.get(source.canonical_key, [])]:
                    self.emit(CandidateUpdate(g, self.info(self.store.individual(changed.id))))
            missing = [ind for ind in jobs if ind.id not in done]
            for ind in missing:  # an evaluator that lost a job: count it as failed, go on
                self.store.set_result(
                    ind.id,
                    {"status": Status.FAILED, "error": "the evaluator returned no result", halving.BUDGET_KEY: budget},
                )
                self.emit(CandidateUpdate(g, self.info(self.store.individual(ind.id))))

    def finish_generation(self, g: int, started: float, record: Any, had_pending: bool) -> None:
        individuals = self.store.individuals(g)
        ok = [ind for ind in individuals if is_trained(ind)]
        fitness = [float(ind.fitness) for ind in ok if ind.fitness is not None]
        self.emit(
            GenerationEvaluated(
                generation=g,
                n_generations=self.config.generations,
                best_fitness=max(fitness) if fitness else None,
                median_fitness=float(np.median(fitness)) if fitness else None,
                diversity=record.diversity,
                n_ok=len(ok),
                n_failed=sum(1 for ind in individuals if ind.status is Status.FAILED),
                seconds=time.monotonic() - started,
                from_store=not had_pending,
            )
        )
        if not ok and g < self.config.generations:
            raise self.no_parents(g, individuals)

    def no_parents(self, g: int, individuals: Sequence[Individual]) -> GenerationFailed:
        """The error that stops a run whose generation ``g`` has no trained candidate."""
        outcomes = [outcome(ind) for ind in individuals]
        limit = self.config.train.get("max_size_mb")
        if outcomes and all(o is Status.OVERSIZED for o in outcomes):
            sizes = [ind.size_mb for ind in individuals if ind.size_mb is not None]
            smallest = f" (the smallest has {min(sizes):.2f} MB of weights)" if sizes else ""
            return GenerationFailed(
                f"no candidate of generation {g} was trained: all {len(outcomes)} are larger than"
                f" max_size_mb = {limit}{smallest}, so there are no parents to breed from",
                g,
                setting="max_size_mb",
            )
        errors = [ind.error for ind in individuals if ind.error]
        first = f"; first error: {errors[0]}" if errors else ""
        n_oversized = outcomes.count(Status.OVERSIZED)
        also = f" ({n_oversized} of them larger than max_size_mb = {limit})" if n_oversized else ""
        return GenerationFailed(
            f"every candidate of generation {g} failed{also}, so there are no parents to breed from{first}", g
        )

    def breed_next(self, g: int) -> None:
        config = self.config
        individuals = self.store.individuals(g)
        record = self.store.generation_record(g)
        if record.rng_state is None:
            raise RunStoreError(
                f"{self.store.run_dir}: generation {g} has no saved generator state; the run cannot be continued"
            )
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = record.rng_state
        except (ValueError, TypeError, KeyError) as exc:  # a hand-edited or foreign generator state
            raise RunStoreError(
                f"{self.store.path} is damaged: generation {g}'s generator state cannot be used ({exc})"
            ) from None
        parents = self.selection(g, individuals).parents
        elites = parents[: config.elitism]
        n_children = config.population - len(elites)
        parent_chroms = [p.chromosome for p in parents]
        elite_chroms = [e.chromosome for e in elites]
        accept = None
        if config.near_duplicates == "resample":
            archive = reuse.evaluated_archive(self.store.individuals(), before_generation=g + 1)
            accept = reuse.NearDuplicates(config.reuse_similarity, archive, self.scoring).accepts

        def make_population(rate: float, gen_rng: np.random.Generator) -> list[Child]:
            return breed(parent_chroms, n_children, self.space, gen_rng, rate, accept=accept)

        def measure(children: Sequence[Child]) -> float:
            return self.measure(elite_chroms + [c.chromosome for c in children])[1]

        result = breed_under_control(
            make_population,
            measure,
            control=self.control,
            s_gen=record.diversity,
            gen=g,
            n_gen=config.generations,
            p_mutation=config.p_mutation,
            rng=rng,
            mutation_decay=config.mutation_decay,
            decay_every=config.decay_every,
            max_iterations=config.max_control_iterations,
            on_iteration=lambda it: self.emit(ControlStep(g + 1, it, config.max_control_iterations)),
        )
        children: list[Child] = result.population
        population = elite_chroms + [c.chromosome for c in children]
        matrix, diversity = self.measure(population)
        decision = dict(result.decision)
        decision["parents"] = [p.id for p in parents]
        decision["elites"] = [e.id for e in elites]
        if accept is not None:
            decision["resampled"] = sum(c.resampled for c in children)
        with self.store.transaction():
            for it in result.iterations:
                self.store.add_control_iteration(
                    g + 1,
                    it.iteration,
                    it.diversity,
                    it.lo,
                    it.hi,
                    it.accepted,
                    it.p_mutation,
                )
            self.store.save_generation(
                g + 1,
                matrix=matrix,
                diversity=diversity,
                window=result.window,
                decision=decision,
                rng_state=rng.bit_generator.state,
            )
            members = [(e.chromosome, e.sequence, [e.id]) for e in elites] + [
                (c.chromosome, self.sequence(c.chromosome), [parents[k].id for k in c.parents]) for c in children
            ]
            for index, (chrom, seq, parent_ids) in enumerate(members):
                self.store.add_individual(g + 1, index, candidate_name(g + 1, index), chrom, seq, parents=parent_ids)
            self.save_elapsed()
        self.emit(GenerationBred(g + 1, decision, diversity, result.window))


__all__ = [
    "BEST_NAME",
    "GenerationFailed",
    "RunResult",
    "arch_notation",
    "best_file",
    "best_record",
    "candidate_name",
    "candidate_train_config",
    "evolve",
    "metrics_dict",
    "resume",
    "train_seed",
    "write_json_atomic",
]
