"""What a run shows a new user (issue 26): a multi-objective run's Pareto front (summary, best.json,
live view, export), a halving run's rungs (log lines, live view, export) and where a warm-started
run's individuals came from, and next-step commands that work as printed (``.venv/bin/pyevonas``
when the shell would not find ``pyevonas``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import PatchTraining, budget_stub, mo_evaluate, run_cli, run_config
from rich.console import Console

from pyevonas.cli._common import read_arch
from pyevonas.cli.live import LiveView
from pyevonas.runs.objectives import non_dominated_sort, objective_matrix, parse_objectives
from pyevonas.runs.records import Individual, Status, is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search import halving
from pyevonas.search.loop import arch_notation, evolve

OBJECTIVES = parse_objectives("val_accuracy,params")


def _expected_front(run_dir: Path) -> list[Individual]:
    """The run's final front worked out here: its trained, non-reused individuals, one per
    architecture (the earliest), that no other dominates; highest accuracy first."""
    with RunStore.open(run_dir, readonly=True) as store:
        seen: set[str] = set()
        cands = []
        for ind in sorted(store.individuals(), key=lambda i: i.id):
            if is_trained(ind) and ind.status is not Status.REUSED and ind.canonical_key not in seen:
                seen.add(ind.canonical_key)
                cands.append(ind)
    ranks = non_dominated_sort(objective_matrix(cands, OBJECTIVES))
    front = [c for c, r in zip(cands, ranks, strict=True) if r == 0]
    return sorted(front, key=lambda i: (-(i.fitness or 0.0), i.params, i.id))


def _screen(view: LiveView, width: int = 160, height: int = 60) -> str:
    out = io.StringIO()
    Console(file=out, width=width, height=height, color_system=None).print(view.frame(width, height))
    return out.getvalue()


# ---------------------------------------------------------------------- the Pareto front
def _multi_objective_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch_training: PatchTraining, evaluate: Any
) -> tuple[Path, str]:
    """A 2 x 6 search on val_accuracy and params with ``evaluate`` for training: its folder and output."""
    patch_training(evaluate)
    run_dir = tmp_path / "run"
    args = ["--generations", "2", "--population", "6", "--run-dir", str(run_dir), "--quiet"]
    code, out, err = run_cli(["evolve", *args, "--objectives", "val_accuracy,params"], capsys)
    assert code == 0, err
    return run_dir, out


def test_a_multi_objective_run_gives_its_front_in_the_summary_best_json_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch_training: PatchTraining
) -> None:
    run_dir, out = _multi_objective_run(tmp_path, capsys, patch_training, mo_evaluate)
    front = _expected_front(run_dir)
    assert len(front) >= 2  # the stub's accuracy and size disagree: a real trade-off

    saved = json.loads((run_dir / "best.json").read_text())
    assert saved["objectives"] == ["val_accuracy", "params"]
    members = saved["pareto_front"]
    assert [m["name"] for m in members] == [i.name for i in front]
    for m, ind in zip(members, front, strict=True):
        assert m["objectives"] == {"val_accuracy": ind.fitness, "params": ind.params}
        assert m["chromosome"] == ind.chromosome and m["notation"] == arch_notation(ind.chromosome)
    # The top level stays the one architecture `pyevonas train best.json` trains: the first member.
    assert saved["name"] == front[0].name and read_arch(str(run_dir / "best.json")) == front[0].chromosome

    text = " ".join(out.split())
    assert f"Pareto front (val_accuracy, params): {len(front)} architectures" in text
    for ind in front:
        assert (
            f"{ind.name} (generation {ind.generation}): val_accuracy {ind.fitness:.4f} · params {ind.params:,}" in text
        )

    code, _, err = run_cli(["export", str(run_dir), "-o", str(tmp_path / "run.json")], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "run.json").read_text())
    assert [m["name"] for m in data["pareto_front"]] == [i.name for i in front]
    assert data["pareto_front"][0]["objectives"] == {"val_accuracy": front[0].fitness, "params": front[0].params}
    on = {i.id for i in front}
    assert [ind["on_front"] for ind in data["individuals"]] == [ind["id"] in on for ind in data["individuals"]]
    code, out, err = run_cli(["export", str(run_dir), "--csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["name"] for r in rows if r["on_front"] == "True"} == {i.name for i in front}
    assert {r["on_front"] for r in rows} == {"True", "False"}


def test_a_single_objective_run_keeps_its_best_json_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch_training: PatchTraining
) -> None:
    patch_training(mo_evaluate)
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        ["evolve", "--generations", "2", "--population", "4", "--run-dir", str(run_dir), "-q"], capsys
    )
    assert code == 0, err
    saved = json.loads((run_dir / "best.json").read_text())
    assert "pareto_front" not in saved and "objectives" not in saved
    assert "Pareto front" not in out and "best architecture:" in out
    code, out, err = run_cli(["export", str(run_dir)], capsys)
    assert code == 0 and "pareto_front" not in json.loads(out)


def test_the_live_view_shows_the_cost_beside_accuracy_and_the_final_front(tmp_path: Path) -> None:
    log = io.StringIO()
    plain = LiveView(Console(file=log, width=300), plain=True, timestamps=False)
    live = LiveView(Console(file=io.StringIO(), width=160), plain=False)
    result = evolve(
        run_config(tmp_path / "run", objectives="val_accuracy,params"), evaluate_fn=mo_evaluate, observers=[plain, live]
    )
    with RunStore.open(result.run_dir, readonly=True) as store:
        trained = [i for i in store.individuals() if is_trained(i)]
    screen = _screen(live)
    header = next(line for line in screen.splitlines() if " name " in line)
    assert "params" in header and header.index("val") < header.index("params")
    shown = [i for i in trained if i.name in screen]
    assert shown and all(f"{i.params:,}" in screen for i in shown)
    lines = log.getvalue().splitlines()
    for ind in trained:
        if ind.status is Status.OK:
            assert any(line.startswith(f"  {ind.name} ok") and f"params {ind.params:,}" in line for line in lines)
    assert result.front and result.best is result.front[0]
    last = lines[-1]
    assert f"Pareto front (val_accuracy, params) of {len(result.front)}" in last
    assert all(i.name in last for i in result.front)


# ---------------------------------------------------------------------- halving rungs, warm-start origins
def test_a_halving_run_shows_the_rung_in_its_log_view_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = io.StringIO()
    plain = LiveView(Console(file=log, width=300), plain=True, timestamps=False)
    live = LiveView(Console(file=io.StringIO(), width=160), plain=False)
    config = run_config(tmp_path / "run", population=8, epochs=4, budget="halving", generations=2)
    result = evolve(config, evaluate_fn=budget_stub, observers=[plain, live])
    lines = log.getvalue().splitlines()
    rung_of = {1: "rung 1/3 (1 epoch)", 2: "rung 2/3 (2 epochs)", 4: "rung 3/3 (4 epochs)"}
    with RunStore.open(result.run_dir, readonly=True) as store:
        individuals = store.individuals()
    for ind in individuals:
        if ind.status is not Status.OK:
            continue
        for budget in halving.rungs(4)[: halving.rungs(4).index(ind.metrics["budget_epochs"]) + 1]:
            # a line per rung the candidate went through
            assert any(line.startswith(f"  {ind.name} ok") and rung_of[budget] in line for line in lines), (
                ind.name,
                budget,
            )
    screen = _screen(live)
    header = next(line for line in screen.splitlines() if " name " in line)
    assert "rung" in header
    assert "3/3" in screen

    code, out, err = run_cli(["export", str(result.run_dir), "--csv"], capsys)
    assert code == 0, err
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
    for ind in individuals:
        budget = (ind.metrics or {}).get("budget_epochs")
        assert rows[ind.name]["budget_epochs"] == str(budget)
        assert rows[ind.name]["rung"] == f"{halving.rungs(4).index(budget) + 1}/3"
    code, out, err = run_cli(["export", str(result.run_dir)], capsys)
    assert {i["name"]: i["rung"] for i in json.loads(out)["individuals"]} == {n: r["rung"] for n, r in rows.items()}


def test_the_export_says_where_each_individual_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = evolve(run_config(tmp_path / "source", generations=1, population=4), evaluate_fn=mo_evaluate)
    with RunStore.open(source.run_dir, readonly=True) as store:
        best_first = sorted((i for i in store.individuals() if is_trained(i)), key=lambda i: (-(i.fitness or 0), i.id))
    warm = evolve(
        run_config(tmp_path / "warm", generations=2, population=6, init=str(source.run_dir)), evaluate_fn=mo_evaluate
    )
    code, out, err = run_cli(["export", str(warm.run_dir), "--csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    first = [r for r in rows if r["generation"] == "1"]
    seeded = [r for r in first if r["origin"].startswith("init ")]
    assert seeded and len(seeded) < len(first)
    names = {i.name for i in best_first}
    for row in seeded:
        assert str(source.run_dir) in row["origin"] and row["origin"].split(": ", 1)[1].split(" ")[0] in names
    assert {r["origin"] for r in first if r not in seeded} == {"sampled"}
    assert {r["origin"] for r in rows if r["generation"] == "2"} <= {"bred", "elite"}
    code, out, err = run_cli(["export", str(warm.run_dir)], capsys)
    assert [i["origin"] for i in json.loads(out)["individuals"]] == [r["origin"] for r in rows]
    # A run without a warm start says so too.
    code, out, err = run_cli(["export", str(source.run_dir), "--csv"], capsys)
    assert {r["origin"] for r in csv.DictReader(io.StringIO(out)) if r["generation"] == "1"} == {"sampled"}


# ---------------------------------------------------------------------- commands that work as printed
def _script(folder: Path) -> Path:
    script = folder / ".venv" / "bin" / "pyevonas"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return script


def test_the_command_name_is_the_path_the_shell_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyevonas.cli._common import command_name

    script = _script(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/pyevonas", "evolve"])
    assert command_name() == ".venv/bin/pyevonas"
    monkeypatch.setattr(sys, "argv", [str(script), "evolve"])  # run by its full path: shown relative
    assert command_name() == ".venv/bin/pyevonas"
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # the venv is active: the plain name works
    assert command_name() == "pyevonas"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command_name() == str(script)  # not under the working folder: the absolute path
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/pytest"])  # inside another program
    assert command_name() == "pyevonas"


def test_the_footer_prints_commands_that_work_as_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, patch_training: PatchTraining
) -> None:
    patch_training(mo_evaluate)
    _script(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [".venv/bin/pyevonas", "evolve"])
    code, out, err = run_cli(["evolve", "--generations", "1", "--population", "3", "--run-dir", "run", "-q"], capsys)
    assert code == 0, err
    steps = [line.split(":", 1)[1].split() for line in out.splitlines() if "pyevonas " in line and ":" in line]
    commands = [s for s in steps if s and s[0].endswith("pyevonas")]
    assert {s[1] for s in commands} >= {"train", "report", "export"}, out
    assert all(s[0] == ".venv/bin/pyevonas" for s in commands), out


def test_a_quiet_halving_run_says_the_rung_of_its_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch_training: PatchTraining
) -> None:
    patch_training(budget_stub)
    run_dir = tmp_path / "run"
    args = ["--generations", "1", "--population", "4", "--epochs", "4", "--budget", "halving", "-q"]
    code, out, err = run_cli(["evolve", *args, "--run-dir", str(run_dir)], capsys)
    assert code == 0, err
    assert "trained 4 of 4 epochs (rung 3/3 of successive halving)" in " ".join(out.split())
    code, out, err = run_cli(
        ["evolve", "--generations", "1", "--population", "3", "--run-dir", str(tmp_path / "full"), "-q"], capsys
    )
    assert code == 0 and "rung" not in out


def tied_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """Every candidate equally accurate: the front is the smallest one(s), not the first trained."""
    return {**mo_evaluate(chromosome, config, progress), "fitness": 0.5}


def test_train_from_run_takes_the_best_that_best_json_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], patch_training: PatchTraining
) -> None:
    from pyevonas.cli.train_cmds import _from_run

    run_dir, _ = _multi_objective_run(tmp_path, capsys, patch_training, tied_evaluate)
    saved = json.loads((run_dir / "best.json").read_text())
    first_trained = min((i for i in _individuals(run_dir) if is_trained(i)), key=lambda i: i.id)
    assert saved["name"] != first_trained.name  # the tie is broken by size, not by order
    _, _, recorded = _from_run(run_dir, None, device=None, data_dir=None, download=False)
    assert recorded["name"] == saved["name"]


def _individuals(run_dir: Path) -> list[Individual]:
    with RunStore.open(run_dir, readonly=True) as store:
        return store.individuals()


def overfitting_stub(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """:func:`budget_stub` whose validation accuracy falls as training goes on, so that a candidate
    stopped at the first rung can look fitter than one trained to the end."""
    out = budget_stub(chromosome, config, progress)
    share = out["epochs_run"] / config.epochs
    return {**out, "fitness": out["fitness"] / (0.5 + 0.5 * share) * (1.5 - 0.5 * share) / 1.5}


def test_the_live_views_best_under_halving_is_the_runs_best(tmp_path: Path) -> None:
    """A longer training ranks first under halving (the loop's rank_key); the view's best and its
    best rows follow that order, not the fitness alone."""
    found = 0
    for seed in range(3):
        config = run_config(tmp_path / f"run{seed}", population=8, epochs=4, budget="halving", generations=2,
                            seed=seed)  # fmt: skip
        live = LiveView(Console(file=io.StringIO(), width=160), plain=False)
        result = evolve(config, evaluate_fn=overfitting_stub, observers=[live])
        assert result.best is not None
        assert live._state.best is not None and live._state.best.id == result.best.id
        rows = [c.info for c in dict(live._candidate_groups())["best"]]
        assert rows[0].id == result.best.id
        keys = [((r.budget or 0), r.fitness) for r in rows]
        assert keys == sorted(keys, reverse=True)
        found += any(ind.fitness > result.best.fitness for ind in _individuals(result.run_dir) if is_trained(ind))
    assert found  # a candidate stopped early was fitter than the run's best: the order was put to the test
