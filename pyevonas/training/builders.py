"""Turn a chromosome into a PyTorch model with the original Keras semantics (no training here).

Conventions (those of the authors' Keras code, described in ``docs/original.md#models``):

* Tensors are NCHW. The model is built for one input shape ``(C, H, W)``: every 'same' padding is
  computed once from the shapes the builder tracks, as TF does: ``out = ceil(in / stride)``, the
  total padding ``max((out - 1) * stride + k - in, 0)`` split with the smaller half on top/left.
  Spatial size therefore never reaches zero; a pool wider than the map gives 1 x 1.
* Max pooling pads with -inf, average pooling leaves padded cells out of the mean (TF 'same').
* The input may be uint8 or float in [0, 255]. If the chromosome does not start with a
  ``Rescaling`` gene (the text notation has none), the model multiplies by 1/255 anyway.
* The classifier head ``Linear(features, num_classes)`` is always appended; the model returns
  logits (the softmax lives in the loss).
* Initialisation follows Keras: he_normal (truncated) for Conv2D and DepthwiseConv2D (with
  Keras's depthwise fan-in ``k * k * C``), glorot_uniform elsewhere, zero biases. BatchNorm uses
  the Keras momentum (PyTorch ``momentum=0.01``) and the epsilons of the original code.

Every gene type has a builder in a registry, so a user can add a gene type without editing
pyevonas (:func:`register_layer`). A builder receives the gene dict and the input shape of the
gene (``(C, H, W)`` for a feature map, ``(F,)`` after the global pooling) and returns the module
and its output shape.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from torch import nn

from pyevonas.errors import GraphError, TrainingError
from pyevonas.metric import parse_arch
from pyevonas.metric.graphs import parse_graph
from pyevonas.training.cells import CellModule, ReductionBlock, reduction_shape
from pyevonas.training.layers import (
    KERAS_BN_EPS,
    ChainModel,
    GlobalPool,
    InstanceNorm,
    Rescaling,
    ResidualBlock,
    SamePool2d,
    Shape,
    batch_norm,
    linear,
    same_conv2d,
)

LayerBuilder = Callable[[Mapping[str, Any], Shape], tuple[nn.Module, Shape]]

_BUILDERS: dict[str, LayerBuilder] = {}


# ---------------------------------------------------------------------------- registry


@overload
def register_layer(
    layer: str, builder: None = None, *, replace: bool = False
) -> Callable[[LayerBuilder], LayerBuilder]: ...


@overload
def register_layer(layer: str, builder: LayerBuilder, *, replace: bool = False) -> LayerBuilder: ...


def register_layer(
    layer: str, builder: LayerBuilder | None = None, *, replace: bool = False
) -> LayerBuilder | Callable[[LayerBuilder], LayerBuilder]:
    """Register the builder of a gene type; usable as a decorator.

    Args:
        layer: the gene's ``layer`` name (e.g. ``"SEP_2D"``).
        builder: ``builder(gene, in_shape) -> (module, out_shape)``; ``in_shape`` is ``(C, H, W)``
            for a feature map or ``(F,)`` for a flat vector. The module must map a batch of that
            shape to a batch of ``out_shape``.
        replace: allow replacing an existing builder (otherwise a second registration raises).

    Example:
        >>> @register_layer("ID_2D")  # doctest: +SKIP
        ... def build_identity(gene, in_shape):
        ...     return nn.Identity(), in_shape
    """

    def _register(fn: LayerBuilder) -> LayerBuilder:
        if layer in _BUILDERS and not replace:
            raise ValueError(f"a builder for layer {layer!r} is already registered (pass replace=True)")
        _BUILDERS[layer] = fn
        return fn

    if builder is not None:
        return _register(builder)
    return _register


def unregister_layer(layer: str) -> None:
    """Remove a registered builder (a no-op if there is none)."""
    _BUILDERS.pop(layer, None)


PLUGIN_ENV = "PYEVONAS_PLUGINS"
PLUGIN_GROUP = "pyevonas.layers"
_plugins_loaded = False
_plugin_error: str | None = None


def load_plugins() -> list[str]:
    """Import the modules that register extra gene builders; runs once per process.

    Sources: the ``pyevonas.layers`` entry-point group of installed packages, and the
    ``PYEVONAS_PLUGINS`` environment variable (comma-separated module names or ``.py`` files).
    Worker processes inherit the variable, so their builders match the parent's.
    :func:`build_model` calls this on first use.

    Returns:
        What was loaded (entry-point names, modules, files).

    Raises:
        TrainingError: a plugin cannot be imported (the message names it).
    """
    global _plugins_loaded, _plugin_error
    if _plugin_error is not None:
        raise TrainingError(_plugin_error)  # every build names the broken plugin, not just the first
    if _plugins_loaded:
        return []
    _plugins_loaded = True
    try:
        return _import_plugins()
    except TrainingError as exc:
        _plugin_error = str(exc)
        raise


def _import_plugins() -> list[str]:

    loaded: list[str] = []
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()
        except Exception as exc:
            raise TrainingError(f"cannot load the {PLUGIN_GROUP} entry point {entry.name!r}: {exc}") from exc
        loaded.append(entry.name)
    for item in filter(None, (part.strip() for part in os.environ.get(PLUGIN_ENV, "").split(","))):
        try:
            if item.endswith(".py"):
                path = Path(item).expanduser()
                spec = importlib.util.spec_from_file_location(f"pyevonas_plugin_{path.stem}", path)
                if spec is None or spec.loader is None or not path.is_file():
                    raise FileNotFoundError(f"no file {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                importlib.import_module(item)
        except Exception as exc:
            raise TrainingError(f"cannot load plugin {item!r} from ${PLUGIN_ENV}: {exc}") from exc
        loaded.append(item)
    return loaded


def registered_layers() -> list[str]:
    """Names of every gene type that :func:`build_model` can build."""
    return sorted(_BUILDERS)


# ---------------------------------------------------------------------------- gene builders


_V = TypeVar("_V")


@overload
def _param(gene: Mapping[str, Any], name: str) -> int: ...
@overload
def _param(gene: Mapping[str, Any], name: str, kind: type[_V]) -> _V: ...
def _param(gene: Mapping[str, Any], name: str, kind: type = int) -> object:
    if name not in gene:
        raise KeyError(f"missing parameter {name!r}")
    value = gene[name]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"parameter {name}={value!r} must be a positive integer")
        if value != int(value) or value < 1:
            raise ValueError(f"parameter {name}={value!r} must be a positive integer")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"parameter {name}={value!r} must be a number")
        return float(value)
    return value


def _need_map(in_shape: Shape) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ValueError("needs a feature map, but comes after the global pooling (gets a flat vector)")
    return in_shape[0], in_shape[1], in_shape[2]


def _need_flat(in_shape: Shape) -> int:
    if len(in_shape) != 1:
        raise ValueError(
            "needs a flat vector, but gets a feature map: the chromosome has no global pooling "
            "(GAP_2D, GMP_2D or FLAT) before it"
        )
    return in_shape[0]


@register_layer("Rescaling")
def _build_rescaling(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    return Rescaling(_param(gene, "scale", float)), in_shape


@register_layer("C_2D")
def _build_conv(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    _need_map(in_shape)
    return same_conv2d(
        in_shape, _param(gene, "filters"), _param(gene, "kernel_size"), _param(gene, "strides"), init="he_normal"
    )


@register_layer("DC_2D")
def _build_depthwise(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    channels, _, _ = _need_map(in_shape)
    return same_conv2d(
        in_shape,
        channels,
        _param(gene, "kernel_size"),
        _param(gene, "strides"),
        groups=channels,
        init="he_normal_depthwise",
    )


@register_layer("BN_2D")
def _build_bn(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    channels, _, _ = _need_map(in_shape)
    return batch_norm(channels), in_shape


@register_layer("IN_2D")
def _build_in(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    channels, height, width = _need_map(in_shape)
    return InstanceNorm(channels, height * width), in_shape


@register_layer("R_2D")
def _build_relu(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    _need_map(in_shape)
    return nn.ReLU(), in_shape


def _build_pool(kind: str) -> LayerBuilder:
    def build(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
        channels, height, width = _need_map(in_shape)
        pool = SamePool2d(kind, _param(gene, "pool_size"), (height, width))
        return pool, (channels, *pool.out_hw)

    return build


register_layer("MP_2D", _build_pool("max"))
register_layer("AP_2D", _build_pool("avg"))


@register_layer("RES_2D")
def _build_res(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    channels, _, _ = _need_map(in_shape)
    filters, kernel, stride = _param(gene, "filters"), _param(gene, "kernel_size"), _param(gene, "strides")
    skip = bool(_param(gene, "skip_connection", object))
    conv1, shape1 = same_conv2d(in_shape, filters, kernel, stride)
    conv2, shape2 = same_conv2d(shape1, filters, kernel, 1)
    main = nn.Sequential(conv1, batch_norm(filters, KERAS_BN_EPS), nn.ReLU(), conv2, batch_norm(filters, KERAS_BN_EPS))
    shortcut = None
    if skip and not (channels == filters and stride == 1):
        conv_sc, _ = same_conv2d(in_shape, filters, 1, stride)
        shortcut = nn.Sequential(conv_sc, batch_norm(filters, KERAS_BN_EPS))
    return ResidualBlock(main, shortcut, skip), shape2


@register_layer("BOT_2D")
def _build_bot(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    channels, _, _ = _need_map(in_shape)
    filters, kernel, stride = _param(gene, "filters"), _param(gene, "kernel_size"), _param(gene, "strides")
    skip = bool(_param(gene, "skip_connection", object))
    conv1, shape1 = same_conv2d(in_shape, filters, 1, stride)
    conv2, shape2 = same_conv2d(shape1, filters, kernel, 1)
    conv3, shape3 = same_conv2d(shape2, 4 * filters, 1, 1)
    main = nn.Sequential(
        conv1, batch_norm(filters), nn.ReLU(),
        conv2, batch_norm(filters, KERAS_BN_EPS), nn.ReLU(),
        conv3, batch_norm(4 * filters),
    )  # fmt: skip
    shortcut = None
    if skip and not (channels == 4 * filters and stride == 1):
        # The original uses 'valid' here; with a 1x1 kernel that equals 'same' in shape and values.
        conv_sc, _ = same_conv2d(in_shape, 4 * filters, 1, stride)
        shortcut = nn.Sequential(conv_sc, batch_norm(4 * filters))
    return ResidualBlock(main, shortcut, skip), shape3


def _build_global(kind: str) -> LayerBuilder:
    def build(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
        channels, height, width = _need_map(in_shape)
        features = channels * height * width if kind == "flat" else channels
        return GlobalPool(kind), (features,)

    return build


register_layer("GAP_2D", _build_global("avg"))
register_layer("GMP_2D", _build_global("max"))
register_layer("FLAT", _build_global("flat"))


@register_layer("DO")
def _build_dropout(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    _need_flat(in_shape)
    rate = _param(gene, "rate", float)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"parameter rate={rate} must lie in [0, 1)")
    return nn.Dropout(rate), in_shape


@register_layer("D")
def _build_dense(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    features = _need_flat(in_shape)
    units = _param(gene, "units")
    activation = gene.get("activation", "relu")
    if activation not in ("relu", None, "linear"):
        raise ValueError(f"activation {activation!r} is not supported (relu or linear)")
    lin = linear(features, units)
    module: nn.Module = nn.Sequential(lin, nn.ReLU()) if activation == "relu" else lin
    return module, (units,)


@register_layer("cell")
def _build_cell(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    """A cell gene: its cell (anything ``parse_graph`` reads) on the input's channels, shape kept."""
    channels, _, _ = _need_map(in_shape)
    if "cell" not in gene:
        raise ValueError("a cell gene holds its cell under 'cell'")
    try:
        graph = parse_graph(gene["cell"], where="")
    except GraphError as exc:
        raise ValueError(f"cell: {exc}") from None
    if len(graph.cells) != 1:
        raise ValueError(
            f"a cell gene builds one cell, this graph has {len(graph.cells)} ({', '.join(graph.cell_names)})"
        )
    return CellModule(graph.cells[0], channels), in_shape


@register_layer("RED_2D")
def _build_reduction(gene: Mapping[str, Any], in_shape: Shape) -> tuple[nn.Module, Shape]:
    """NAS-Bench-201's residual reduction block to ``filters`` channels, every side halved."""
    channels, _, _ = _need_map(in_shape)
    filters = _param(gene, "filters")
    return ReductionBlock(channels, filters), reduction_shape(in_shape, filters)


def _as_chromosome(arch: Any) -> list[dict[str, Any]]:
    if isinstance(arch, str):
        return [dict(g) for g in parse_arch(arch)]
    if isinstance(arch, Sequence) and not isinstance(arch, bytes):
        genes = list(arch)
        for i, gene in enumerate(genes):
            if not isinstance(gene, Mapping) or not isinstance(gene.get("layer"), str):
                raise TrainingError(f"gene {i}: expected a dict with a string 'layer', got {gene!r}")
        return [dict(g) for g in genes]
    raise TrainingError(f"an architecture must be a list of gene dicts or a text notation, got {type(arch).__name__}")


def build_model(
    arch: Sequence[Mapping[str, Any]] | str,
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
) -> ChainModel:
    """Build the PyTorch model of an architecture.

    Args:
        arch: a chromosome (list of gene dicts, the paper's format) or a text-notation string.
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: outputs of the classifier head.

    Returns:
        A :class:`ChainModel` returning logits of shape ``(N, num_classes)``.

    Raises:
        TrainingError: the architecture cannot be built; the message names the gene index, its
            layer and why (unknown layer, missing parameter, no global pooling...).

    Example:
        >>> model = build_model([{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1},
        ...                      {"layer": "GAP_2D"}], input_shape=(3, 16, 16))
        >>> model(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """
    load_plugins()
    genes = _as_chromosome(arch)
    shape: Shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise TrainingError(f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}")
    if num_classes < 1:
        raise TrainingError(f"num_classes must be >= 1, got {num_classes}")
    if not genes or genes[0]["layer"] != "Rescaling":
        genes.insert(0, {"layer": "Rescaling", "f_name": "Rescaling", "scale": 1 / 255})
        offset = -1  # report indices of the chromosome as given
    else:
        offset = 0
    layers: list[nn.Module] = []
    shapes: list[Shape] = []
    for i, gene in enumerate(genes):
        name = gene["layer"]
        builder = _BUILDERS.get(name)
        index = i + offset
        where = f"gene {index} ({name})" if index >= 0 else "implicit Rescaling"
        if builder is None:
            raise TrainingError(
                f"{where}: no model builder for layer {name!r} (register one with pyevonas.training.builders.register_layer)"
            )
        try:
            module, shape = builder(gene, shape)
        except TrainingError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            message: Any = exc
            if isinstance(exc, KeyError) and exc.args:
                key = exc.args[0]
                message = key if str(key).startswith("missing parameter") else f"missing parameter {key!r}"
            raise TrainingError(f"{where} cannot be built: {message}") from None
        layers.append(module)
        shapes.append(tuple(int(v) for v in shape))
    if len(shape) != 1:
        raise TrainingError(
            "the architecture has no global pooling gene (GAP_2D, GMP_2D or FLAT): "
            "the classifier head would get a feature map"
        )
    head = linear(shape[0], num_classes)
    return ChainModel(layers, head, genes, shapes, tuple(int(v) for v in input_shape))


__all__ = [
    "PLUGIN_ENV",
    "PLUGIN_GROUP",
    "LayerBuilder",
    "build_model",
    "load_plugins",
    "register_layer",
    "registered_layers",
    "unregister_layer",
]
