"""``--candidate-timeout SECONDS`` (issue 26): a time limit per candidate for every executor.

A candidate over its limit fails with the reason "timed out after N s": the pool kills its worker,
Ray cancels its task, and in this process the limit is checked at each progress event (each epoch)
and when the candidate returns. The setting is in RunConfig and run.toml, and ``--resume`` may
change it (it says how to execute, not what to search).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from executor_fakes import collect, fake_evaluate, make_job
from helpers import PatchTraining, run_config, stub_evaluate

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.executors import make_evaluator
from pyevonas.search.loop import evolve

KINDS = ["inprocess", pytest.param("pool", marks=pytest.mark.slow), pytest.param("ray", marks=pytest.mark.slow)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_candidate_over_its_limit_fails_timed_out(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "ray":
        request.getfixturevalue("local_ray")
    with make_evaluator(kind, workers=1, evaluate_fn=fake_evaluate, timeout_s=1.0) as evaluator:
        started = time.monotonic()
        # In this process the sleep cannot be cut short; a worker is stopped at its limit.
        seconds = 2.5 if kind == "inprocess" else 60.0
        results, _ = collect(evaluator, [make_job(1, seconds=seconds), make_job(2)])
        took = time.monotonic() - started
    assert results[1].status == "failed" and "timed out after 1 s" in results[1].error
    assert results[2].status == "ok"
    if kind != "inprocess":  # stopped at its limit, not when it would have finished
        assert took < 30.0


def test_in_process_the_limit_is_checked_at_each_progress_event() -> None:
    # The candidate reports 50 epochs of 0.1 s; it is stopped at the first event past 0.5 s.
    calls: list[int] = []

    def slow(chromosome: Any, config: Any, progress: Any = None) -> Any:
        for epoch in range(1, 51):
            time.sleep(0.1)
            calls.append(epoch)
            progress({"epoch": epoch, "epochs": 50, "val_accuracy": 0.5, "loss": 1.0})
        return stub_evaluate(chromosome, config)

    with make_evaluator("inprocess", evaluate_fn=slow, timeout_s=0.5) as evaluator:
        results, _ = collect(evaluator, [make_job(1)])
    assert results[1].status == "failed" and results[1].error == "timed out after 0.5 s"
    assert len(calls) < 15


def test_the_setting_in_run_config_run_toml_and_the_search(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("candidate_timeout = 2.5\n")
    assert RunConfig.resolve(toml).candidate_timeout == 2.5
    assert RunConfig.resolve(None).candidate_timeout is None
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="candidate_timeout"):
            RunConfig.resolve(None, {"candidate_timeout": bad})

    slow: list[int] = []

    def one_slow(chromosome: Any, config: Any, progress: Any = None) -> Any:
        if not slow:  # the first candidate only
            slow.append(1)
            time.sleep(0.3)
        if progress is not None:
            progress({"epoch": 1, "epochs": 1, "val_accuracy": 0.5, "loss": 1.0})
        return stub_evaluate(chromosome, config)

    result = evolve(run_config(tmp_path / "run", generations=1, candidate_timeout=0.2), evaluate_fn=one_slow)
    with RunStore.open(result.run_dir, readonly=True) as store:
        errors = [ind.error for ind in store.individuals() if ind.status == "failed"]
        assert errors == ["timed out after 0.2 s"] and RunConfig.from_dict(store.config).candidate_timeout == 0.2


def test_the_flag_and_a_resume_that_changes_it(
    tmp_path: Path, patch_training: PatchTraining, capsys: pytest.CaptureFixture[str]
) -> None:
    patch_training(stub_evaluate)
    run_dir = tmp_path / "run"
    args = ["evolve", "--generations", "2", "--population", "4", "--run-dir", str(run_dir), "--quiet"]
    assert run_guarded(app, [*args, "--candidate-timeout", "30"]) == 0, capsys.readouterr().err
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.config["candidate_timeout"] == 30
    capsys.readouterr()
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--candidate-timeout", "60", "--quiet"]) == 0
    assert run_guarded(app, [*args[:5], "--run-dir", str(tmp_path / "bad"), "--candidate-timeout", "0", "-q"]) == 2
    assert "candidate_timeout" in " ".join(capsys.readouterr().err.split())
