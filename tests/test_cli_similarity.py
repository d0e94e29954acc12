"""The similarity commands of the CLI: results, files, and one-line errors without tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyevonas
from pyevonas.cli import app
from pyevonas.cli._common import run_guarded

POP = ["C(32,3,1) B L M(2) g F(64)", "C(32,3,1) B L g F(64)", "T(64,3,1) D(3,1) B G F(32)"]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_similarity_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["similarity", POP[0], POP[1], "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["similarity"] == pyevonas.similarity(POP[0], POP[1])
    assert data["aligned_b"] == "CBL-gF"
    chrom = tmp_path / "a.json"
    chrom.write_text(json.dumps(pyevonas.parse_arch(POP[2])))
    code, out, _ = run(["similarity", str(chrom), POP[2], "--schema", "paper"], capsys)
    assert code == 0 and "similarity 1.000000" in out


def test_every_command_reads_an_architecture_the_same_way(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Text notation, inline JSON (a list, or an object with ``chromosome``) and a .json file name
    the same architecture for `similarity`, `align` and (through the same reader) `train`/`profile`."""
    from pyevonas.cli._common import read_arch

    chrom = pyevonas.parse_arch(POP[2])
    file = tmp_path / "a.json"
    file.write_text(json.dumps({"chromosome": chrom}))
    forms = [POP[2], json.dumps(chrom), json.dumps({"chromosome": chrom}), str(file)]
    assert all(read_arch(form) == chrom for form in forms)
    for form in forms:
        for command in ("similarity", "align"):
            code, out, _ = run([command, form, POP[0], "--json"], capsys)
            assert code == 0 and json.loads(out)["similarity"] == pyevonas.similarity(POP[2], POP[0])
    for bad, message in (("[oops", "not valid JSON"), ('[{"units": 3}]', "with a 'layer' key")):
        for command in ("similarity", "align"):
            code, _, err = run([command, bad, POP[0]], capsys)
            assert code == 2 and message in err


def test_matrix_command_writes_csv_and_npy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps(POP))
    code, out, _ = run(["matrix", str(pop)], capsys)
    assert code == 0 and "median similarity" in out
    npy = tmp_path / "m.npy"
    assert run(["matrix", str(pop), "-o", str(npy)], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(npy), pyevonas.similarity_matrix(POP))
    csv = tmp_path / "m.csv"
    assert run(["matrix", str(pop), "-o", str(csv), "--schema", "paper"], capsys)[0] == 0
    rows = csv.read_text().splitlines()
    assert rows[0] == "name,0,1,2" and len(rows) == 4
    assert float(rows[1].split(",")[2]) == pyevonas.similarity_matrix(POP, schema="paper")[0, 1]
    cond = tmp_path / "c.npy"
    assert run(["matrix", str(pop), "-o", str(cond), "--condensed", "--float32"], capsys)[0] == 0
    assert np.load(cond).shape == (3,) and np.load(cond).dtype == np.float32
    txt = tmp_path / "pop.txt"
    txt.write_text("# one per line\n" + "\n".join(POP) + "\n")
    assert run(["matrix", str(txt), "--others", str(pop), "-o", str(npy)], capsys)[0] == 0
    assert np.load(npy).shape == (3, 3)


def test_schema_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["schema", "validate", "schemas/paper.json"], capsys)
    assert code == 0 and "directed" in out
    bad = json.loads(Path("schemas/default.json").read_text())
    bad["genes"][1]["letter"] = "C"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    code, _, err = run(["schema", "validate", str(p)], capsys)
    assert code == 2 and "duplicate letter 'C'" in err and "Traceback" not in err
    out_file = tmp_path / "s.json"
    assert run(["schema", "export", "-o", str(out_file)], capsys)[0] == 0
    assert json.loads(out_file.read_text())["title"] == "Scoring"


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["similarity", "C(32,3,1) Q", "B"], capsys)
    assert code == 2 and "unknown letter 'Q'" in err
    code, _, err = run(["matrix", str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "no population file" in err
    for name, text in (("empty.json", "[]"), ("empty.txt", "# only a comment\n\n")):
        (tmp_path / name).write_text(text)
        code, _, err = run(["matrix", str(tmp_path / name)], capsys)
        assert code == 2 and "no architectures in the file" in err
    code, _, err = run(["similarity", "B", "L", "--schema", "nope"], capsys)
    assert code == 2 and "no scoring schema 'nope'" in err


def test_console_script_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyevonas", "similarity", "C(32,3,1) g", "C(64,3,1) g", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 0 < json.loads(proc.stdout)["similarity"] < 1
    proc = subprocess.run(
        [sys.executable, "-m", "pyevonas", "similarity", "X", "g"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown letter" in proc.stderr


def test_a_missing_optional_stack_is_one_line_naming_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    probe = typer.Typer()

    @probe.command()
    def needs_torch() -> None:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    @probe.command()
    def needs_other() -> None:
        raise ModuleNotFoundError("No module named 'nothing_here'", name="nothing_here")

    code = run_guarded(probe, ["needs-torch"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'pyevonas[train]'" in err and "Traceback" not in err
    with pytest.raises(ModuleNotFoundError):  # anything else is a bug and keeps its traceback
        run_guarded(probe, ["needs-other"])


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_guarded(app, ["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pyevonas {pyevonas.__version__}"


def _population(n: int) -> list[list[dict[str, object]]]:
    from pyevonas.search.space import SearchSpace

    rng = np.random.default_rng(n)
    space = SearchSpace.load("paper")
    return [space.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "plain"])
@pytest.mark.parametrize("n", [25, 100])
@pytest.mark.parametrize("width", [80, 120])
def test_matrix_view_fits_the_terminal(
    width: int, n: int, colour: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without -o, `matrix` prints what fits: no line wider than the terminal, no cell cut to `…`."""
    import io

    from rich.cells import cell_len
    from rich.console import Console

    from pyevonas.cli import similarity_cmds
    from pyevonas.cli.matrix_view import top_pairs

    archs = _population(n)
    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps(archs))
    screen = Console(
        width=width,
        file=io.StringIO(),
        record=True,
        force_terminal=colour,
        color_system="truecolor" if colour else None,
    )
    monkeypatch.setattr(similarity_cmds, "console", screen)
    assert run_guarded(app, ["matrix", str(pop)]) == 0
    lines = screen.export_text().splitlines()
    assert max(cell_len(line) for line in lines) <= width
    assert not any("…" in line and "/" not in line for line in lines)  # only a long sequence may be cut
    assert "every number: add -o matrix.csv (or -o matrix.npy)" in lines
    assert any(line.startswith("median similarity") for line in lines)
    m = pyevonas.similarity_matrix(archs)
    i, j, best = top_pairs(m, 1, square=True)[0]
    assert any(line.lstrip().startswith(f"{best:.3f}  {i}, {j}") for line in lines)
    heatmap_rows = [line for line in lines if re.match(r"\s*\d+ [█▓▒░·]+$", line)]
    assert len(heatmap_rows) == (n if n <= 50 else 0)


def test_a_small_matrix_prints_every_number(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps(POP))
    code, out, _ = run(["matrix", str(pop)], capsys)
    m = pyevonas.similarity_matrix(POP)
    assert code == 0 and f"{m[0, 1]:.3f}" in out and "-o matrix.csv" not in out


def test_top_pairs_match_a_full_sort() -> None:
    from pyevonas.cli.matrix_view import top_pairs

    rng = np.random.default_rng(0)
    m = rng.random((37, 37))
    expected = sorted(((m[i, j], i, j) for i in range(37) for j in range(i + 1, 37)), key=lambda p: (-p[0], p[1], p[2]))
    for block in (10, 37 * 5, 2**20):  # blocks of less than a row, of a few rows, and the whole matrix
        got = top_pairs(m, 7, square=True, block_elements=block)
        assert [(i, j) for i, j, _ in got] == [(i, j) for _, i, j in expected[:7]]
    rect = rng.random((5, 9))
    got = top_pairs(rect, 3, square=False, block_elements=9)
    flat = sorted(((rect[i, j], i, j) for i in range(5) for j in range(9)), reverse=True)
    assert [(i, j) for i, j, _ in got] == [(i, j) for _, i, j in flat[:3]]


def test_a_tall_narrow_matrix_lists_pairs_not_every_row() -> None:
    from pyevonas.cli.matrix_view import MAX_HEATMAP_ROWS, matrix_view

    m = np.random.default_rng(1).random((MAX_HEATMAP_ROWS + 1, 3))
    names = [str(i) for i in range(m.shape[0])]
    _, complete = matrix_view(m, names, ["0", "1", "2"], width=80)
    assert not complete
    _, complete = matrix_view(m[:MAX_HEATMAP_ROWS], names, ["0", "1", "2"], width=80)
    assert complete


def test_matrix_in_a_real_80_column_terminal(tmp_path: Path) -> None:
    """The command as a user runs it: the console takes the terminal's width from COLUMNS."""
    import os

    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps(_population(25)))
    done = subprocess.run(
        [sys.executable, "-m", "pyevonas", "matrix", str(pop)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "80", "LINES": "24"},
    )
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum(1 for line in lines if re.match(r"\s*\d+ [█▓▒░·]+$", line)) == 25
