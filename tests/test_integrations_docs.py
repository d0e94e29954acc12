"""docs/integrations.md runs as written against the real pymoo, DEAP, Optuna, TensorBoard, MLflow and
onnxruntime, and the core install stays free of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
#: The libraries of the ``integrations`` extra; none may be loaded by the core.
LIBRARIES = ("pymoo", "deap", "optuna", "tensorboard", "mlflow", "onnx", "onnxruntime")


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_every_example_runs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pymoo", "deap", "optuna", "tensorboard", "mlflow", "torch", "onnx", "onnxruntime"):
        pytest.importorskip(name)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "integrations_example"}
    blocks = _python_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["near_duplicate_pairs"](namespace["problem"].evaluated, 0.9) == 0  # type: ignore[operator,attr-defined]


def test_the_core_and_the_package_load_none_of_the_libraries() -> None:
    code = (
        "import sys, pyevonas, pyevonas.integrations, pyevonas.cli\n"
        "pyevonas.similarity('C(32,3,1) g F(10)', 'C(16,3,1) g F(10)')\n"
        f"loaded = sorted(m for m in {LIBRARIES!r} if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
