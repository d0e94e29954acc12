"""The layer library: PyTorch modules with the original Keras semantics (TF 'same' padding, Keras inits)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

Shape = tuple[int, ...]


# Keras' truncated normal keeps values within 2 std and rescales by this factor so that the
# resulting std is the requested one (keras.initializers.VarianceScaling).
_TRUNC_STD_FACTOR = 0.87962566103423978
BN_MOMENTUM = 0.01  # Keras BatchNormalization momentum 0.99
BN_EPS = 1.001e-5  # the BN_2D gene and the outer BOT_2D norms
KERAS_BN_EPS = 1e-3  # Keras default: the RES_2D norms and the middle BOT_2D norm
IN_EPS = 1e-3  # tensorflow-addons InstanceNormalization default


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
    ``isinstance`` checks included), and :func:`pyevonas.training.tuning.tune_depthwise` times them on
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


def linear(in_features: int, out_features: int) -> nn.Linear:
    """A dense layer initialised as Keras does (Glorot-uniform weights, zero bias)."""
    lin = nn.Linear(in_features, out_features)
    _glorot_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


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


__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "IN_EPS",
    "KERAS_BN_EPS",
    "ChainModel",
    "DepthwiseConv2d",
    "GlobalPool",
    "InstanceNorm",
    "Rescaling",
    "ResidualBlock",
    "SamePool2d",
    "Shape",
    "batch_norm",
    "linear",
    "same_conv2d",
    "same_padding",
]
