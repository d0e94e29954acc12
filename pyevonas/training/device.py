"""Device settings: what ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` means on this machine.

One rule for every caller: training (:func:`pyevonas.training.loop.evaluate`), the CLI's checks
before a search or a profile starts, and the search settings' choice of demo workers. torch is
imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyevonas.errors import ConfigError

if TYPE_CHECKING:
    import torch


def device_setting(name: str) -> str:
    """A device setting normalised (stripped, lower case).

    Raises:
        ValueError: ``name`` is none of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    """
    value = name.strip().lower()
    if value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")


def resolve_device(name: str) -> torch.device:
    """The torch device a device setting means here: ``auto`` is CUDA when there is one, else the CPU.

    Raises:
        ConfigError: ``name`` is not a device setting, or names a device this machine lacks (no
            CUDA, ``cuda:N`` past the last GPU, no MPS).
        ImportError: torch is not installed.
    """
    import torch

    try:
        value = device_setting(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {value!r} was asked for, but CUDA is not available")
        count = torch.cuda.device_count()
        if int(value.partition(":")[2] or 0) >= count:
            raise ConfigError(f"device {value!r} was asked for, but there are {count} CUDA devices")
    if value == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' was asked for, but MPS is not available")
    return torch.device(value)


__all__ = ["device_setting", "resolve_device"]
