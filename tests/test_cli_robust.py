"""Every file-reading command answers bad input with one line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"

ONE_GENE = '[{"layer": "GAP_2D"}]'


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_guarded(app, args)
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str) -> bool:
    """Exit 2 and one ``error:`` line (a schema lists its further problems on indented lines)."""
    lines = err.strip().splitlines()
    return (
        code == 2
        and "Traceback" not in err
        and lines[0].startswith("error: ")
        and all(line.startswith("  ") for line in lines[1:])
    )


@pytest.mark.parametrize(
    ("content", "name", "args", "why"),
    [
        (b"\xff\xfe\x00bad", "pop.txt", ["matrix", "{f}"], "not UTF-8 text"),
        ("[" * 50_000 + "]" * 50_000, "a.json", ["similarity", "{f}", "{f}"], "nested too deeply"),
        ("[" * 50_000 + "]" * 50_000, "a.json", ["align", "{f}", "{f}"], "nested too deeply"),
        ("[" * 50_000 + "]" * 50_000, "s.json", ["schema", "validate", "{f}"], "nested too deeply"),
        ("[" * 50_000 + "]" * 50_000, "r.json", ["import", "{f}", "--run-dir", "{tmp}/run"], "nested too deeply"),
        (
            '[{"layer": "C_2D", "filters": 1' + "0" * 400 + ', "kernel_size": 3, "strides": 1}]',
            "a.json",
            ["similarity", "{f}", "{f}"],
            "is too large",
        ),  # fmt: skip
        ('{"name": "x", "name": "y"}', "s.json", ["schema", "validate", "{f}"], "appears twice"),
        ("C(32,3,1) g\nB g\n", "pop.txt", ["matrix", "{f}", "--threads", "0"], "--threads"),
    ],
)
def test_bad_files_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, name: str, args: list[str], why: str
) -> None:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content, encoding="utf-8")
    code, err = run([a.format(f=f, tmp=tmp_path) for a in args], capsys)
    assert code == 2 and why in err and "Traceback" not in err


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imported") / "run"
    assert run_guarded(app, ["import", str(EVONAS), "--run-dir", str(folder)]) == 0
    return folder


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("UPDATE individuals SET chromosome = '{not json' WHERE id = 3", "individual"),
        ("UPDATE generations SET matrix = x'0102' WHERE generation = 2", "generation 2's record"),
        ("UPDATE generations SET matrix_shape = '[5,' WHERE generation = 2", "generation 2's record"),
        ("UPDATE individuals SET metrics = '[1,2' WHERE id = 5", "individual"),
    ],
)
@pytest.mark.parametrize("command", ["export", "report"])
def test_damaged_records_are_reported_as_such(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], sql: str, why: str, command: str
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(imported, run_dir)
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        conn.execute(sql)
    conn.close()
    before = (run_dir / "run.sqlite").read_bytes()
    args = [command, str(run_dir)] + (["-o", str(tmp_path / "rep"), "--no-run-sections"] if command == "report" else [])
    code, err = run(args, capsys)
    assert one_line_error(code, err), err
    assert "is damaged" in err and why in err
    assert (run_dir / "run.sqlite").read_bytes() == before  # reading never changes the run


# ---------------------------------------------------------------------- fuzz every file-reading command
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
COMMANDS = {
    "similarity": (["similarity", "{f}", "{f}"], "a.json"),
    "align": (["align", "{f}", "{f}"], "a.json"),
    "matrix-json": (["matrix", "{f}"], "pop.json"),
    "matrix-text": (["matrix", "{f}"], "pop.txt"),
    "schema": (["schema", "validate", "{f}"], "s.json"),
    "import": (["import", "{f}", "--run-dir", "{tmp}/run"], "r.json"),
    "export": (["export", "{tmp}/runfolder"], None),
    "report": (["report", "{tmp}/runfolder", "-o", "{tmp}/rep"], None),
}


def _fuzz(tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, payload: bytes) -> None:
    args, name = COMMANDS[key]
    folder = tmp_path / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    if name is None:  # a run folder whose database is the payload
        (folder / "runfolder").mkdir()
        (folder / "runfolder" / "run.sqlite").write_bytes(payload)
        f = folder / "runfolder" / "run.sqlite"
    else:
        f = folder / name
        f.write_bytes(payload)
    code, err = run([a.format(f=f, tmp=folder) for a in args], capsys)
    assert code == 0 or one_line_error(code, err), err


@pytest.mark.parametrize("key", sorted(COMMANDS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=200))
def test_random_bytes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, payload: bytes
) -> None:
    _fuzz(tmp_path, capsys, key, payload)


@pytest.mark.parametrize("key", sorted(k for k, (_, name) in COMMANDS.items() if name is not None))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_random_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object) -> None:
    _fuzz(tmp_path, capsys, key, json.dumps(value).encode())


@pytest.mark.parametrize("doc", [{"generations": []}, {"generations": [{}]}, {"generations": [{"individuals": [1]}]}])
def test_odd_run_json_for_matrix_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: object) -> None:
    f = tmp_path / "run.json"
    f.write_text(json.dumps(doc))
    code, err = run(["matrix", str(f)], capsys)
    assert one_line_error(code, err) and "generations" in err


def test_matrix_csv_quotes_names_and_a_bad_output_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps({"chromosomes": {'net, "a"': "C(32,3,1) g", "b\nc": "B g"}}))
    out = tmp_path / "m.csv"
    code, err = run(["matrix", str(pop), "-o", str(out)], capsys)
    assert code == 0, err
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", 'net, "a"', "b\nc"]
    assert [r[0] for r in rows[1:]] == ['net, "a"', "b\nc"] and float(rows[1][1]) == 1.0
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run(["matrix", str(pop), "-o", str(blocker / "sub" / "m.csv")], capsys)
    assert one_line_error(code, err) and "cannot write" in err


def test_condensed_with_a_directed_schema_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pop = tmp_path / "pop.txt"
    pop.write_text("C(32,3,1) g\nB g\nC(16,3,1) L g\n")
    code = run_guarded(app, ["matrix", str(pop), "--condensed", "--schema", "paper", "-o", str(tmp_path / "c.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "needs a symmetric schema" in err and "Traceback" not in err
    assert not (tmp_path / "c.npy").exists()
