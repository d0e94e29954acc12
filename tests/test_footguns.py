"""No footgun loses a run: outputs never replace a store or a foreign file, read-only runs read, staging is cleaned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError
from pyevonas.runs.staging import clean_stale, staging_dir
from pyevonas.runs.store import DB_NAME, RunStore
from pyevonas.search.config import RunConfig

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imported") / "run"
    assert run_guarded(app, ["import", str(EVONAS), "--run-dir", str(folder)]) == 0
    return folder


def test_export_refuses_to_write_into_a_run_folder(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(imported, run_dir)
    before = (run_dir / DB_NAME).read_bytes()
    for target in (run_dir / DB_NAME, run_dir / "export.json"):
        code, _, err = run(["export", str(run_dir), "-o", str(target), "--force"], capsys)
        assert code == 2 and "inside a run folder" in err and "Traceback" not in err
    assert (run_dir / DB_NAME).read_bytes() == before
    assert RunStore.is_run(run_dir)


def test_export_never_replaces_a_file_unless_asked(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine.json"
    out.write_text("my notes\n")
    code, _, err = run(["export", str(imported), "-o", str(out)], capsys)
    assert code == 2 and "already exists; pass --force" in err
    assert out.read_text() == "my notes\n"
    code, _, err = run(["export", str(imported), "-o", str(out), "--force", "--no-matrices"], capsys)
    assert code == 0, err
    assert json.loads(out.read_text())["format"] == "pyevonas-run"


def test_export_dash_writes_to_stdout(imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)
    code, out, err = run(["export", str(imported), "-o", "-", "--no-matrices"], capsys)
    assert code == 0, err
    assert json.loads(out)["format"] == "pyevonas-run"
    assert not (tmp_path / "-").exists()


def test_report_never_overwrites_a_foreign_summary(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    (out / "summary.json").write_text('{"mine": true}')
    code, _, err = run(["report", str(imported), "-o", str(out), "--no-run-sections"], capsys)
    assert code == 2 and "summary.json not written by pyevonas report" in err
    assert (out / "summary.json").read_text() == '{"mine": true}'


def test_stale_staging_folders_are_removed_by_the_next_run(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    # A report killed mid-way (its pid is gone) and one still running (this process).
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".report-{int(dead.stdout)}-abc"
    (stale / "figures").mkdir(parents=True)
    live = staging_dir(out, "report")
    code, _, err = run(["report", str(imported), "-o", str(out), "--no-run-sections"], capsys)
    assert code == 0, err
    assert not stale.exists() and live.exists()
    assert clean_stale(out, "report") == []  # the live one stays
    # The importer stages beside its target the same way.
    stale_import = tmp_path / f".run2.importing-{int(dead.stdout)}-xyz"
    stale_import.mkdir()
    code, _, err = run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run2")], capsys)
    assert code == 0, err
    assert not stale_import.exists()


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "", "a\\b"])
def test_run_names_stay_inside_runs(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot name a run folder"):
        RunConfig.resolve(None, {"name": name})


def _can_bind_mount() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount --bind -o ro / /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_bind_mount(), reason="needs unshare and bind mounts (root on Linux)")
def test_a_run_on_a_read_only_mount_can_be_exported_and_reported(imported: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "ro" / "run"
    shutil.copytree(imported, run_dir)
    out = tmp_path / "out"
    out.mkdir()
    script = (
        f"mount --bind -o ro {run_dir.parent} {run_dir.parent} && "
        f"{sys.executable} -m pyevonas export {run_dir} -o {out / 'x.json'} --no-matrices && "
        f"{sys.executable} -m pyevonas report {run_dir} -o {out / 'rep'} --no-run-sections"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "corrupt" not in done.stderr
    assert json.loads((out / "x.json").read_text())["format"] == "pyevonas-run"
    assert (out / "rep" / "index.html").is_file()


def test_a_run_name_with_tex_is_drawn_as_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # matplotlib would parse "$...$" as mathtext and fail on "\frac{a}{": the run could never be reported.
    chrom = [{"layer": "C_2D", "filters": 16, "kernel_size": 3, "strides": 1}, {"layer": "GAP_2D"}]
    other = [{"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1}, {"layer": "GAP_2D"}]
    name = r"$\frac{a}{$ and $x^{$"
    folder = tmp_path / name  # a report names runs by their folder
    with RunStore.create(folder, config={}, scoring={"builtin": "default"}, space={}, meta={"name": name}) as store:
        for g in (1, 2):
            a = store.add_individual(g, 0, f"g{g}-0", chrom, "Cg")
            b = store.add_individual(g, 1, f"g{g}-1", other, "Cg")
            for ident, fit in ((a, 0.5 + g / 10), (b, 0.3 + g / 20)):
                store.set_result(
                    ident,
                    {"status": "ok", "fitness": fit, "val_accuracy_per_epoch": [fit],
                     "params": int(1000 * fit * g), "size_mb": fit * g, "latency_ms": 2 * fit + g},
                )  # fmt: skip
            store.save_generation(g, matrix=[[1.0, 0.7 + g / 20], [0.7 + g / 20, 1.0]], diversity=0.7 + g / 20)
    code, _, err = run(["report", str(folder), "-o", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    html = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "\\frac{a}{" in html  # escaped in the page, drawn literally in the figures


def test_a_full_disk_says_so(tmp_path: Path) -> None:
    # A tmpfs too small for a run, at several sizes: whatever step fails, the error says "disk is full",
    # never "damaged" or "corrupt".
    if not _can_bind_mount():
        pytest.skip("needs unshare and mounts (root on Linux)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    code = (
        "import sys; from pyevonas.runs.store import RunStore; from pyevonas.errors import RunStoreError\n"
        "try:\n"
        "    RunStore.create(sys.argv[1], config={}, scoring={}, space={}, meta={}).close()\n"
        "except RunStoreError as e:\n"
        "    print('ERR', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    errors = []
    for size in ("16k", "48k", "64k", "80k"):
        script = f'mount -t tmpfs -o size={size} tmpfs {mnt} && {sys.executable} -c "$0" {mnt}/run'
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, code],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        if done.stdout.startswith("ERR"):
            errors.append(done.stdout)
    assert errors, "no size was small enough to fail"
    for line in errors:
        assert "the disk is full" in line and "damaged" not in line and "corrupt" not in line, line
