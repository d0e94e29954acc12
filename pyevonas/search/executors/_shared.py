"""Helpers shared by the evaluation backends (inprocess, pool, ray); the contract is in
:mod:`pyevonas.search.executors.base`."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from pyevonas.errors import ConfigError
from pyevonas.search.executors.base import DEFAULT_EVALUATE, EvalJob, EvaluateFn

_Config = TypeVar("_Config")


def timeout_reason(timeout_s: float) -> str:
    """The failure reason of a candidate stopped at its time limit (every backend says the same)."""
    return f"timed out after {timeout_s:g} s"


def function_ref(fn: EvaluateFn | None) -> str:
    """Name a module-level function so a spawned worker can import it."""
    if fn is None:
        return DEFAULT_EVALUATE
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ConfigError(
            f"evaluate_fn: {fn!r} is not a module-level function; the process pool imports it by name in each worker"
        )
    return f"{module}:{qualname}"


def resolve_function(ref: str) -> EvaluateFn:
    """The function named ``module:qualname`` by :func:`function_ref`, imported."""
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def with_setting(config: _Config, key: str, value: Any) -> _Config:
    """Return ``config`` with the setting ``key`` replaced (pydantic model, dataclass or dict)."""
    if hasattr(config, "model_copy"):
        return cast(_Config, config.model_copy(update={key: value}))
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return cast(_Config, dataclasses.replace(config, **{key: value}))
    if isinstance(config, dict):
        return cast(_Config, {**config, key: value})
    raise TypeError(f"cannot set the {key} of a {type(config).__name__} config")


def setting_of(config: Any, key: str) -> Any:
    """The setting ``key`` of a config (model, dataclass or dict), or None if it has none."""
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)


def pin_device(config: _Config, device: str | None) -> _Config:
    """Return ``config`` with its device replaced (pydantic model, dataclass or dict)."""
    return config if device is None else with_setting(config, "device", device)


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, cut to 2,000 characters."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 2000 else text[:2000] + "..."


def check_ids(jobs: Sequence[EvalJob]) -> None:
    """Refuse a batch whose job ids are not unique."""
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("evaluate: job ids must be unique within a batch")


def device_of(config: Any) -> str | None:
    """The ``device`` setting of a config (model, dataclass or dict), if it has one."""
    device = setting_of(config, "device")
    return None if device is None else str(device)


__all__ = [
    "check_ids",
    "describe_error",
    "device_of",
    "function_ref",
    "pin_device",
    "resolve_function",
    "setting_of",
    "timeout_reason",
    "with_setting",
]
