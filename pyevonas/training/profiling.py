"""Where a candidate's training step spends its time: forward and backward of every gene.

``profile_layers(model, batch_size=256, device="cuda")`` runs one batch through the model to
record each gene's input, then times every gene on its own: its forward pass, and its backward
pass from a random output gradient, each the median of ``repeats`` runs after ``warmup`` runs,
with the device synchronised around every timed call. It runs under the same memory layout and
autocast as training (``channels_last`` / ``bf16``), so a gene that hits a slow kernel on a
given GPU shows up by name. ``pyevonas profile ARCH`` prints the table.

The per-gene times add up to slightly more than a whole step (each timed call pays its own
launch and synchronisation); the shares are what to read. ``profile_step`` times the whole
training step (forward, loss, backward, SGD update) and the host time it takes to issue it: on
CUDA, where kernels run asynchronously, a host time close to the step time means the step is
bound by launches and Python, not by the GPU (the case for CUDA graphs); a host time far below
it means the kernels themselves are the cost (the per-gene table says which).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pyevonas.training.layers import ChainModel
from pyevonas.training.loop import sgd_optimizer
from pyevonas.training.measure import median_ms


@dataclass(frozen=True, slots=True)
class LayerTime:
    """One gene's share of a training step.

    Attributes:
        index: position in the model (0 is the input Rescaling when the chromosome had none).
        layer: the gene's layer name (``C_2D``...), or ``head`` for the classifier.
        in_shape / out_shape: per-sample shapes.
        forward_ms / backward_ms: median milliseconds for the whole batch.
        params: trainable parameters of the gene.
    """

    index: int
    layer: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    forward_ms: float
    backward_ms: float
    params: int

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_ms": self.total_ms}


def _setup(
    model: ChainModel,
    batch_size: int,
    device: torch.device | str,
    channels_last: bool,
    warmup: int,
    repeats: int,
    seed: int,
) -> tuple[ChainModel, torch.device, torch.Generator, torch.Tensor]:
    """Check the counts, move the model (training mode, layout) and draw a uint8 input batch."""
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch_size and repeats must be >= 1 and warmup >= 0")
    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    x = torch.randint(0, 256, (batch_size, *model.input_shape), dtype=torch.uint8, generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return model, device, gen, x


def profile_layers(
    model: ChainModel,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    bf16: bool = False,
    warmup: int = 3,
    repeats: int = 10,
    seed: int = 0,
) -> list[LayerTime]:
    """Forward and backward milliseconds of every gene of ``model`` (and the head) on one batch.

    Args:
        model: a model from :func:`pyevonas.build_model`; it is moved to ``device`` and left in
            training mode (BatchNorm statistics move as in training).
        batch_size: images per batch.
        device: where to run.
        channels_last / bf16: the memory layout and autocast of the training step.
        warmup / repeats: untimed and timed runs per gene and direction.
        seed: seed of the random input images and output gradients.

    Returns:
        One :class:`LayerTime` per gene in order, then one for the classifier head.
    """
    model, device, gen, x = _setup(model, batch_size, device, channels_last, warmup, repeats, seed)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    modules: list[tuple[str, nn.Module]] = [(g["layer"], m) for g, m in zip(model.genes, model.layers, strict=True)]
    modules.append(("head", model.head))
    inputs: list[torch.Tensor] = []
    with torch.no_grad(), autocast:
        for _, module in modules:
            inputs.append(x)
            x = module(x)

    rows: list[LayerTime] = []
    for index, ((layer, module), x_in) in enumerate(zip(modules, inputs, strict=True)):
        x_in = x_in.detach()
        needs_input_grad = x_in.is_floating_point()
        x_in.requires_grad_(needs_input_grad)

        def forward(module: nn.Module = module, x_in: torch.Tensor = x_in) -> torch.Tensor:
            with autocast:
                out: torch.Tensor = module(x_in)
            return out

        forward_ms = median_ms(forward, device, warmup=warmup, repeats=repeats)
        out = forward()
        grad = torch.randn(out.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=out.dtype)
        if out.dim() == 4 and channels_last:
            grad = grad.contiguous(memory_format=torch.channels_last)
        if out.requires_grad:

            def backward(module: nn.Module = module, x_in: torch.Tensor = x_in, grad: torch.Tensor = grad) -> None:
                y = forward(module, x_in)
                module.zero_grad(set_to_none=True)
                torch.autograd.backward(y, grad)

            # Forward + backward, minus the forward alone: the backward's share.
            backward_ms = max(median_ms(backward, device, warmup=warmup, repeats=repeats) - forward_ms, 0.0)
        else:
            backward_ms = 0.0  # nothing to differentiate (the uint8 input's Rescaling)
        rows.append(
            LayerTime(
                index=index,
                layer=layer,
                in_shape=tuple(x_in.shape[1:]),
                out_shape=tuple(out.shape[1:]),
                forward_ms=forward_ms,
                backward_ms=backward_ms,
                params=sum(p.numel() for p in module.parameters() if p.requires_grad),
            )
        )
    model.zero_grad(set_to_none=True)
    return rows


@dataclass(frozen=True, slots=True)
class StepTime:
    """One whole training step.

    Attributes:
        step_ms: median milliseconds of a step (forward, loss, backward, SGD update), the device
            synchronised after each.
        host_ms: median milliseconds the host takes to issue a step (on CUDA the kernels then
            run asynchronously; on CPU it equals ``step_ms``).
    """

    step_ms: float
    host_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def profile_step(
    model: ChainModel,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    bf16: bool = False,
    warmup: int = 3,
    repeats: int = 10,
    seed: int = 0,
) -> StepTime:
    """Time whole training steps of ``model`` on one random batch: forward, loss, backward and the
    SGD update of :mod:`pyevonas.training.loop` (its optimizer; without the augmentation and the decoupled
    weight decay, a few elementwise kernels).

    The steps update the model's weights (Nesterov momentum 0.9, learning rate 0.01): time a
    model you do not need afterwards.
    """
    model, device, gen, x = _setup(model, batch_size, device, channels_last, warmup, repeats, seed)
    n_classes = model.head.out_features if isinstance(model.head, nn.Linear) else 1
    y = torch.randint(0, n_classes, (batch_size,), generator=gen).to(device)
    on_cuda = device.type == "cuda"
    optimizer = sgd_optimizer([p for p in model.parameters() if p.requires_grad], device, lr=0.01)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        with autocast:
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        optimizer.step()

    step_ms = median_ms(step, device, warmup=warmup, repeats=repeats)
    host: list[float] = []
    for _ in range(repeats):
        if on_cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        host.append(time.perf_counter() - start)
    if on_cuda:
        torch.cuda.synchronize(device)
    return StepTime(step_ms=step_ms, host_ms=1000.0 * statistics.median(host))


__all__ = ["LayerTime", "StepTime", "profile_layers", "profile_step"]
