"""The generational loop: determinism, crash safety (SIGKILL + resume), the cache, failures, events.

Training is replaced by a stub evaluate function everywhere: what is tested here is the loop, not
the models. The stub's fitness is a fixed function of the chromosome, so two runs with the same
seed must agree on every chromosome of every generation.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import kill_search_midway, run_config, stored_chromosomes, stub_evaluate, stub_fitness

from pyevonas.errors import ConfigError, RunStoreError, TrainingError
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.control import SOFT
from pyevonas.search.events import (
    CandidateUpdate,
    ControlStep,
    GenerationBred,
    GenerationEvaluated,
    GenerationStarted,
    RunFinished,
    RunStarted,
)
from pyevonas.search.loop import evolve, resume
from pyevonas.search.space import SearchSpace

PAPER_SPACE = SearchSpace.load("paper")


# ---------------------------------------------------------------------- determinism
def test_same_seed_gives_the_same_chromosomes_in_every_generation(
    tmp_path: Path,
) -> None:
    a = evolve(run_config(tmp_path / "a"), evaluate_fn=stub_evaluate)
    b = evolve(run_config(tmp_path / "b"), evaluate_fn=stub_evaluate)
    c = evolve(run_config(tmp_path / "c", seed=4), evaluate_fn=stub_evaluate)
    chroms_a, chroms_b, chroms_c = (
        stored_chromosomes(a.run_dir),
        stored_chromosomes(b.run_dir),
        stored_chromosomes(c.run_dir),
    )
    assert sorted(chroms_a) == [1, 2, 3]
    assert all(len(pop) == 6 for pop in chroms_a.values())
    assert chroms_a == chroms_b
    assert chroms_a[1] != chroms_c[1]
    assert a.best is not None and b.best is not None
    assert a.best.fitness == b.best.fitness


def test_the_store_holds_the_whole_run(tmp_path: Path) -> None:
    result = evolve(run_config(tmp_path / "run", control="soft"), evaluate_fn=stub_evaluate)
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert RunConfig.from_dict(store.config).control == "soft"
        assert store.space["name"] == "paper"
        assert store.scoring
        assert store.meta["seed"] == 3
        for g in (1, 2, 3):
            record = store.generation_record(g)
            assert record.matrix is not None and record.matrix.shape == (6, 6)
            assert record.diversity is not None and record.rng_state is not None
            for ind in store.individuals(g):
                assert ind.status in ("ok", "cached")
                assert ind.fitness == pytest.approx(stub_fitness(ind.chromosome))
                assert ind.sequence
                PAPER_SPACE.check(ind.chromosome)  # every child of every generation is valid
                if g > 1:
                    assert ind.parents and all(isinstance(p, int) for p in ind.parents)
        for g in (2, 3):
            record = store.generation_record(g)
            iterations = store.control_iterations(g)
            assert record.window is not None and record.decision is not None
            assert 1 <= len(iterations) <= 8
            if record.decision["accepted"]:
                assert record.decision["iteration"] == len(iterations)
            else:
                assert record.decision["fallback"] and len(iterations) == 8
            previous = store.generation_record(g - 1).diversity
            assert record.window == pytest.approx(SOFT.window(previous, g - 1, 3))  # Eq. 3 at N_gen = 3
            if record.decision["accepted"]:
                assert record.window[0] < record.diversity <= record.window[1]


# ---------------------------------------------------------------------- crash and resume
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill-training", "kill-breeding"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, log = kill_search_midway(tmp_path, mode)
    before = log.read_text().splitlines()
    with RunStore.open(run_dir, readonly=True) as store:
        finished_before = {ind.id for ind in store.individuals() if ind.status in ("ok", "cached")}
        if mode == "kill-training":
            assert any(ind.status == "running" for ind in store.individuals())
        else:
            # Generation 3 was being bred: nothing of it is stored.
            assert store.generations() == [1, 2]
            assert store.control_iterations(3) == []

    resumed_calls: list[str] = []

    def counting(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
        resumed_calls.append(json.dumps(chromosome, sort_keys=True))
        return stub_evaluate(chromosome, config, progress)

    # Resume through the command line, as a user would; training is the counting stub.
    import pyevonas.training.loop
    from pyevonas.cli import app
    from pyevonas.cli._common import run_guarded

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", counting)
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--quiet"]) == 0
    reference = evolve(run_config(tmp_path / "reference"), evaluate_fn=stub_evaluate)
    assert stored_chromosomes(run_dir) == stored_chromosomes(reference.run_dir)

    # No finished evaluation was repeated, none was lost.
    assert not set(resumed_calls) & set(before)
    with RunStore.open(run_dir, readonly=True) as store:
        individuals = store.individuals()
        assert all(ind.status in ("ok", "cached") for ind in individuals)
        assert finished_before <= {ind.id for ind in individuals}
        evaluated = [json.dumps(ind.chromosome, sort_keys=True) for ind in individuals if ind.status == "ok"]
        assert sorted(evaluated) == sorted(before + resumed_calls)
        assert store.get_state("finished") is not None


def test_resume_of_a_finished_run_evaluates_nothing(tmp_path: Path) -> None:
    first = evolve(run_config(tmp_path / "run", generations=2), evaluate_fn=stub_evaluate)
    calls: list[int] = []

    def never(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        raise AssertionError("a finished run must not train again")

    again = resume(first.run_dir, evaluate_fn=never)
    assert calls == []
    assert again.best is not None and first.best is not None and again.best.id == first.best.id


def test_resume_refuses_changed_search_settings(tmp_path: Path) -> None:
    result = evolve(run_config(tmp_path / "run", generations=1), evaluate_fn=stub_evaluate)
    with pytest.raises(ConfigError, match="population"):
        resume(result.run_dir, evaluate_fn=stub_evaluate, execution={"population": 9})
    # How the candidates are evaluated may change: the same run carries on.
    again = resume(result.run_dir, evaluate_fn=stub_evaluate, execution={"workers": 2})
    assert again.n_generations == 1
    assert again.best is not None and result.best is not None and again.best.id == result.best.id


# ---------------------------------------------------------------------- bad run folders
def test_corrupt_run_folder_gives_a_clear_error_and_is_not_touched(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    db = folder / "run.sqlite"
    db.write_bytes(b"this is not a database at all" * 10)
    before = db.read_bytes()
    with pytest.raises(RunStoreError, match="run.sqlite"):
        resume(folder, evaluate_fn=stub_evaluate)
    assert db.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["run.sqlite"]


def test_foreign_sqlite_file_is_refused_and_not_touched(tmp_path: Path) -> None:
    folder = tmp_path / "foreign"
    folder.mkdir()
    db = folder / "run.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(RunStoreError, match="not a pyevonas run|another application"):
        resume(folder, evaluate_fn=stub_evaluate)
    assert db.read_bytes() == before


def test_a_new_run_never_overwrites_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(RunStoreError, match="not empty"):
        evolve(run_config(folder), evaluate_fn=stub_evaluate)
    assert [p.name for p in folder.iterdir()] == ["thesis.txt"]
    first = evolve(run_config(tmp_path / "run", generations=1), evaluate_fn=stub_evaluate)
    with pytest.raises(RunStoreError, match="already holds a pyevonas run"):
        evolve(run_config(first.run_dir, generations=1), evaluate_fn=stub_evaluate)


def test_missing_run_folder(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        resume(tmp_path / "nowhere", evaluate_fn=stub_evaluate)


# ---------------------------------------------------------------------- failures and the cache
def test_failing_candidates_do_not_stop_the_search(tmp_path: Path) -> None:
    def flaky(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> Any:
        f = stub_fitness(chromosome)
        if f < 0.3:
            raise RuntimeError("CUDA out of memory (pretend)")
        if f < 0.4:
            return {
                "status": "ok",
                "fitness": float("nan"),
            }  # a broken result is a failure too
        return stub_evaluate(chromosome, config, progress)

    result = evolve(run_config(tmp_path / "run", generations=3, population=8), evaluate_fn=flaky)
    with RunStore.open(result.run_dir, readonly=True) as store:
        individuals = store.individuals()
        failed = [ind for ind in individuals if ind.status == "failed"]
        assert failed, "the stub should have failed some candidates"
        assert all(ind.error for ind in failed)
        assert any("out of memory" in (ind.error or "") for ind in failed)
        ids = {ind.id: ind for ind in individuals}
        for ind in individuals:
            for parent in ind.parents or []:
                assert ids[parent].status in ("ok", "cached")
        assert store.generations() == [1, 2, 3]


def test_a_generation_where_everything_fails_stops_with_the_error_and_can_be_resumed(
    tmp_path: Path,
) -> None:
    def broken(chromosome: Any, config: Any, progress: Any = None) -> Any:
        raise FileNotFoundError("dataset missing")

    with pytest.raises(TrainingError, match="every candidate of generation 1 failed.*dataset missing"):
        evolve(run_config(tmp_path / "run", generations=2), evaluate_fn=broken)
    result = resume(tmp_path / "run", evaluate_fn=stub_evaluate)
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert all(ind.status in ("ok", "cached") for ind in store.individuals())


def test_elites_are_carried_over_and_not_trained_again(tmp_path: Path) -> None:
    calls: list[str] = []

    def counting(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> Any:
        calls.append(json.dumps(chromosome, sort_keys=True))
        return stub_evaluate(chromosome, config, progress)

    result = evolve(run_config(tmp_path / "run", elitism=2, control="naive"), evaluate_fn=counting)
    assert len(calls) == len(set(calls)), "an architecture was trained twice"
    with RunStore.open(result.run_dir, readonly=True) as store:
        for g in (2, 3):
            previous = sorted(
                (ind for ind in store.individuals(g - 1) if ind.fitness is not None),
                key=lambda ind: -ind.fitness,  # type: ignore[operator]
            )
            elites = store.individuals(g)[:2]
            assert [e.chromosome for e in elites] == [p.chromosome for p in previous[:2]]
            assert all(e.status == "cached" and e.cached_from is not None for e in elites)
        best_per_gen = [max(ind.fitness for ind in store.individuals(g) if ind.fitness is not None) for g in (1, 2, 3)]
        assert best_per_gen == sorted(best_per_gen)  # with elitism the best never gets worse


# ---------------------------------------------------------------------- events
def test_observers_see_the_run_and_a_broken_one_is_dropped(tmp_path: Path) -> None:
    events: list[Any] = []

    def broken(event: Any) -> None:
        raise RuntimeError("display crashed")

    result = evolve(
        run_config(tmp_path / "run"),
        evaluate_fn=stub_evaluate,
        observers=[broken, events.append],
    )
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert kinds.count(GenerationStarted) == 3 == kinds.count(GenerationEvaluated)
    assert kinds.count(GenerationBred) == 2
    assert ControlStep in kinds
    updates = [e for e in events if isinstance(e, CandidateUpdate)]
    assert {e.candidate.status for e in updates} >= {"running", "ok"}
    assert events[-1].best.id == result.best.id  # type: ignore[union-attr]


def test_a_backend_of_ones_own_subclasses_the_one_evaluator_contract(tmp_path: Path) -> None:
    """``evaluator=`` takes an :class:`Evaluator` that writes only ``evaluate``; the loop does not
    close a backend it was given, and gets the same run as with ``evaluate_fn``."""
    from pyevonas.search.executors import EvalJob, Evaluator

    class Mine(Evaluator):
        closed = False

        def evaluate(self, jobs: Any, on_progress: Any = None) -> Any:
            for job in jobs:
                assert isinstance(job, EvalJob)
                yield job.id, stub_evaluate(job.chromosome, job.config)

        def close(self) -> None:
            self.closed = True

    mine = Mine()
    evolve(run_config(tmp_path / "mine"), evaluator=mine)
    assert not mine.closed
    evolve(run_config(tmp_path / "fn"), evaluate_fn=stub_evaluate)
    assert stored_chromosomes(tmp_path / "mine") == stored_chromosomes(tmp_path / "fn")


# ---------------------------------------------------------------------- control and diversity settings
@pytest.mark.parametrize("how", ["offdiag", "upper", "full"])
def test_custom_control_from_config_and_the_diversity_measure(tmp_path: Path, how: str) -> None:
    import pyevonas

    config = run_config(
        tmp_path / "run",
        control="custom",
        control_upper="0.2 if gen < n_gen / 2 else 0.1",
        control_lower="-0.05",
        diversity=how,
    )
    evolve(config, evaluate_fn=stub_evaluate)
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        for g in (1, 2, 3):
            record = store.generation_record(g)
            assert record.matrix is not None
            assert record.diversity == pytest.approx(pyevonas.diversity(record.matrix, how=how))
        for g in (2, 3):
            previous = store.generation_record(g - 1).diversity
            upper = 0.2 if g - 1 < 1.5 else 0.1
            assert store.generation_record(g).window == pytest.approx((previous - 0.05, previous + upper))


def test_python_control_functions_are_used_and_needed_to_resume(tmp_path: Path) -> None:
    from pyevonas.search.control import custom_control

    seen: list[tuple[int, int]] = []

    def upper(gen: int, n_gen: int) -> float:
        seen.append((gen, n_gen))
        return 1.0

    control = custom_control(upper, lambda gen: -1.0, name="anything goes")
    result = evolve(run_config(tmp_path / "run"), evaluate_fn=stub_evaluate, control=control)
    assert seen == [(1, 3), (2, 3)]
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert store.config["control"] == "python"
        assert store.meta["control"] == "python:anything goes"
        assert all(len(store.control_iterations(g)) == 1 for g in (2, 3))  # the window takes anything
    with pytest.raises(ConfigError, match="Python control function"):
        resume(result.run_dir, evaluate_fn=stub_evaluate)
    resume(result.run_dir, evaluate_fn=stub_evaluate, control=control)


def dying_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """A stub whose worker process dies on some architectures (as an OOM kill would)."""
    if stub_fitness(chromosome) < 0.25:
        os._exit(3)
    return stub_evaluate(chromosome, config, progress)


@pytest.mark.slow
def test_a_dying_pool_worker_fails_its_candidate_and_the_search_goes_on(
    tmp_path: Path,
) -> None:
    config = run_config(
        tmp_path / "run",
        generations=2,
        population=6,
        executor="pool",
        workers=2,
        device="cpu",
    )
    events: list[Any] = []
    result = evolve(config, evaluate_fn=dying_evaluate, observers=[events.append])
    with RunStore.open(result.run_dir, readonly=True) as store:
        individuals = store.individuals()
        assert store.generations() == [1, 2]
        dead = [ind for ind in individuals if stub_fitness(ind.chromosome) < 0.25]
        assert dead, "the seed should give at least one candidate whose worker dies"
        assert all(ind.status == "failed" and ind.error for ind in dead)
        alive = [ind for ind in individuals if ind.status in ("ok", "cached")]
        assert all(ind.fitness == pytest.approx(stub_fitness(ind.chromosome)) for ind in alive)
    assert any(isinstance(e, CandidateUpdate) and e.candidate.status == "running" for e in events)


@pytest.mark.slow
def test_the_pool_gives_the_same_run_as_in_process(tmp_path: Path) -> None:
    """Results arrive in completion order from the pool; the chromosomes must not depend on it."""
    pooled = evolve(
        run_config(tmp_path / "pool", executor="pool", workers=3, device="cpu"),
        evaluate_fn=stub_evaluate,
    )
    serial = evolve(run_config(tmp_path / "serial"), evaluate_fn=stub_evaluate)
    assert stored_chromosomes(pooled.run_dir) == stored_chromosomes(serial.run_dir)


@pytest.mark.parametrize(
    ("device", "found", "expected"),
    [
        ("cuda", ["cuda:0", "cuda:1"], {"cuda:0", "cuda:1"}),  # every GPU, not all on cuda:0
        ("auto", ["cuda:0", "cuda:1"], {"cuda:0", "cuda:1"}),
        ("auto", ["cpu"], {"cpu"}),
        ("cuda:1", ["cuda:0", "cuda:1"], {"cuda:1"}),
        ("cpu", ["cuda:0"], {None}),  # each job's own config.device: cpu
    ],
)
def test_pool_workers_go_to_the_devices_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, device: str, found: list[str], expected: set[str | None]
) -> None:
    import pyevonas.search.loop
    from pyevonas.search.loop import _evaluator

    monkeypatch.setattr(pyevonas.search.loop, "detect_devices", lambda: found)
    config = run_config(tmp_path / "run", executor="pool", workers=2, device=device)
    backend, owned = _evaluator(config, None, None)
    try:
        assert owned
        workers = backend._workers  # type: ignore[attr-defined]
        assert {w.device for w in workers} == expected
        assert len(workers) == 2 * len(expected)  # `workers` per device
    finally:
        backend.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- best.json and elapsed time
def _store_best(run_dir: Path) -> Any:
    with RunStore.open(run_dir, readonly=True) as store:
        trained = [i for i in store.individuals() if i.status == "ok"]
        return max(trained, key=lambda i: (i.fitness, -i.id))


def test_best_json_is_written_as_soon_as_a_new_best_is_found(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    best: list[Any] = []  # the best so far, as the events tell it

    def watch(event: Any) -> None:
        if isinstance(event, CandidateUpdate) and event.candidate.trained:
            c = event.candidate
            if not best or (c.fitness, -c.id) > (best[-1].fitness, -best[-1].id):
                best.append(c)
            saved = json.loads((run_dir / "best.json").read_text())
            assert (saved["name"], saved["fitness"]) == (best[-1].name, best[-1].fitness)

    evolve(run_config(run_dir), evaluate_fn=stub_evaluate, observers=[watch])
    assert len(best) > 1  # it changed during the run, and the file followed
    saved = json.loads((run_dir / "best.json").read_text())
    top = _store_best(run_dir)
    assert saved["name"] == top.name and saved["chromosome"] == top.chromosome
    assert saved["generation"] == top.generation and saved["train_seed"] >= 0
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".best.json")]  # no temp file left


def test_best_json_and_the_elapsed_time_are_right_after_resume(tmp_path: Path) -> None:
    calls: list[int] = []

    def stops(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return stub_evaluate(chromosome, config, progress)

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(run_config(run_dir), evaluate_fn=stops)
    with RunStore.open(run_dir, readonly=True) as store:
        elapsed = store.get_state("elapsed_s")
    assert elapsed is not None and elapsed > 0  # saved when the run stopped
    (run_dir / "best.json").write_text("{}")  # as if the process died between the store and the file
    started: list[RunStarted] = []
    resume(
        run_dir,
        evaluate_fn=stub_evaluate,
        observers=[lambda e: started.append(e) if isinstance(e, RunStarted) else None],
    )
    assert started[0].resumed and started[0].elapsed_before == elapsed
    assert (started[0].generations_stored, started[0].finished, started[0].to_evaluate) == (2, 8, 4)
    saved = json.loads((run_dir / "best.json").read_text())
    assert saved["name"] == _store_best(run_dir).name
    with RunStore.open(run_dir, readonly=True) as store:
        assert store.get_state("elapsed_s") > elapsed
