"""docs/library.md runs as written: every ```python block, in order, in one namespace.

The page is the guide for third-party code (encode once, the archive, a DEAP/pymoo-style loop,
numpy layouts, threads); running it keeps its examples true, and shows they need no torch.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "library.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_its_examples() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 8
    text = DOC.read_text(encoding="utf-8")
    for needle in ("pip install pyevonas", "make wheel", "condensed=True", "Archive", "n_threads"):
        assert needle in text


def test_every_example_runs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "library_example"}
    for block in _python_blocks():
        exec(compile(block, str(DOC), "exec"), namespace)
    assert len(namespace["pop"]) == 16  # type: ignore[arg-type]


def test_the_examples_need_no_torch(tmp_path: Path) -> None:
    code = (
        "import re, sys\n"
        f"text = open({str(DOC)!r}, encoding='utf-8').read()\n"
        "ns = {'__name__': 'library_example'}\n"
        "for block in re.findall(r'```python\\n(.*?)```', text, flags=re.DOTALL):\n"
        "    exec(block, ns)\n"
        "assert 'torch' not in sys.modules, [m for m in sys.modules if 'torch' in m]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
