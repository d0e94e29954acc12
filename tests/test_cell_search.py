"""Searches in cell spaces: the loop (seeded, duplicates by isomorphism, every control, selection,
halving, reuse, warm start), the command line, the records and reports, and SIGKILL + resume.

The fast tests train with the helpers' stub; the slow ones train for real on digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, kill_child_at_marker, run_config, stored_chromosomes, stub_evaluate

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.runs.store import RunStore
from pyevonas.search.cells import CellSpace, cell_text, load_space
from pyevonas.search.loop import evolve, resume

NB201 = CellSpace.load("nb201")
CELL = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
SWAPPED = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|none~2|"
DAG_SPACE: dict[str, Any] = {
    "schema_version": 1,
    "kind": "cell",
    "name": "mydag",
    "description": "NAS-Bench-101-like cells: ops on nodes, up to 6 nodes and 8 edges",
    "cell": {
        "format": "dag",
        "ops_on": "nodes",
        "ops": {"conv": {"kernel_size": {"choices": [1, 3]}}, "max_pool_3x3": {}},
        "min_nodes": 3,
        "max_nodes": 6,
        "max_edges": 8,
    },
    "skeleton": {"channels": 8, "cells_per_stage": 1, "stages": 3},
}


def dag_space_file(folder: Path) -> Path:
    path = folder / "mydag.json"
    path.write_text(json.dumps(DAG_SPACE))
    return path


# ---------------------------------------------------------------------- the loop, stubbed
@pytest.mark.parametrize("space", ["nb201", "dag"])
def test_a_cell_search_is_seeded_and_every_architecture_is_valid(tmp_path: Path, space: str) -> None:
    source = "nb201" if space == "nb201" else str(dag_space_file(tmp_path))
    a = evolve(run_config(tmp_path / "a", space=source), evaluate_fn=stub_evaluate)
    b = evolve(run_config(tmp_path / "b", space=source), evaluate_fn=stub_evaluate)
    assert stored_chromosomes(a.run_dir) == stored_chromosomes(b.run_dir)
    loaded = load_space(source)
    assert isinstance(loaded, CellSpace)
    with RunStore.open(a.run_dir, readonly=True) as store:
        assert store.config["schema"] == "cells" and store.scoring["name"] == "cells"
        assert store.space == loaded.to_dict()
        cells = set()
        for ind in store.individuals():
            loaded.check(ind.chromosome)
            cells.add(cell_text(loaded.cell_of(ind.chromosome)))
        assert len(cells) > 6  # breeding changed cells
        for g in store.generations():
            record = store.generation_record(g)
            assert record.matrix is not None and 0 < record.diversity < 1


def test_isomorphic_cells_are_trained_once(tmp_path: Path) -> None:
    trained: list[str] = []

    def counting(chromosome: Any, config: Any, progress: Any = None) -> Any:
        trained.append(NB201.describe(chromosome))
        return stub_evaluate(chromosome, config, progress)

    result = evolve(
        run_config(tmp_path / "run", space="nb201", generations=1),
        evaluate_fn=counting,
        initial=[CELL, SWAPPED, CELL],
    )
    with RunStore.open(result.run_dir, readonly=True) as store:
        first, swapped, same = store.individuals(1)[:3]
    assert [first.status, swapped.status, same.status] == ["ok", "cached", "cached"]
    assert swapped.cached_from == same.cached_from == first.id and swapped.fitness == first.fitness
    assert trained.count(CELL) == 1 and SWAPPED not in trained


@pytest.mark.parametrize(
    "settings",
    [
        {"control": "naive"},
        {"control": "soft"},
        {"control": "target"},
        {"control": "custom", "control_upper": "0.05", "control_lower": "-0.05"},
        {"objectives": "val_accuracy,params", "selection": "dns"},
        {"selection": "novelty"},
        {"reuse_similarity": 0.97, "near_duplicates": "reuse"},
        {"reuse_similarity": 0.97, "near_duplicates": "resample"},
        {"elitism": 1},
    ],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_every_loop_setting_works_in_a_cell_space(tmp_path: Path, settings: dict[str, Any]) -> None:
    def with_params(chromosome: Any, config: Any, progress: Any = None) -> Any:
        return {**stub_evaluate(chromosome, config, progress), "params": 1000 + len(NB201.describe(chromosome))}

    result = evolve(run_config(tmp_path / "run", space="nb201", **settings), evaluate_fn=with_params)
    assert result.best is not None and result.n_generations == 3
    for population in stored_chromosomes(result.run_dir).values():
        for chrom in population:
            NB201.check(chrom)


def test_halving_and_a_warm_start_from_a_run(tmp_path: Path) -> None:
    from helpers import budget_stub

    first = evolve(run_config(tmp_path / "first", space="nb201", budget="halving", epochs=4), evaluate_fn=budget_stub)
    warm = evolve(run_config(tmp_path / "warm", space="nb201", init=str(first.run_dir)), evaluate_fn=stub_evaluate)
    with RunStore.open(warm.run_dir, readonly=True) as store:
        assert store.meta["init"]["given"] >= 1
        seeded = store.meta["init"]["chromosomes"]
    assert seeded and all(NB201.is_valid(c) for c in seeded)


def test_resume_continues_a_stopped_cell_search(tmp_path: Path) -> None:
    calls = {"n": 0}

    def stops(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return stub_evaluate(chromosome, config, progress)

    with pytest.raises(KeyboardInterrupt):
        evolve(run_config(tmp_path / "run", space="nb201"), evaluate_fn=stops)
    resume(tmp_path / "run", evaluate_fn=stub_evaluate)
    reference = evolve(run_config(tmp_path / "reference", space="nb201"), evaluate_fn=stub_evaluate)
    assert stored_chromosomes(tmp_path / "run") == stored_chromosomes(reference.run_dir)


def test_the_live_view_shows_each_candidates_cell(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from pyevonas.cli.live import LiveView
    from pyevonas.search.events import CandidateUpdate

    view = LiveView(Console(file=io.StringIO(), force_terminal=True, width=160), refresh_per_second=20)
    shown: list[str] = []

    def observer(event: Any) -> None:
        view(event)
        if isinstance(event, CandidateUpdate):
            shown.append(event.candidate.sequence)

    result = evolve(run_config(tmp_path / "run", space="nb201", generations=1), evaluate_fn=stub_evaluate,
                    observers=[observer])  # fmt: skip
    with RunStore.open(result.run_dir, readonly=True) as store:
        cells = {NB201.describe(ind.chromosome) for ind in store.individuals()}
    assert shown and set(shown) <= cells
    console = Console(record=True, width=160, height=30, file=io.StringIO())
    console.print(view.render())
    frame = console.export_text()
    assert "pyevonas evolve · digits · nb201 · rigid" in frame
    assert sum(cell[:40] in frame for cell in cells) >= 3  # the best and latest rows show their cells


# ---------------------------------------------------------------------- the command line, stubbed
@pytest.fixture
def stubbed(patch_training: Any) -> None:
    patch_training(stub_evaluate)


def test_evolve_space_nb201_records_nb201_strings(tmp_path: Path, stubbed: None, capsys: Any) -> None:
    run = tmp_path / "run"
    args = ["evolve", "--space", "nb201", "--generations", "2", "--population", "6", "--epochs", "1"]
    assert run_guarded(app, [*args, "--run-dir", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "space nb201" in out
    best = json.loads((run / "best.json").read_text())
    assert best["notation"].startswith("|") and NB201.describe(best["chromosome"]) == best["notation"]
    assert best["sequence"] == "CBXYXYXBLg"
    assert run_guarded(app, ["export", str(run), "--csv", "-o", str(tmp_path / "run.csv")]) == 0
    rows = (tmp_path / "run.csv").read_text().splitlines()
    notation = rows[0].split(",").index("notation")
    assert all(row.split(",")[notation].startswith("|") for row in rows[1:])
    assert run_guarded(app, ["export", str(run), "-o", str(tmp_path / "run.json")]) == 0
    exported = json.loads((tmp_path / "run.json").read_text())
    assert exported["space"]["kind"] == "cell"
    assert all(NB201.is_valid(ind["chromosome"]) for ind in exported["individuals"])
    # The report shows the cells, not only gene letters.
    assert run_guarded(app, ["report", str(run), "-o", str(tmp_path / "report")]) == 0
    summary = (tmp_path / "report" / "summary.json").read_text()
    assert best["notation"] in summary


def test_invalid_space_files_are_refused_before_anything_is_written(tmp_path: Path, stubbed: None, capsys: Any) -> None:
    bad = {**DAG_SPACE, "cell": {**DAG_SPACE["cell"], "ops": {"warp": {}}}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    run = tmp_path / "run"
    assert run_guarded(app, ["evolve", "--space", str(path), "--run-dir", str(run), "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}: invalid search space: cell: ops.warp: unknown op 'warp'" in err
    assert not run.exists()
    # A schema without cell genes cannot read the architectures: refused too.
    code = run_guarded(app, ["evolve", "--space", "nb201", "--schema", "paper", "--run-dir", str(run), "--quiet"])
    assert code == 2 and not run.exists()
    assert "needs a scoring schema with a cell gene type" in " ".join(capsys.readouterr().err.split())


def test_train_takes_a_cell_with_its_space(tmp_path: Path, capsys: Any) -> None:
    code = run_guarded(app, ["train", CELL, "--space", "nb201", "--epochs", "1", "--json", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok" and result["params"] > 0
    assert run_guarded(app, ["train", "|conv_9x9~0|", "--space", "nb201", "--epochs", "1"]) == 2


# ---------------------------------------------------------------------- real training on digits
@pytest.mark.slow
def test_the_issue_command_runs_on_digits_and_exports_nb201_strings(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "pyevonas", "evolve", "--space", "nb201", "--generations", "2"]
    command += ["--population", "6", "--epochs", "1", "--run-dir", str(run), "--quiet"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    with RunStore.open(run, readonly=True) as store:
        individuals = store.individuals()
    assert len(individuals) == 12 and all(ind.status in ("ok", "cached") for ind in individuals)
    assert max(ind.fitness or 0 for ind in individuals) > 0.2  # above chance after one epoch
    csv_path = tmp_path / "run.csv"
    subprocess.run([sys.executable, "-m", "pyevonas", "export", str(run), "--csv", "-o", str(csv_path)], check=True)
    assert csv_path.read_text().count("|+|") >= 12
    # The best retrains to what the search measured, from its record alone.
    best = json.loads((run / "best.json").read_text())
    retrain = [sys.executable, "-m", "pyevonas", "train", "--from-run", str(run), "--json", "--quiet"]
    again = json.loads(subprocess.run(retrain, capture_output=True, text=True, check=True).stdout)
    assert (again["fitness"], again["test_accuracy"]) == (best["fitness"], best["test_accuracy"])


# A real search for kill_child_at_marker, run with RUN_DIR MARKER SPACE: digits, 2 generations of 6,
# 1 epoch, trained in-process; at its 8th training it writes MARKER and sleeps (killed there).
_CHILD = """
import sys, time
from pathlib import Path
import pyevonas.training.loop as training
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve

run_dir, marker, space = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
count = {{"n": 0}}

def evaluate(chromosome, config, progress=None):
    count["n"] += 1
    if count["n"] == 8:
        marker.write_text("training")
        time.sleep(120)
    return training.evaluate(chromosome, config, progress)

settings = dict(space=space, generations=2, population=6, epochs=1, seed=5, workers=1, run_dir=str(run_dir))
evolve(RunConfig.resolve(None, settings), evaluate_fn=evaluate)
"""

_MEASURED = ("status", "fitness", "val_accuracy", "test_accuracy", "params", "size_mb", "flops", "cached_from")


def _results(run_dir: Path) -> list[dict[str, Any]]:
    with RunStore.open(run_dir, readonly=True) as store:
        return [
            {"chromosome": ind.chromosome, "per_epoch": ind.val_accuracy_per_epoch}
            | {key: getattr(ind, key) for key in _MEASURED}
            for ind in store.individuals()
        ]


@pytest.mark.slow
@pytest.mark.parametrize("space", ["nb201", "dag"])
def test_sigkill_during_training_then_resume_equals_an_uninterrupted_run(tmp_path: Path, space: str) -> None:
    source = "nb201" if space == "nb201" else str(dag_space_file(tmp_path))
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    kill_child_at_marker(_CHILD, marker, str(run_dir), str(marker), source, folder=tmp_path, timeout_s=300)
    with RunStore.open(run_dir, readonly=True) as store:
        assert any(ind.status == "running" for ind in store.individuals())
        done_before = {ind.id for ind in store.individuals() if ind.status == "ok"}
    assert len(done_before) >= 5
    resumed = subprocess.run(
        [sys.executable, "-m", "pyevonas", "evolve", "--resume", str(run_dir), "--quiet"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    settings = {"space": source, "generations": 2, "population": 6, "epochs": 1, "seed": 5, "workers": 1}
    from pyevonas.search.config import RunConfig

    evolve(RunConfig.resolve(None, {**settings, "run_dir": str(reference)}))
    assert _results(run_dir) == _results(reference)
