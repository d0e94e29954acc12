"""``pyevonas evolve``: run (or resume) the diversity-controlled evolutionary search with a live view."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pyevonas.cli._app import app
from pyevonas.cli._common import command_name, console, console_err, examples
from pyevonas.cli.live import LiveView
from pyevonas.errors import ConfigError, EncodingError, RunStoreError, TrainingError
from pyevonas.metric.schema import resolve_scoring
from pyevonas.runs.objectives import named_values, parse_objectives
from pyevonas.runs.simulation import Simulation
from pyevonas.runs.store import RunStore
from pyevonas.search import halving
from pyevonas.search.cells import check_schema, load_space
from pyevonas.search.config import DEMO_BUDGET, EXECUTION_SETTINGS, TRAIN_EVALUATOR, RunConfig
from pyevonas.search.events import Observer
from pyevonas.search.executors import SurrogateEvaluator
from pyevonas.search.loop import BEST_NAME, GenerationFailed, RunResult, arch_notation, resume
from pyevonas.search.loop import evolve as run_evolve
from pyevonas.search.warmstart import load_initial
from pyevonas.training.config import TrainConfig
from pyevonas.training.data import load_dataset
from pyevonas.training.device import resolve_device

#: A search to run (new or resumed), given the observers of its events.
_Action = Callable[[list[Observer]], RunResult]


def _default(field: str) -> str:
    """What ``--help`` shows as a flag's default: the demo budget's on digits, else RunConfig's (the paper's)."""
    paper = RunConfig.model_fields[field].default
    demo = DEMO_BUDGET.get(field)
    return str(paper) if demo is None else f"{demo} on digits, else {paper}"


# Flags that define the search; a resumed run keeps its saved values for these.
_SEARCH_FLAGS = (
    "dataset",
    "data_dir",
    "generations",
    "population",
    "epochs",
    "control",
    "seed",
    "run_dir",
    "space",
    "schema_name",
    "image_size",
    "init",
    "reuse_similarity",
    "near_duplicates",
    "budget",
    "objectives",
    "selection",
    "neighbours",
    "archive",
    "evaluator",
    "train",
)
# Flags that only say how to execute; they may change when a run is resumed (e.g. on another machine).
_EXECUTION_FLAGS = EXECUTION_SETTINGS


@app.command(
    epilog=examples(
        "pyevonas evolve                (the demo: digits, 8 generations x 8 individuals x 4 epochs)",
        "pyevonas evolve --dataset cifar10 --data-dir ~/data --device cuda --workers 5",
        "pyevonas evolve --objectives val_accuracy,params --selection dns",
        "pyevonas evolve --evaluator surrogate:cifar10   (simulated in seconds: nothing trained)",
        "pyevonas evolve --space nb201 --generations 2 --population 6 --epochs 1   (NAS-Bench-201 cells)",
        "pyevonas evolve --resume runs/digits_rigid_s0",
    )
)
def evolve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="A run.toml with any RunConfig setting; flags override it.",
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="digits (built-in, offline), cifar10, cifar100, imagenet16-120, or your own: npz:FILE or folder:DIR.",
            show_default=_default("dataset"),
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Folder with the dataset files (not needed for digits)."),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(
            "--image-size",
            help="Resize the images of a folder: dataset to N x N.",
            show_default="none: all images share one size",
        ),
    ] = None,
    generations: Annotated[
        int | None, typer.Option(help="Number of generations (paper: 20).", show_default=_default("generations"))
    ] = None,
    population: Annotated[
        int | None, typer.Option(help="Individuals per generation (paper: 25).", show_default=_default("population"))
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Training epochs per candidate (paper: 12).", show_default=_default("epochs"))
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Training batch size of every candidate (the [train] batch_size of run.toml).",
            show_default="256, the paper's; digits 32; one's own 64",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Learning rate of every candidate (the [train] lr of run.toml).", show_default="0.1"),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            help="Diversity control: naive, rigid (Eq. 2), soft (Eq. 3), target (absolute measure and its change) "
            "or custom (expressions in --config).",
            show_default=_default("control"),
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="The seed every random choice derives from.", show_default=_default("seed"))
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            metavar="LIST",
            help="A seed sweep: one search per seed with the same settings, one after another, e.g. 0-4 or "
            "0,2,7-9; each run in its own folder (RUN_DIR/s<seed> with --run-dir), resumable one by one.",
        ),
    ] = None,
    run_dir: Annotated[
        str | None,
        typer.Option(
            "--run-dir",
            help="Where to store the run (default: a new folder under runs/).",
        ),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            metavar="SPACE",
            help="Search space: paper (the paper's chains), nb201 (NAS-Bench-201's cell in its macro skeleton), "
            "or a JSON file of chains or of cells (docs/search_space.md).",
            show_default=_default("space"),
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            help="Similarity scoring schema: default, paper, cells, or a JSON file.",
            show_default="default; cells in a cell space",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda, cuda:1 ...", show_default=_default("device"))
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Candidates trained at once (pool: per device).",
            show_default="on digits on the CPU: one per core; else 1",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="inprocess, pool (local worker processes) or ray.",
            show_default="pool with more than one worker, else inprocess",
        ),
    ] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address for --executor ray.")] = None,
    candidate_timeout: Annotated[
        float | None,
        typer.Option(
            "--candidate-timeout",
            metavar="SECONDS",
            help="Fail a candidate still training after SECONDS ('timed out after N s'): pool: its worker is "
            "killed; ray: its task cancelled; inprocess: checked after each epoch. May change on --resume.",
            show_default="no limit",
        ),
    ] = None,
    gpus_per_candidate: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-candidate",
            metavar="X",
            help="Ray: GPUs each candidate's task asks for (0.5: two share a GPU).",
            show_default="1/workers of a GPU when the cluster has GPUs and the device is CUDA or auto; none on cpu",
        ),
    ] = None,
    cpus_per_candidate: Annotated[
        float | None,
        typer.Option(
            "--cpus-per-candidate", metavar="N", help="Ray: CPUs each candidate's task asks for.", show_default="1"
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries",
            metavar="N",
            help="Ray: run a candidate whose worker or node was lost again, at most N times.",
            show_default="3",
        ),
    ] = None,
    ray_code: Annotated[
        str | None,
        typer.Option(
            "--ray-code",
            metavar="package|installed",
            help="Ray: the code the job brings to the nodes: package (the pyevonas running here, compiled core "
            "included; nodes of the same platform) or installed (nothing: every node has pyevonas).",
            show_default="package",
        ),
    ] = None,
    ray_runtime_env: Annotated[
        str | None,
        typer.Option(
            "--ray-runtime-env",
            metavar="JSON",
            help='Ray: further fields of the job\'s runtime_env, e.g. \'{"pip": ["torch"], "env_vars": {"A": "1"}}\'.',
            show_default=False,
        ),
    ] = None,
    evaluator: Annotated[
        str | None,
        typer.Option(
            metavar="train|surrogate:M",
            help="train (train every candidate), or simulate the search: M = cifar10, cifar100 or "
            "a saved model FILE: the surrogate predicts each candidate's accuracy in milliseconds from the "
            "paper's published evaluations, without training or torch. The run and its report say it was simulated.",
            show_default=_default("evaluator"),
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            metavar="FILE|RUN",
            help="Seed the first generation: a JSON list of chromosomes or text-notation strings, "
            "or another run's folder (its best individuals); the rest is sampled.",
        ),
    ] = None,
    reuse_similarity: Annotated[
        float | None,
        typer.Option(
            "--reuse-similarity",
            metavar="T",
            help="Do not train a child at least this similar to an architecture evaluated in an earlier "
            "generation (1.0: only an identical one).",
            show_default=_default("reuse_similarity"),
        ),
    ] = None,
    near_duplicates: Annotated[
        str | None,
        typer.Option(
            "--near-duplicates",
            help="reuse (take the most similar one's result) or resample (breed another child).",
            show_default=_default("near_duplicates"),
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="full (every child trains --epochs) or halving (epochs/4, the better half "
            "epochs/2, the better half of those all epochs).",
            show_default=_default("budget"),
        ),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="What parents are ranked by: one metric, or a comma-separated list ranked by Pareto rank, "
            "e.g. val_accuracy,params (accuracies maximised, costs minimised).",
            show_default="val_accuracy",
        ),
    ] = None,
    selection: Annotated[
        str | None,
        typer.Option(
            help="Parent selection: topk, novelty or dns (Dominated Novelty Search).",
            show_default=_default("selection"),
        ),
    ] = None,
    neighbours: Annotated[
        int | None,
        typer.Option(
            help="k of --selection novelty or dns: how many nearest architectures a score averages.",
            show_default=_default("neighbours"),
        ),
    ] = None,
    archive: Annotated[
        str | None,
        typer.Option(
            help="Whom novelty or dns compare with: population, or run (every candidate trained so far).",
            show_default="run for novelty, population for dns",
        ),
    ] = None,
    log: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            metavar="WHERE",
            help="Log the search as it runs (repeatable): tensorboard:DIR, mlflow (a local store, ./mlflow.db) or"
            " mlflow:URI. Needs the integrations extra. A resumed run continues its logs.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this folder where it stopped."),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No live view or progress lines: the run folder at the start, the summary at the end.",
        ),
    ] = False,
) -> None:
    """Run the evolutionary architecture search, naive or with diversity control.

    With no arguments: a small real search on the built-in [bold]digits[/] dataset (about 4.5 CPU-minutes: some 3 minutes on two free cores, one worker per core).

    Settings resolve as defaults < [bold]--config run.toml[/] < flags, and the resolved settings are saved with the run. [bold]--resume RUN_DIR[/] continues a stopped run without losing or repeating a finished evaluation.
    """
    overrides: dict[str, Any] = {
        "dataset": dataset,
        "data_dir": data_dir,
        "generations": generations,
        "population": population,
        "epochs": epochs,
        "control": control,
        "seed": seed,
        "run_dir": run_dir,
        "space": space,
        "schema_name": schema,
        "device": device,
        "workers": workers,
        "executor": executor,
        "address": address,
        "candidate_timeout": candidate_timeout,
        "gpus_per_candidate": gpus_per_candidate,
        "cpus_per_candidate": cpus_per_candidate,
        "max_retries": max_retries,
        "ray_code": ray_code,
        "ray_runtime_env": _json_table("--ray-runtime-env", ray_runtime_env),
        "evaluator": evaluator,
        "image_size": image_size,
        "init": init,
        "reuse_similarity": reuse_similarity,
        "near_duplicates": near_duplicates,
        "budget": budget,
        "objectives": objectives,
        "selection": selection,
        "neighbours": neighbours,
        "archive": archive,
        "log": log or None,
        "train": {k: v for k, v in (("batch_size", batch_size), ("lr", lr)) if v is not None} or None,
    }
    if seeds is not None:
        _sweep(_parse_seeds(seeds, seed, resume), config_file=config, overrides=overrides, quiet=quiet)
        return
    _run(config_file=config, overrides=overrides, resume_dir=resume, quiet=quiet)


def _json_table(flag: str, text: str | None) -> dict[str, Any] | None:
    """A flag's JSON object (``--ray-runtime-env``), or None when not given; ConfigError in one line."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f'{flag}: expected a JSON object such as \'{{"pip": ["torch"]}}\', got {text!r}')
    return value


#: The most searches one seed sweep may start.
MAX_SWEEP = 1000


def _parse_seeds(text: str, seed: int | None, resume: Path | None) -> list[int]:
    """The seeds of ``--seeds`` ("0-4", "0,2,7-9"), in order, each once; ConfigError in one line."""
    if seed is not None:
        raise ConfigError("--seeds runs one search per seed; --seed cannot be given with it")
    if resume is not None:
        raise ConfigError("--resume continues one run: resume each seed's folder on its own, without --seeds")
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()) or len(lo) > 9 or len(hi) > 9:
            raise ConfigError(f"--seeds {text!r}: expected seeds and ranges such as 0-4 or 0,2,7-9")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise ConfigError(f"--seeds {text!r}: the range {part.strip()} runs backwards")
        if last - first + len(seeds) >= MAX_SWEEP:
            raise ConfigError(f"--seeds {text!r}: a sweep runs at most {MAX_SWEEP} searches")
        seeds.extend(s for s in range(first, last + 1) if s not in seeds)
    return seeds


def _sweep(seeds: list[int], *, config_file: Path | None, overrides: dict[str, Any], quiet: bool) -> None:
    """One search per seed, one after another; a stop says which seeds remain and how to go on."""
    run_dir = overrides.get("run_dir")
    console.print(f"pyevonas evolve: a sweep of {len(seeds)} runs, seeds {_seed_list(seeds)}", highlight=False)
    for k, s in enumerate(seeds):
        one = {**overrides, "seed": s}
        if run_dir is not None:
            one["run_dir"] = str(Path(run_dir) / f"s{s}")
        console.print(f"[bold]seed {s}[/] ({k + 1} of {len(seeds)})", highlight=False)
        try:
            _run(config_file=config_file, overrides=one, resume_dir=None, quiet=quiet)
        except (ConfigError, RunStoreError, TrainingError, EncodingError) as exc:
            rest = _seed_list(seeds[k:])
            raise type(exc)(
                f"seed {s}: {exc}\n(seeds {_seed_list(seeds[:k]) or 'none'} finished; after fixing it, go on with "
                f"--seeds {rest}, or resume seed {s}'s folder first if it holds a started run)"
            ) from None


def _seed_list(seeds: list[int]) -> str:
    """Seeds as ranges: [0, 1, 2, 5] -> '0-2,5'."""
    parts: list[str] = []
    for s in seeds:
        if parts and s == int(parts[-1].rpartition("-")[2]) + 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{s}"
        else:
            parts.append(str(s))
    return ",".join(parts)


def _run(
    *,
    config_file: Path | None,
    overrides: dict[str, Any],
    resume_dir: Path | None,
    quiet: bool,
    evaluate_fn: Any = None,
) -> None:

    if resume_dir is not None:
        given = [k for k in _SEARCH_FLAGS if overrides.get(k) is not None]
        if config_file is not None:
            given.insert(0, "config")
        if given:
            names = {"schema_name": "schema", "train": "batch-size/--lr"}
            flags = ", ".join("--" + names.get(k, k).replace("_", "-") for k in given)
            raise ConfigError(f"--resume continues with the run's saved settings; {flags} cannot be given with it")
        execution = {k: overrides[k] for k in _EXECUTION_FLAGS if overrides.get(k) is not None}
        target = resume_dir
        action = _resume_action(resume_dir, execution, evaluate_fn)
        if quiet:  # the live view or the log says the rest; quiet, this is all until the end
            console.print(f"pyevonas evolve: resuming {target}", highlight=False, soft_wrap=True)
    else:
        config = _resolve(config_file, overrides)
        target = config.run_path
        _preflight(config)
        if quiet:
            console.print(
                f"pyevonas evolve: {config.dataset}, "
                f"{'' if config.space in ('paper', 'default') else f'space {config.space}, '}control {config.control}, "
                f"{'' if config.selection == 'topk' else f'selection {config.selection}, '}"
                f"{config.generations} generations × {config.population} individuals × {config.epochs} epochs, "
                f"seed {config.seed}{_budget(config)}, {_execution(config)} → {target}",
                highlight=False,
                soft_wrap=True,
            )
        action = _start_action(config, evaluate_fn)
    try:
        result = _observe(action, quiet)
    except KeyboardInterrupt:
        console_err.print(
            f"interrupted; continue with: {command_name()} evolve --resume {target}",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )
        raise
    except GenerationFailed as exc:
        raise TrainingError(f"{exc}\n{_advice(exc, target, config_file)}") from None
    except TrainingError as exc:
        raise TrainingError(
            f"{exc}\n(after fixing the cause, continue with: {command_name()} evolve --resume {target})"
        ) from None
    _summary(result)


def _advice(exc: GenerationFailed, target: Path, config_file: Path | None) -> str:
    """What to do when no candidate of a generation trained: resume only helps when the cause
    lies outside the run's settings, because a resumed run keeps them."""
    where = f"in {config_file}" if config_file is not None else "in a run.toml given with --config"
    if exc.setting is not None:
        return (
            f"A resumed run keeps its saved settings, so --resume would stop here again. Start a new run with"
            f" another {exc.setting} ({where}, under [train]) and the same flags; without --run-dir it gets a"
            f" new folder (or delete {target} first)."
        )
    return (
        f"If the cause lies outside the run's settings (a missing dataset, a full disk, memory taken by"
        f" another program), fix it and continue with: {command_name()} evolve --resume {target}\n"
        f"If a setting of the run causes it (e.g. a learning rate that makes every loss NaN), start a new run"
        f" with that setting changed ({where}): a resumed run keeps its saved settings."
    )


def _resolve(config_file: Path | None, overrides: dict[str, Any]) -> RunConfig:

    config = RunConfig.resolve(config_file, overrides, demo_workers=True)
    if config.run_dir is None:
        # Never reuse a folder implicitly: the second `pyevonas evolve` gets runs/<name>-2.
        base = config.run_path
        path, k = base, 2
        while path.exists():
            path = base.with_name(f"{base.name}-{k}")
            k += 1
        config = config.with_updates(run_dir=str(path))
    return config


def _preflight(config: Any) -> None:
    """Refuse what would fail later, before anything is written or trained."""

    space = load_space(config.space)
    scoring = resolve_scoring(config.schema_name)
    check_schema(space, scoring)
    if config.init is not None:  # a bad warm start stops here, naming the architecture
        load_initial(config.init, space, scoring, config.population)
    run_path = config.run_path
    if run_path.exists() and (not run_path.is_dir() or any(run_path.iterdir())):
        raise RunStoreError(
            f"run folder {run_path} already exists and is not empty; resume it with --resume {run_path} "
            "or choose another --run-dir"
        )
    if config.data_dir is not None and not Path(config.data_dir).expanduser().exists():
        raise ConfigError(f"invalid setting 'data_dir': {config.data_dir} does not exist")
    if config.evaluator != TRAIN_EVALUATOR:
        # Simulated: nothing trains, so no torch, dataset or device; the surrogate must load and
        # model the run's dataset and epochs.
        SurrogateEvaluator.from_config(config)
        return
    if importlib.util.find_spec("torch") is None:
        raise ConfigError("training needs the train extra (pip install 'pyevonas[train]'): torch is not installed")
    recipe = TrainConfig.build(
        dataset=config.dataset,
        data_dir=config.data_dir,
        image_size=config.image_size,
        epochs=config.epochs,
        device=config.device,
        seed=config.seed,
        **config.train,
    )
    if config.executor != "ray":  # a Ray cluster may have devices this machine lacks
        _check_device(config.device)
    # A layer plugin that cannot be imported would fail every candidate: stop before the run starts.
    from pyevonas.training.builders import load_plugins

    load_plugins()
    # Load the dataset once now: a missing or corrupt dataset stops the run here, with the path it
    # looked at, instead of failing every candidate of the first generation.
    data = load_dataset(
        config.dataset,
        config.data_dir,
        download=bool(config.train.get("download", False)),
        image_size=config.image_size,
    )
    _, c, h, w = data.train_images.shape
    _warn_few_steps(recipe, len(data.train_labels), (int(c), int(h), int(w)))


#: Fewer optimizer steps per epoch than this and a candidate can hardly learn in a few epochs
#: (nor can batch norm's running statistics settle): ``evolve`` warns.
FEW_STEPS = 8


def _warn_few_steps(recipe: TrainConfig, n_train: int, input_shape: tuple[int, int, int]) -> None:
    """Warn when the batch leaves fewer than :data:`FEW_STEPS` steps per epoch on this dataset."""
    settings = recipe.resolved(input_shape)
    fit = max(1, round(n_train * (1 - settings["val_fraction"])))
    steps = -(-fit // settings["batch_size"])
    if steps < FEW_STEPS:
        console_err.print(
            f"warning: {fit} training images at batch {settings['batch_size']} make {steps} optimizer "
            f"step{'s' if steps != 1 else ''} per epoch, too few for most candidates to learn; pass a smaller "
            "--batch-size (and perhaps --lr)",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )


def _check_device(device: str) -> None:
    """Refuse a device this machine does not have (else every candidate would fail on it)."""
    if device in ("auto", "cpu"):
        return  # always there; resolving would only load torch early
    try:
        resolve_device(device)
    except ConfigError as exc:
        raise ConfigError(f"invalid setting 'device': {exc}") from None


def _start_action(config: RunConfig, evaluate_fn: Any) -> _Action:

    return lambda observers: run_evolve(config, observers=observers, evaluate_fn=evaluate_fn)


def _budget(config: RunConfig) -> str:
    """The settings of docs/budget.md that differ from their defaults, for the header line."""
    parts = []
    if config.init is not None:
        parts.append(f"init {config.init}")
    if config.reuse_similarity < 1.0 or config.near_duplicates != "reuse":
        parts.append(f"near duplicates ≥ {config.reuse_similarity:g}: {config.near_duplicates}")
    if config.budget != "full":
        parts.append(f"budget {config.budget}")
    return "".join(f", {p}" for p in parts)


def _execution(config: RunConfig) -> str:
    if config.simulated is not None:
        return config.simulated
    where = config.device if config.device != "auto" else "auto device"
    if config.executor == "inprocess":
        return f"in-process on {where}"
    return f"{config.workers} {config.executor} worker{'s' if config.workers > 1 else ''} on {where}"


def _resume_action(run_dir: Path, execution: dict[str, Any], evaluate_fn: Any) -> _Action:

    return lambda observers: resume(run_dir, observers=observers, execution=execution, evaluate_fn=evaluate_fn)


def _observe(action: _Action, quiet: bool) -> RunResult:
    if quiet:
        return action([])

    with LiveView(console) as view:
        return action([view])


#: The most front members the summary lists (best.json and the export hold all).
MAX_FRONT_SHOWN = 10


def _summary(result: Any) -> None:
    run_dir = Path(result.run_dir)
    best = result.best
    simulation = _simulation(run_dir)
    pyevonas = command_name()

    def say(text: str, **style: Any) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False, **style)

    front = tuple(getattr(result, "front", ()) or ())
    if front:
        _say_front(front, run_dir, say)
    if best is not None:
        heading = f"best in {_front_objectives(run_dir)[0]}, first on the front" if front else "best architecture"
        say(f"{heading}: {best.name} (generation {best.generation})", style="bold")
        say(f"  {_notation(run_dir, best)}")
        # Short lines: the footer stays on the screen, and a terminal would break long ones mid-word.
        say(
            f"  fitness {_num(best.fitness, '.4f')} · val accuracy {_num(best.val_accuracy, '.4f')}"
            f" · test accuracy {_num(best.test_accuracy, '.4f')}"
        )
        say(f"  {_num(best.params, ',')} params · {_num(best.size_mb, '.2f')} MB")
        rung = _rung_text(run_dir, best)
        if rung:
            say(f"  {rung}")
        if (run_dir / BEST_NAME).is_file():
            say(f"  saved in {run_dir / BEST_NAME} (chromosome and metrics)")
        if simulation is not None:
            say(f"  {simulation.notice}: the accuracies are predictions", style="yellow")
            say(f"train it for real: {pyevonas} train --from-run {run_dir} --data-dir DIR")
        else:
            say(f"retrain it:      {pyevonas} train --from-run {run_dir}")
    else:
        say("no candidate was evaluated successfully", style="yellow")
    say(f"run stored in {run_dir}")
    report_dir = Path("reports") / run_dir.name
    say(f"see its report:  {pyevonas} report {run_dir} -o {report_dir}")
    say(f"export it:       {pyevonas} export {run_dir} -o {run_dir.name}.json")
    say(f"  or as a table: {pyevonas} export {run_dir} --csv -o {run_dir.name}.csv")


def _front_objectives(run_dir: Path) -> list[str]:
    """The objectives of a multi-objective run, as its best.json names them (else its config)."""
    try:
        saved = json.loads((run_dir / BEST_NAME).read_text(encoding="utf-8"))
        if isinstance(saved.get("objectives"), list) and saved["objectives"]:
            return [str(o) for o in saved["objectives"]]
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with RunStore.open(run_dir, readonly=True) as store:
            return [str(o) for o in RunConfig.from_dict(store.config).objectives]
    except (RunStoreError, ConfigError, ValueError):
        return ["val_accuracy"]


def _say_front(front: tuple[Any, ...], run_dir: Path, say: Callable[..., None]) -> None:
    """The final Pareto front: each member's name, objective values and text notation."""
    names = _front_objectives(run_dir)
    objectives = parse_objectives(names)
    n = len(front)
    say(f"Pareto front ({', '.join(names)}): {n} architecture{'s' if n != 1 else ''}", style="bold")
    for ind in front[:MAX_FRONT_SHOWN]:
        values = named_values(ind, objectives)
        shown = " · ".join(f"{name} {_value(values.get(name))}" for name in names)
        say(f"  {ind.name} (generation {ind.generation}): {shown}")
        say(f"    {_notation(run_dir, ind, from_best=False)}")
    if n > MAX_FRONT_SHOWN:
        say(f"  ... and {n - MAX_FRONT_SHOWN} more")
    if (run_dir / BEST_NAME).is_file():
        say(f"  every member in {run_dir / BEST_NAME} (pareto_front)")


def _value(value: Any) -> str:
    """An objective's value: an integer with thousands separators, else 4 decimals."""
    if value is None:
        return "-"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return format(int(value), ",")
    return format(value, ".4f")


def _rung_text(run_dir: Path, best: Any) -> str:
    """Under ``--budget halving``, the epochs the best was trained for and its rung, else ''."""
    try:
        with RunStore.open(run_dir, readonly=True) as store:
            config = dict(store.config or {})
    except RunStoreError:
        return ""
    epochs = config.get("epochs")
    if config.get("budget") != "halving" or not isinstance(epochs, int) or epochs < 1:
        return ""
    budget, rungs = halving.budget_of(best, epochs), halving.rungs(epochs)
    where = f" (rung {rungs.index(budget) + 1}/{len(rungs)} of successive halving)" if budget in rungs else ""
    return f"trained {budget} of {epochs} epochs{where}"


def _simulation(run_dir: Path) -> Simulation | None:
    """The surrogate that simulated a run, as its metadata records it (None for a trained run)."""
    try:
        with RunStore.open(run_dir, readonly=True) as store:
            return Simulation.from_meta(store.meta)
    except RunStoreError:
        return None


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _notation(run_dir: Path, best: Any, *, from_best: bool = True) -> str:
    """The best's text notation with parameters: as the loop wrote it in best.json, else made here."""
    try:
        saved = json.loads((run_dir / BEST_NAME).read_text(encoding="utf-8")) if from_best else {}
        if saved.get("id") == best.id and isinstance(saved.get("notation"), str):
            return str(saved["notation"])
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return arch_notation(best.chromosome)
    except EncodingError:
        return f"sequence {best.sequence}"


__all__ = ["evolve"]
