"""The trained model out: one file with the weights, the architecture and the recipe, loaded back
by one call; and ONNX export.

A saved model is a ``torch.save`` of a plain dict (loaded with ``weights_only=True``, never
unpickling code):

- ``format``: ``"pyevonas-model-1"``;
- ``chromosome``, ``input_shape`` ``(C, H, W)`` and ``num_classes``: what :func:`build_model` needs;
- ``state_dict``: the weights on the CPU (the best validation epoch's, as ``train`` measures them);
- ``recipe``: the :class:`~pyevonas.training.config.TrainConfig` it was trained with (JSON values);
- ``metrics`` and ``info``: what training measured, and anything the caller adds (``train
  --from-run`` records the run, the candidate and the settings it changed).

The model takes float images ``(N, C, H, W)`` with pixel values in [0, 255] (its first gene
rescales them) and returns logits ``(N, num_classes)``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyevonas.errors import TrainingError
from pyevonas.training.builders import build_model
from pyevonas.training.layers import ChainModel

FORMAT = "pyevonas-model-1"


def save_model(
    path: str | Path,
    model: nn.Module,
    chromosome: Sequence[Mapping[str, Any]],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    recipe: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with its architecture and recipe to ``path`` (atomically).

    Returns:
        The path written.
    """
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "chromosome": [dict(g) for g in chromosome],
        "input_shape": [int(v) for v in input_shape],
        "num_classes": int(num_classes),
        "state_dict": state,
        "recipe": dict(recipe or {}),
        "metrics": dict(metrics or {}),
        "info": dict(info or {}),
    }
    p = Path(path)
    if p.parent != Path():
        p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, p)
    return p


def read_saved(path: str | Path) -> dict[str, Any]:
    """The saved dict (weights on the CPU), checked to be a pyevonas model file.

    Raises:
        TrainingError: the file is missing, unreadable or not a pyevonas model.
    """
    p = Path(path)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{p}: no such model file") from None
    except Exception as exc:
        raise TrainingError(f"{p}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingError(f"{p}: not a pyevonas model file (saved by `pyevonas train --save`)")
    return payload


def load_model(path: str | Path) -> ChainModel:
    """The saved model, rebuilt from its architecture with its weights, in eval mode on the CPU.

    Raises:
        TrainingError: not a pyevonas model file, or its weights do not fit the architecture.
    """
    payload = read_saved(path)
    model = build_model(payload["chromosome"], tuple(payload["input_shape"]), int(payload["num_classes"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise TrainingError(f"{path}: the weights do not fit the architecture: {exc}") from None
    return model.eval()


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int], *, opset: int | None = None) -> Path:
    """Export ``model`` (in eval mode, on the CPU, float32) to ONNX with a dynamic batch axis.

    The graph's input is ``images`` ``(N, C, H, W)`` float32 in [0, 255]; its output ``logits``.
    Needs the ``onnx`` package (and ``onnxscript``, torch's exporter); both are in the
    ``integrations`` extra.
    """
    p = Path(path)
    if p.parent != Path():
        p.parent.mkdir(parents=True, exist_ok=True)
    cpu = model.to("cpu").to(memory_format=torch.contiguous_format).float().eval()
    example = torch.rand(2, *[int(v) for v in input_shape]) * 255
    batch = torch.export.Dim("batch", min=1)
    kwargs: dict[str, Any] = {"opset_version": opset} if opset is not None else {}
    # The exporter reports its steps on stdout, which is `train --json`'s: send them to stderr.
    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
        torch.onnx.export(
            cpu,
            (example,),
            str(p),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes={"x": {0: batch}},
            dynamo=True,
            verbose=False,
            **kwargs,
        )
    return p


__all__ = ["FORMAT", "export_onnx", "load_model", "read_saved", "save_model"]
