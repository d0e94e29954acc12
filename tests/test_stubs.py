"""The hand-written stubs of the Rust extension match it (mypy's stubtest), when mypy is installed."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_core_stubs_match_the_extension() -> None:
    pytest.importorskip("mypy.stubtest")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pyevonas._core"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
