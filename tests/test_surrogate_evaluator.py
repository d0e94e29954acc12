"""``pyevonas evolve --evaluator surrogate:...``: the search simulated by a surrogate, nothing trained.

The evaluator keeps the contract of ``pyevonas.search.executors.base`` (test_executor_contract.py's
suite is written around training functions that raise, exit or sleep on command, which a surrogate
does not run, so its parts that apply are here); the settings refuse what a surrogate cannot
honour; a simulated run stores which model scored it and each candidate's coverage; the command
runs without torch, refuses bad models with one line and exit status 2, resumes after SIGKILL to the
chromosomes of an uninterrupted run; and the report says on every page and in every figure that
the run was simulated. The surrogate is :class:`surrogate_double.SurrogateDouble` except where a
test checks the real one (``pyevonas.surrogate``), which those tests skip while it is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REPO, TESTS, kill_child_at_marker, stored_chromosomes
from surrogate_double import EPOCHS, SurrogateDouble, patch_surrogate

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError
from pyevonas.runs.simulation import Simulation, coverage_stats
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.executors import EvalJob, Evaluator, SurrogateEvaluator, make_evaluator
from pyevonas.search.executors.surrogate import COVERAGE_THRESHOLD, SURROGATE_EPOCHS, SimulatedMetrics
from pyevonas.search.loop import evolve
from pyevonas.search.space import SearchSpace
from pyevonas.training.config import TrainConfig
from pyevonas.training.sizes import arch_size

SPACE = SearchSpace.load("paper")
SMALL = {"generations": 3, "population": 6, "top_k": 3, "seed": 3, "max_control_iterations": 8}


def _real_surrogate() -> bool:
    return hasattr(importlib.import_module("pyevonas.surrogate"), "Surrogate")


needs_real = pytest.mark.skipif(not _real_surrogate(), reason="pyevonas.surrogate.Surrogate is not there yet")


def _chromosomes(n: int, seed: int = 0) -> list[list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def _jobs(n: int, **config: Any) -> list[EvalJob]:
    settings = {"dataset": "cifar10", "epochs": EPOCHS, **config}
    return [EvalJob(k + 1, chrom, TrainConfig(**settings)) for k, chrom in enumerate(_chromosomes(n))]


def _collect(evaluator: Evaluator, jobs: list[EvalJob]) -> tuple[dict[int, Any], dict[int, list[dict[str, Any]]]]:
    events: dict[int, list[dict[str, Any]]] = {}
    results: dict[int, Any] = {}
    for job_id, metrics in evaluator.evaluate(jobs, lambda i, e: events.setdefault(i, []).append(e)):
        assert job_id not in results, "a job reported twice"
        results[job_id] = metrics
    return results, events


@pytest.fixture
def double() -> SurrogateDouble:
    return SurrogateDouble()


@pytest.fixture
def evaluator(double: SurrogateDouble) -> SurrogateEvaluator:
    return SurrogateEvaluator(double, "cifar10")


# ---------------------------------------------------------------------- the executor contract
def test_every_job_yields_its_own_prediction_once(evaluator: SurrogateEvaluator, double: SurrogateDouble) -> None:
    jobs = _jobs(5)[::-1]
    results, _ = _collect(evaluator, jobs)
    assert sorted(results) == [1, 2, 3, 4, 5]
    chroms = [job.chromosome for job in jobs]
    final, curves = double.predict(chroms), double.predict_curve(chroms)
    coverage = double.coverage(chroms)
    for k, job in enumerate(jobs):
        result = results[job.id]
        assert isinstance(result, SimulatedMetrics) and result.status == "ok"
        assert result.fitness == result.val_accuracy == pytest.approx(final[k])
        assert result.val_accuracy_per_epoch == pytest.approx(list(curves[k]))
        assert result.coverage == pytest.approx(coverage[k])
        assert result.test_accuracy is None and result.latency_ms is None and result.device == "surrogate"
        size = arch_size(job.chromosome, (3, 32, 32), 10)
        assert size is not None and (result.params, result.size_mb) == (size.params, size.size_mb)
        assert result.to_dict()["coverage"] == result.coverage


def test_the_batch_is_predicted_at_once_and_only_when_iterated(
    evaluator: SurrogateEvaluator, double: SurrogateDouble
) -> None:
    results = evaluator.evaluate(_jobs(4))
    assert double.calls == []
    next(results)
    assert double.calls == [("predict", 4), ("predict_curve", 4), ("coverage", 4)]
    results.close()


def test_an_empty_batch_yields_nothing_and_duplicate_ids_are_refused(evaluator: SurrogateEvaluator) -> None:
    assert list(evaluator.evaluate([])) == []
    job = _jobs(1)[0]
    with pytest.raises(ValueError, match="unique"):
        list(evaluator.evaluate([job, job]))


def test_progress_says_where_the_job_runs_then_one_event_per_predicted_epoch(
    evaluator: SurrogateEvaluator,
) -> None:
    threads: set[int] = set()
    events: dict[int, list[dict[str, Any]]] = {}

    def on_progress(job_id: int, event: dict[str, Any]) -> None:
        threads.add(threading.get_ident())
        events.setdefault(job_id, []).append(event)

    results = dict(evaluator.evaluate(_jobs(2), on_progress))
    assert threads == {threading.get_ident()}
    for job_id, result in results.items():
        started, *epochs = events[job_id]
        assert set(started) == {"event", "device", "worker", "pid"} and started["event"] == "started"
        assert (started["device"], started["pid"]) == ("surrogate", os.getpid())
        assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
        assert [e["val_accuracy"] for e in epochs] == result.val_accuracy_per_epoch


def test_a_rung_of_successive_halving_gets_the_curve_up_to_its_budget(evaluator: SurrogateEvaluator) -> None:
    full, _ = _collect(evaluator, _jobs(3))
    rung, events = _collect(evaluator, _jobs(3, stop_epoch=3))
    for k in full:
        assert rung[k].val_accuracy_per_epoch == full[k].val_accuracy_per_epoch[:3]
        assert rung[k].fitness == max(full[k].val_accuracy_per_epoch[:3]) and rung[k].epochs_run == 3
        assert [e.get("epoch") for e in events[k][1:]] == [1, 2, 3]


def test_a_candidate_the_surrogate_cannot_read_fails_alone(evaluator: SurrogateEvaluator) -> None:
    jobs = _jobs(3)
    bad = EvalJob(9, [{"layer": "UNREADABLE"}, *jobs[0].chromosome], jobs[0].config)
    results, events = _collect(evaluator, [jobs[0], bad, jobs[1]])
    assert results[1].status == results[2].status == "ok"
    assert results[9].status == "failed" and "UNREADABLE" in results[9].error
    assert results[9].fitness == 0.0
    assert [e["event"] for e in events[9]] == ["started"]


def test_a_larger_candidate_than_max_size_mb_is_oversized(evaluator: SurrogateEvaluator) -> None:
    jobs = _jobs(6, max_size_mb=3.0)
    results, _ = _collect(evaluator, jobs)
    for job in jobs:
        size = arch_size(job.chromosome, (3, 32, 32), 10)
        assert size is not None
        assert results[job.id].status == ("oversized" if size.size_mb > 3.0 else "ok")
    assert {r.status for r in results.values()} == {"ok", "oversized"}


def test_stopping_early_predicts_nothing_more(evaluator: SurrogateEvaluator, double: SurrogateDouble) -> None:
    seen: list[int] = []
    iterator = evaluator.evaluate(_jobs(4), lambda job_id, event: seen.append(job_id))
    job_id, _ = next(iterator)
    iterator.close()
    assert set(seen) == {job_id} and len(double.calls) == 3
    results, _ = _collect(evaluator, _jobs(2))
    assert sorted(results) == [1, 2]


def test_a_progress_callback_error_reaches_the_caller(evaluator: SurrogateEvaluator) -> None:
    def broken(job_id: int, event: dict[str, Any]) -> None:
        if "epoch" in event:
            raise KeyError("ui bug")

    with pytest.raises(KeyError, match="ui bug"):
        list(evaluator.evaluate(_jobs(1), broken))


def test_a_run_the_surrogate_does_not_model_is_refused(evaluator: SurrogateEvaluator) -> None:
    with pytest.raises(ConfigError, match="'epochs'.*12-epoch"):
        list(evaluator.evaluate(_jobs(1, epochs=6)))
    with pytest.raises(ConfigError, match="'epochs'"):
        evaluator.check("cifar10", 4)
    with pytest.raises(ConfigError, match="'dataset'.*cifar10.*--dataset cifar10"):
        evaluator.check("cifar100", 12)
    evaluator.check("cifar10", SURROGATE_EPOCHS)


def test_make_evaluator_builds_the_surrogate_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_surrogate(monkeypatch)
    with make_evaluator("surrogate", model="cifar10") as built:
        assert type(built) is SurrogateEvaluator
        results, _ = _collect(built, _jobs(1))
        assert results[1].status == "ok"
        assert built.describe() == {
            "kind": "surrogate",
            "model": "cifar10",
            "sha256": None,
            "coverage_threshold": COVERAGE_THRESHOLD,
            "epochs": 12,
            "notice": "simulated with the surrogate of cifar10, not trained",
        }
    with pytest.raises(ConfigError, match="needs a model"):
        make_evaluator("surrogate")


# ---------------------------------------------------------------------- sizes without torch
def test_sizes_counted_from_the_chromosome_equal_those_of_the_built_model() -> None:
    pytest.importorskip("torch")
    from pyevonas.training.measure import model_size

    for k, chrom in enumerate(_chromosomes(60, seed=7)):
        shape, classes = ((3, 32, 32), 10) if k % 3 else ((3, 32, 32), 100) if k % 2 else ((1, 8, 8), 10)
        size = arch_size(chrom, shape, classes)
        assert size is not None
        assert (size.params, size.size_mb) == pytest.approx(model_size(chrom, shape, classes), rel=0, abs=1e-12)


def test_a_size_needs_known_genes_and_a_global_pooling() -> None:
    conv = {"layer": "C_2D", "filters": 8, "kernel_size": 3, "strides": 1}
    assert arch_size([conv, {"layer": "SEP_2D"}, {"layer": "GAP_2D"}]) is None
    with pytest.raises(ValueError, match="no global pooling"):
        arch_size([conv])
    with pytest.raises(ValueError, match="gene 2 \\(C_2D\\)"):
        arch_size([conv, {"layer": "GAP_2D"}, conv])


# ---------------------------------------------------------------------- settings
def test_a_simulated_run_takes_the_surrogates_dataset_and_the_papers_budget() -> None:
    config = RunConfig.resolve(None, {"evaluator": "surrogate:cifar100"}, demo_workers=True)
    assert (config.dataset, config.generations, config.population, config.epochs) == ("cifar100", 20, 25, 12)
    assert config.executor == "inprocess" and config.evaluator == "surrogate:cifar100"
    assert config.simulated == "simulated with the surrogate of cifar100, not trained"
    assert RunConfig.resolve(None, {}).evaluator == "train" and RunConfig.resolve(None, {}).simulated is None


def test_a_model_file_is_kept_with_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = RunConfig.resolve(None, {"evaluator": "surrogate:models/mine.json", "dataset": "cifar10"})
    assert config.evaluator == f"surrogate:{tmp_path / 'models' / 'mine.json'}"
    assert config.simulated == "simulated with the surrogate in mine.json, not trained"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"evaluator": "surrogate:"}, "'evaluator'"),
        ({"evaluator": "simulate"}, "'evaluator'"),
        ({"evaluator": "surrogate:cifar10", "workers": 4}, "executor = 'pool'"),
        ({"evaluator": "surrogate:cifar10", "objectives": "val_accuracy,latency_ms"}, "latency_ms"),
        ({"evaluator": "surrogate:cifar10", "objectives": "test_accuracy"}, "test_accuracy"),
    ],
)
def test_settings_a_surrogate_cannot_honour_are_refused(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        RunConfig.resolve(None, settings)


# ---------------------------------------------------------------------- the loop
def test_a_simulated_search_records_that_it_was_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patch_surrogate(monkeypatch)
    config = RunConfig.resolve(None, {**SMALL, "evaluator": "surrogate:cifar10", "run_dir": str(tmp_path / "run")})
    result = evolve(config)
    assert result.best is not None and result.n_generations == 3
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert store.config["evaluator"] == "surrogate:cifar10"
        sim = Simulation.from_meta(store.meta)
        assert sim == Simulation("cifar10", None, COVERAGE_THRESHOLD, 12)
        for g in store.generations():
            individuals = store.individuals(g)
            assert all(ind.metrics and ind.metrics["device"] == "surrogate" for ind in individuals)
            stats = coverage_stats(individuals, sim.coverage_threshold)
            assert stats.n == len(individuals) and 0 <= stats.extrapolated <= stats.n
    best = json.loads((result.run_dir / "best.json").read_text())
    assert best["fitness"] == result.best.fitness and best["params"] > 0


def test_a_simulated_search_halves_and_ranks_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patch_surrogate(monkeypatch)
    config = RunConfig.resolve(
        None,
        {
            **SMALL,
            "population": 8,
            "evaluator": "surrogate:cifar10",
            "budget": "halving",
            "objectives": "val_accuracy,params",
            "run_dir": str(tmp_path / "run"),
        },
    )
    evolve(config)
    with RunStore.open(config.run_path, readonly=True) as store:
        budgets = [ind.metrics.get("budget_epochs") for ind in store.individuals(1) if ind.metrics]
        assert sorted(set(budgets)) == [3, 6, 12]  # the rungs of 12 epochs
        assert "selection" in (store.generation_record(2).extras or {})


def test_a_simulated_search_never_imports_torch(tmp_path: Path) -> None:
    script = f"""
import sys
sys.modules["torch"] = None  # `import torch` fails from here on
sys.path.insert(0, {str(TESTS)!r})
from surrogate_double import patch_surrogate
from pyevonas.cli import main
patch_surrogate()
sys.argv = ["pyevonas", "evolve", "--evaluator", "surrogate:cifar10", "--generations", "2", "--population", "4",
            "--run-dir", {str(tmp_path / "run")!r}, "--quiet"]
main()
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "simulated with the surrogate of cifar10, not trained" in done.stdout


# ---------------------------------------------------------------------- the command
def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, ["evolve", *args])
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())


def test_the_command_runs_a_simulated_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_surrogate(monkeypatch)
    run_dir = tmp_path / "run"
    code, out, err = _cli(
        [
            "--evaluator",
            "surrogate:cifar10",
            "--generations",
            "3",
            "--population",
            "5",
            "--run-dir",
            str(run_dir),
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "cifar10, control rigid, 3 generations × 5 individuals × 12 epochs" in out
    assert "simulated with the surrogate of cifar10, not trained" in out
    assert f"pyevonas train --from-run {run_dir} --data-dir DIR" in out
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.meta["evaluator"]["notice"] == "simulated with the surrogate of cifar10, not trained"
        assert len(store.generations()) == 3
    code, _, err = _cli(["--resume", str(run_dir), "--evaluator", "train"], capsys)
    assert code == 2 and "--evaluator cannot be given" in err


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("surrogate:", "invalid setting 'evaluator'"),
        ("surrogate:{tmp}/missing.json", "missing.json does not exist"),
    ],
)
def test_a_missing_model_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model: str, says: str
) -> None:
    run_dir = tmp_path / "run"
    code = run_guarded(app, ["evolve", "--evaluator", model.format(tmp=tmp_path), "--run-dir", str(run_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and says in " ".join(err.split()) and "Traceback" not in err
    assert not run_dir.exists()


@needs_real
@pytest.mark.parametrize("content", [None, b"not a model", b'{"format": "something else"}', b"\x00\xff" * 40])
def test_an_unknown_name_or_a_corrupt_file_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    if content is None:
        model = "surrogate:imagenet-1k"
    else:
        (tmp_path / "bad.json").write_bytes(content)
        model = f"surrogate:{tmp_path / 'bad.json'}"
    run_dir = tmp_path / "run"
    code = run_guarded(app, ["evolve", "--evaluator", model, "--run-dir", str(run_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "'evaluator'" in err and "Traceback" not in err
    assert not run_dir.exists()


@needs_real
def test_the_builtin_surrogate_scores_the_paper_space() -> None:
    evaluator = SurrogateEvaluator.from_model("cifar10")
    results, _ = _collect(evaluator, _jobs(10))
    assert all(r.status == "ok" and 0.0 <= r.fitness <= 1.0 for r in results.values())
    assert all(r.coverage is not None and 0.0 <= r.coverage <= 1.0 for r in results.values())


# ---------------------------------------------------------------------- kill and resume
@pytest.mark.slow
def test_a_killed_simulated_search_resumes_to_the_chromosomes_of_an_uninterrupted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = ["--evaluator", "surrogate:cifar10", "--generations", "4", "--population", "6", "--seed", "5", "-q"]
    script = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from surrogate_double import patch_surrogate
from pyevonas.cli import main
double = patch_surrogate()
double.marker, double.after = Path(sys.argv[1]), 3   # killed while predicting generation 3
sys.argv = ["pyevonas", "evolve", *sys.argv[2:]]
main()
"""
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    marker = tmp_path / "marker"
    kill_child_at_marker(script, marker, str(marker), *flags, "--run-dir", str(killed), folder=tmp_path)
    with RunStore.open(killed, readonly=True) as store:
        assert store.generations() == [1, 2, 3] and store.get_state("finished") is None
    patch_surrogate(monkeypatch)
    code, _, err = _cli(["--resume", str(killed), "-q"], capsys)
    assert code == 0, err
    code, _, err = _cli([*flags, "--run-dir", str(whole)], capsys)
    assert code == 0, err
    assert stored_chromosomes(killed) == stored_chromosomes(whole)
    with RunStore.open(killed, readonly=True) as store:
        assert store.get_state("finished") is not None
        assert all(ind.status not in ("pending", "running") for ind in store.individuals())
        assert Simulation.from_meta(store.meta) is not None


# ---------------------------------------------------------------------- the report
def _simulated_run(folder: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Path:
    patch_surrogate(monkeypatch)
    config = RunConfig.resolve(None, {**SMALL, "evaluator": "surrogate:cifar10", "run_dir": str(folder), **settings})
    return evolve(config).run_dir


def test_the_report_says_on_every_page_and_figure_that_the_run_was_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    import pyevonas.report.figures as figures
    from pyevonas.report.html import write_report

    run = _simulated_run(tmp_path / "sim", monkeypatch)
    marked: list[str] = []
    mark = figures.mark_simulated

    def spy(fig: Any, notice: str) -> Any:
        marked.append(notice)
        return mark(fig, notice)

    monkeypatch.setattr(figures, "mark_simulated", spy)
    doc = write_report([run], tmp_path / "report")
    notice = "simulated with the surrogate of cifar10, not trained"
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<title>pyevonas report (simulated)</title>" in page
    assert page.count('class="warn"><span class="sim">⚠ Simulated with the surrogate of cifar10, not trained.') == 2
    captions = page.count("<figcaption")
    assert captions == len(doc["figures"]) > 5
    assert page.count('<figcaption class="note"><span class="sim">Simulated with the surrogate of cifar10') == captions
    assert marked == [notice] * captions  # every figure's title
    assert doc["runs"][0]["simulated"] == notice
    assert [c["generation"] for c in doc["runs"][0]["coverage"]] == [1, 2, 3]
    assert "<th>extrapolated</th>" in page


def test_a_report_of_trained_and_simulated_runs_keeps_them_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from helpers import run_config, stub_evaluate

    from pyevonas.report.html import write_report

    simulated = _simulated_run(tmp_path / "sim", monkeypatch, dataset="cifar10")
    trained = evolve(run_config(tmp_path / "trained", dataset="cifar10"), evaluate_fn=stub_evaluate).run_dir
    doc = write_report([trained, simulated], tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "sim simulated with the surrogate of cifar10, not trained" in page
    assert sorted(g["control"] for g in doc["table3"]) == ["rigid", "rigid · simulated"]
    assert [r["simulated"] for r in doc["runs"]] == [None, "simulated with the surrogate of cifar10, not trained"]
    trained_section = page[page.index('<h2 id="trained">') : page.index('<h2 id="sim">')]
    assert "Simulated with" not in trained_section
