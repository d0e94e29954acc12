"""The generational loop of the search: sample, evaluate, store, measure, select, breed under control.

One generation::

    evaluate the pending candidates (cache by canonical form; a failure never stops the search)
    -> rank by fitness, keep the top k
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

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import ConfigError, RunStoreError, TrainingError
from pyevonas.metric import Chromosome, diversity, sequence, similarity_matrix
from pyevonas.metric.schema import Scoring, resolve_scoring
from pyevonas.runs.records import EVALUATED_STATUSES, OUTCOMES, UNFINISHED, Individual, Status, is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.control import ControlFunction, breed_under_control, control_from_config
from pyevonas.search.events import (
    CandidateInfo,
    CandidateProgress,
    CandidateUpdate,
    ControlStep,
    Event,
    GenerationBred,
    GenerationEvaluated,
    GenerationStarted,
    Observer,
    RunFinished,
    RunStarted,
)
from pyevonas.search.executors import EvalJob, EvaluateFn, Evaluator, detect_devices, make_evaluator
from pyevonas.search.operators import Child, breed, select_top_k
from pyevonas.search.space import SearchSpace
from pyevonas.training.config import TrainConfig

log = logging.getLogger("pyevonas.search.loop")


@dataclass(frozen=True)
class RunResult:
    """What :func:`evolve` and :func:`resume` return.

    Attributes:
        run_dir: the run folder.
        best: the fittest evaluated individual of the whole run (None if none succeeded).
        n_generations: generations completed.
        elapsed_s: wall time of this call.
    """

    run_dir: Path
    best: Individual | None
    n_generations: int
    elapsed_s: float


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
    space: SearchSpace | None = None,
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
        space: the search space; default ``SearchSpace.load(config.space)``.

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
    space = space if space is not None else SearchSpace.load(config.space)
    scoring = _load_scoring(config.schema_name)
    run_dir = config.run_path
    if control is None:
        control = control_from_config(config)
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
        execution: new execution settings (``workers``, ``executor``, ``address``, ``device``).

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
            allowed = {"workers", "executor", "address", "device"}
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
        space = SearchSpace.from_dict(store.space, origin=f"the search space saved in {run_dir}")
        scoring = _scoring_from_dict(store.scoring, f"the scoring schema saved in {run_dir}")
        backend, owned = _evaluator(config, evaluate_fn, evaluator)
        try:
            return _Loop(store, config, space, scoring, control, backend, observers).run(resumed=True)
        finally:
            if owned:
                backend.close()
    finally:
        store.close()


# ---------------------------------------------------------------------- helpers
def _load_scoring(schema: str) -> Any:

    return resolve_scoring(schema)


def _scoring_dict(scoring: Any) -> dict[str, Any]:
    return dict(scoring.to_dict())


def _scoring_from_dict(data: Mapping[str, Any], source: str) -> Any:

    return Scoring.from_dict(dict(data), source=source)


def _evaluator(
    config: RunConfig, evaluate_fn: EvaluateFn | None, evaluator: Evaluator | None
) -> tuple[Evaluator, bool]:
    """The backend to use and whether the loop owns it (and must close it)."""
    if evaluator is not None and evaluate_fn is not None:
        raise ValueError("give evaluate_fn or evaluator, not both")
    if evaluator is not None:
        return evaluator, False

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
    )
    return made, True


def train_seed(seed: int, key: str) -> int:
    """The training seed of a candidate: a function of the run seed and the architecture only.

    Two identical architectures train identically, which is what makes the cache exact.
    """
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _info(ind: Individual) -> CandidateInfo:
    return CandidateInfo(ind.id, ind.index, ind.name, ind.sequence, ind.status, ind.fitness, ind.error, is_trained(ind))


def candidate_name(generation: int, index: int) -> str:
    """The name of a candidate: ``g<generation>-<index>``."""
    return f"g{generation}-{index}"


# ---------------------------------------------------------------------- the loop
@dataclass
class _Loop:
    store: RunStore
    config: RunConfig
    space: SearchSpace
    scoring: Any
    control: ControlFunction | None
    evaluator: Evaluator
    observers: Iterable[Observer]
    _observers: list[Observer] = field(init=False)

    def __post_init__(self) -> None:
        self._observers = list(self.observers)

    # ---------------------------------------------------------------- plumbing
    def emit(self, event: Event) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:
                # A broken display must not end a search that may have run for hours.
                log.exception("observer %r failed; it will get no more events", observer)
                self._observers.remove(observer)

    def measure(self, chromosomes: Sequence[Chromosome]) -> tuple[np.ndarray, float]:

        matrix = np.asarray(
            similarity_matrix(list(chromosomes), schema=self.scoring),
            dtype=np.float64,
        )
        return matrix, float(diversity(matrix, how=self.config.diversity))

    def sequence(self, chrom: Chromosome) -> str:

        return str(sequence(chrom, schema=self.scoring))

    def train_config(self, key: str) -> Any:
        c = self.config
        settings = {
            "dataset": c.dataset,
            "data_dir": c.data_dir,
            "epochs": c.epochs,
            "device": c.device,
            "seed": train_seed(c.seed, key),
            **c.train,
        }
        return TrainConfig.build(**settings)

    # ---------------------------------------------------------------- phases
    def run(self, resumed: bool) -> RunResult:
        start = time.monotonic()
        n_gen = self.config.generations
        self.emit(RunStarted(self.store.run_dir, self.config, resumed))
        if not self.store.generations():
            self.create_initial()
        elif resumed:
            self.retry_if_all_failed()
        g = 1
        while True:
            self.evaluate_generation(g)
            if g >= n_gen:
                break
            if not self.store.individuals(g + 1):
                self.breed_next(g)
            g += 1
        self.store.set_state("finished", {"generations": n_gen, "at": time.time()})
        best = self.best()
        elapsed = time.monotonic() - start
        self.emit(RunFinished(self.store.run_dir, best, elapsed))
        return RunResult(self.store.run_dir, best, n_gen, elapsed)

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

    def best(self) -> Individual | None:
        candidates = [ind for ind in self.store.individuals() if is_trained(ind)]
        if not candidates:
            return None
        return max(candidates, key=lambda ind: (ind.fitness, -ind.id))

    def create_initial(self) -> None:
        rng = np.random.default_rng(self.config.seed)
        population = [self.space.sample(rng) for _ in range(self.config.population)]
        matrix, diversity = self.measure(population)
        with self.store.transaction():
            for index, chrom in enumerate(population):
                self.store.add_individual(1, index, candidate_name(1, index), chrom, self.sequence(chrom))
            self.store.save_generation(
                1,
                matrix=matrix,
                diversity=diversity,
                decision={"control": "initial", "sampled": len(population)},
                rng_state=rng.bit_generator.state,
            )

    def evaluate_generation(self, g: int) -> None:

        started = time.monotonic()
        individuals = self.store.individuals(g)
        record = self.store.generation_record(g)
        self.emit(
            GenerationStarted(
                g,
                self.config.generations,
                tuple(_info(i) for i in individuals),
                record.diversity,
                record.window,
            )
        )
        pending = [ind for ind in individuals if ind.status in UNFINISHED]
        first_of_key: dict[str, Individual] = {}
        duplicates: dict[str, list[Individual]] = {}
        jobs: list[Individual] = []
        for ind in pending:
            hit = self.store.find_evaluated(ind.canonical_key)
            if hit is not None:
                self.store.set_result(ind.id, hit.metrics or {}, status=Status.CACHED, cached_from=hit.id)
                self.emit(CandidateUpdate(g, _info(self.store.individual(ind.id))))
            elif ind.canonical_key in first_of_key:
                duplicates.setdefault(ind.canonical_key, []).append(ind)
            else:
                first_of_key[ind.canonical_key] = ind
                jobs.append(ind)
        if jobs:
            by_id = {ind.id: ind for ind in jobs}

            def on_progress(job_id: int, info: Mapping[str, Any]) -> None:
                if job_id not in by_id:
                    return
                if info.get("event") == "started":
                    # A job is "running" from when a worker takes it, so the view shows what trains.
                    self.store.set_status(job_id, Status.RUNNING)
                    self.emit(CandidateUpdate(g, _info(self.store.individual(job_id))))
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

            requests = [EvalJob(ind.id, ind.chromosome, self.train_config(ind.canonical_key)) for ind in jobs]
            done: set[int] = set()
            for job_id, metrics in self.evaluator.evaluate(requests, on_progress):
                if job_id not in by_id or job_id in done:
                    continue
                done.add(job_id)
                data = metrics_dict(metrics)
                source = by_id[job_id]
                with self.store.transaction():
                    self.store.set_result(job_id, data)
                    for dup in duplicates.get(source.canonical_key, []):
                        if data["status"] in EVALUATED_STATUSES:
                            self.store.set_result(dup.id, data, status=Status.CACHED, cached_from=job_id)
                        else:
                            self.store.set_result(dup.id, data)
                for changed in [source, *duplicates.get(source.canonical_key, [])]:
                    self.emit(CandidateUpdate(g, _info(self.store.individual(changed.id))))
            missing = [ind for ind in jobs if ind.id not in done]
            for ind in missing:  # an evaluator that lost a job: count it as failed, go on
                self.store.set_result(
                    ind.id,
                    {"status": Status.FAILED, "error": "the evaluator returned no result"},
                )
                self.emit(CandidateUpdate(g, _info(self.store.individual(ind.id))))
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
                from_store=not pending,
            )
        )
        if not ok and g < self.config.generations:
            errors = [ind.error for ind in individuals if ind.error]
            first = f"; first error: {errors[0]}" if errors else ""
            raise TrainingError(
                f"every candidate of generation {g} failed, so there are no parents to breed from{first}"
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
        rng.bit_generator.state = record.rng_state
        ranked = select_top_k(
            [ind.fitness if is_trained(ind) else None for ind in individuals],
            config.top_k,
        )
        parents = [individuals[i] for i in ranked]
        elites = parents[: config.elitism]
        n_children = config.population - len(elites)
        parent_chroms = [p.chromosome for p in parents]
        elite_chroms = [e.chromosome for e in elites]

        def make_population(rate: float, gen_rng: np.random.Generator) -> list[Child]:
            return breed(parent_chroms, n_children, self.space, gen_rng, rate)

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
        self.emit(GenerationBred(g + 1, decision, diversity, result.window))
