"""``pyevonas train``: train and measure one architecture with the paper's recipe."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pyevonas._userfiles import UserFileError, parse_json
from pyevonas.cli._app import app
from pyevonas.cli._common import ARCH_FORMS, command_name, console, console_err, echo_json, examples, read_arch
from pyevonas.errors import ConfigError, EncodingError
from pyevonas.metric.graphs import looks_like_graph
from pyevonas.runs.objectives import parse_objectives
from pyevonas.runs.records import Status, is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search.cells import CellSpace, load_space
from pyevonas.search.config import RunConfig
from pyevonas.search.halving import budget_of, final_front, rank_key
from pyevonas.search.loop import candidate_train_config
from pyevonas.training.config import TrainConfig
from pyevonas.training.data import dataset_info
from pyevonas.training.device import resolve_device


def _parse_settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a bare word such as cosine or cuda:1
        settings[key.strip().replace("-", "_")] = value
    return settings


@app.command(
    epilog=examples(
        'pyevonas train "C(32,3,1) B L M(2) T(32,3,1) g F(64)" --epochs 3',
        "pyevonas train best.json --dataset cifar10 --data-dir ~/data --json",
    )
)
def train(
    ctx: typer.Context,
    arch: Annotated[
        str | None,
        typer.Argument(
            help=f"The architecture: {ARCH_FORMS}. With --from-run: the name of a candidate of the run"
            " (e.g. g3-4; default: the run's best).",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        str,
        typer.Option(
            help="digits (built-in, offline), cifar10, cifar100, imagenet16-120, or your own: npz:FILE or folder:DIR."
        ),
    ] = "digits",
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", help="Folder with the dataset files (not needed for digits).")
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option("--image-size", help="Resize the images of a folder: dataset to N x N (else all share one size)."),
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download CIFAR into --data-dir if it is missing (needs network).")
    ] = False,
    epochs: Annotated[int, typer.Option(help="Training epochs (paper: 12).")] = 12,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch size (default: 256, the paper's; digits 32).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Initial learning rate, cosine-decayed to 0.")] = 0.1,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and augmentation.")] = 0,
    space: Annotated[
        str | None,
        typer.Option(
            help="Also check the architecture against a search space (paper, nb201, or a JSON file); in a cell "
            "space ARCH may be the cell alone (a NAS-Bench-201 string), put into the space's skeleton.",
        ),
    ] = None,
    schema: Annotated[
        str,
        typer.Option(
            "--schema",
            "-s",
            help="Scoring schema whose letters the text notation uses: default, paper, or a JSON file.",
        ),
    ] = "default",
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Any other TrainConfig setting, KEY=VALUE (repeatable), e.g. --set weight_decay_mode=coupled."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-epoch progress lines.")] = False,
    from_run: Annotated[
        Path | None,
        typer.Option(
            "--from-run",
            metavar="RUN",
            help="Retrain a candidate of this run folder with the recipe and training seed the search"
            " gave it; ARCH then names the candidate (default: the run's best). --epochs, --batch-size, --lr"
            " and --set change the recipe (a longer final training, say); the dataset, seed, space and"
            " schema stay the run's.",
        ),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            metavar="FILE",
            help="Write the trained model (best-validation weights, architecture, recipe, metrics) to FILE;"
            " pyevonas.training.export.load_model(FILE) loads it back.",
        ),
    ] = None,
    onnx: Annotated[
        Path | None,
        typer.Option("--onnx", metavar="FILE", help="Export the trained model to ONNX (needs the integrations extra)."),
    ] = None,
) -> None:
    """Train one architecture and print its fitness, accuracies, size, latency and FLOPs.

    Fitness is the best validation accuracy on a split held out from the training set; test accuracy is measured once, with the best-validation weights. Without [bold]--dataset[/], training runs on the built-in offline digits dataset. Exits with 1 if the candidate failed (the metrics say why).

    [bold]--from-run RUN[/] [NAME] retrains a candidate of a search (its best by default) with the run's dataset, epochs and training settings and the candidate's own seed, so that on the same device it scores what the search measured; --epochs, --batch-size, --lr and --set change that recipe, and the settings changed are shown and saved with the model.

    [bold]--save FILE[/] writes the trained model with its architecture and recipe; [bold]--onnx FILE[/] exports it to ONNX.
    """
    out = console_err if as_json else console
    recorded: dict[str, Any] | None = None
    if from_run is not None:
        chromosome, config, recorded = _from_run_recipe(
            ctx, from_run, arch, device=device, data_dir=data_dir, download=download, epochs=epochs,
            batch_size=batch_size, lr=lr, settings=settings, out=None if quiet else out,
        )  # fmt: skip
    else:
        if arch is None:
            raise ConfigError("give the architecture to train (or --from-run RUN to retrain a candidate of a search)")
        chromosome = _read_checked(arch, schema, space)
        options: dict[str, Any] = {
            "dataset": dataset,
            "data_dir": data_dir,
            "image_size": image_size,
            "download": download,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "device": device,
            "seed": seed,
        }
        extra = _parse_settings(settings or [])
        clash = sorted(set(extra) & set(options))
        if clash:
            raise ConfigError(f"--set {clash[0]}=... repeats a flag; use --{clash[0].replace('_', '-')} instead")
        config = TrainConfig.build(**{**options, **extra})
    from pyevonas.training.loop import evaluate

    def progress(p: dict[str, Any]) -> None:
        if not quiet:
            out.print(
                f"epoch {p['epoch']:>3}/{p['epochs']}  loss {p['loss']:.4f}  val_accuracy {p['val_accuracy']:.4f}",
                highlight=False,
            )

    written: dict[str, str] = {}
    write_out = _model_writer(save, onnx, chromosome, config, recorded, written)
    hooks = {"on_trained": write_out} if write_out is not None else {}
    metrics = evaluate(chromosome, config, progress=progress, **hooks)
    result = {**metrics.to_dict(), "dataset": config.dataset, "epochs": config.epochs, **written}
    if recorded is not None:
        result["from_run"] = recorded
    if as_json:
        echo_json(result)
    else:
        _print_table(result)
        if recorded is not None:
            console.print(
                f"the run measured: fitness {_fmt(recorded['fitness'], '.4f')}, test_accuracy"
                f" {_fmt(recorded['test_accuracy'], '.4f')} (status {recorded['status']})",
                highlight=False,
                soft_wrap=True,
            )
        for label, path in written.items():
            console.print(f"{_WRITTEN[label]} {path}", highlight=False, soft_wrap=True, markup=False)
    if metrics.status != Status.OK:
        # SystemExit, not typer.Exit: run_guarded (standalone_mode=False) drops typer.Exit codes.
        raise SystemExit(1)


#: The flags that make a recipe; --from-run takes them from the run.
def _read_checked(arch: str, schema: Any, space: str | None) -> list[dict[str, Any]]:
    """The architecture to train, checked against ``space`` when one is given; in a cell space it
    may be the cell alone (a NAS-Bench-201 string, inline dag JSON), put into the space's skeleton."""
    if space is None:
        return read_arch(arch, schema)
    found = load_space(space)
    chromosome: list[dict[str, Any]]
    if isinstance(found, CellSpace) and arch.lstrip().startswith("|"):
        chromosome = found.normalize(arch.strip())
    elif isinstance(found, CellSpace) and arch.lstrip().startswith("{") and looks_like_graph(_inline_json(arch)):
        chromosome = found.normalize(_inline_json(arch))
    else:
        chromosome = read_arch(arch, schema)
    found.check(chromosome)
    return chromosome


def _inline_json(text: str) -> Any:
    try:
        return parse_json(text)
    except UserFileError as exc:
        raise EncodingError(f"{text[:60]!r}: {exc}") from None


def _from_run_recipe(
    ctx: typer.Context,
    run_dir: Path,
    name: str | None,
    *,
    device: str,
    data_dir: str | None,
    download: bool,
    epochs: int,
    batch_size: int | None,
    lr: float,
    settings: list[str] | None,
    out: Any,
) -> tuple[list[dict[str, Any]], TrainConfig, dict[str, Any]]:
    """``train --from-run``: the candidate, the search's recipe with the overrides given here, and
    what the run measured (with ``changed``: the settings that differ from the search's); says so on
    ``out`` unless it is None."""
    given = [flag for flag in _FIXED_BY_RUN if _given(ctx, flag)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(
            f"--from-run trains with the run's dataset, seed and architecture; {flag} cannot be given with it"
            f" (to train the candidate another way, give its chromosome: {command_name()} train {run_dir}/best.json ...)"
        )
    chromosome, config, recorded = _from_run(
        run_dir, name, device=device if _given(ctx, "device") else None, data_dir=data_dir, download=download
    )
    config, changed = _override_recipe(ctx, config, epochs=epochs, batch_size=batch_size, lr=lr, settings=settings)
    if changed:
        recorded["changed"] = changed
    if out is not None:
        out.print(
            f"retraining {recorded['name']} (generation {recorded['generation']}) of {run_dir} with the run's"
            f" recipe: {config.dataset}, {config.epochs} epochs, seed {config.seed}; the run measured fitness"
            f" {_fmt(recorded['fitness'], '.4f')}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        if changed:
            out.print(
                "changed from the search's recipe: "
                + ", ".join(f"{k} {_fmt(v['search'])} -> {_fmt(v['now'])}" for k, v in changed.items()),
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
    return chromosome, config, recorded


_WRITTEN = {"saved": "model saved to", "onnx": "ONNX model written to"}


def _model_writer(
    save: Path | None,
    onnx: Path | None,
    chromosome: list[dict[str, Any]],
    config: TrainConfig,
    recorded: dict[str, Any] | None,
    written: dict[str, str],
) -> Callable[[Any, Any], None] | None:
    """The ``on_trained`` hook of ``--save`` and ``--onnx`` (None without them); it notes what it wrote in ``written``."""
    if save is None and onnx is None:
        return None

    def write_out(model: Any, trained: Any) -> None:
        if save is not None:
            from pyevonas.training.export import save_model

            info = {"from_run": recorded} if recorded is not None else {}
            recipe = config.model_dump(mode="json")
            save_model(save, model, chromosome, model.input_shape, model.head.out_features, recipe=recipe,
                       metrics=trained.to_dict(), info=info)  # fmt: skip
            written["saved"] = str(save)
        if onnx is not None:
            from pyevonas.training.export import export_onnx

            export_onnx(model, onnx, model.input_shape)
            written["onnx"] = str(onnx)

    return write_out


#: What --from-run takes from the run and no flag may change.
_FIXED_BY_RUN = ("dataset", "image_size", "seed", "space", "schema")


def _override_recipe(
    ctx: typer.Context,
    config: TrainConfig,
    *,
    epochs: int,
    batch_size: int | None,
    lr: float,
    settings: list[str] | None,
) -> tuple[TrainConfig, dict[str, dict[str, Any]]]:
    """The run's recipe with the --epochs, --batch-size, --lr and --set given here, and what they
    changed (``{setting: {"search": old, "now": new}}``)."""
    overrides: dict[str, Any] = {}
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr)):
        if _given(ctx, name):
            overrides[name] = value
    extra = _parse_settings(settings or [])
    clash = sorted(set(extra) & {*overrides, *_FIXED_BY_RUN, "epochs", "batch_size", "lr"})
    if clash:
        raise ConfigError(f"--set {clash[0]}=... is not a setting --set may change here; use its flag")
    overrides.update(extra)
    if not overrides:
        return config, {}
    if "epochs" in overrides and "stop_epoch" not in overrides:
        overrides["stop_epoch"] = None  # a budget cut by successive halving does not carry over to a new schedule
    before = config.model_dump()
    config = TrainConfig.build(**{**before, **overrides})
    after = config.model_dump()
    changed = {k: {"search": before[k], "now": after[k]} for k in overrides if before.get(k) != after.get(k)}
    return config, changed


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave the parameter (on the command line or in the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def _from_run(
    run_dir: Path, name: str | None, *, device: str | None, data_dir: str | None, download: bool
) -> tuple[list[dict[str, Any]], TrainConfig, dict[str, Any]]:
    """A candidate of a run (by name, default the best), the TrainConfig the search trained it with
    (device and data folder as given here, when given), and what the run measured for it."""

    with RunStore.open(run_dir, readonly=True) as store:
        if store.meta.get("source") != "pyevonas":
            raise ConfigError(
                f"{run_dir} holds an imported run ({store.meta.get('source')}); its recipe is the original code's."
                f" Train one of its chromosomes instead ({command_name()} export {run_dir} gives them)"
            )
        run_config = RunConfig.from_dict(store.config, source=f"the config saved in {run_dir}")
        individuals = store.individuals()
    if name is None or name == "best":
        trained = [ind for ind in individuals if is_trained(ind)]
        if not trained:
            raise ConfigError(f"no candidate of {run_dir} was trained, so it has no best; name one (e.g. g1-0)")
        # The best as best.json has it: the first member of the final front with several objectives.
        front = final_front(individuals, parse_objectives(run_config.objectives), run_config.epochs)
        ind = front[0] if front else max(trained, key=lambda i: (*rank_key(i, run_config.epochs), -i.id))
    else:
        matches = [i for i in individuals if i.name == name]
        if not matches:
            example = ", ".join(i.name for i in individuals[:3])
            raise ConfigError(f"{run_dir} has no candidate named {name!r} (names look like {example})")
        ind = matches[0]
    overrides: dict[str, Any] = {}
    if device is not None:
        overrides["device"] = device
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if download:
        overrides["download"] = True
    budget = budget_of(ind, run_config.epochs)
    if budget < run_config.epochs:  # stopped early by successive halving: train what it trained
        overrides["stop_epoch"] = budget
    config = candidate_train_config(run_config, ind.canonical_key, **overrides)
    recorded = {
        "run": str(run_dir),
        "name": ind.name,
        "generation": ind.generation,
        "status": str(ind.status),
        "fitness": ind.fitness if is_trained(ind) else None,
        "val_accuracy": ind.val_accuracy,
        "test_accuracy": ind.test_accuracy,
        "seed": config.seed,
    }
    return ind.chromosome, config, recorded


def _print_table(result: dict[str, Any]) -> None:
    fmt = _fmt

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    status = result["status"]
    table.add_row("status", f"[green]{status}[/]" if status == Status.OK else f"[red]{status}[/]")
    if result.get("error"):
        table.add_row("error", str(result["error"]))
    table.add_row("dataset", f"{result['dataset']} ({result.get('device') or '-'})")
    table.add_row("fitness", fmt(result["fitness"], ".4f"))
    table.add_row("val_accuracy", fmt(result["val_accuracy"], ".4f"))
    table.add_row("test_accuracy", fmt(result["test_accuracy"], ".4f"))
    table.add_row("params", fmt(result["params"], ","))
    table.add_row("size_mb", fmt(result["size_mb"], ".2f"))
    table.add_row("latency_ms", fmt(result["latency_ms"], ".2f"))
    table.add_row("flops (MACs)", fmt(result["flops"], ","))
    table.add_row("epochs", f"{result['epochs_run']}/{result['epochs']} at batch {fmt(result['batch_size'])}")
    table.add_row("train_seconds", fmt(result["train_seconds"], ".1f"))
    if result.get("images_per_second"):
        table.add_row("images/s", fmt(result["images_per_second"], ",.0f"))
    console.print(table)


@app.command(epilog=examples('pyevonas profile "C(32,3,1) B L M(2) g F(64)" --dataset cifar10 --device cuda'))
def profile(
    arch: Annotated[str, typer.Argument(help=f"The architecture: {ARCH_FORMS}.")],
    dataset: Annotated[
        str,
        typer.Option(
            help="Whose input shape and classes: digits, cifar10, cifar100, imagenet16-120 (nothing is loaded), "
            "or your own: npz:FILE or folder:DIR (read for its shape and classes)."
        ),
    ] = "digits",
    image_size: Annotated[
        int | None,
        typer.Option("--image-size", help="The image size of a folder: dataset resized to N x N."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch (paper: 256).")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = "auto",
    channels_last: Annotated[
        bool | None,
        typer.Option(
            "--channels-last/--no-channels-last", help="Memory layout (default: as training, on for CUDA and CPU)."
        ),
    ] = None,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", help="bf16 autocast (default: as training, on for CUDA).")
    ] = None,
    autotune: Annotated[
        bool | None,
        typer.Option(
            "--autotune/--no-autotune", help="Pick depthwise kernels first, as training does (default: on for CUDA)."
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs per gene and direction (the median is shown).")] = 10,
    schema: Annotated[
        str, typer.Option("--schema", "-s", help="Scoring schema whose letters the text notation uses.")
    ] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON object on stdout.")] = False,
) -> None:
    """Time the forward and backward pass of every gene of an architecture on one training batch.

    Shows which genes make a candidate slow on this device, in the training step's layout and precision. Times are medians of [bold]--repeats[/] runs, each synchronised; their shares are what to read.
    """
    chromosome = read_arch(arch, schema)
    import torch

    from pyevonas.training.builders import build_model
    from pyevonas.training.profiling import profile_layers, profile_step
    from pyevonas.training.tuning import tune_depthwise

    if batch_size < 1 or repeats < 1:
        raise ConfigError("--batch-size and --repeats must be at least 1")
    input_shape, num_classes = dataset_info(dataset, image_size=image_size)
    dev = resolve_device(device)
    on_cuda = dev.type == "cuda"
    channels_last = dev.type in ("cuda", "cpu") if channels_last is None else channels_last
    bf16 = (on_cuda and torch.cuda.is_bf16_supported()) if bf16 is None else bf16
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    model = build_model(chromosome, input_shape, num_classes).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    tuned: dict[str, str] = {}
    if autotune if autotune is not None else on_cuda:
        x = torch.randint(0, 256, (batch_size, *input_shape), dtype=torch.uint8, device=dev)
        tuned = tune_depthwise(
            model, x.contiguous(memory_format=torch.channels_last) if channels_last else x, bf16=bf16
        )
    rows = profile_layers(
        model, batch_size=batch_size, device=dev, channels_last=channels_last, bf16=bf16, repeats=repeats
    )
    total = sum(r.total_ms for r in rows)
    whole = profile_step(  # last: it trains the model
        model, batch_size=batch_size, device=dev, channels_last=channels_last, bf16=bf16, repeats=repeats
    )
    setup = {
        "device": str(dev),
        "batch_size": batch_size,
        "channels_last": channels_last,
        "bf16": bf16,
        "depthwise_kernels": tuned,
    }
    if as_json:
        echo_json({**setup, "total_ms": total, "step": whole.to_dict(), "layers": [r.to_dict() for r in rows]})
        return

    table = Table(
        title=f"time per gene on {dev} at batch {batch_size} ({'channels_last' if channels_last else 'NCHW'}, {'bf16' if bf16 else 'fp32'})"
    )
    for col in ("#", "gene", "in", "out", "params", "forward ms", "backward ms", "share"):
        table.add_column(col, justify="left" if col in ("gene", "in", "out") else "right")
    for r in rows:
        share = r.total_ms / total if total > 0 else 0.0
        style = "bold red" if share >= 0.25 else ("yellow" if share >= 0.10 else "")
        table.add_row(
            str(r.index), r.layer, "x".join(map(str, r.in_shape)), "x".join(map(str, r.out_shape)),
            f"{r.params:,}", f"{r.forward_ms:.3f}", f"{r.backward_ms:.3f}", f"{100 * share:.1f}%", style=style,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"sum of genes: {total:.2f} ms per batch" + (f"; depthwise kernels: {tuned}" if tuned else ""), highlight=False
    )
    console.print(
        f"whole training step (forward, loss, backward, SGD): {whole.step_ms:.2f} ms; "
        f"the host issues it in {whole.host_ms:.2f} ms"
        + (
            " (close to the step: launch- or Python-bound)"
            if on_cuda and whole.host_ms >= 0.8 * whole.step_ms
            else (" (the GPU's kernels are the cost)" if on_cuda else "")
        ),
        highlight=False,
    )


__all__ = ["profile", "train"]
