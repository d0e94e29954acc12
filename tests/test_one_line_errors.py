"""Tracebacks that became one line, found trying pyevonas as a new user would (issue 26).

Each case gave a Python traceback (or hung, or left a run folder behind); each must be one
``error:`` line and exit status 2, with nothing written.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import PatchTraining, run_config, stub_evaluate

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError
from pyevonas.runs.store import DB_NAME
from pyevonas.search.cells import load_space
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve
from pyevonas.search.warmstart import load_initial

SMALL = ["--generations", "2", "--population", "4", "--quiet"]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_guarded(app, args)
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") <= 1, err
    return code, " ".join(err.split())


# ---------------------------------------------------------------------- PYEVONAS_NUM_THREADS


@pytest.mark.parametrize("value", ["lots", "0", "99999999"])
def test_a_bad_thread_setting_stops_evolve_before_the_run_folder(
    tmp_path: Path,
    value: str,
    patch_training: PatchTraining,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patch_training(stub_evaluate)
    monkeypatch.setenv("PYEVONAS_NUM_THREADS", value)
    run_dir = tmp_path / "run"
    code, err = cli(["evolve", *SMALL, "--run-dir", str(run_dir)], capsys)
    assert code == 2 and "PYEVONAS_NUM_THREADS" in err
    assert not run_dir.exists()
    with pytest.raises(ConfigError, match="PYEVONAS_NUM_THREADS"):
        evolve(run_config(tmp_path / "api"), evaluate_fn=stub_evaluate)
    assert not (tmp_path / "api").exists()


def test_a_bad_thread_setting_is_one_line_for_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    population = tmp_path / "pop.json"
    population.write_text(json.dumps(["C(8,3,1) g F(10)", "C(16,3,1) B g F(10)", "B g F(10)"]))
    monkeypatch.setenv("PYEVONAS_NUM_THREADS", "lots")
    code, err = cli(["matrix", str(population)], capsys)
    assert code == 2 and "PYEVONAS_NUM_THREADS" in err


# ---------------------------------------------------------------------- run.toml


def test_a_utf16_run_toml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("generations = 2\n", encoding="utf-16")
    with pytest.raises(ConfigError, match="not UTF-8"):
        RunConfig.resolve(toml)
    code, err = cli(["evolve", "--config", str(toml), "--run-dir", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and "UTF-8" in err and str(toml) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("generations", 10**9), ("population", 10**7), ("epochs", 10**7), ("workers", 10**5), ("neighbours", 10**7)],
)
def test_counts_have_upper_bounds(setting: str, value: int) -> None:
    with pytest.raises(ValueError, match=setting):
        RunConfig.resolve(None, {setting: value})


# ---------------------------------------------------------------------- --init


def test_init_of_a_fifo_or_a_device_neither_hangs_nor_reads_without_end(tmp_path: Path) -> None:
    space = load_space("paper")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for source in (fifo, Path("/dev/zero")):
        done: list[BaseException] = []

        def read(source: Path = source, done: list[BaseException] = done) -> None:
            try:
                load_initial(source, space, "default", 4)
            except BaseException as exc:
                done.append(exc)

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(10)
        if t.is_alive() and source == fifo:  # release a reader blocked on the FIFO before failing
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert not t.is_alive(), f"--init {source} hangs"
        assert done and isinstance(done[0], ConfigError), done
        assert "not a regular file" in str(done[0])


def test_init_of_a_folder_with_a_damaged_database_says_so(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"garbage, not SQLite" * 10)
    with pytest.raises(ConfigError) as info:
        load_initial(tmp_path, load_space("paper"), "default", 4)
    assert "has no run.sqlite" not in str(info.value) and "not a SQLite database" in str(info.value)


# ---------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "small"
    evolve(run_config(run_dir, generations=2, population=4, top_k=2), evaluate_fn=stub_evaluate)
    return run_dir


def test_report_into_a_run_folder_is_refused(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    other = tmp_path / "other"
    evolve(run_config(other, generations=1, population=4, top_k=2), evaluate_fn=stub_evaluate)
    before = sorted(p.name for p in other.iterdir())
    for target in (other, other / "report"):
        code, err = cli(["report", str(small_run), "-o", str(target), "--no-run-sections"], capsys)
        assert code == 2 and "run folder" in err
    assert sorted(p.name for p in other.iterdir()) == before


def test_a_report_onto_a_full_disk_is_one_line_and_leaves_nothing(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    import errno

    real = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == "summary.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "report"
    code, err = cli(["report", str(small_run), "-o", str(out), "--no-run-sections"], capsys)
    assert code == 2 and "No space left on device" in err and str(out) in err
    assert list(out.iterdir()) == []  # no half-written report, no staging folder


def test_two_reports_into_one_folder_both_finish(
    small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from pyevonas.report import html
    from pyevonas.report.html import write_report

    # Both reports finish building together, then meet again at the swap of figures/ (for at most
    # 2 s: one holding the folder's lock waits there in vain while the other waits for the lock).
    built, swapping = threading.Barrier(2), threading.Barrier(2)
    real_write, real_replace = Path.write_text, os.replace

    def meet(barrier: threading.Barrier, timeout: float) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        written = real_write(self, *args, **kwargs)
        if self.name == "summary.json":
            meet(built, 60)
        return written

    def replace(src: Any, dst: Any) -> None:
        if Path(str(dst)).name == "figures":
            meet(swapping, 2)
        real_replace(src, dst)

    monkeypatch.setattr(Path, "write_text", write_text)
    monkeypatch.setattr(html.os, "replace", replace)
    out = tmp_path / "report"
    failures: list[BaseException] = []

    def report(title: str) -> None:
        try:
            write_report([small_run], out, title=title)  # with figures: an empty figures/ would not clash
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=report, args=(f"report {k}",)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert sorted(p.name for p in out.iterdir()) == ["figures", "index.html", "summary.json"]
    title = json.loads((out / "summary.json").read_text()).get("title")
    page = (out / "index.html").read_text()
    assert title is None or title in page


# ---------------------------------------------------------------------- damaged run.sqlite fields


def _damage(run_dir: Path, *statements: str) -> None:
    import sqlite3

    conn = sqlite3.connect(run_dir / DB_NAME)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def test_deep_json_in_an_individual_is_damaged_naming_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    evolve(run_config(run_dir, generations=1, population=4, top_k=2), evaluate_fn=stub_evaluate)
    deep = "[" * 100_000 + "]" * 100_000
    _damage(run_dir, f"UPDATE individuals SET chromosome = '{deep}' WHERE idx = 1")
    code, err = cli(["export", str(run_dir)], capsys)
    assert code == 2 and "damaged" in err and "(id " in err and "nested too deeply" in err


def test_a_foreign_generator_state_is_damaged_on_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    evolve(run_config(run_dir, generations=2, population=4, top_k=2), evaluate_fn=stub_evaluate)
    foreign = json.dumps({"bit_generator": "MT19937", "state": {"key": [1, 2], "pos": 0}})
    _damage(
        run_dir,
        "DELETE FROM individuals WHERE generation = 2",
        "DELETE FROM generations WHERE generation = 2",
        f"UPDATE generations SET rng_state = '{foreign}' WHERE generation = 1",
    )
    from pyevonas.errors import RunStoreError
    from pyevonas.search.loop import resume

    with pytest.raises(RunStoreError, match="damaged: generation 1's generator state"):
        resume(run_dir, evaluate_fn=stub_evaluate)


# Hand-damaged fields of a valid run.sqlite: the wrong type in a column or JSON of the wrong shape.
# Each command that reads the record must stop with one line that says "damaged" and names it,
# and leave the run as it was. Individual id 1 is g1-0; generation 2 is deleted so that a resume
# has a generation to breed from generation 1 (and reads it).
_DAMAGES = {
    "chromosome a number": ("UPDATE individuals SET chromosome = 5 WHERE id = 1", "(id 1)"),
    "chromosome a string": ("""UPDATE individuals SET chromosome = '"C(8,3,1) g F(10)"' WHERE id = 1""", "(id 1)"),
    "chromosome of numbers": ("UPDATE individuals SET chromosome = '[1, 2]' WHERE id = 1", "(id 1)"),
    "metrics a list": ("UPDATE individuals SET metrics = '[1, 2]' WHERE id = 1", "(id 1)"),
    "fitness text": ("UPDATE individuals SET fitness = 'high' WHERE id = 1", "(id 1)"),
    "generation text": ("UPDATE individuals SET generation = 'one' WHERE id = 1", "(id 1)"),
    "params text": ("UPDATE individuals SET params = 'many' WHERE id = 1", "(id 1)"),
    "per-epoch an object": ("""UPDATE individuals SET val_accuracy_per_epoch = '{"a": 1}' WHERE id = 1""", "(id 1)"),
    "parents a number": ("UPDATE individuals SET parents = '7' WHERE id = 1", "(id 1)"),
    "extras a list": ("UPDATE generations SET extras = '[1]' WHERE generation = 1", "generation 1"),
    "decision a number": ("UPDATE generations SET decision = '5' WHERE generation = 1", "generation 1"),
    "diversity text": ("UPDATE generations SET diversity = 'wide' WHERE generation = 1", "generation 1"),
    "config a list": ("UPDATE meta SET value = '[]' WHERE key = 'config'", "run description"),
    "elapsed time text": ("""UPDATE state SET value = '"long"' WHERE key = 'elapsed_s'""", "loop state 'elapsed_s'"),
    "matrix text": ("UPDATE generations SET matrix = 'abc' WHERE generation = 1", "generation 1"),
    "status a number": ("UPDATE individuals SET status = 5 WHERE id = 1", "(id 1)"),
    "cached_from text": ("UPDATE individuals SET cached_from = 'g1-0' WHERE id = 1", "(id 1)"),
}
#: The records each command reads besides the run description and the individuals.
_READS = {
    "export": ("generation 1",),
    "report": ("generation 1",),
    "resume": ("generation 1", "loop state 'elapsed_s'"),
    "from-run": (),
    "init": (),
}


@pytest.fixture(scope="module")
def damageable_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("damage") / "run"
    evolve(run_config(run_dir, generations=2, population=4, top_k=2), evaluate_fn=stub_evaluate)
    _damage(
        run_dir,
        "DELETE FROM individuals WHERE generation = 2",
        "DELETE FROM generations WHERE generation = 2",
        "DELETE FROM control_iterations WHERE generation = 2",
    )
    return run_dir


def _contents(run_dir: Path) -> tuple[list[str], list[str]]:
    """The run folder's files (SQLite's own -wal/-shm aside) and every row of its database but the
    search's elapsed time (a resume stopped by an error saves the time it ran, as any stop does)."""
    import sqlite3

    files = sorted(p.name for p in run_dir.iterdir() if not p.name.endswith(("-wal", "-shm")))
    conn = sqlite3.connect(f"{(run_dir / DB_NAME).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return files, [row for row in conn.iterdump() if "'elapsed_s'" not in row]
    finally:
        conn.close()


_COMMANDS = {
    "export": lambda run, tmp: ["export", str(run), "-o", str(tmp / "out.json")],
    "report": lambda run, tmp: ["report", str(run), "-o", str(tmp / "report")],
    "resume": lambda run, tmp: ["evolve", "--resume", str(run), "--quiet"],
    "from-run": lambda run, tmp: ["train", "--from-run", str(run), "--quiet"],
    "init": lambda run, tmp: ["evolve", *SMALL, "--init", str(run), "--run-dir", str(tmp / "new")],
}


@pytest.mark.parametrize("command", list(_COMMANDS))
@pytest.mark.parametrize("damage", list(_DAMAGES))
def test_a_damaged_field_is_one_line_naming_the_record(
    damage: str,
    command: str,
    damageable_run: Path,
    tmp_path: Path,
    patch_training: PatchTraining,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    statement, record = _DAMAGES[damage]
    if command == "report":
        pytest.importorskip("matplotlib")
    if not record.startswith(("(id ", "run description")) and record not in _READS[command]:
        pytest.skip(f"{command} does not read {record}")
    patch_training(stub_evaluate)
    run_dir = tmp_path / "run"
    shutil.copytree(damageable_run, run_dir)
    _damage(run_dir, statement)
    before = _contents(run_dir)
    code, err = cli(_COMMANDS[command](run_dir, tmp_path), capsys)
    assert code == 2 and "damaged" in err and record in err, err
    assert _contents(run_dir) == before
    assert not (tmp_path / "new").exists() and not (tmp_path / "out.json").exists()


def _foreign_sqlite(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


_GARBAGE = {
    "garbage": (lambda p: p.write_bytes(b"garbage, not SQLite" * 10), "not a SQLite database"),
    "empty": (lambda p: p.write_bytes(b""), "not a SQLite database"),
    "foreign": (_foreign_sqlite, "not a pyevonas run"),
}


@pytest.mark.parametrize("command", list(_COMMANDS))
@pytest.mark.parametrize("garbage", list(_GARBAGE))
def test_a_garbage_run_database_is_not_called_missing(
    garbage: str, command: str, tmp_path: Path, patch_training: PatchTraining, capsys: pytest.CaptureFixture[str]
) -> None:
    patch_training(stub_evaluate)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write, cause = _GARBAGE[garbage]
    write(run_dir / DB_NAME)
    before = (run_dir / DB_NAME).read_bytes()
    code, err = cli(_COMMANDS[command](run_dir, tmp_path), capsys)
    assert code == 2 and cause in err and f"has no {DB_NAME}" not in err, err
    assert (run_dir / DB_NAME).read_bytes() == before and sorted(p.name for p in run_dir.iterdir()) == [DB_NAME]
    assert not (tmp_path / "new").exists() and not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------------- warnings raised as errors


def test_a_warning_raised_as_an_error_is_one_line_naming_where(capsys: pytest.CaptureFixture[str]) -> None:
    # Under python -W error (or PYTHONWARNINGS=error) a warning of any library is raised: one line
    # naming it and where it came from, exit status 2, never a traceback.
    import warnings

    import typer

    tiny = typer.Typer()

    @tiny.command()
    def go() -> None:
        warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = run_guarded(tiny, [])
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert code == 2 and "RuntimeWarning: overflow encountered in cast" in err
    assert "test_one_line_errors.py" in err and "-W error" in err
