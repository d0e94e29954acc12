"""One device rule: what a device setting means for training, the CLI's checks and the demo workers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from pyevonas.cli.evolve_cmds import _check_device
from pyevonas.errors import ConfigError
from pyevonas.search import config as search_config
from pyevonas.training.config import TrainConfig
from pyevonas.training.device import device_setting, resolve_device


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Pretend this machine has ``gpus.count`` CUDA devices (0: none) and no MPS."""
    gpus = SimpleNamespace(count=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus.count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus.count)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    return gpus


def test_auto_is_cuda_when_there_is_one_else_the_cpu(gpus: SimpleNamespace) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert search_config._trains_on_cpu("auto")
    gpus.count = 2
    assert resolve_device(" AUTO ") == torch.device("cuda")
    assert not search_config._trains_on_cpu("auto")
    assert search_config._trains_on_cpu("cpu") and not search_config._trains_on_cpu("cuda:1")


def test_a_device_this_machine_lacks_is_a_config_error(gpus: SimpleNamespace) -> None:
    with pytest.raises(ConfigError, match="'cuda' was asked for, but CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("mps")
    gpus.count = 2
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match="'cuda:2' was asked for, but there are 2 CUDA devices"):
        resolve_device("cuda:2")
    # The CLI refuses it before a search starts, with the same reason and the setting's name.
    with pytest.raises(ConfigError, match="invalid setting 'device': device 'cuda:2' was asked for"):
        _check_device("cuda:2")
    _check_device("cuda:1")


def test_the_forms_are_the_same_for_training_settings_and_the_cli() -> None:
    assert device_setting(" Cuda:3 ") == "cuda:3" == TrainConfig(device=" Cuda:3 ").device
    for bad in ("tpu", "cuda:x", "gpu:0"):
        with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N"):
            device_setting(bad)
        with pytest.raises(ConfigError, match="device must be"):
            TrainConfig.build(device=bad)
        with pytest.raises(ConfigError, match="device must be"):
            resolve_device(bad)  # `pyevonas profile --device tpu` is one error line, not a traceback
