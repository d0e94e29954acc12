"""Evaluation backends: where candidates are trained (this process, a local process pool, or Ray).

The search loop hands a batch of :class:`EvalJob` to an :class:`Evaluator` and reads back
``(job id, Metrics)`` pairs as candidates finish. The contract every backend keeps is in
:mod:`pyevonas.search.executors.base`; :func:`make_evaluator` builds one by name.

- :class:`InProcessEvaluator` (``"inprocess"``): one candidate after another in this process.
- :class:`PoolEvaluator` (``"pool"``): local worker processes, pinned to devices.
- :class:`RayEvaluator` (``"ray"``): Ray tasks on a local instance or a cluster.
- :class:`SurrogateEvaluator` (``"surrogate"``): no training: a surrogate model of the paper's
  published evaluations predicts each candidate's accuracy, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyevonas.errors import ConfigError
from pyevonas.search.executors.base import (
    DEFAULT_EVALUATE,
    KINDS,
    EvalJob,
    EvaluateFn,
    Evaluator,
    MetricsLike,
    detect_devices,
    failed,
)
from pyevonas.search.executors.inprocess import InProcessEvaluator
from pyevonas.search.executors.pool import PoolEvaluator
from pyevonas.search.executors.ray import RayEvaluator
from pyevonas.search.executors.surrogate import SurrogateEvaluator


def make_evaluator(
    kind: str = "inprocess",
    workers: int = 1,
    address: str | None = None,
    devices: list[str] | None = None,
    evaluate_fn: EvaluateFn | None = None,
    timeout_s: float | None = None,
    model: str | None = None,
    *,
    ray_resources: Mapping[str, Any] | None = None,
) -> Evaluator:
    """Build an evaluation backend.

    Args:
        kind: ``"inprocess"`` (train here, one at a time), ``"pool"`` (local worker processes),
            ``"ray"`` (a Ray cluster; needs ``pip install 'pyevonas[ray]'``) or ``"surrogate"``
            (no training: the surrogate ``model`` predicts the accuracies).
        workers: For ``"pool"``, workers per device (the paper trained 5 at once on one GPU);
            for ``"ray"``, candidates sharing one GPU. Ignored by ``"inprocess"``.
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` starts or
            reuses a local Ray.
        devices: Devices to pin workers to, round-robin (``["cuda:0", "cuda:1"]``); ``None``
            keeps each job's ``config.device``. See :func:`detect_devices`.
        evaluate_fn: ``evaluate(chromosome, config, progress=None) -> Metrics``; default
            :func:`pyevonas.training.loop.evaluate`.
        timeout_s: Wall-clock limit per candidate, from its start; a candidate over it fails with
            the reason "timed out after N s". The pool kills its worker, Ray cancels its task, in
            this process it is checked at each progress event (each epoch) and when it returns.
        model: For ``"surrogate"``, the surrogate: ``"cifar10"``, ``"cifar100"`` or the path of a
            saved model file.
        ray_resources: For ``"ray"``: ``device`` (the candidates' device; ``cpu`` asks no GPU),
            ``cpus_per_candidate``, ``gpus_per_candidate`` and ``max_retries`` (on a lost worker or
            node), as :class:`RayEvaluator` takes them.

    Returns:
        The evaluator; close it (or use ``with``) to stop its workers.

    Raises:
        ConfigError: For an unknown kind, a bad worker count or device list, Ray missing, or a
            surrogate that cannot be loaded.
    """
    if kind not in KINDS:
        raise ConfigError(f"executor: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if workers < 1:
        raise ConfigError(f"workers: must be at least 1, got {workers}")
    if devices is not None and (not devices or not all(isinstance(d, str) and d for d in devices)):
        raise ConfigError(f"devices: expected a non-empty list of device names, got {devices!r}")
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigError(f"timeout_s: must be positive, got {timeout_s}")
    if kind == "surrogate":
        if model is None:
            raise ConfigError("model: the surrogate backend needs a model (cifar10, cifar100 or a model file)")
        return SurrogateEvaluator.from_model(model)
    if kind == "inprocess":
        return InProcessEvaluator(evaluate_fn, device=devices[0] if devices else None, timeout_s=timeout_s)
    if kind == "pool":
        return PoolEvaluator(workers, devices, evaluate_fn, timeout_s=timeout_s)
    return RayEvaluator(address, workers, evaluate_fn, timeout_s=timeout_s, **dict(ray_resources or {}))


__all__ = [
    "DEFAULT_EVALUATE",
    "KINDS",
    "EvalJob",
    "EvaluateFn",
    "Evaluator",
    "InProcessEvaluator",
    "MetricsLike",
    "PoolEvaluator",
    "RayEvaluator",
    "SurrogateEvaluator",
    "detect_devices",
    "failed",
    "make_evaluator",
]
