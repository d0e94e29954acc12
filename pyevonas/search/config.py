"""RunConfig: every setting of an evolutionary search, resolved from defaults < run.toml < CLI flags.

A ``RunConfig`` is a frozen pydantic model. ``RunConfig.resolve(file, overrides)`` merges the
three layers, validates them, and turns every problem into one ``ConfigError`` that names the
setting (``population``, ``control_upper``...) and, for a file, the file. The resolved config is
saved with the run (``RunConfig.to_dict()``) so that ``--resume`` continues with exactly the same
settings.

Example run.toml::

    dataset = "cifar10"
    data_dir = "~/data/cifar10"
    generations = 20
    population = 25
    control = "rigid"          # naive | rigid | soft | target | custom
    seed = 1
    objectives = ["val_accuracy", "params"]   # Pareto ranking (docs/selection.md)
    selection = "dns"          # topk | novelty | dns

    [train]                    # any further TrainConfig setting
    batch_size = 256

A dataset of one's own, a warm start and a smaller budget (docs/budget.md)::

    dataset = "folder:~/data/flowers"   # or "npz:~/data/mine.npz"
    image_size = 32
    init = "seeds.json"                 # or another run's folder
    reuse_similarity = 0.95
    near_duplicates = "reuse"           # reuse | resample
    budget = "halving"                  # full | halving
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pyevonas.errors import ConfigError, DatasetError
from pyevonas.metric.api import DiversityHow
from pyevonas.runs.objectives import DEFAULT_OBJECTIVES, parse_objectives
from pyevonas.runs.settings import EXECUTION_SETTINGS, RAY_SETTINGS
from pyevonas.runs.simulation import SURROGATE_PREFIX, Simulation, is_model_file
from pyevonas.search.cells import CELL_SCHEMA, is_cell_space
from pyevonas.search.expressions import check_margins, compile_expression
from pyevonas.training.config import usable_cores
from pyevonas.training.datasets_custom import MAX_IMAGE_SIDE, canonical_spec, spec_label
from pyevonas.training.device import resolve_device

ControlKind = Literal["naive", "rigid", "soft", "target", "custom", "python"]
# The selection settings' vocabulary lives here with the settings: pyevonas.search.selection reads
# them (and RunConfig) and this module never imports it, so the two do not import each other.
#: Parent selection method.
SelectionKind = Literal["topk", "novelty", "dns"]
#: Ties within a Pareto front: crowding distance or isolation (1 - similarity).
TieBreak = Literal["crowding", "similarity"]
#: Whom novelty and DNS compare with: the generation or every candidate trained so far.
ArchiveScope = Literal["population", "run"]

#: Default number of neighbours k of novelty and DNS (the DNS paper's k = 3).
DEFAULT_NEIGHBOURS = 3

#: The built-in offline dataset: small enough that a whole search runs in minutes on a laptop.
DEMO_DATASET = "digits"
#: Budget used for the demo dataset when neither the file nor the flags set it. The paper's
#: budget (20 generations x 25 individuals x 12 epochs) would take hours even on 8x8 digits.
DEMO_BUDGET: dict[str, int] = {
    "generations": 8,
    "population": 8,
    "epochs": 4,
    "top_k": 3,
}
#: Training settings of the demo dataset when not given: the paper's batch of 256 leaves about
#: five SGD steps per epoch on digits' ~1,400 training images, too few to learn anything in a few
#: epochs, so the demo trains with smaller batches and a gentler learning rate. One torch thread:
#: on 8x8 images every step is a chain of tiny kernels, and a second thread only adds
#: synchronisation (measured 1.2 s per epoch at 1 thread vs 30 s at 2 threads on a busy 2-core box).
DEMO_TRAIN: dict[str, Any] = {"batch_size": 64, "lr": 0.05, "num_workers": 1}

#: The ``evaluator`` setting of a run whose candidates are trained (the default).
TRAIN_EVALUATOR = "train"
#: Metrics only training measures: a simulated run (``evaluator = "surrogate:..."``) has none of
#: them, so it cannot rank by them (see ``pyevonas.search.executors.surrogate``).
NOT_SIMULATED = ("test_accuracy", "latency_ms", "flops", "images_per_second")
#: The upper bound of a run's counts (generations, population, epochs, neighbours...): far above
#: any search that can finish, low enough that a typo (10**9 generations) is refused at once.
MAX_COUNT = 100_000
#: The most parallel evaluations (``workers``).
MAX_WORKERS = 1024
#: ``ray_code``: ship the pyevonas package this process runs (its folder, compiled core included).
SHIP_PACKAGE = "package"
#: ``ray_code``: ship nothing; every node has pyevonas installed.
SHIP_NOTHING = "installed"
#: The fields of Ray's ``runtime_env`` that ``ray_runtime_env`` may hold.
RUNTIME_ENV_FIELDS = frozenset(
    {"working_dir", "py_modules", "py_executable", "excludes", "pip", "uv", "conda", "container", "image_uri",
     "env_vars", "worker_process_setup_hook", "config", "nsight", "mpi", "java_jars"}
)  # fmt: skip


def check_ray_code(value: str) -> str:
    """Check a ``ray_code`` setting: ``package`` or ``installed``.

    Raises:
        ValueError: anything else.
    """
    if value not in (SHIP_PACKAGE, SHIP_NOTHING):
        raise ValueError(
            f"expected {SHIP_PACKAGE} (ship the pyevonas running here) or {SHIP_NOTHING} (every node has it), "
            f"got {value!r}"
        )
    return value


#: The metrics the built-in evaluation records (``pyevonas.training.config.Metrics``), which an
#: objective of a run trained or simulated by pyevonas may name (``val_accuracy`` reads ``fitness``,
#: ``macs`` reads ``flops``). An ``evaluate_fn`` of one's own may record others.
RECORDED_METRICS = (
    "fitness",
    "val_accuracy",
    "test_accuracy",
    "params",
    "size_mb",
    "latency_ms",
    "flops",
    "train_seconds",
    "epochs_run",
    "images_per_second",
)
#: Recorded metrics that lie in [0, 1] (a reference of 1 or more cannot be beaten).
BOUNDED_METRICS = ("fitness", "val_accuracy", "test_accuracy")
#: Recorded costs that are never negative (a reference of 0 or less cannot be beaten).
COST_METRICS = ("params", "size_mb", "latency_ms", "flops", "train_seconds")


def check_recorded_objectives(objectives: Sequence[str]) -> None:
    """Refuse an objective that names no metric the built-in evaluation records (a typo such as
    ``param`` would rank every candidate by a missing value for a whole search).

    Raises:
        ConfigError: naming the objective and the closest recorded metric.
    """
    for obj in parse_objectives(objectives):
        if obj.metric not in RECORDED_METRICS:
            names = sorted({*RECORDED_METRICS, "macs"} - {"fitness"})
            close = difflib.get_close_matches(obj.label, names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(
                f"objective {obj.name!r} is not a metric the evaluation records{hint} "
                f"(objectives: {', '.join(names)}; an evaluate_fn of your own may record others)"
            )


def surrogate_model(evaluator: str) -> str | None:
    """The surrogate an ``evaluator`` setting names (``surrogate:cifar10`` -> ``cifar10``), else ``None``.

    Example:
        >>> surrogate_model("surrogate:cifar100"), surrogate_model("train")
        ('cifar100', None)
    """
    if not evaluator.startswith(SURROGATE_PREFIX):
        return None
    return evaluator[len(SURROGATE_PREFIX) :] or None


def _trains_on_cpu(device: Any) -> bool:
    """Whether candidates of a run with this ``device`` setting train on the CPU."""
    if device != "auto":
        return bool(device == "cpu")
    try:
        return resolve_device("auto").type == "cpu"
    except ImportError:
        return True  # no training stack: the CLI's preflight says so


class RunConfig(BaseModel):
    """All settings of one evolutionary search (defaults: the paper's, Sec. 5).

    Attributes:
        name: a label for the run (default: derived from dataset, control and seed).
        generations: number of generations N_gen (also the N_gen of the control windows).
        population: individuals per generation.
        top_k: parents are drawn rank-weighted among the top k of a generation.
        p_mutation: probability that a gene position is mutated (0.2 = the paper's 20%).
        mutation_decay: how much ``p_mutation`` drops every ``decay_every`` control iterations.
        decay_every: control iterations between two mutation-rate decays.
        max_control_iterations: the control loop gives up after this many candidate populations
            and takes the one closest to the window.
        control: ``naive`` (no control), ``rigid`` (Eq. 2), ``soft`` (Eq. 3), ``target`` (the
            absolute measure and its change: :data:`pyevonas.search.control.TARGET`), ``custom``
            (the expressions below), ``python`` (callables given to :func:`pyevonas.search.loop.evolve`).
        control_upper: expression f(gen, n_gen) of the upper margin, for ``control = "custom"``.
        control_lower: expression g(gen, n_gen) of the lower margin, for ``control = "custom"``.
        diversity: how a similarity matrix becomes one number: ``offdiag`` (paper: median of the
            off-diagonal entries), ``upper`` (upper triangle), ``full`` (the original code).
        elitism: the best this many individuals are carried over unchanged (0 = paper).
        seed: the one seed every random choice derives from.
        space: search space: ``"paper"`` (chains), ``"nb201"`` (NAS-Bench-201's cell) or a path
            to a space JSON, of chains or of cells (docs/search_space.md).
        schema_name: scoring schema of the similarity (``schema`` in files and flags); for a cell
            space ``"cells"`` unless given (``default`` with the cell and reduction genes).
        dataset: ``digits`` (built-in, offline), ``cifar10``, ``cifar100``, ``imagenet16-120``, or
            one's own: ``npz:PATH`` or ``folder:DIR`` (kept with an absolute path).
        data_dir: where the dataset files are (not needed for ``digits`` and one's own).
        image_size: for ``folder:DIR``, resize every image to this size (else all share one).
        init: seed the first generation with these architectures: a JSON file (a list of
            chromosomes or text-notation strings) or another run's folder (its best
            ``population`` individuals); the rest is sampled (:mod:`pyevonas.search.warmstart`).
        reuse_similarity: a child at least this similar to an architecture evaluated in an
            earlier generation is not trained (1.0: only an identical architecture, the cache).
        near_duplicates: what happens to such a child: ``reuse`` (take the most similar one's
            result, status ``reused``) or ``resample`` (breed another child instead).
        budget: ``full`` (every child trains ``epochs``) or ``halving`` (successive halving:
            ``epochs/4``, the better half ``epochs/2``, the better half of those ``epochs``).
        epochs: training epochs per candidate.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        train: further TrainConfig settings (batch_size, lr, ...).
        evaluator: how candidates are evaluated: ``train`` (default: trained and measured) or
            ``surrogate:NAME`` / ``surrogate:PATH``: scored in milliseconds by a surrogate model of
            the paper's published evaluations (``cifar10``, ``cifar100``, or a saved model file;
            kept with an absolute path), not trained. The dataset then defaults to the built-in
            surrogate's, epochs must be the surrogate's 12, and candidates are scored in this
            process (``pyevonas.search.executors.surrogate``).
        executor: evaluation backend: ``inprocess`` (default), ``pool`` (local worker processes;
            the default when ``workers`` > 1), ``ray`` (a Ray cluster, ``pip install 'pyevonas[ray]'``).
        workers: parallel evaluations (pool: per device).
        address: Ray cluster address for ``executor = "ray"``.
        candidate_timeout: wall-clock limit of one candidate's evaluation in seconds (None: none);
            one over it fails with the reason "timed out after N s" (pool: its worker is killed;
            ray: its task is cancelled; inprocess: checked after each epoch and at its end). An
            execution setting: ``--resume`` may change it.
        max_retries, cpus_per_candidate, gpus_per_candidate: for ``executor = "ray"``: how often a
            candidate whose worker or node was lost is run again (3), and what each candidate's
            task asks of the cluster: CPUs (1) and GPUs (default ``1 / workers`` of a GPU when the
            cluster has GPUs and ``device`` is CUDA or auto; none on ``cpu``). Execution settings.
        ray_code, ray_runtime_env: for ``executor = "ray"``: the code the job brings to the nodes
            (``package``: the pyevonas this process runs, its compiled core included, the default;
            ``installed``: nothing, every node has pyevonas), and further fields of Ray's ``runtime_env`` (``pip``, ``uv``, ``conda``,
            ``env_vars``, ``working_dir``, ``container``...). Execution settings.
        run_dir: where the run is stored (default ``runs/<name>``).
        objectives: what parents are ranked by (docs/selection.md): ``["val_accuracy"]`` (the
            fitness, the paper's) or two or more, e.g. ``["val_accuracy", "params"]``, ranked by
            Pareto rank; accuracies are maximised, costs (params, latency_ms, size_mb, flops or
            macs, any metric an evaluator records) minimised. A string ``"a,b"`` is split.
        selection: ``topk`` (the best ``top_k`` by the objectives, the paper's), ``novelty`` (the
            most novel architectures) or ``dns`` (Dominated Novelty Search).
        tiebreak: ties within a Pareto front: ``crowding`` (NSGA-II) or ``similarity`` (the most
            isolated architecture of the front first).
        neighbours: k of novelty and DNS: how many nearest architectures a score averages over.
        archive: whom novelty and DNS compare with: ``population`` or ``run`` (every candidate
            trained so far); default: ``run`` for novelty, ``population`` for dns.
        reference_point: hypervolume reference per objective name; default 0 for accuracies and
            1.1 x the largest value of generation 1 for costs.
        log: where the search is logged as it runs (:mod:`pyevonas.search.loggers`):
            ``tensorboard:DIR``, ``mlflow`` (a local store, ``./mlflow.db``) or ``mlflow:URI``;
            a string ``"a,b"`` is split. A resumed run continues the same logs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    generations: int = Field(20, ge=1, le=MAX_COUNT)
    population: int = Field(25, ge=2, le=MAX_COUNT)
    top_k: int = Field(5, ge=1)
    p_mutation: float = Field(0.2, ge=0.0, le=1.0)
    mutation_decay: float = Field(0.02, ge=0.0, le=1.0)
    decay_every: int = Field(5, ge=1, le=MAX_COUNT)
    max_control_iterations: int = Field(30, ge=1, le=MAX_COUNT)
    control: ControlKind = "rigid"
    control_upper: str | None = None
    control_lower: str | None = None
    diversity: DiversityHow = "offdiag"
    elitism: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    space: str = "paper"
    schema_name: str = Field("default", alias="schema")
    dataset: str = DEMO_DATASET
    data_dir: str | None = None
    image_size: int | None = Field(None, ge=1, le=MAX_IMAGE_SIDE)
    epochs: int = Field(12, ge=1, le=MAX_COUNT)
    device: str = "auto"
    train: dict[str, Any] = Field(default_factory=dict)
    evaluator: str = TRAIN_EVALUATOR
    executor: Literal["inprocess", "pool", "ray"] = "inprocess"
    workers: int = Field(1, ge=1, le=MAX_WORKERS)
    address: str | None = None
    candidate_timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    max_retries: int = Field(3, ge=0, le=100)
    cpus_per_candidate: float = Field(1.0, gt=0, le=1024, allow_inf_nan=False)
    gpus_per_candidate: float | None = Field(None, ge=0, le=64, allow_inf_nan=False)
    ray_code: str = SHIP_PACKAGE
    ray_runtime_env: dict[str, Any] | None = None
    run_dir: str | None = None
    init: str | None = None
    reuse_similarity: float = Field(1.0, gt=0.0, le=1.0)
    near_duplicates: Literal["reuse", "resample"] = "reuse"
    budget: Literal["full", "halving"] = "full"
    objectives: list[str] = Field(default_factory=lambda: list(DEFAULT_OBJECTIVES))
    selection: SelectionKind = "topk"
    tiebreak: TieBreak = "crowding"
    neighbours: int = Field(DEFAULT_NEIGHBOURS, ge=1, le=MAX_COUNT)
    archive: ArchiveScope | None = None
    reference_point: dict[str, float] = Field(default_factory=dict)
    log: list[str] = Field(default_factory=list)

    @field_validator("log", mode="before")
    @classmethod
    def _split_logs(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("log")
    @classmethod
    def _check_logs(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_log(spec)
        return value

    @field_validator("objectives", mode="before")
    @classmethod
    def _split_objectives(cls, value: Any) -> Any:
        # `--objectives val_accuracy,params` and `objectives = "val_accuracy,params"` in a file.
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("objectives")
    @classmethod
    def _check_objectives(cls, value: list[str]) -> list[str]:
        return [o.name for o in parse_objectives(value)]

    @model_validator(mode="before")
    @classmethod
    def _cell_space_schema(cls, data: Any) -> Any:
        # A cell space's architectures hold cell genes, which only a schema with cell genes reads.
        if isinstance(data, Mapping) and not {"schema", "schema_name"} & set(data) and is_cell_space(data.get("space")):
            return {**data, "schema": CELL_SCHEMA}
        return data

    @model_validator(mode="before")
    @classmethod
    def _workers_imply_pool(cls, data: Any) -> Any:
        # Asking for several workers means training several candidates at once.
        if isinstance(data, Mapping) and "executor" not in data:
            workers = data.get("workers")
            if _is_int(workers) and workers > 1:
                return {**data, "executor": "pool"}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        # The name becomes the folder runs/<name>: it must stay one folder inside runs/.
        if value is not None and (
            not value.strip() or value in (".", "..") or any(c in value for c in "/\\\0") or value.startswith(".")
        ):
            raise ValueError("cannot name a run folder: no path separators, no leading dot, not empty")
        return value

    @field_validator("dataset")
    @classmethod
    def _own_dataset_path(cls, value: str) -> str:
        # A dataset of one's own is kept with an absolute path, so a resume finds it from anywhere.
        try:
            return canonical_spec(value) or value
        except DatasetError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("ray_code")
    @classmethod
    def _check_ray_code(cls, value: str) -> str:
        return check_ray_code(value)

    @field_validator("ray_runtime_env")
    @classmethod
    def _check_runtime_env(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - RUNTIME_ENV_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown field {', '.join(unknown)}; Ray's runtime_env has {', '.join(sorted(RUNTIME_ENV_FIELDS))}"
            )
        return value or None

    @field_validator("evaluator")
    @classmethod
    def _check_evaluator(cls, value: str) -> str:
        # A model file is kept with an absolute path, so a resume finds it from anywhere.
        if value == TRAIN_EVALUATOR:
            return value
        model = surrogate_model(value.strip())
        if model is None:
            raise ValueError(f"expected {TRAIN_EVALUATOR}, surrogate:NAME (cifar10, cifar100) or surrogate:PATH")
        if is_model_file(model):
            model = str(Path(model).expanduser().absolute())
        return SURROGATE_PREFIX + model

    @model_validator(mode="after")
    def _check_consistency(self) -> RunConfig:
        self._check_sizes()
        self._check_simulation()
        self._check_control()
        self._check_reference_point()
        self._check_train_table()
        if self.image_size is not None and not self.dataset.startswith("folder:"):
            raise ValueError(f"image_size resizes the images of a folder: dataset, not of {self.dataset}")
        return self

    def _check_sizes(self) -> None:
        """Refuse a top_k or an elitism that the population cannot hold."""
        if self.top_k > self.population:
            raise ValueError(f"top_k ({self.top_k}) must not exceed population ({self.population})")
        if self.elitism >= self.population:
            raise ValueError(f"elitism ({self.elitism}) must be smaller than population ({self.population})")

    def _check_simulation(self) -> None:
        """Refuse settings a surrogate cannot honour: worker processes, and objectives it does not predict."""
        if self.evaluator == TRAIN_EVALUATOR:
            return
        if is_cell_space(self.space):
            raise ValueError(
                f"the surrogates model the paper's chain space; a cell space ({self.space}) must be trained "
                f"(evaluator = {TRAIN_EVALUATOR!r})"
            )
        if self.executor != "inprocess":
            raise ValueError(
                f"a simulated run (evaluator = {self.evaluator!r}) scores its candidates in this process; "
                f"executor = {self.executor!r} and workers do not apply"
            )
        measured = [o.name for o in parse_objectives(self.objectives) if o.metric in NOT_SIMULATED]
        if measured:
            raise ValueError(
                f"objectives {', '.join(measured)}: only training measures them, and a simulated run "
                f"(evaluator = {self.evaluator!r}) trains nothing; rank by val_accuracy, params or size_mb"
            )

    def _check_control(self) -> None:
        """Refuse margin expressions that do not go with the control, do not compile or cross."""
        if self.control == "custom":
            if self.control_upper is None or self.control_lower is None:
                raise ValueError("control = 'custom' needs both control_upper and control_lower expressions")
        elif self.control_upper is not None or self.control_lower is not None:
            raise ValueError(f"control_upper/control_lower are only used with control = 'custom', not {self.control!r}")
        margins = {}
        for key in ("control_upper", "control_lower"):
            text = getattr(self, key)
            if text is not None:
                try:
                    margins[key] = compile_expression(text)
                except ConfigError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        if len(margins) == 2:
            # Every generation of the run, before anything is trained or written.
            try:
                check_margins(margins["control_lower"], margins["control_upper"], self.generations)
            except ConfigError as exc:
                raise ValueError(f"control_lower/control_upper: {exc}") from None

    def _check_reference_point(self) -> None:
        """Refuse a reference point that names something other than an objective, is not a finite
        number, or that no candidate can be better than (an accuracy of 1 or more, a cost of 0 or
        less): its hypervolume would be 0 in every generation."""
        names = {name.split(":", 1)[-1] for name in self.objectives} | set(self.objectives)
        unknown = sorted(set(self.reference_point) - names)
        if unknown:
            raise ValueError(
                f"reference_point names {', '.join(unknown)}, which is not an objective ({self.objectives})"
            )
        objectives = parse_objectives(self.objectives)
        by_name = {o.name: o for o in objectives} | {o.label: o for o in objectives}
        for name, value in self.reference_point.items():
            if not math.isfinite(value):
                raise ValueError(f"reference_point {name} must be a finite number, got {value}")
            obj = by_name[name]
            if (obj.maximise and obj.metric in BOUNDED_METRICS and value >= 1.0) or (
                not obj.maximise and obj.metric in COST_METRICS and value <= 0.0
            ):
                bound = "1 at most" if obj.maximise else "0 at least"
                raise ValueError(
                    f"reference_point {name} {value:g}: no candidate can be better than that ({obj.label} is "
                    f"{bound}), so every hypervolume would be 0"
                )

    def _check_train_table(self) -> None:
        """Refuse [train] keys that are top-level settings or that the search sets itself."""
        for key in ("dataset", "epochs", "device", "seed", "data_dir", "image_size"):
            if key in self.train:
                raise ValueError(f"train.{key} is a top-level setting; write `{key} = ...` instead")
        for key in ("stop_epoch", "checkpoint"):
            if key in self.train:
                raise ValueError(f"train.{key} is set by the search (budget = 'halving'), not in [train]")

    # ------------------------------------------------------------------ resolution
    @classmethod
    def resolve(
        cls,
        file: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        demo_workers: bool = False,
    ) -> RunConfig:
        """Merge defaults < ``file`` (TOML) < ``overrides`` (CLI flags; ``None`` values are unset).

        Args:
            file: a run.toml, or None.
            overrides: settings given on the command line; keys are field names (or ``schema``).
            demo_workers: on the demo dataset, training on the CPU, when neither ``workers`` nor
                ``executor`` is set: train one candidate per usable CPU core in a process pool
                (``pyevonas evolve`` does; an API caller keeps the in-process default).

        Returns:
            The validated config.

        Raises:
            ConfigError: the file is missing or not TOML, or a setting is unknown or invalid; the
                message names the setting.
        """
        merged: dict[str, Any] = {}
        source = "the command line"
        if file is not None:
            merged.update(load_toml(file))
            source = f"{file} or the command line"
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if isinstance(given.get("train"), Mapping) and isinstance(merged.get("train"), Mapping):
            # A flag sets one training setting; the file's others stay.
            given["train"] = {**merged["train"], **given["train"]}
        merged.update(given)
        if "schema_name" in merged:
            merged["schema"] = merged.pop("schema_name")
        top_k_given = "top_k" in merged
        simulated = _simulated_dataset(merged)
        if simulated:
            merged.setdefault("dataset", simulated)
        if merged.get("dataset", DEMO_DATASET) == DEMO_DATASET:
            for key, value in DEMO_BUDGET.items():
                merged.setdefault(key, value)
            train = merged.get("train")
            if train is None or isinstance(train, Mapping):
                merged["train"] = {**DEMO_TRAIN, **(train or {})}
            if (
                demo_workers
                and simulated is None
                and not {"workers", "executor"} & set(merged)
                and _is_int(merged.get("population"))
                and _trains_on_cpu(merged.get("device", "auto"))
            ):
                # One single-threaded worker per core: the demo's tiny candidates do not use a
                # second thread, but they do use a second process (1.6x on 2 cores, same results).
                # Not on a GPU machine, where the pool would put this many workers on every GPU.
                merged["workers"] = max(1, min(usable_cores(), merged["population"]))
        if not top_k_given and _is_int(merged.get("population")):
            # A small population given without top_k keeps the default top_k from refusing it.
            default_top_k = merged.get("top_k", cls.model_fields["top_k"].default)
            merged["top_k"] = max(1, min(int(default_top_k), int(merged["population"])))
        return cls.from_dict(merged, source=source)

    @classmethod
    def demo(cls, **settings: Any) -> RunConfig:
        """The settings ``pyevonas evolve`` runs with when given ``settings`` as its flags.

        On the built-in ``digits`` dataset (the default) these are the demo budget (8 generations
        x 8 individuals x 4 epochs), the demo's training recipe (batch 64, lr 0.05, one torch
        thread per candidate) and, when training on the CPU, one worker process per usable core.
        ``RunConfig(...)`` itself gives the paper's settings (20 x 25 x 12, batch 256, torch's own
        thread count, in-process): on digits, slower per candidate and less learnt per epoch.

        The workers are spawned processes, which import the calling script again: call
        ``evolve`` under ``if __name__ == "__main__":`` in a script.

        Raises:
            ConfigError: a setting is unknown or invalid.
        """
        return cls.resolve(None, settings, demo_workers=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the run config") -> RunConfig:
        """Validate a plain dict (e.g. the config saved with a run).

        Raises:
            ConfigError: naming the first invalid setting and ``source``.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source)) from None

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able data, with the same keys a run.toml uses."""
        return self.model_dump(mode="json", by_alias=True)

    def with_updates(self, **changes: Any) -> RunConfig:
        """A validated copy with some settings changed."""
        data = self.to_dict()
        data.update(changes)
        return RunConfig.from_dict(data)

    @property
    def run_name(self) -> str:
        """The run's label: ``name`` or ``<dataset>_<control>_s<seed>`` (one's own dataset: its file or folder
        name; ``<dataset>_<control>_<selection>_s<seed>`` for novelty and DNS; ``<dataset>_<space>_...`` in
        a space other than the paper's, e.g. ``digits_nb201_rigid_s0``)."""
        selection = "" if self.selection == "topk" else f"_{self.selection}"
        space = "" if self.space in ("paper", "default") else f"_{Path(self.space).stem.removeprefix('space.')}"
        return self.name or f"{spec_label(self.dataset) or self.dataset}{space}_{self.control}{selection}_s{self.seed}"

    @property
    def simulated(self) -> str | None:
        """``simulated with the surrogate of cifar10, not trained`` for a simulated run, else ``None``."""
        model = surrogate_model(self.evaluator)
        return None if model is None else Simulation(model).notice

    @property
    def run_path(self) -> Path:
        """Where the run is stored."""
        return Path(self.run_dir).expanduser() if self.run_dir else Path("runs") / self.run_name


def _simulated_dataset(merged: Mapping[str, Any]) -> str | None:
    """The dataset a simulated run's built-in surrogate models (``surrogate:cifar10`` -> ``cifar10``);
    ``""`` for a surrogate in a file (its dataset is checked when it is loaded); ``None`` when the
    run trains its candidates."""
    evaluator = merged.get("evaluator")
    model = surrogate_model(evaluator.strip()) if isinstance(evaluator, str) else None
    if model is None:
        return None
    return "" if is_model_file(model) else model


#: The loggers of ``log`` (``pyevonas.search.loggers``).
LOG_KINDS = ("tensorboard", "mlflow")


def parse_log(spec: str) -> tuple[str, str | None]:
    """``"tensorboard:DIR"`` -> ``("tensorboard", "DIR")``; ``"mlflow"`` -> ``("mlflow", None)``.

    Raises:
        ConfigError: an unknown kind, or TensorBoard without a folder.
    """
    kind, _, target = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in LOG_KINDS:
        raise ConfigError(f"unknown log {spec!r}: use tensorboard:DIR, mlflow or mlflow:URI")
    if kind == "tensorboard" and not target.strip():
        raise ConfigError("tensorboard needs a folder: tensorboard:DIR")
    return kind, target.strip() or None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a run.toml.

    Raises:
        ConfigError: the file is missing, unreadable or not valid TOML.
    """
    p = Path(path).expanduser()
    try:
        with p.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}); TOML files are UTF-8 "
            "(save it as UTF-8, not UTF-16)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return data


def _describe(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the setting."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {loc!r} (from {source})")
        elif loc == "config":
            lines.append(f"invalid settings (from {source}): {msg}")
        else:
            lines.append(f"invalid setting {loc!r} (from {source}): {msg}, got {err.get('input')!r}")
    return "; ".join(lines)


__all__ = [
    "DEFAULT_NEIGHBOURS",
    "DEMO_BUDGET",
    "DEMO_DATASET",
    "DEMO_TRAIN",
    "BOUNDED_METRICS",
    "EXECUTION_SETTINGS",
    "COST_METRICS",
    "MAX_COUNT",
    "MAX_WORKERS",
    "RECORDED_METRICS",
    "LOG_KINDS",
    "NOT_SIMULATED",
    "RAY_SETTINGS",
    "RUNTIME_ENV_FIELDS",
    "SHIP_NOTHING",
    "SHIP_PACKAGE",
    "check_ray_code",
    "TRAIN_EVALUATOR",
    "ArchiveScope",
    "ControlKind",
    "RunConfig",
    "SelectionKind",
    "TieBreak",
    "check_recorded_objectives",
    "load_toml",
    "parse_log",
    "surrogate_model",
]
