"""The operations a cell may hold, by name, as plain data (torch-free: the search space checks them).

A cell's ops sit on its edges (NAS-Bench-201, DARTS: an edge label is an op name) or on its nodes
(NAS-Bench-101, your own DAGs: a node label is an op name and, for the parametric ops, its
parameters). Every op keeps the number of channels and the spatial size (stride 1). The names:

================================  ================================================================
name                              operation
================================  ================================================================
``none``                          zero (no contribution)
``skip_connect``, ``identity``    identity
``nor_conv_KxK``, ``conv_KxK``    ReLU, K x K convolution, batch norm (NAS-Bench-201's ReLUConvBN)
``convKxK-bn-relu``               K x K convolution, batch norm, ReLU (NAS-Bench-101's order)
``sep_conv_KxK``                  DARTS' separable convolution (two ReLU, depthwise K x K, 1 x 1, BN)
``dil_conv_KxK``                  DARTS' dilated separable convolution (dilation 2)
``conv_7x1_1x7``                  ReLU, 1 x 7 and 7 x 1 convolutions, batch norm
``avg_pool_KxK``, ``max_pool_KxK`` K x K pooling, stride 1, padded ('same'); ``maxpoolKxK`` too
``input``, ``node``, ``output``   identity: the structural labels of a node that holds no op
================================  ================================================================

K is odd, 1 to 11. On nodes, the parametric forms ``conv``, ``sep_conv``, ``dil_conv``,
``avg_pool`` and ``max_pool`` take ``kernel_size`` (and ``conv`` an optional ``dilation``, 1 to 4)
from the node's params, e.g. ``{"op": "conv", "params": {"kernel_size": 5}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

OpKind = Literal[
    "zero", "identity", "relu_conv_bn", "conv_bn_relu", "sep_conv", "dil_conv", "factorised", "avg_pool", "max_pool"
]

#: The largest kernel an op may have.
MAX_KERNEL = 11
#: The largest dilation of a parametric ``conv``.
MAX_DILATION = 4

_FIXED: dict[str, tuple[OpKind, int]] = {
    "none": ("zero", 1),
    "zero": ("zero", 1),
    "skip_connect": ("identity", 1),
    "identity": ("identity", 1),
    "input": ("identity", 1),
    "node": ("identity", 1),
    "output": ("identity", 1),
    "conv_7x1_1x7": ("factorised", 7),
}
_PATTERNS: tuple[tuple[re.Pattern[str], OpKind], ...] = (
    (re.compile(r"(?:nor_)?conv_(\d+)x(\d+)"), "relu_conv_bn"),
    (re.compile(r"conv(\d+)x(\d+)-bn-relu"), "conv_bn_relu"),
    (re.compile(r"sep_conv_(\d+)x(\d+)"), "sep_conv"),
    (re.compile(r"dil_conv_(\d+)x(\d+)"), "dil_conv"),
    (re.compile(r"avg_pool_(\d+)x(\d+)"), "avg_pool"),
    (re.compile(r"max_?pool_?(\d+)x(\d+)"), "max_pool"),
)
_PARAMETRIC: dict[str, OpKind] = {
    "conv": "relu_conv_bn",
    "sep_conv": "sep_conv",
    "dil_conv": "dil_conv",
    "avg_pool": "avg_pool",
    "max_pool": "max_pool",
}


@dataclass(frozen=True, slots=True)
class OpSpec:
    """What to build for one op: its kind, kernel size and dilation."""

    kind: OpKind
    kernel: int = 1
    dilation: int = 1


def op_spec(name: str, params: Mapping[str, Any] | None = None) -> OpSpec:
    """The op a label names (see the module docstring).

    Args:
        name: the op name of an edge or node label.
        params: a node's params (``kernel_size``, ``dilation``), for the parametric forms only.

    Raises:
        ValueError: an unknown op, a bad kernel or dilation, or params the op does not take.
    """
    params = dict(params or {})
    if name in _PARAMETRIC:
        kind = _PARAMETRIC[name]
        unknown = sorted(set(params) - ({"kernel_size", "dilation"} if name == "conv" else {"kernel_size"}))
        if unknown:
            raise ValueError(f"op {name!r} has no parameter {unknown[0]!r}")
        if "kernel_size" not in params:
            raise ValueError(f"op {name!r} needs a kernel_size parameter")
        kernel = _kernel(params["kernel_size"], name)
        dilation = params.get("dilation", 2 if kind == "dil_conv" else 1)
        if isinstance(dilation, bool) or not isinstance(dilation, int) or not 1 <= dilation <= MAX_DILATION:
            raise ValueError(f"op {name!r}: dilation {dilation!r} is not an integer from 1 to {MAX_DILATION}")
        return OpSpec(kind, kernel, dilation)
    if params:
        raise ValueError(f"op {name!r} takes no parameters (its name says what it is), got {', '.join(sorted(params))}")
    if name in _FIXED:
        kind, kernel = _FIXED[name]
        return OpSpec(kind, kernel)
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            if match.group(1) != match.group(2):
                raise ValueError(f"op {name!r}: only square kernels (KxK)")
            return OpSpec(kind, _kernel(int(match.group(1)), name), 2 if kind == "dil_conv" else 1)
    raise ValueError(
        f"unknown op {name!r} (known: none, skip_connect, identity, nor_conv_KxK, conv_KxK, convKxK-bn-relu, "
        "sep_conv_KxK, dil_conv_KxK, conv_7x1_1x7, avg_pool_KxK, max_pool_KxK, maxpoolKxK; on nodes also conv, "
        "sep_conv, dil_conv, avg_pool, max_pool with a kernel_size)"
    )


def parametric_ops() -> list[str]:
    """The op names that take their kernel size from a node's params."""
    return list(_PARAMETRIC)


def _kernel(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KERNEL or value % 2 == 0:
        raise ValueError(f"op {name!r}: kernel size {value!r} is not an odd integer from 1 to {MAX_KERNEL}")
    return value


__all__ = ["MAX_DILATION", "MAX_KERNEL", "OpKind", "OpSpec", "op_spec", "parametric_ops"]
