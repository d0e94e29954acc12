"""The trained model out: ``train --save`` and ``load_model``, ``--onnx`` checked with onnxruntime
against PyTorch, and ``train --from-run`` with recipe overrides recorded with the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import TrainingError
from pyevonas.training.builders import build_model
from pyevonas.training.export import FORMAT, export_onnx, load_model, read_saved, save_model

FAST = ["--set", "latency_repeats=2", "--set", "flops=false", "--quiet", "--device", "cpu"]
ARCH = "C(8,3,1) B L C(16,3,2) L g F(16)"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_save_and_load_round_trip_the_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(ARCH, (3, 16, 16), 7).eval()
    other = [dict(g) for g in build_model("C(8,3,1) L g F(16)", (3, 16, 16), 7).genes]
    path = save_model(tmp_path / "sub" / "m.pt", model, other, (3, 16, 16), 7, recipe={"epochs": 2})
    with pytest.raises(TrainingError, match="weights do not fit"):
        load_model(path)  # the chromosome saved does not build this model
    path = save_model(tmp_path / "bad.pt", model, [{"layer": "x"}], (3, 16, 16), 7)
    with pytest.raises(TrainingError, match="no model builder"):
        load_model(path)
    path = save_model(tmp_path / "m.pt", model, model.genes, (3, 16, 16), 7, recipe={"epochs": 2}, info={"k": 1})
    again = load_model(path)
    x = torch.rand(3, 3, 16, 16) * 255
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    saved = read_saved(path)
    assert saved["format"] == FORMAT and saved["recipe"] == {"epochs": 2} and saved["info"] == {"k": 1}
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(TrainingError, match="not a readable model file"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "else"}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="not a pyevonas model file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="no such model file"):
        load_model(tmp_path / "missing.pt")


def test_onnx_export_runs_in_onnxruntime_like_pytorch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_model("C(8,3,1) B L T(8,3,2) r(16,3,1) D(3,1) M(2) I g O(0.2) F(16)", (3, 16, 16), 5).eval()
    path = export_onnx(model, tmp_path / "m.onnx", (3, 16, 16))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 4):  # the batch axis is dynamic
        x = torch.rand(batch, 3, 16, 16) * 255
        (got,) = session.run(["logits"], {"images": x.numpy()})
        with torch.no_grad():
            expected = model(x).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_train_save_and_onnx_on_digits(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    pt, onnx = tmp_path / "model.pt", tmp_path / "model.onnx"
    args = ["train", ARCH, "--epochs", "2", "--json", "--save", str(pt), "--onnx", str(onnx), *FAST]
    code, out, err = run(args, capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["saved"] == str(pt) and result["onnx"] == str(onnx)
    saved = read_saved(pt)
    assert saved["recipe"]["epochs"] == 2 and saved["recipe"]["dataset"] == "digits"
    assert saved["metrics"]["val_accuracy"] == result["val_accuracy"] and saved["input_shape"] == [1, 8, 8]
    model = load_model(pt)
    assert isinstance(model, torch.nn.Module) and not model.training
    from pyevonas.training.data import load_dataset

    images = torch.from_numpy(load_dataset("digits").test_images[:64]).float()
    with torch.no_grad():
        logits = model(images).numpy()
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"images": images.numpy()})
    np.testing.assert_allclose(got, logits, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == logits.argmax(1)).all()


@pytest.fixture
def stub_run(tmp_path: Path) -> Path:
    from helpers import stub_evaluate

    from pyevonas.search.config import RunConfig
    from pyevonas.search.loop import evolve

    config = RunConfig.resolve(
        None,
        {"run_dir": str(tmp_path / "run"), "generations": 1, "population": 3, "seed": 5, "epochs": 3,
         "train": {"lr": 0.07, "batch_size": 48}},
    )  # fmt: skip
    return evolve(config, evaluate_fn=stub_evaluate).run_dir


def test_from_run_takes_recipe_overrides_says_what_changed_and_saves_them(
    capsys: pytest.CaptureFixture[str], stub_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyevonas.training.loop
    from pyevonas.training.config import Metrics

    seen: list[Any] = []

    def fake(chromosome: Any, config: Any, progress: Any = None, on_trained: Any = None) -> Any:
        seen.append(config)
        metrics = Metrics(status="ok", fitness=0.5, val_accuracy=0.5)
        if on_trained is not None:
            on_trained(build_model(chromosome, (1, 8, 8), 10).eval(), metrics)
        return metrics

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", fake)
    pt = tmp_path / "final.pt"
    args = ["train", "--from-run", str(stub_run), "--epochs", "30", "--lr", "0.07", "--batch-size", "64"]
    code, out, err = run([*args, "--set", "weight_decay=0.001", "--save", str(pt)], capsys)
    assert code == 0, err
    config = seen[-1]
    assert (config.epochs, config.lr, config.batch_size, config.weight_decay, config.seed) == (
        30,
        0.07,
        64,
        0.001,
        config.seed,
    )
    text = " ".join(out.split())
    assert "changed from the search's recipe: epochs 3 -> 30, batch_size 48 -> 64, weight_decay 0.0005 -> 0.001" in text
    assert f"model saved to {pt}" in text
    saved = read_saved(pt)
    changed = saved["info"]["from_run"]["changed"]
    assert changed == {
        "epochs": {"search": 3, "now": 30},
        "batch_size": {"search": 48, "now": 64},
        "weight_decay": {"search": 0.0005, "now": 0.001},
    }
    assert saved["recipe"]["epochs"] == 30
    assert isinstance(load_model(pt), torch.nn.Module)
