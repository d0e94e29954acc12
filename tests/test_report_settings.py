"""``report`` of runs that differ in their settings: one group per setting (budget, warm start,
epochs, training recipe...), named by what differs, never pooled as if they were seeds of one
setting; seeds and execution settings (workers, device, time limits) never split a group."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import budget_stub, run_cli

from pyevonas.report import figures as F
from pyevonas.report.analysis import GenerationData, RunData, analyse_run, groups, load_run, run_settings, summary
from pyevonas.runs.importer import import_run
from pyevonas.runs.settings import (
    EXECUTION_SETTINGS,
    RUN_IDENTITY,
    SEARCH_SETTINGS,
    TRAIN_EXECUTION_SETTINGS,
)

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"
BASE = ["--generations", "2", "--population", "4", "--epochs", "4", "--quiet"]


@pytest.fixture
def _stub(patch_training: Any) -> None:
    """Training by the budget stub (it honours halving's rungs), in this process."""
    patch_training(budget_stub)


def _evolve(run_dir: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> Path:
    code, _, err = run_cli(["evolve", *BASE, *flags, "--run-dir", str(run_dir)], capsys)
    assert code == 0, err
    return run_dir


def _report(runs: list[Path], out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, _, err = run_cli(["report", *map(str, runs), "-o", str(out)], capsys)
    assert code == 0, err
    doc: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return doc


def _capture_bands(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    panels: list[Any] = []
    draw = F.grouped_curves
    monkeypatch.setattr(F, "grouped_curves", lambda p: panels.extend(p) or draw(p))
    return panels


@pytest.mark.usefixtures("_stub")
def test_runs_differing_in_budget_are_two_groups_named_by_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    full0 = _evolve(tmp_path / "full0", capsys, "--seed", "0")
    full1 = _evolve(tmp_path / "full1", capsys, "--seed", "1")
    halving = _evolve(tmp_path / "halving", capsys, "--seed", "0", "--budget", "halving")
    panels = _capture_bands(monkeypatch)
    out = tmp_path / "rep"
    doc = _report([full0, halving, full1], out, capsys)
    got = [
        (g["dataset"], g["control"], g["label"], g["settings"], [r["name"] for r in g["runs"]]) for g in doc["table3"]
    ]
    assert got == [
        ("digits", "rigid", "rigid · budget full", {"budget": "full"}, ["full0", "full1"]),
        ("digits", "rigid", "rigid · budget halving", {"budget": "halving"}, ["halving"]),
    ]
    # The page's Table 3 names each group by its budget.
    page = (out / "index.html").read_text(encoding="utf-8")
    table3 = page[page.index('id="table3"') : page.index('id="comparison"')]
    assert re.search(r"<tr><td>digits · rigid · budget halving</td><td[^>]*><a[^>]*>halving</a>", table3)
    assert "digits · rigid · budget full · mean of 2 runs" in table3
    assert "digits · rigid · budget halving · mean of 1 run<" in table3
    # Fig. 12's legend: one band per group, each named by its budget, in colours of their own.
    (title, fitness_bands, similarity_bands) = panels[0]
    assert title == "digits"
    for bands in (fitness_bands, similarity_bands):
        assert [(b.label, b.values.shape[0]) for b in bands] == [
            ("rigid · budget full", 2),
            ("rigid · budget halving", 1),
        ]
        assert len({b.key for b in bands}) == 2


@pytest.mark.usefixtures("_stub")
def test_a_seed_sweep_and_other_execution_settings_stay_one_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    sweep = tmp_path / "sweep"
    _evolve(sweep, capsys, "--seeds", "0-1")
    # Another seed of the same setting, run with a time limit and on the CPU named.
    other = _evolve(tmp_path / "other", capsys, "--seed", "5", "--candidate-timeout", "600", "--device", "cpu")
    doc = _report([sweep / "s0", sweep / "s1", other], tmp_path / "rep", capsys)
    (group,) = doc["table3"]
    assert (group["label"], group["settings"]) == ("rigid", {})
    assert sorted(r["seed"] for r in group["runs"]) == [0, 1, 5]


def _run(name: str, config: dict[str, Any], *, dataset: str = "digits", control: str = "rigid") -> RunData:
    meta = {"source": "pyevonas", "dataset": dataset, "control": control, "seed": 0}
    return RunData(name, "", meta, {}, [GenerationData(1, [])], config=config)


def _groups(runs: list[RunData]) -> list[tuple[str, dict[str, Any], list[str]]]:
    return [(g.label, g.settings, [m.run.name for m in g.members]) for g in groups([analyse_run(r) for r in runs])]


def test_a_store_without_a_newer_setting_counts_as_its_default() -> None:
    runs = [
        _run("old", {"dataset": "digits", "seed": 0}),  # written before budget and init existed
        _run("new", {"dataset": "digits", "seed": 1, "budget": "full", "init": None, "workers": 2}),
        _run("halving", {"budget": "halving"}),
    ]
    assert _groups(runs) == [
        ("rigid · budget full", {"budget": "full"}, ["old", "new"]),
        ("rigid · budget halving", {"budget": "halving"}, ["halving"]),
    ]


def test_warm_start_epochs_and_training_recipe_are_named() -> None:
    runs = [
        _run("plain", {"train": {"num_workers": 1}}),
        _run("plain-2", {"train": {"num_workers": 4}}),  # an execution setting of the training
        _run("warm", {"init": "/somewhere/runs/digits_rigid_s0"}),
        _run("batch", {"train": {"batch_size": 32}, "epochs": 4}),
        _run("naive", {}, control="naive"),
    ]
    got = _groups(runs)
    assert got == [
        (
            "naive · init none · epochs 12 · batch size default",
            {"init": None, "epochs": 12, "train.batch_size": "default"},
            ["naive"],
        ),
        (
            "rigid · init none · epochs 12 · batch size default",
            {"init": None, "epochs": 12, "train.batch_size": "default"},
            ["plain", "plain-2"],
        ),
        (
            "rigid · init digits_rigid_s0 · epochs 12 · batch size default",
            {"init": "/somewhere/runs/digits_rigid_s0", "epochs": 12, "train.batch_size": "default"},
            ["warm"],
        ),
        (
            "rigid · init none · epochs 4 · batch size 32",
            {"init": None, "epochs": 4, "train.batch_size": 32},
            ["batch"],
        ),
    ]
    # Runs of another dataset are compared among themselves: nothing of theirs differs.
    other = [_run("c1", {"dataset": "cifar10"}, dataset="cifar10"), _run("c2", {}, dataset="cifar10")]
    assert _groups(other + runs[:1])[0] == ("rigid", {}, ["c1", "c2"])


def test_the_summary_names_each_groups_settings() -> None:
    doc = summary([analyse_run(r) for r in [_run("a", {}), _run("b", {"population": 8})]])
    assert [(t["label"], t["settings"]) for t in doc["table3"]] == [
        ("rigid · population 25", {"population": 25}),
        ("rigid · population 8", {"population": 8}),
    ]
    assert json.loads(json.dumps(doc))["table3"][1]["settings"] == {"population": 8}  # JSON as written


def test_imported_runs_group_as_before_and_apart_from_pyevonas_runs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        import_run(EVONAS, tmp_path / name)
    imported = [analyse_run(load_run(tmp_path / name)) for name in ("a", "b")]
    (group,) = groups(imported)
    assert (group.dataset, group.control, group.label, group.settings) == ("cifar10", "rigid", "rigid", {})
    assert run_settings(imported[0].run) == {"code": "original"}
    mine = analyse_run(_run("mine", {"dataset": "cifar10"}, dataset="cifar10"))
    assert [(g.label, len(g.members)) for g in groups([*imported, mine])] == [
        ("rigid · original code", 2),
        ("rigid · pyevonas", 1),
    ]


def test_every_run_setting_is_of_one_kind_and_the_defaults_are_run_configs() -> None:
    from pyevonas.search.config import RunConfig
    from pyevonas.training.config import TrainConfig

    kinds = [("dataset", "control"), EXECUTION_SETTINGS, RUN_IDENTITY, tuple(SEARCH_SETTINGS)]
    names = [name for kind in kinds for name in kind]
    assert len(names) == len(set(names))  # no setting of two kinds
    defaults = RunConfig().to_dict()
    assert set(names) == set(defaults)
    assert {k: defaults[k] for k in SEARCH_SETTINGS} == SEARCH_SETTINGS
    assert set(TRAIN_EXECUTION_SETTINGS) <= set(TrainConfig.model_fields)
