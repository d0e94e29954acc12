"""Parameters and weight size of a chromosome, counted from its genes without torch.

:func:`arch_size` follows the shapes that :func:`pyevonas.training.builders.build_model` tracks
(TF 'same' padding: ``out = ceil(in / stride)``, the classifier head appended) and counts what
:func:`pyevonas.training.measure.model_size` measures on the built model: the trainable
parameters, and the size in MB as 4 bytes per parameter and floating-point buffer (the running
mean and variance of every BatchNorm, the correction map of a padded average pooling). A test
holds the two together on random chromosomes of the paper's space.

It knows the paper's gene types; a chromosome with another one (a plugin's layer, see
docs/extending.md) has no size here (``None``). Evaluators that do not build the model (the
surrogate, ``pyevonas.search.executors.surrogate``) report sizes from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A feature map ``(C, H, W)`` or, after the global pooling, a flat vector ``(F,)``.
_Shape = tuple[int, ...]


@dataclass(frozen=True)
class ArchSize:
    """What :func:`arch_size` counts.

    Attributes:
        params: trainable parameters (``pyevonas.training.measure.count_parameters``).
        size_mb: weights in MB (1e6 bytes), 4 bytes per parameter and floating-point buffer
            (``pyevonas.training.measure.model_size_mb``).
    """

    params: int
    size_mb: float


@dataclass
class _Count:
    params: int = 0
    buffers: int = 0

    def conv(self, channels: int, filters: int, kernel: int, groups: int = 1) -> None:
        self.params += filters * (channels // groups) * kernel * kernel + filters

    def batch_norm(self, channels: int) -> None:
        self.params += 2 * channels  # gamma, beta
        self.buffers += 2 * channels  # running mean and variance


def _same(size: int, stride: int) -> int:
    return -(-size // stride)


def _int(gene: Mapping[str, Any], name: str) -> int:
    value = gene.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise ValueError(f"parameter {name}={value!r} must be a positive integer")
    return int(value)


def _feature_map(shape: _Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError("needs a feature map, but comes after the global pooling (gets a flat vector)")
    return shape[0], shape[1], shape[2]


def _conv(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    channels, height, width = _feature_map(shape)
    filters, kernel, stride = _int(gene, "filters"), _int(gene, "kernel_size"), _int(gene, "strides")
    count.conv(channels, filters, kernel)
    return filters, _same(height, stride), _same(width, stride)


def _depthwise(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    channels, height, width = _feature_map(shape)
    kernel, stride = _int(gene, "kernel_size"), _int(gene, "strides")
    count.conv(channels, channels, kernel, groups=channels)
    return channels, _same(height, stride), _same(width, stride)


def _batch_norm(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    count.batch_norm(_feature_map(shape)[0])
    return shape


def _instance_norm(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    count.params += 2 * _feature_map(shape)[0]
    return shape


def _elementwise(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    _feature_map(shape)
    return shape


def _pool(average: bool) -> Callable[[Mapping[str, Any], _Shape, _Count], _Shape]:
    def pool(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
        channels, height, width = _feature_map(shape)
        size = _int(gene, "pool_size")
        out_h, out_w = _same(height, size), _same(width, size)
        if average and (out_h * size != height or out_w * size != width):
            count.buffers += out_h * out_w  # the correction of the cells that saw padding
        return channels, out_h, out_w

    return pool


def _block(bottleneck: bool) -> Callable[[Mapping[str, Any], _Shape, _Count], _Shape]:
    """RES_2D (two k x k convolutions) or BOT_2D (1 x 1, k x k, 1 x 1 to 4 x filters), with the
    shortcut convolution when the skip connection changes the shape."""

    def block(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
        channels, height, width = _feature_map(shape)
        filters, kernel, stride = _int(gene, "filters"), _int(gene, "kernel_size"), _int(gene, "strides")
        if bottleneck:
            out = 4 * filters
            for c_in, c_out, k in ((channels, filters, 1), (filters, filters, kernel), (filters, out, 1)):
                count.conv(c_in, c_out, k)
                count.batch_norm(c_out)
        else:
            out = filters
            for c_in in (channels, filters):
                count.conv(c_in, filters, kernel)
                count.batch_norm(filters)
        if bool(gene.get("skip_connection")) and not (channels == out and stride == 1):
            count.conv(channels, out, 1)
            count.batch_norm(out)
        return out, _same(height, stride), _same(width, stride)

    return block


def _global(flatten: bool) -> Callable[[Mapping[str, Any], _Shape, _Count], _Shape]:
    def pool(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
        channels, height, width = _feature_map(shape)
        return (channels * height * width,) if flatten else (channels,)

    return pool


def _flat(shape: _Shape) -> int:
    if len(shape) != 1:
        raise ValueError("needs a flat vector, but gets a feature map: the chromosome has no global pooling before it")
    return shape[0]


def _dense(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    features, units = _flat(shape), _int(gene, "units")
    count.params += features * units + units
    return (units,)


def _dropout(gene: Mapping[str, Any], shape: _Shape, count: _Count) -> _Shape:
    _flat(shape)
    return shape


_GENES: dict[str, Callable[[Mapping[str, Any], _Shape, _Count], _Shape]] = {
    "Rescaling": lambda gene, shape, count: shape,
    "C_2D": _conv,
    "DC_2D": _depthwise,
    "BN_2D": _batch_norm,
    "IN_2D": _instance_norm,
    "R_2D": _elementwise,
    "MP_2D": _pool(average=False),
    "AP_2D": _pool(average=True),
    "RES_2D": _block(bottleneck=False),
    "BOT_2D": _block(bottleneck=True),
    "GAP_2D": _global(flatten=False),
    "GMP_2D": _global(flatten=False),
    "FLAT": _global(flatten=True),
    "DO": _dropout,
    "D": _dense,
}

#: The gene types :func:`arch_size` counts.
KNOWN_LAYERS: frozenset[str] = frozenset(_GENES)


def arch_size(
    chromosome: Sequence[Mapping[str, Any]], input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10
) -> ArchSize | None:
    """Parameters and size of the model ``build_model(chromosome, input_shape, num_classes)``.

    Args:
        chromosome: the layer dicts (the paper's format).
        input_shape: ``(C, H, W)`` of one input image.
        num_classes: outputs of the classifier head.

    Returns:
        The counts, or ``None`` when a gene's type is not one of :data:`KNOWN_LAYERS`.

    Raises:
        ValueError: the model cannot be built (the message names the gene), as ``build_model``
            would refuse it.

    Example:
        >>> arch_size([{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1}, {"layer": "GAP_2D"}])
        ArchSize(params=618, size_mb=0.002472)
    """
    if any(gene.get("layer") not in _GENES for gene in chromosome):
        return None
    count = _Count()
    shape: _Shape = tuple(int(v) for v in input_shape)
    for index, gene in enumerate(chromosome):
        try:
            shape = _GENES[str(gene["layer"])](gene, shape, count)
        except ValueError as exc:
            raise ValueError(f"gene {index} ({gene['layer']}) cannot be built: {exc}") from None
    features = _flat(shape) if len(shape) == 1 else None
    if features is None:
        raise ValueError("the architecture has no global pooling gene (GAP_2D, GMP_2D or FLAT)")
    count.params += features * num_classes + num_classes
    return ArchSize(count.params, 4 * (count.params + count.buffers) / 1e6)


__all__ = ["KNOWN_LAYERS", "ArchSize", "arch_size"]
