"""``pyevonas evolve --batch-size/--lr``: the training flags ``train`` has, saved with the run, merged
with a run.toml's other [train] settings, refused on --resume; and the warning when the batch
leaves a user's small dataset too few optimizer steps per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import run_cli, stub_evaluate

from pyevonas.runs.store import RunStore

BASE = ["evolve", "--generations", "1", "--population", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _stub(patch_training: Any) -> None:
    """The stub instead of training, in this process (conftest's patch_training)."""
    patch_training(stub_evaluate)


def _train(run: Path) -> dict[str, Any]:
    with RunStore.open(run, readonly=True) as store:
        return dict(store.config["train"])


def _npz(path: Path, n: int) -> str:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (n, 8, 8, 1), dtype=np.uint8), y_train=np.arange(n) % 3)
    return f"npz:{path}"


def test_the_flags_set_the_recipe_and_keep_the_files_other_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("[train]\nweight_decay = 0.001\nlr = 0.3\n", encoding="utf-8")
    run = tmp_path / "run"
    code, _, err = run_cli(
        [*BASE, "--config", str(toml), "--batch-size", "16", "--lr", "0.05", "--run-dir", str(run)], capsys
    )
    assert code == 0, err
    train = _train(run)
    assert (train["batch_size"], train["lr"], train["weight_decay"]) == (16, 0.05, 0.001)
    code, _, err = run_cli(["evolve", "--resume", str(run), "--batch-size", "8"], capsys)
    assert code == 2 and "--batch-size/--lr" in err


def test_a_batch_that_leaves_too_few_steps_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _npz(tmp_path / "small.npz", 120)  # some 90 images to fit once test and validation are held out
    code, _, err = run_cli([*BASE, "--dataset", data, "--batch-size", "64", "--run-dir", str(tmp_path / "a")], capsys)
    assert code == 0, err
    assert "training images at batch 64 make 2 optimizer steps per epoch" in err
    code, _, err = run_cli([*BASE, "--dataset", data, "--batch-size", "8", "--run-dir", str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert "warning" not in err
