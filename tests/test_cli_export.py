"""Tests of ``pyevonas export``: the JSON holds the whole run; bad folders give one error line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.runs.store import DB_NAME, RunStore

CHROM_A = [
    {"layer": "Rescaling", "f_name": "Rescaling", "scale": 1 / 255},
    {"layer": "C_2D", "f_name": "Conv2D", "filters": 16, "kernel_size": 3, "strides": 1,
     "padding": "same"},
    {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D"},
    {"layer": "D", "f_name": "Dense", "units": 10, "activation": "softmax"},
]  # fmt: skip
CHROM_B = [*CHROM_A[:2], {"layer": "MP_2D", "f_name": "MaxPooling2D", "pool_size": 2}, *CHROM_A[2:]]


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A two-generation run with results, a failure, matrices and a control loop."""
    folder = tmp_path / "run"
    rng = np.random.default_rng(0)
    with RunStore.create(
        folder,
        config={"generations": 2, "population": 2},
        scoring={"builtin": "default"},
        space={"name": "paper"},
        meta={"source": "pyevonas", "dataset": "digits", "control": "rigid", "seed": 3},
    ) as store:
        a = store.add_individual(1, 0, "g1-0", CHROM_A, "CGF")
        b = store.add_individual(1, 1, "g1-1", CHROM_B, "CMGF")
        store.set_result(a, {"status": "ok", "fitness": 0.8, "val_accuracy": 0.8,
                             "val_accuracy_per_epoch": [0.6, 0.8], "params": 1234})  # fmt: skip
        store.set_result(b, {"status": "failed", "error": "worker died", "fitness": 0.0})
        store.save_generation(1, matrix=rng.random((2, 2)), diversity=0.61)
        c = store.add_individual(2, 0, "g2-0", CHROM_B, "CMGF", parents=[a, b])
        store.set_result(c, {"status": "ok", "fitness": 0.9, "val_accuracy_per_epoch": [0.9]})
        d = store.add_individual(2, 1, "g2-1", CHROM_A, "CGF", parents=[a, a])
        store.set_result(d, store.individual(a).metrics or {}, status="cached", cached_from=a)
        store.add_control_iteration(2, 0, 0.9, 0.3, 0.6, False, 0.2)
        store.add_control_iteration(2, 1, 0.5, 0.3, 0.6, True, 0.2, extras={"decayed": False})
        store.save_generation(2, matrix=rng.random((2, 2)), diversity=0.5, window=(0.3, 0.6),
                              decision={"accepted": True, "iterations": 2})  # fmt: skip
    return folder


def _check_export(data: dict[str, Any], run_dir: Path) -> None:
    assert data["format"] == "pyevonas-run"
    assert data["meta"]["control"] == "rigid" and data["config"]["population"] == 2
    inds = data["individuals"]
    assert [(i["generation"], i["index"], i["name"]) for i in inds] == [
        (1, 0, "g1-0"), (1, 1, "g1-1"), (2, 0, "g2-0"), (2, 1, "g2-1"),
    ]  # fmt: skip
    assert inds[0]["chromosome"] == CHROM_A and inds[2]["chromosome"] == CHROM_B
    assert inds[0]["parents"] is None and inds[2]["parents"] == [inds[0]["id"], inds[1]["id"]]
    assert [i["status"] for i in inds] == ["ok", "failed", "ok", "cached"]
    assert inds[0]["fitness"] == 0.8 and inds[0]["val_accuracy_per_epoch"] == [0.6, 0.8]
    assert inds[0]["params"] == 1234 and inds[1]["error"] == "worker died"
    assert inds[3]["cached_from"] == inds[0]["id"] and inds[3]["fitness"] == 0.8
    gens = data["generations"]
    assert [g["generation"] for g in gens] == [1, 2]
    assert gens[0]["diversity"] == 0.61 and gens[0]["decision"] is None
    assert gens[1]["window"] == [0.3, 0.6]
    assert gens[1]["decision"] == {"accepted": True, "iterations": 2}
    assert [it["accepted"] for it in gens[1]["control_iterations"]] == [False, True]
    with RunStore.open(run_dir, readonly=True) as store:
        matrix = store.generation_record(2).matrix
    assert matrix is not None
    assert np.array_equal(np.array(gens[1]["similarity_matrix"]), matrix)


def test_export_to_a_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    result = CliRunner().invoke(app, ["export", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 4 individuals in 2 generations" in result.output
    _check_export(json.loads(out.read_text()), run_dir)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run.json")] == []


def test_export_to_stdout_without_matrices(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(run_dir), "--no-matrices"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["individuals"]) == 4
    assert all("similarity_matrix" not in g for g in data["generations"])


def test_export_leaves_the_run_unchanged(run_dir: Path, tmp_path: Path) -> None:
    before = (run_dir / DB_NAME).read_bytes()
    result = CliRunner().invoke(app, ["export", str(run_dir), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 0
    assert (run_dir / DB_NAME).read_bytes() == before


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "is not a pyevonas run"),
        ("garbage", "not a SQLite database"),
    ],
)
def test_export_of_a_bad_folder_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    folder = tmp_path / "bad"
    if setup != "missing":
        folder.mkdir()
    if setup == "garbage":
        (folder / DB_NAME).write_bytes(b"\x00garbage" * 100)
    code = run_guarded(app, ["export", str(folder)])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("error:") == 1
    if setup == "garbage":
        assert (folder / DB_NAME).read_bytes() == b"\x00garbage" * 100


def test_export_to_a_missing_folder_is_an_error(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_guarded(app, ["export", str(run_dir), "-o", str(tmp_path / "nope" / "x.json")])
    assert code == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())


def test_export_csv_gives_one_quoted_row_per_individual(run_dir: Path, tmp_path: Path) -> None:
    import csv
    import io

    from pyevonas.cli.export_cmds import CSV_COLUMNS

    with RunStore.open(run_dir) as store:  # an error with a comma, quotes and a line break
        b = store.individuals(1)[1]
        store.set_result(b.id, {"status": "failed", "error": 'shape (1, 2), "bad"\nsecond line', "fitness": 0.0})
    out = tmp_path / "run.csv"
    result = CliRunner().invoke(app, ["export", str(run_dir), "--csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 4 individuals in 2 generations" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["generation"], r["index"], r["name"], r["status"], r["trained"]) for r in rows] == [
        ("1", "0", "g1-0", "ok", "True"), ("1", "1", "g1-1", "failed", "False"),
        ("2", "0", "g2-0", "ok", "True"), ("2", "1", "g2-1", "cached", "True"),
    ]  # fmt: skip
    assert rows[0]["fitness"] == "0.8" and rows[0]["params"] == "1234" and rows[0]["val_accuracy"] == "0.8"
    assert rows[1]["fitness"] == "" and rows[1]["error"] == 'shape (1, 2), "bad"\nsecond line'  # quoted whole
    assert rows[2]["parents"] == "g1-0 g1-1" and rows[0]["parents"] == ""
    assert rows[0]["sequence"] == "CGF" and rows[0]["notation"] == "C(16,3,1) g F(10)"
    # stdout works too, and the JSON export is unchanged by the flag's existence
    result = CliRunner().invoke(app, ["export", str(run_dir), "--csv"])
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == ",".join(CSV_COLUMNS)
