"""Depthwise kernels, their tuner and the per-gene profiler."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from pyevonas.training.builders import build_model
from pyevonas.training.layers import DepthwiseConv2d, same_conv2d
from pyevonas.training.profiling import profile_layers, profile_step
from pyevonas.training.tuning import _TUNED, tune_depthwise

torch.set_num_threads(1)
ARCHS = json.loads((Path(__file__).parents[1] / "benchmarks" / "train_throughput_archs.json").read_text())
MEDIAN = next(a for a in ARCHS["architectures"] if a["tag"] == "median")["chromosome"]


def _run(module: Any, conv: DepthwiseConv2d, x: Any, impl: str, bf16: bool) -> list[Any]:
    conv.impl = impl
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = module(x)
    y.float().square().sum().backward()
    assert conv.weight.grad is not None and conv.bias is not None and conv.bias.grad is not None
    out = [y.detach(), x.grad, conv.weight.grad.clone(), conv.bias.grad.clone()]
    conv.zero_grad()
    return out


@pytest.mark.parametrize(("kernel", "stride"), list(itertools.product([1, 2, 3, 4, 5, 7], [1, 2])))
def test_every_depthwise_kernel_computes_the_same_function(kernel: int, stride: int) -> None:
    torch.manual_seed(kernel * 10 + stride)
    for size, channels_last in itertools.product([1, 5, 8], [False, True]):
        module, shape = same_conv2d((6, size, size), 6, kernel, stride, groups=6, init="he_normal_depthwise")
        conv = next(m for m in module.modules() if isinstance(m, DepthwiseConv2d))
        assert isinstance(conv, torch.nn.Conv2d) and conv.groups == 6
        torch.nn.init.normal_(conv.bias)
        x = torch.randn(3, 6, size, size)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        reference = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, module[0].padding) if isinstance(module, torch.nn.Sequential) else x,
            conv.weight, conv.bias, conv.stride, conv.padding, groups=6,
        )  # fmt: skip
        assert tuple(reference.shape[1:]) == shape
        exact = _run(module, conv, x, "conv", bf16=False)
        assert torch.allclose(exact[0], reference, atol=1e-6)
        for impl in DepthwiseConv2d.IMPLS:
            got = _run(module, conv, x, impl, bf16=False)
            for a, b in zip(got, exact, strict=True):
                assert a.dtype == b.dtype and torch.allclose(a, b, rtol=1e-5, atol=1e-5), (size, channels_last, impl)
            if channels_last and size > 1:
                assert got[0].is_contiguous(memory_format=torch.channels_last), impl
            # Under bf16 autocast every kernel returns bf16 and stays within bf16 precision of
            # the float32 result, as the framework's convolution does.
            low = _run(module, conv, x, impl, bf16=True)
            assert low[0].dtype == torch.bfloat16
            for a, b in zip(low, exact, strict=True):
                assert (a.float() - b).abs().max() <= 0.02 * b.abs().max() + 1e-3, (size, channels_last, impl)


def test_tuning_keeps_the_model_as_it_was_and_remembers_shapes() -> None:
    torch.manual_seed(0)
    model = build_model(MEDIAN, (3, 16, 16), 10).to(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    model.eval()
    before = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    _TUNED.clear()
    chosen = tune_depthwise(model, x)
    depthwise = {n for n, m in model.named_modules() if isinstance(m, DepthwiseConv2d) and m.kernel_size != (1, 1)}
    assert set(chosen) == depthwise and len(depthwise) == 2  # the 1x1 one needs no choice
    assert set(chosen.values()) <= set(DepthwiseConv2d.IMPLS)
    assert model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BN statistics untouched
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert torch.allclose(model(x), before, atol=1e-5)
    # A second model with the same layer shapes reuses the timings (and the choices).
    remembered = dict(_TUNED)
    assert len(remembered) == 2
    again = build_model(MEDIAN, (3, 16, 16), 10).to(memory_format=torch.channels_last)
    assert tune_depthwise(again, x) == chosen and remembered == _TUNED


def test_profile_names_every_gene_with_its_shapes() -> None:
    model = build_model(MEDIAN, (3, 16, 16), 10)
    rows = profile_layers(model, batch_size=4, warmup=0, repeats=1, channels_last=True)
    assert [r.layer for r in rows] == [g["layer"] for g in model.genes] + ["head"]
    assert [r.out_shape for r in rows[:-1]] == model.shapes
    assert rows[0].in_shape == (3, 16, 16) and rows[-1].out_shape == (10,)
    assert all(r.forward_ms > 0 and r.backward_ms >= 0 for r in rows)
    assert rows[0].backward_ms == 0  # the uint8 input has no gradient
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[1].to_dict()["total_ms"] == rows[1].forward_ms + rows[1].backward_ms
    with pytest.raises(ValueError, match="batch_size"):
        profile_layers(model, batch_size=0)


def test_whole_step_trains_the_model_and_times_the_host() -> None:
    torch.manual_seed(0)
    model = build_model(MEDIAN, (3, 16, 16), 10)
    before = [p.detach().clone() for p in model.parameters()]
    timed = profile_step(model, batch_size=4, warmup=1, repeats=2, channels_last=True)
    assert timed.step_ms > 0 and timed.host_ms > 0
    assert timed.to_dict() == {"step_ms": timed.step_ms, "host_ms": timed.host_ms}
    # It ran real SGD steps (documented: time a model you do not need afterwards).
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with pytest.raises(ValueError, match="repeats"):
        profile_step(model, repeats=0)
