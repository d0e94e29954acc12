"""The abi3 wheel installs into a fresh virtual environment and computes with no Rust toolchain.

Builds the wheel with ``make wheel`` (maturin and cargo needed here), installs it offline into a
new venv with ``--no-deps`` (the runtime dependencies, numpy/pydantic/rich/typer, are lent from
this environment's site-packages through a .pth file, so nothing is downloaded), and runs a
similarity, a matrix and an archive there from another directory, with every directory that
holds cargo or rustc removed from PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

CHECK = """
import shutil, sys
import numpy as np
import pyevonas
assert shutil.which("cargo") is None and shutil.which("rustc") is None, "a Rust toolchain is on PATH"
assert "site-packages" in pyevonas.__file__, pyevonas.__file__
from pyevonas import _core
assert _core.__file__.endswith(".abi3.so"), _core.__file__
s = pyevonas.similarity("C(32,3,1) B L g F(64)", "C(64,3,1) B g F(64)")
assert 0.8 < s < 0.9, s
m = pyevonas.similarity_matrix(["B g", "L g", "C(32,3,1) g F(10)"] * 40, n_threads=2)
assert m.shape == (120, 120) and (np.diag(m) == 1).all()
ar = pyevonas.Archive(archs=["B g", "C(32,3,1) g F(10)"])
assert ar.nearest(["B g"], 1)[0].tolist() == [[0]]
assert "torch" not in sys.modules
print("ok", s)
"""


def _maturin() -> str | None:
    here = Path(sys.executable).parent / "maturin"
    return str(here) if here.exists() else shutil.which("maturin")


def test_wheel_installs_and_computes_without_rust(tmp_path: Path) -> None:
    maturin = _maturin()
    if maturin is None or shutil.which("cargo") is None or shutil.which("make") is None:
        pytest.skip("building the wheel needs maturin, cargo and make")
    dist = tmp_path / "dist"
    subprocess.run(["make", "-s", "wheel", f"WHEEL_DIR={dist}", f"MATURIN={maturin}"], cwd=ROOT, check=True)
    wheels = list(dist.glob("pyevonas-*-abi3-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheels[0])],
        check=True,
    )
    # The runtime dependencies, lent from this environment (its own pyevonas, if any, comes after
    # the wheel's on sys.path: the venv's site-packages is searched first).
    venv_site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (venv_site / "lent_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    toolchain = {"cargo", "rustc", "rustup"}
    path = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / t).exists() for t in toolchain)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CARGO", "RUSTUP", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run([str(py), "-c", CHECK], cwd=work, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok ")
