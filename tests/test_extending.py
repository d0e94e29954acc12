"""The worked example of docs/extending.md, run as written: a new gene type end to end.

Every ```python block of the page runs in order in a scratch folder (sample, build, train one
epoch, compare with the similarity engine); the test then checks what the blocks produced, and
that the plugin route works for the CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pyevonas
from pyevonas.errors import SearchSpaceError, TrainingError
from pyevonas.training import builders as model_module

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 4
    namespace: dict[str, Any] = {"__name__": "extending_example"}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
        yield namespace
    finally:
        model_module.unregister_layer("SEP_2D")


@pytest.mark.slow
def test_the_documented_example_runs_end_to_end(example: dict[str, Any], tmp_path: Path) -> None:
    space = example["space"]
    candidate = example["candidate"]
    assert "SEP_2D" in space.feature_layers and "SEP_2D" in space.first_layers
    assert "SEP_2D" in space.successors("BN_2D") and "SEP_2D" in space.successors("SEP_2D")
    space.check(candidate)

    # The model holds a depthwise and a pointwise convolution for every SEP_2D gene.
    model = example["model"]
    for gene, module in zip(model.genes, model.layers, strict=True):
        if gene["layer"] == "SEP_2D":
            convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
            assert [c.kernel_size[0] for c in convs] == [gene["kernel_size"], 1]
            assert convs[0].groups == convs[0].in_channels and convs[1].out_channels == gene["filters"]

    metrics = example["metrics"]
    assert metrics.status == "ok", metrics.error
    assert 0.0 <= metrics.fitness <= 1.0 and len(metrics.val_accuracy_per_epoch) == 1
    assert metrics.params == sum(p.numel() for p in model.parameters())

    schema = str(tmp_path / "scoring.separable.json")
    letters = pyevonas.sequence(candidate, schema=schema)
    assert "S" in letters and len(letters) == len(candidate) - 1  # Rescaling is not a gene
    matrix = example["matrix"]
    assert matrix.shape == (6, 6) and np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix, matrix.T)  # the default schema is symmetric

    # The new rules score as written: S vs S like C vs C, S vs C lower, S vs L a mismatch.
    sep = "S(64,3,1) B L g F(32)"
    conv = "C(64,3,1) B L g F(32)"
    assert pyevonas.similarity(sep, sep, schema=schema) == 1.0
    s_vs_c = pyevonas.similarity(sep, conv, schema=schema)
    relu = "L B L g F(32)"
    assert pyevonas.similarity(sep, relu, schema=schema) < s_vs_c < 1.0
    assert example["parsed"][0] == {"layer": "SEP_2D", "filters": 64, "kernel_size": 3, "strides": 1}

    # Without the schema entry the engine rejects the gene instead of guessing.
    with pytest.raises(pyevonas.EncodingError):
        pyevonas.sequence(candidate)


def test_the_space_file_rejects_a_broken_extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    for block in _python_blocks(DOC.read_text(encoding="utf-8"))[:2]:  # the builder and the space
        exec(compile(block, str(DOC), "exec"), namespace)
    try:
        _check_broken_extension(tmp_path)
    finally:
        model_module.unregister_layer("SEP_2D")


def _check_broken_extension(tmp_path: Path) -> None:
    data = json.loads((tmp_path / "space.separable.json").read_text())
    data["genes"]["SEP_2D"]["successors"].append("SEP2D")
    (tmp_path / "broken.json").write_text(json.dumps(data))
    from pyevonas.search.space import SearchSpace

    with pytest.raises(SearchSpaceError, match="genes.SEP_2D.successors: unknown gene 'SEP2D'"):
        SearchSpace.load(tmp_path / "broken.json")
    with pytest.raises(TrainingError, match=r"gene 1 \(SEP_2D\) cannot be built: missing parameter 'filters'"):
        pyevonas.build_model(
            [
                {"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1},
                {"layer": "SEP_2D", "kernel_size": 3, "strides": 1},
                {"layer": "GAP_2D"},
            ]
        )


def test_plugin_route_for_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The builder block, saved as a plugin file that PYEVONAS_PLUGINS names.
    builder_block = _python_blocks(DOC.read_text(encoding="utf-8"))[0]
    plugin = tmp_path / "separable.py"
    plugin.write_text(builder_block)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    # The schema and space files come from the documented blocks 2 and 3.
    namespace: dict[str, Any] = {}
    for block in _python_blocks(DOC.read_text(encoding="utf-8"))[1:3]:
        exec(compile(block, str(DOC), "exec"), namespace)
    monkeypatch.setenv("PYEVONAS_PLUGINS", str(plugin))
    monkeypatch.setattr(model_module, "_plugins_loaded", False)
    monkeypatch.setattr(model_module, "_plugin_error", None)
    from pyevonas.cli import app
    from pyevonas.cli._common import run_guarded

    try:
        args = [
            "train",
            "S(32,3,1) B L g F(32)",
            "--schema",
            "scoring.separable.json",
            "--space",
            "space.separable.json",
            "--epochs",
            "1",
            "--json",
            "--quiet",
            "--set",
            "flops=false",
            "--set",
            "latency_repeats=2",
        ]
        code = run_guarded(app, args)
        out = capsys.readouterr().out
        assert code == 0, out
        assert json.loads(out)["status"] == "ok"
        assert "SEP_2D" in model_module.registered_layers()
    finally:
        model_module.unregister_layer("SEP_2D")
    # A broken plugin is named in the error of every build.
    monkeypatch.setenv("PYEVONAS_PLUGINS", str(tmp_path / "missing.py"))
    monkeypatch.setattr(model_module, "_plugins_loaded", False)
    for _ in range(2):
        with pytest.raises(TrainingError, match="cannot load plugin .*missing.py"):
            pyevonas.build_model("C(16,3,1) g")
    monkeypatch.setattr(model_module, "_plugin_error", None)


def test_a_broken_plugin_stops_evolve_before_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pyevonas.cli import app
    from pyevonas.cli._common import run_guarded

    monkeypatch.setenv("PYEVONAS_PLUGINS", str(tmp_path / "missing.py"))
    monkeypatch.setattr(model_module, "_plugins_loaded", False)
    monkeypatch.setattr(model_module, "_plugin_error", None)
    run_dir = tmp_path / "run"
    code = run_guarded(app, ["evolve", "--run-dir", str(run_dir), "--generations", "1", "--population", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot load plugin" in err and "missing.py" in err
    assert not run_dir.exists()  # nothing was written
    monkeypatch.setattr(model_module, "_plugin_error", None)
