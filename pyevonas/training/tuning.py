"""Training-time kernel choice: the fastest exact depthwise-convolution implementation per shape."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pyevonas.training.layers import DepthwiseConv2d
from pyevonas.training.measure import median_ms

# (weight shape, stride, padding, input shape, input strides, dtype, autocast dtype, device) -> impl.
# Shapes repeat across the candidates of a search, so each is timed once per process.
_TUNED: dict[tuple[Any, ...], str] = {}


def tune_depthwise(
    model: nn.Module,
    x: torch.Tensor,
    *,
    bf16: bool = False,
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, str]:
    """Pick the fastest exact kernel for every depthwise convolution of ``model`` on input ``x``.

    Each :class:`~pyevonas.training.layers.DepthwiseConv2d` with a kernel larger than 1 x 1 is timed with
    each of its implementations (forward and backward, on the input it gets from ``x``, under
    bf16 autocast when ``bf16``); the fastest is kept in its ``impl``. Results are remembered per
    shape, layout and dtype for the life of the process, so later candidates with the same
    layer shapes cost nothing. The model runs in eval mode and its weight gradients are cleared:
    tuning changes neither its state nor what it computes.

    Returns:
        ``{module name: chosen impl}`` for the modules tuned.
    """
    device = x.device
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
    targets = {
        module: name
        for name, module in model.named_modules()
        if isinstance(module, DepthwiseConv2d) and module.kernel_size != (1, 1)
    }
    if not targets:
        return {}
    seen: dict[nn.Module, torch.Tensor] = {}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        seen.setdefault(module, args[0].detach())

    hooks = [m.register_forward_pre_hook(record) for m in targets]
    was_training = model.training
    model.eval()  # the BatchNorm statistics stay as they were
    try:
        with torch.no_grad(), autocast:
            model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    chosen: dict[str, str] = {}
    for module, x_in in seen.items():
        assert isinstance(module, DepthwiseConv2d)
        key = (
            tuple(module.weight.shape),
            module.stride,
            module.padding,
            tuple(x_in.shape),
            x_in.stride(),
            x_in.dtype,
            bf16,
            str(device),
        )
        impl = _TUNED.get(key)
        if impl is None:
            x_grad = x_in.clone().requires_grad_()
            times = {}
            channels_last = not x_in.is_contiguous() and x_in.is_contiguous(memory_format=torch.channels_last)
            # "nchw" only differs from "conv" on a channels_last input.
            for candidate in [c for c in DepthwiseConv2d.IMPLS if channels_last or c != "nchw"]:
                module.impl = candidate

                def step(module: nn.Module = module, x_grad: torch.Tensor = x_grad) -> None:
                    with autocast:
                        y = module(x_grad)
                    torch.autograd.backward(y.float().sum())

                times[candidate] = median_ms(step, device, warmup=warmup, repeats=repeats)
            module.zero_grad(set_to_none=True)
            impl = min(times, key=lambda name: times[name])
            _TUNED[key] = impl
        module.impl = impl
        chosen[targets[module]] = impl
    return chosen


__all__ = ["tune_depthwise"]
