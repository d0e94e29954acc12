"""Measurements of a built model: parameters, size, latency, FLOPs."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pyevonas.training.builders import build_model

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


__all__ = ["count_flops", "count_parameters", "measure_latency_ms", "median_ms", "model_size", "model_size_mb"]
