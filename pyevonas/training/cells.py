"""PyTorch modules of cell architectures: the ops, a cell built from its graph, NAS-Bench-201's reduction block.

A cell (:class:`pyevonas.metric.graphs.Cell`) computes, in topological order, the value of every
node ``v`` as

    value[v] = node_op[v]( sum over the edges u -> v of edge_op[u -> v](value[u]) )

with the cell's input (its pinned input node, else the one node without inputs) receiving the
cell's input tensor, a plain edge or a structural node label (``node``, ``output``) being the
identity, and a node without inputs giving zeros. The cell's output is its output node's value.
For NAS-Bench-201 this is exactly its ``InferCell``: node i sums the ops on its incoming edges,
the ops sit on edges. For ops on nodes (NAS-Bench-101-like DAGs) the node sums its inputs and
applies its op; the output node sums (NAS-Bench-101 concatenates and projects; pyevonas keeps the
channels instead, so that a cell needs no channel bookkeeping). Every op keeps the channels and
the spatial size; the ops are those of :mod:`pyevonas.training.cell_ops`, with NAS-Bench-201's and
DARTS' definitions and PyTorch's default initialisation, as those benchmarks train them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyevonas.metric.graphs import Cell
from pyevonas.training.cell_ops import OpSpec, op_spec
from pyevonas.training.layers import Shape


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape (NAS-Bench-201's ``Zero``, stride 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def relu_conv_bn(channels_in: int, channels_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> nn.Module:
    """ReLU, convolution without bias ('same' padding for odd kernels), batch norm: NAS-Bench-201's ``ReLUConvBN``."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(
            channels_in, channels_out, kernel, stride, dilation * (kernel - 1) // 2, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(channels_out),
    )


def op_module(spec: OpSpec, channels: int) -> nn.Module:
    """The module of one op on ``channels`` channels (stride 1, shape kept)."""
    c, k, pad = channels, spec.kernel, spec.kernel // 2
    if spec.kind == "zero":
        return Zero()
    if spec.kind == "identity":
        return nn.Identity()
    if spec.kind == "relu_conv_bn":
        return relu_conv_bn(c, c, k, dilation=spec.dilation)
    if spec.kind == "conv_bn_relu":
        return nn.Sequential(nn.Conv2d(c, c, k, 1, pad, bias=False), nn.BatchNorm2d(c), nn.ReLU())
    if spec.kind == "sep_conv":  # DARTS SepConv: the dilated separable convolution, twice
        return nn.Sequential(*_dil_conv(c, k, 1), *_dil_conv(c, k, 1))
    if spec.kind == "dil_conv":
        return nn.Sequential(*_dil_conv(c, k, spec.dilation))
    if spec.kind == "factorised":
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c, c, (1, k), 1, (0, pad), bias=False),
            nn.Conv2d(c, c, (k, 1), 1, (pad, 0), bias=False),
            nn.BatchNorm2d(c),
        )
    if spec.kind == "avg_pool":
        return nn.AvgPool2d(k, 1, pad, count_include_pad=False)
    return nn.MaxPool2d(k, 1, pad)


def _dil_conv(c: int, k: int, dilation: int) -> list[nn.Module]:
    """DARTS' DilConv: ReLU, depthwise k x k (dilated), pointwise 1 x 1, batch norm."""
    return [
        nn.ReLU(),
        nn.Conv2d(c, c, k, 1, dilation * (k - 1) // 2, dilation=dilation, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    ]


class CellModule(nn.Module):
    """A cell as a module (see the module docstring); built from a :class:`Cell` and a channel count.

    Raises:
        ValueError: the cell has no single input or output node, or an op cannot be built.
    """

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        n = len(cell.nodes)
        self.input, self.output = _ends(cell)
        self.order = _topological(n, [(e.source, e.target) for e in cell.edges])
        self.inputs: list[list[tuple[int, str]]] = [[] for _ in range(n)]
        self.edge_ops = nn.ModuleDict()
        for e in cell.edges:
            key = f"{e.source}_{e.target}"
            if e.op is not None:
                self.edge_ops[key] = op_module(_spec(e.op, None, f"edge {e.source} -> {e.target}"), channels)
            self.inputs[e.target].append((e.source, key))
        self.node_ops = nn.ModuleDict()
        for v, node in enumerate(cell.nodes):
            spec = _spec(node.op, dict(node.params), f"node {v}")
            if spec.kind != "identity":
                self.node_ops[str(v)] = op_module(spec, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {}
        for v in self.order:
            if v == self.input:
                total = x
            else:
                incoming = [
                    self.edge_ops[key](values[u]) if key in self.edge_ops else values[u] for u, key in self.inputs[v]
                ]
                total = incoming[0] if incoming else x.mul(0.0)
                for more in incoming[1:]:
                    total = total + more
            values[v] = self.node_ops[str(v)](total) if str(v) in self.node_ops else total
        return values[self.output]


def _spec(op: str, params: dict[str, object] | None, where: str) -> OpSpec:
    try:
        return op_spec(op, params)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _ends(cell: Cell) -> tuple[int, int]:
    """The cell's input and output nodes: the pinned ones, else the only node without inputs / outputs."""
    n = len(cell.nodes)
    has_in = {e.target for e in cell.edges}
    has_out = {e.source for e in cell.edges}
    inputs = list(cell.inputs) or [v for v in range(n) if v not in has_in]
    outputs = list(cell.outputs) or [v for v in range(n) if v not in has_out]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"a cell is built with one input and one output node, this one has {len(inputs)} and {len(outputs)} "
            "(pin them with inputs and outputs)"
        )
    return inputs[0], outputs[0]


def _topological(n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """The nodes in topological order, the smallest index first among the ready ones."""
    indegree = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for s, t in pairs:
        out[s].append(t)
        indegree[t] += 1
    ready = sorted(v for v in range(n) if indegree[v] == 0)
    order: list[int] = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for w in out[v]:
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
        ready.sort()
    return order


class ReductionBlock(nn.Module):
    """NAS-Bench-201's residual reduction block (its ``ResNetBasicblock`` with stride 2).

    ``ReLU-Conv3x3(stride 2)-BN``, then ``ReLU-Conv3x3-BN``, plus the shortcut ``AvgPool2d(2)``
    then a 1 x 1 convolution; no activation after the sum. An odd side is rounded up on both paths
    (the pooling in ceil mode), so any input size works; NAS-Bench-201's even sizes are unchanged.
    """

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(channels_in, channels_out, 3, stride=2)
        self.conv_b = relu_conv_bn(channels_out, channels_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(channels_in, channels_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv_b(self.conv_a(x)) + self.downsample(x)
        return out


def reduction_shape(in_shape: Shape, channels_out: int) -> Shape:
    """The output shape of a :class:`ReductionBlock` on ``(C, H, W)``: every side halved, rounded up."""
    _, height, width = in_shape
    return channels_out, -(-height // 2), -(-width // 2)


__all__ = ["CellModule", "ReductionBlock", "Zero", "op_module", "reduction_shape", "relu_conv_bn"]
