"""Turn a chromosome into a PyTorch model with the original Keras semantics (no training here).

Conventions (see ``../shared/reference/original_spec.md`` section 2):

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

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast, overload

import torch
import torch.nn.functional as F
from torch import nn

from pyevonas.errors import TrainingError

Shape = tuple[int, ...]
LayerBuilder = Callable[[Mapping[str, Any], Shape], tuple[nn.Module, Shape]]

_BUILDERS: dict[str, LayerBuilder] = {}

# Keras' truncated normal keeps values within 2 std and rescales by this factor so that the
# resulting std is the requested one (keras.initializers.VarianceScaling).
_TRUNC_STD_FACTOR = 0.87962566103423978
BN_MOMENTUM = 0.01  # Keras BatchNormalization momentum 0.99
BN_EPS = 1.001e-5  # the BN_2D gene and the outer BOT_2D norms
KERAS_BN_EPS = 1e-3  # Keras default: the RES_2D norms and the middle BOT_2D norm
IN_EPS = 1e-3  # tensorflow-addons InstanceNormalization default


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
    import importlib
    import importlib.metadata
    import importlib.util
    import os
    from pathlib import Path

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


# ---------------------------------------------------------------------------- helpers


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'same' for one axis: ``(out, pad_before, pad_after)`` with the extra cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _he_normal_(weight: torch.Tensor, fan_in: int) -> None:
    std = math.sqrt(2.0 / fan_in) / _TRUNC_STD_FACTOR
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def _glorot_uniform_(weight: torch.Tensor) -> None:
    nn.init.xavier_uniform_(weight)


def same_conv2d(
    in_shape: Shape,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    *,
    groups: int = 1,
    init: str = "glorot_uniform",
) -> tuple[nn.Module, Shape]:
    """A Conv2d with TF 'same' padding for input ``(C, H, W)``; returns ``(module, out_shape)``.

    Symmetric padding goes into the convolution itself; asymmetric padding (even kernels,
    stride 2) becomes an explicit ``ZeroPad2d`` in front, as TF pads the extra cell after.

    Args:
        in_shape: ``(C, H, W)``.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: stride in both directions.
        groups: ``C`` for a depthwise convolution.
        init: ``"he_normal"`` (Keras Conv2D genes), ``"he_normal_depthwise"`` (Keras
            DepthwiseConv2D: fan-in ``k * k * C``) or ``"glorot_uniform"`` (Keras default).
    """
    channels, height, width = in_shape
    out_h, top, bottom = same_padding(height, kernel_size, stride)
    out_w, left, right = same_padding(width, kernel_size, stride)
    symmetric = top == bottom and left == right
    padding = (top, left) if symmetric else (0, 0)
    conv: nn.Conv2d
    if groups == channels == out_channels:
        conv = DepthwiseConv2d(channels, kernel_size, stride, padding)
    else:
        conv = nn.Conv2d(channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups, bias=True)
    if init == "he_normal":
        _he_normal_(conv.weight, kernel_size * kernel_size * channels // groups)
    elif init == "he_normal_depthwise":
        _he_normal_(conv.weight, kernel_size * kernel_size * channels)
    elif init == "glorot_uniform":
        # Keras computes fans from the (k, k, in/groups, out) kernel, as torch does from its shape.
        _glorot_uniform_(conv.weight)
    else:
        raise ValueError(f"unknown init {init!r}")
    assert conv.bias is not None
    nn.init.zeros_(conv.bias)
    module: nn.Module = conv if symmetric else nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), conv)
    return module, (out_channels, out_h, out_w)


def _autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype autocast gives a convolution of ``x`` here, or None when autocast is off."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (groups = in = out channels) with a choice of exact kernels.

    Depthwise convolutions are where cuDNN is least predictable: in channels_last, and in bf16,
    some shapes fall on grouped "direct" kernels many times slower than the arithmetic warrants
    (pytorch/pytorch#34977). So the module can compute itself three ways, all the same
    function of the same ``weight`` and ``bias`` (it *is* an ``nn.Conv2d``, state dicts and
    ``isinstance`` checks included), and :func:`pyevonas.profiling.tune_depthwise` times them on
    the real input and keeps the fastest per module (``impl``):

    * ``"conv"``: the framework's grouped convolution in the input's layout (the default);
    * ``"nchw"``: the same, on a contiguous NCHW copy of a channels_last input (a different set
      of kernels), the output returned in channels_last;
    * ``"shifts"``: the sum over the ``k * k`` taps of a strided view of the padded input times
      one weight per channel, accumulated in float32: elementwise work only, whose cost is
      predictable on every device.

    A 1 x 1 kernel always takes the shortcut it is: a per-channel scale and shift of the
    (strided) input, no convolution at all.
    """

    IMPLS = ("conv", "nchw", "shifts")

    def __init__(self, channels: int, kernel_size: int, stride: int, padding: tuple[int, int]) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding, groups=channels, bias=True)
        self.impl = "conv"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == (1, 1) or self.impl == "shifts":
            return self._taps(x)
        if (
            self.impl == "nchw"
            and x.dim() == 4
            and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)

    def _taps(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        ph, pw = cast(tuple[int, int], self.padding)  # built from a pair of ints
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        height, width = x.shape[-2:]
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        assert self.bias is not None
        weight = self.weight.view(-1, k, k)
        # float32 accumulation, as the convolution kernels do under autocast.
        out = self.bias.view(1, -1, 1, 1).float()
        for i in range(k):
            for j in range(k):
                tap = x[:, :, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s]
                out = torch.addcmul(out, tap, weight[:, i, j].view(1, -1, 1, 1).float())
        dtype = _autocast_dtype(x)
        if dtype is not None:
            return out.to(dtype)
        return out.to(torch.promote_types(x.dtype, self.weight.dtype))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"  # type: ignore[no-untyped-call]


def batch_norm(channels: int, eps: float = BN_EPS) -> nn.BatchNorm2d:
    """BatchNorm2d with the Keras momentum."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=BN_MOMENTUM)


class Rescaling(nn.Module):
    """``x * scale`` (uint8 input becomes float32 here)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            x = x.float()
        return x * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class SamePool2d(nn.Module):
    """TF 'same' max or average pooling with pool size = stride = ``p``."""

    correction: torch.Tensor

    def __init__(self, kind: str, pool: int, in_hw: tuple[int, int]) -> None:
        super().__init__()
        self.kind = kind
        self.pool = pool
        out_h, top, bottom = same_padding(in_hw[0], pool, pool)
        out_w, left, right = same_padding(in_hw[1], pool, pool)
        self.pad = (left, right, top, bottom)
        self.out_hw = (out_h, out_w)
        self.padded = any(self.pad)
        if kind == "avg" and self.padded:
            # TF leaves padded cells out of the mean: rescale each output cell by p*p / count.
            ones = F.pad(torch.ones(1, 1, *in_hw), self.pad)
            count = F.avg_pool2d(ones, pool, pool) * pool * pool
            self.register_buffer("correction", (pool * pool) / count, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            if self.padded:
                x = F.pad(x, self.pad, value=float("-inf"))
            return F.max_pool2d(x, self.pool, self.pool)
        if self.padded:
            x = F.pad(x, self.pad)
            return F.avg_pool2d(x, self.pool, self.pool) * self.correction.to(x.dtype)
        return F.avg_pool2d(x, self.pool, self.pool)

    def extra_repr(self) -> str:
        return f"{self.kind}, pool={self.pool}, pad={self.pad}"


class InstanceNorm(nn.Module):
    """Per-sample, per-channel normalisation over H, W with affine gamma/beta (tfa defaults).

    On a 1 x 1 map the normalised value is 0, so the output is exactly beta; PyTorch's
    ``instance_norm`` refuses that case in training, so it is computed directly.
    """

    def __init__(self, channels: int, spatial: int, eps: float = IN_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.single_cell = spatial == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.single_cell:
            return x * 0 + self.bias.view(1, -1, 1, 1).to(x.dtype)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class ResidualBlock(nn.Module):
    """RES_2D (``res_layers.py:4-30``) and BOT_2D (``:32-62``): a main path, an optional
    shortcut, and a final ReLU in both cases."""

    def __init__(self, main: nn.Module, shortcut: nn.Module | None, skip: bool) -> None:
        super().__init__()
        self.main = main
        self.shortcut = shortcut
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if self.skip:
            y = y + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(y)


class GlobalPool(nn.Module):
    """Global average or max pooling over H, W, or flatten: (N, C, H, W) -> (N, F)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=(2, 3))
        if self.kind == "max":
            return x.amax(dim=(2, 3))
        return torch.flatten(x, 1)

    def extra_repr(self) -> str:
        return self.kind


def _linear(in_features: int, out_features: int) -> nn.Linear:
    lin = nn.Linear(in_features, out_features)
    _glorot_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


# ---------------------------------------------------------------------------- gene builders


def _param(gene: Mapping[str, Any], name: str, kind: type = int) -> Any:
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
    lin = _linear(features, units)
    module: nn.Module = nn.Sequential(lin, nn.ReLU()) if activation == "relu" else lin
    return module, (units,)


# ---------------------------------------------------------------------------- the model


class ChainModel(nn.Module):
    """A chain of gene modules followed by the classifier head.

    Attributes:
        genes: the chromosome it was built from (with the implicit Rescaling when added).
        shapes: the output shape of every gene, in order (``(C, H, W)`` or ``(F,)``).
        input_shape: the ``(C, H, W)`` the model was built for.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        head: nn.Module,
        genes: list[dict[str, Any]],
        shapes: list[Shape],
        input_shape: Shape,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.genes = genes
        self.shapes = shapes
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        logits: torch.Tensor = self.head(x)
        return logits


def _as_chromosome(arch: Any) -> list[dict[str, Any]]:
    if isinstance(arch, str):
        from pyevonas import parse_arch  # the similarity engine owns the text notation

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
                f"{where}: no model builder for layer {name!r} (register one with pyevonas.model.register_layer)"
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
    head = _linear(shape[0], num_classes)
    return ChainModel(layers, head, genes, shapes, tuple(int(v) for v in input_shape))


# ---------------------------------------------------------------------------- measurements


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_size_mb(model: nn.Module) -> float:
    """Size of the weights in MB (1e6 bytes): 4 bytes per parameter and buffer (BN statistics).

    This is the quantity the original's 40 MB limit on the untrained ``.h5`` file measured,
    less its file overhead (~0.16 MB).
    """
    n_values = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for b in model.buffers() if b.is_floating_point()
    )
    return 4 * n_values / 1e6


def model_size(
    arch: Sequence[Mapping[str, Any]] | str,
    input_shape: Sequence[int] = (3, 32, 32),
    num_classes: int = 10,
) -> tuple[int, float]:
    """``(parameters, size_mb)`` of an architecture without allocating its weights.

    Built on PyTorch's ``meta`` device, so a 100 MB candidate costs no memory: use this to skip
    oversized candidates before training.

    Raises:
        TrainingError: as :func:`build_model`.
    """
    with torch.device("meta"):
        model = build_model(arch, input_shape, num_classes)
    return count_parameters(model), model_size_mb(model)


@torch.no_grad()
def measure_latency_ms(
    model: nn.Module,
    input_shape: Sequence[int],
    device: torch.device | str = "cpu",
    *,
    warmup: int = 3,
    repeats: int = 20,
    channels_last: bool = False,
) -> float:
    """Median wall-clock milliseconds of one forward pass at batch 1, after warm-up runs."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.no_grad():
            model(x)

    try:
        return median_ms(forward, device, warmup=warmup, repeats=repeats)
    finally:
        model.train(was_training)


def median_ms(fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed
    ones, the device synchronised before and after each run (on CUDA)."""
    import statistics
    import time

    times: list[float] = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int | None:
    """Multiply-accumulates of one forward pass at batch 1, as ptflops counts them.

    This is the "FLOPs" convention of NAS-Bench-201 (one multiply-add counts once). Returns
    ``None`` if ptflops is not installed or cannot count the model.
    """
    try:
        import warnings

        from ptflops import get_model_complexity_info
    except ImportError:
        return None
    was_training = model.training
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            macs, _ = get_model_complexity_info(
                model,
                tuple(int(v) for v in input_shape),
                as_strings=False,
                print_per_layer_stat=False,
                verbose=False,
                backend="pytorch",
            )
    except Exception:  # ptflops is best-effort; a model it cannot hook is still a valid model
        return None
    finally:
        model.train(was_training)
    return int(macs) if macs is not None else None


__all__ = [
    "ChainModel",
    "LayerBuilder",
    "build_model",
    "count_flops",
    "count_parameters",
    "load_plugins",
    "measure_latency_ms",
    "model_size",
    "model_size_mb",
    "register_layer",
    "registered_layers",
    "same_conv2d",
    "same_padding",
    "unregister_layer",
]
