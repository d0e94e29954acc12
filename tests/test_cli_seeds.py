"""``pyevonas evolve --seeds``: one search per seed with the same settings, each in its own run
folder named by its seed, resumable one by one, and grouped by ``report`` as one setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli, stub_evaluate

from pyevonas.runs.store import RunStore

BASE = ["--generations", "2", "--population", "4", "--quiet"]


@pytest.fixture(autouse=True)
def _stub(patch_training: Any) -> None:
    """The stub instead of training, in this process (conftest's patch_training)."""
    patch_training(stub_evaluate)


def _chromosomes(run: Path) -> list[Any]:
    with RunStore.open(run, readonly=True) as store:
        return [ind.chromosome for ind in store.individuals()]


def test_a_sweep_runs_each_seed_in_its_own_folder_as_a_single_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    code, out, err = run_cli(["evolve", *BASE, "--seeds", "0-1,3", "--run-dir", str(sweep)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in sweep.iterdir()) == ["s0", "s1", "s3"]
    for seed in (0, 1, 3):
        assert (sweep / f"s{seed}" / "best.json").is_file()  # each run finished
    assert "3 runs" in out and "seed 3" in out
    # The seed-1 run is exactly the single run with --seed 1.
    single = tmp_path / "single"
    code, _, err = run_cli(["evolve", *BASE, "--seed", "1", "--run-dir", str(single)], capsys)
    assert code == 0, err
    assert _chromosomes(sweep / "s1") == _chromosomes(single)
    assert _chromosomes(sweep / "s0") != _chromosomes(sweep / "s1")


def test_without_a_run_dir_the_default_folders_carry_the_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["evolve", *BASE, "--seeds", "4,5"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(names) == 2 and names[0].endswith("_s4") and names[1].endswith("_s5")


def test_a_stopped_sweep_says_how_to_go_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "s1").mkdir(parents=True)
    (sweep / "s1" / "stray").write_text("x", encoding="utf-8")  # seed 1's folder is taken
    code, _, err = run_cli(["evolve", *BASE, "--seeds", "0-2", "--run-dir", str(sweep)], capsys)
    assert code == 2
    assert "already exists" in err and "seed 1" in err and "--seeds 1-2" in err
    assert (sweep / "s0" / "best.json").is_file()  # seed 0 finished before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--seeds", "3-1"], "--seeds"),
        (["--seeds", "x"], "--seeds"),
        (["--seeds", "0-1", "--seed", "2"], "--seed"),
        (["--seeds", "0-100000"], "at most"),
    ],
)
def test_bad_seed_lists_are_refused_in_one_line(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["evolve", *BASE, *args, "--run-dir", str(tmp_path / "r")], capsys)
    assert code == 2 and says in err
    assert not (tmp_path / "r").exists()


def test_resume_takes_one_seed_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["evolve", "--resume", str(tmp_path), "--seeds", "0-1"], capsys)
    assert code == 2 and "--seeds" in err


def test_report_groups_a_sweep_as_one_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    sweep = tmp_path / "sweep"
    code, _, err = run_cli(["evolve", *BASE, "--seeds", "0-1", "--run-dir", str(sweep)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["report", str(sweep / "s0"), str(sweep / "s1"), "-o", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    (group,) = summary["table3"]  # one setting: its two seeds together
    assert sorted(r["seed"] for r in group["runs"]) == [0, 1]
