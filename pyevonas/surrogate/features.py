"""Numeric features of an architecture, computed from the chromosome alone (no torch, no model built).

The walk follows the paper's models (``docs/original.md#models``, reproduced by
``pyevonas.training.builders``): TF ``same`` padding (``out = ceil(in / stride)``), pooling with
stride equal to its size, residual blocks of two k x k convolutions, bottleneck blocks with 4 x
``filters`` outputs, a ``Dense(classes)`` head. It counts parameters and multiply-accumulates
exactly as those layers have them, and records what the search's failures and dead models are
made of: no global pooling (training fails), instance normalisation of a 1 x 1 map (its output is
a constant, so the model cannot beat chance), the spatial size reaching 1 x 1 early.

:func:`features` returns one row per architecture, columns named by :data:`FEATURE_NAMES`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyevonas.errors import EncodingError
from pyevonas.metric import parse_arch

#: The layers the walk knows, in the order of their count columns.
LAYERS = (
    "C_2D", "DC_2D", "MP_2D", "AP_2D", "BN_2D", "IN_2D", "R_2D", "RES_2D", "BOT_2D",
    "GAP_2D", "GMP_2D", "FLAT", "DO", "D",
)  # fmt: skip
_GLOBAL = frozenset({"GAP_2D", "GMP_2D", "FLAT"})
_IGNORED = frozenset({"Rescaling", "MAG"})

#: Column names of :func:`features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "log_params",
    "log_macs",
    "genes",
    "feature_genes",
    "conv_depth",
    "reductions",
    "first_reduction",
    "spatial_at_pool",
    "genes_at_1x1",
    "channels_at_pool",
    "log_head_inputs",
    "in_at_1x1",
    "no_global_pool",
    "nonlinear",
    "skips",
    "max_kernel",
    "min_dense_units",
    "dropout",
    "log_max_activation",
    *(f"n_{layer}" for layer in LAYERS),
)

#: Column names of :func:`sequence_features`, in order: how often layer A directly precedes layer
#: B, how many genes of each layer reduce the map (stride or pool size above 1), and the first and
#: last position (1-based, 0 when absent) of each layer.
SEQUENCE_NAMES: tuple[str, ...] = (
    *(f"{a}>{b}" for a in LAYERS for b in LAYERS),
    *(f"reducing_{layer}" for layer in LAYERS),
    *(f"first_{layer}" for layer in LAYERS),
    *(f"last_{layer}" for layer in LAYERS),
)
_POSITION = {layer: i for i, layer in enumerate(LAYERS)}


@dataclass
class _Walk:
    """The running state of one architecture's walk."""

    channels: int
    side: int
    params: int = 0
    macs: int = 0
    conv_depth: int = 0
    reductions: int = 0
    first_reduction: int = -1
    genes_at_1x1: int = 0
    in_at_1x1: int = 0
    nonlinear: int = 0
    skips: int = 0
    max_kernel: int = 0
    max_activation: int = 0
    flat: int | None = None
    spatial_at_pool: int = 0
    channels_at_pool: int = 0
    min_units: int = 0
    dropout: float = 0.0


def _param(gene: Mapping[str, Any], key: str, where: str) -> int:
    value = gene.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise EncodingError(f"{where}: parameter {key!r} must be a non-negative number, got {value!r}")
    return int(value)


def _conv(w: _Walk, c_out: int, k: int, s: int, depthwise: bool = False) -> None:
    """A ``same`` convolution from the current map: parameters, MACs and the new map size."""
    side = -(-w.side // max(s, 1))
    fan_in = 1 if depthwise else w.channels
    w.params += k * k * fan_in * c_out + c_out
    w.macs += k * k * fan_in * c_out * side * side
    w.channels, w.side = c_out, side


def _block(w: _Walk, gene: Mapping[str, Any], where: str, bottleneck: bool) -> None:
    """A residual (two k x k convolutions) or bottleneck (1x1, k x k, 1x1 to 4 f) block with BNs."""
    f, k, s = (_param(gene, p, where) for p in ("filters", "kernel_size", "strides"))
    skip = bool(gene.get("skip_connection", 1))
    c_in, side_in = w.channels, w.side
    if bottleneck:
        _conv(w, f, 1, s)
        _conv(w, f, k, 1)
        _conv(w, 4 * f, 1, 1)
        w.params += 2 * (f + f + 4 * f)
        w.conv_depth += 3
    else:
        _conv(w, f, k, s)
        _conv(w, f, k, 1)
        w.params += 2 * (f + f)
        w.conv_depth += 2
    if skip:
        w.skips += 1
        if not (c_in == w.channels and s == 1):
            w.params += c_in * w.channels + w.channels + 2 * w.channels
            w.macs += c_in * w.channels * w.side * w.side
    w.nonlinear += 1
    w.max_kernel = max(w.max_kernel, k)
    if s > 1 and side_in > 1:
        _reduced(w)


def _reduced(w: _Walk) -> None:
    w.reductions += 1
    if w.first_reduction < 0:
        w.first_reduction = w.conv_depth


def _feature_gene(w: _Walk, layer: str, gene: Mapping[str, Any], where: str) -> None:
    """One gene before the global pooling."""
    side_in = w.side
    if layer in ("C_2D", "DC_2D"):
        k, s = _param(gene, "kernel_size", where), _param(gene, "strides", where)
        c_out = _param(gene, "filters", where) if layer == "C_2D" else w.channels
        _conv(w, c_out, k, s, depthwise=layer == "DC_2D")
        w.conv_depth += 1
        w.max_kernel = max(w.max_kernel, k)
        if s > 1 and side_in > 1:
            _reduced(w)
    elif layer in ("MP_2D", "AP_2D"):
        p = _param(gene, "pool_size", where)
        w.side = -(-w.side // max(p, 1))
        w.nonlinear += layer == "MP_2D"
        if p > 1 and side_in > 1:
            _reduced(w)
    elif layer == "BN_2D":
        w.params += 2 * w.channels
    elif layer == "IN_2D":
        w.params += 2 * w.channels
        w.in_at_1x1 += w.side == 1
    elif layer == "R_2D":
        w.nonlinear += 1
    elif layer in ("RES_2D", "BOT_2D"):
        _block(w, gene, where, bottleneck=layer == "BOT_2D")
    if side_in == 1:
        w.genes_at_1x1 += 1
    w.max_activation = max(w.max_activation, w.channels * w.side * w.side)


def _head_gene(w: _Walk, layer: str, gene: Mapping[str, Any], where: str) -> None:
    """One gene from the global pooling on (the pooling, Dropout, Dense)."""
    if layer in _GLOBAL:
        if w.flat is None:
            w.spatial_at_pool, w.channels_at_pool = w.side, w.channels
            w.flat = w.channels * w.side * w.side if layer == "FLAT" else w.channels
    elif layer == "DO":
        rate = gene.get("rate")
        w.dropout += float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else 0.0
    elif layer == "D":
        units = _param(gene, "units", where)
        fan_in = w.flat if w.flat is not None else w.channels
        w.params += fan_in * units + units
        w.macs += fan_in * units
        w.flat = units
        w.min_units = units if w.min_units == 0 else min(w.min_units, units)
        w.nonlinear += 1


def _chromosome(arch: Any, i: int) -> list[Mapping[str, Any]]:
    if isinstance(arch, str):
        return list(parse_arch(arch))
    if isinstance(arch, Sequence) and not isinstance(arch, bytes):
        for j, gene in enumerate(arch):
            if not isinstance(gene, Mapping) or not isinstance(gene.get("layer"), str):
                raise EncodingError(f"architecture {i}, layer {j}: expected a dict with a string 'layer'")
        return list(arch)
    raise EncodingError(f"architecture {i}: expected a chromosome or text notation, got {type(arch).__name__}")


def feature_row(arch: Any, num_classes: int, input_side: int = 32, index: int = 0) -> list[float]:
    """The features of one architecture (a chromosome or text notation), in :data:`FEATURE_NAMES` order.

    Raises:
        EncodingError: a gene is not a dict with a ``layer``, or a parameter the walk needs is
            missing or not a number (the message names the architecture and the layer).
    """
    genes = _chromosome(arch, index)
    w = _Walk(channels=3, side=input_side)
    counts = dict.fromkeys(LAYERS, 0)
    for j, gene in enumerate(genes):
        layer = str(gene["layer"])
        if layer in _IGNORED:
            continue
        where = f"architecture {index}, layer {j} ({layer})"
        counts[layer] = counts.get(layer, 0) + 1
        if w.flat is None and layer not in _GLOBAL:
            _feature_gene(w, layer, gene, where)
        else:
            _head_gene(w, layer, gene, where)
    no_pool = w.flat is None
    if w.flat is None:
        w.spatial_at_pool, w.channels_at_pool = w.side, w.channels
    flat = w.flat if w.flat is not None else w.channels * w.side * w.side
    w.params += flat * num_classes + num_classes
    w.macs += flat * num_classes
    n_genes = sum(counts.values())
    head = counts["GAP_2D"] + counts["GMP_2D"] + counts["FLAT"] + counts["DO"] + counts["D"]
    return [
        math.log10(max(w.params, 1)),
        math.log10(max(w.macs, 1)),
        n_genes,
        n_genes - head,
        w.conv_depth,
        w.reductions,
        w.first_reduction,
        w.spatial_at_pool,
        w.genes_at_1x1,
        w.channels_at_pool,
        math.log10(max(flat, 1)),
        w.in_at_1x1,
        float(no_pool),
        w.nonlinear,
        w.skips,
        w.max_kernel,
        w.min_units,
        w.dropout,
        math.log10(max(w.max_activation, 1)),
        *(counts[layer] for layer in LAYERS),
    ]


def features(archs: Sequence[Any], num_classes: int, input_side: int = 32) -> np.ndarray:
    """Features of many architectures: float64 array of shape (len(archs), len(FEATURE_NAMES)).

    Args:
        archs: chromosomes (lists of gene dicts) or text notations.
        num_classes: outputs of the classifier head (10 for CIFAR-10, 100 for CIFAR-100).
        input_side: the input images' side (32 for CIFAR).

    Example:
        >>> row = features(["C(32,3,1) B L g F(64)"], num_classes=10)[0]
        >>> int(10 ** row[FEATURE_NAMES.index("log_params")] + 0.5)
        3722
    """
    out = np.empty((len(archs), len(FEATURE_NAMES)), dtype=np.float64)
    for i, arch in enumerate(archs):
        out[i] = feature_row(arch, num_classes, input_side, i)
    return out


def sequence_features(archs: Sequence[Any]) -> np.ndarray:
    """Order features of many architectures: float64 array (len(archs), len(SEQUENCE_NAMES)).

    :func:`features` counts what an architecture holds; these say in which order: pairs of
    consecutive layers, reducing genes per layer, where each layer first and last occurs.
    Layers outside :data:`LAYERS` (and ``Rescaling``/``MAG``) are skipped.

    Example:
        >>> row = sequence_features(["C(32,3,2) B L g"])[0]
        >>> [SEQUENCE_NAMES[i] for i in np.flatnonzero(row[:196])]
        ['C_2D>BN_2D', 'BN_2D>R_2D', 'R_2D>GAP_2D']
        >>> int(row[SEQUENCE_NAMES.index("reducing_C_2D")]), int(row[SEQUENCE_NAMES.index("last_GAP_2D")])
        (1, 4)
    """
    n = len(LAYERS)
    out = np.zeros((len(archs), len(SEQUENCE_NAMES)), dtype=np.float64)
    for i, arch in enumerate(archs):
        genes = [g for g in _chromosome(arch, i) if g["layer"] in _POSITION]
        codes = [_POSITION[g["layer"]] for g in genes]
        for a, b in zip(codes, codes[1:], strict=False):
            out[i, a * n + b] += 1
        for pos, (code, gene) in enumerate(zip(codes, genes, strict=True), 1):
            step = gene.get("strides", gene.get("pool_size", 1))
            if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 1:
                out[i, n * n + code] += 1
            if out[i, n * n + n + code] == 0:
                out[i, n * n + n + code] = pos
            out[i, n * n + 2 * n + code] = pos
    return out


__all__ = ["FEATURE_NAMES", "LAYERS", "SEQUENCE_NAMES", "feature_row", "features", "sequence_features"]
