"""A search on one's own budget: warm start, near-duplicate reuse, successive halving, and kill + resume with each.

Training is a stub that honours ``stop_epoch`` and ``checkpoint`` the way the real training does:
it continues from the epochs its checkpoint says were trained and writes the new count, and its
fitness depends on the architecture and on the epochs trained, so halving's rungs can reorder
candidates. The real checkpoint continuation is tested on digits at the end.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PatchTraining, budget_stub, kill_child_at_marker, run_config, stored_chromosomes

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError, EncodingError, SearchSpaceError
from pyevonas.metric import format_arch, similarity
from pyevonas.runs.records import Status, is_trained
from pyevonas.runs.store import RunStore
from pyevonas.search import halving
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve
from pyevonas.search.operators import MAX_RESAMPLE_ATTEMPTS, breed
from pyevonas.search.space import SearchSpace

SPACE = SearchSpace.load("paper")


def _config(run_dir: Path, **changes: Any) -> RunConfig:
    """The shared stub run with eight candidates a generation, each trained for up to four epochs."""
    return run_config(run_dir, **{"population": 8, "epochs": 4, **changes})


def _results(run_dir: Path) -> list[tuple[Any, ...]]:
    with RunStore.open(run_dir, readonly=True) as store:
        return [
            (ind.generation, ind.index, str(ind.status), ind.fitness, (ind.metrics or {}).get("budget_epochs"))
            for ind in store.individuals()
        ]


# ---------------------------------------------------------------------- warm start


def test_warm_start_from_a_json_file_seeds_the_first_generation(tmp_path: Path) -> None:
    chromosome = SPACE.sample(np.random.default_rng(7))
    text = "C(32,3,1) B L M(2) g F(64)"
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps([text, chromosome]))
    result = evolve(_config(tmp_path / "run", init=str(seeds), generations=1), evaluate_fn=budget_stub)
    with RunStore.open(result.run_dir, readonly=True) as store:
        first = store.individuals(1)
        assert len(first) == 8
        assert first[1].chromosome == chromosome
        assert format_arch(first[0].chromosome) == text  # the notation, completed with the start gene
        assert first[0].chromosome[0]["layer"] == SPACE.start_layer
        decision = store.generation_record(1).decision
        assert decision == {"control": "initial", "sampled": 6, "seeded": 2, "init": str(seeds)}
        assert store.meta["init"]["chromosomes"][1] == chromosome
    plain = evolve(_config(tmp_path / "plain", generations=1), evaluate_fn=budget_stub)
    # The rest is sampled as usual: from the same seed, the first samples of a run without init.
    assert stored_chromosomes(result.run_dir)[1][2:] == stored_chromosomes(plain.run_dir)[1][:6]


def test_warm_start_from_a_run_folder_takes_its_best_distinct_individuals(tmp_path: Path) -> None:
    source = evolve(_config(tmp_path / "source", elitism=1), evaluate_fn=budget_stub)
    with RunStore.open(source.run_dir, readonly=True) as store:
        trained = sorted((ind for ind in store.individuals() if is_trained(ind)), key=lambda i: (-i.fitness, i.id))
    best: list[Any] = []
    for ind in trained:
        if ind.chromosome not in [b.chromosome for b in best]:
            best.append(ind)
    result = evolve(_config(tmp_path / "warm", init=str(source.run_dir), generations=1), evaluate_fn=budget_stub)
    assert stored_chromosomes(result.run_dir)[1] == [b.chromosome for b in best[:8]]
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert store.meta["init"]["origins"][0] == f"{best[0].name} (fitness {best[0].fitness:.4f})"


def test_more_architectures_than_the_population_take_the_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    many = [SPACE.sample(rng) for _ in range(11)]
    result = evolve(
        _config(tmp_path / "run", generations=1), evaluate_fn=budget_stub, initial=[format_arch(c) for c in many]
    )
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert [ind.chromosome for ind in store.individuals(1)] == [SPACE.normalize(c) for c in many[:8]]
        assert store.meta["init"]["given"] == 11 and store.meta["init"]["source"] == "python"


def test_bad_warm_starts_name_the_first_bad_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = "C(32,3,1) B L g F(64)"
    cases: list[tuple[Any, type[Exception], str]] = [
        ([good, "C(32,3,1) g g F(64)"], SearchSpaceError, "entry 1 breaks a rule of the search space"),
        ([good, "C(32,3,1) Q"], EncodingError, "entry 1 cannot be read"),
        ([good, 5], ConfigError, "entry 1 is a int"),
        ([], ConfigError, "holds no architecture"),
        ({"a": 1}, ConfigError, "expected a JSON list"),
    ]
    for k, (data, error, message) in enumerate(cases):
        path = tmp_path / f"seeds{k}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(error, match=message):
            evolve(_config(tmp_path / f"run{k}", init=str(path)), evaluate_fn=budget_stub)
        assert not (tmp_path / f"run{k}").exists()
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="not a pyevonas run"):
        evolve(_config(tmp_path / "r", init=str(tmp_path / "folder")), evaluate_fn=budget_stub)
    with pytest.raises(ConfigError, match="no such file"):
        evolve(_config(tmp_path / "r", init=str(tmp_path / "none.json")), evaluate_fn=budget_stub)
    # The command line refuses it before anything starts, in one line.
    code = run_guarded(app, ["evolve", "--init", str(tmp_path / "seeds0.json"), "--run-dir", str(tmp_path / "c")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "entry 1 breaks a rule of the search space" in err and "global pooling" in err
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------- near duplicates


def test_near_duplicates_reuse_the_closest_result_and_train_less(tmp_path: Path) -> None:
    calls = {"exact": 0, "near": 0}

    def counting(key: str) -> Any:
        def fn(chromosome: Any, config: Any, progress: Any = None) -> Any:
            calls[key] += 1
            return budget_stub(chromosome, config, progress)

        return fn

    exact = evolve(_config(tmp_path / "exact", generations=5), evaluate_fn=counting("exact"))
    near = evolve(_config(tmp_path / "near", generations=5, reuse_similarity=0.85), evaluate_fn=counting("near"))
    default = evolve(_config(tmp_path / "default", generations=5, reuse_similarity=1.0), evaluate_fn=budget_stub)
    assert _results(default.run_dir) == _results(exact.run_dir)  # T = 1 is today's behaviour
    with RunStore.open(near.run_dir, readonly=True) as store:
        individuals = store.individuals()
        reused = [ind for ind in individuals if ind.status is Status.REUSED]
        assert len(reused) >= 2
        # Every candidate trained once at most; a reused one not at all.
        assert calls["near"] == sum(1 for ind in individuals if ind.status is Status.OK)
        assert calls["near"] + len(reused) + sum(1 for i in individuals if i.status is Status.CACHED) == 40
        for ind in reused:
            source = store.individual(ind.cached_from)
            assert source.generation < ind.generation and source.status is Status.OK
            assert ind.fitness == source.fitness and is_trained(ind)
            sim = ind.metrics["reused_similarity"]
            assert sim >= 0.85 and sim == pytest.approx(similarity(ind.chromosome, source.chromosome))
        exported = store.export(include_matrices=False)
        names = {ind.id: ind.name for ind in individuals}
    entry = next(e for e in exported["individuals"] if e["status"] == "reused")
    assert entry["trained"] is True and entry["cached_from"] is not None
    table = tmp_path / "near.csv"
    assert run_guarded(app, ["export", str(near.run_dir), "--csv", "-o", str(table)]) == 0
    with table.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["status"] == "reused"]
    assert len(rows) == len(reused)
    assert [row["copied_from"] for row in rows] == [names[ind.cached_from] for ind in reused]
    assert all(row["trained"] == "True" and row["budget_epochs"] == "4" for row in rows)


def test_resample_breeds_other_children_instead(tmp_path: Path) -> None:
    result = evolve(
        _config(tmp_path / "run", generations=4, reuse_similarity=0.9, near_duplicates="resample"),
        evaluate_fn=budget_stub,
    )
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert not [ind for ind in store.individuals() if ind.status is Status.REUSED]
        resampled = [store.generation_record(g).decision["resampled"] for g in (2, 3, 4)]
        assert sum(resampled) > 0
        for g in (2, 3, 4):
            earlier = [i.chromosome for i in store.individuals() if i.generation < g and i.status is Status.OK]
            kept_near = sum(
                1 for ind in store.individuals(g) if max(similarity(ind.chromosome, e) for e in earlier) >= 0.9
            )
            assert kept_near < 8  # most children are not near duplicates any more


def test_breed_refuses_up_to_the_retry_limit() -> None:
    rng = np.random.default_rng(0)
    parents = [SPACE.sample(rng) for _ in range(3)]
    seen: list[int] = []

    def never(chromosome: Any) -> bool:
        seen.append(1)
        return False

    children = breed(parents, 2, SPACE, rng, 0.2, accept=never)
    assert [c.resampled for c in children] == [MAX_RESAMPLE_ATTEMPTS] * 2
    assert len(seen) == 2 * MAX_RESAMPLE_ATTEMPTS
    a = breed(parents, 4, SPACE, np.random.default_rng(5), 0.2)
    b = breed(parents, 4, SPACE, np.random.default_rng(5), 0.2, accept=lambda c: True)
    assert a == b  # accepting everything draws exactly as before


# ---------------------------------------------------------------------- successive halving


def test_halving_trains_the_better_half_longer_and_never_restarts(tmp_path: Path) -> None:
    log: list[tuple[str, int, int]] = []

    def logging_stub(chromosome: Any, config: Any, progress: Any = None) -> Any:
        metrics = budget_stub(chromosome, config, progress)
        log.append((json.dumps(chromosome, sort_keys=True), config.stop_epoch, metrics["trained_epochs"]))
        return metrics

    result = evolve(_config(tmp_path / "run", budget="halving"), evaluate_fn=logging_stub)
    assert halving.rungs(4) == [1, 2, 4] and halving.rungs(12) == [3, 6, 12] and halving.rungs(1) == [1]
    with RunStore.open(result.run_dir, readonly=True) as store:
        first = store.individuals(1)
        budgets = sorted(ind.metrics["budget_epochs"] for ind in first)
        assert budgets == [1, 1, 1, 1, 2, 2, 4, 4]
        for ind in first:
            rungs = ind.metrics["rungs"]
            assert [r["epochs"] for r in rungs] == [1, 2, 4][: len(rungs)]
            assert rungs[-1]["fitness"] == ind.fitness
        # Who continued was decided at equal budget: the better half of each rung.
        at1 = sorted(first, key=lambda i: -i.metrics["rungs"][0]["fitness"])
        assert {i.id for i in at1[:4]} == {i.id for i in first if i.metrics["budget_epochs"] >= 2}
        assert store.get_state("halving:1:2") == [i.id for i in at1[:4]]
        # Parents rank by budget, then fitness: the two full-budget candidates come first.
        parents = store.generation_record(2).decision["parents"]
        full = sorted((i for i in first if i.metrics["budget_epochs"] == 4), key=lambda i: -i.fitness)
        assert parents[:2] == [i.id for i in full]
        best = result.best
        assert best is not None and best.metrics["budget_epochs"] == 4
    assert not (result.run_dir / "checkpoints").exists()
    # No continued candidate restarted: the epochs trained per architecture add up to its budget.
    trained: dict[str, int] = {}
    for arch, _stop, epochs in log:
        trained[arch] = trained.get(arch, 0) + epochs
    final = {json.dumps(ind.chromosome, sort_keys=True): ind.metrics["budget_epochs"] for ind in first}
    assert {a: trained[a] for a in final} == final
    # Half the epochs of the full budget in this generation: 8 x 1 + 4 x 1 + 2 x 2 = 16 of 32.
    assert sum(epochs for arch, _s, epochs in log if arch in final) == 16


def test_halving_continues_a_real_training_exactly(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from pyevonas.training.config import TrainConfig
    from pyevonas.training.loop import evaluate

    arch = "C(8,3,1) B L g F(16) O(0.3) F(16)"  # dropout: the global generator is restored too
    fast = {"latency_repeats": 1, "latency_warmup": 0, "flops": False, "device": "cpu", "num_workers": 1}
    full = evaluate(arch, TrainConfig(epochs=4, seed=5, max_train_images=200, **fast))
    checkpoint = tmp_path / "c.pt"
    for stop in (1, 2, 4):
        step = evaluate(
            arch,
            TrainConfig(epochs=4, seed=5, max_train_images=200, stop_epoch=stop, checkpoint=str(checkpoint), **fast),
        )
        assert step.epochs_run == stop
    assert step.val_accuracy_per_epoch == full.val_accuracy_per_epoch
    assert step.train_loss_per_epoch == full.train_loss_per_epoch
    assert step.test_accuracy == full.test_accuracy and step.fitness == full.fitness
    # A checkpoint of another training is not continued.
    other = evaluate(
        arch, TrainConfig(epochs=4, seed=6, max_train_images=200, stop_epoch=1, checkpoint=str(checkpoint), **fast)
    )
    assert other.epochs_run == 1


# ---------------------------------------------------------------------- kill and resume, for each
_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {tests!r})
    from helpers import budget_stub
    from test_budget import _config
    from pyevonas.search.loop import evolve
    from pathlib import Path

    mode, run_dir, marker, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    changes = json.loads(sys.argv[5])
    count = {{"n": 0}}

    def evaluate(chromosome, config, progress=None):
        count["n"] += 1
        if (mode == "halving" and config.stop_epoch == 2) or (mode != "halving" and count["n"] == 11):
            marker.write_text("training")
            time.sleep(60)
        metrics = budget_stub(chromosome, config, progress)
        with log.open("a") as fh:
            fh.write(json.dumps([chromosome, config.stop_epoch, metrics["trained_epochs"]], sort_keys=True) + "\\n")
        return metrics

    evolve(_config(run_dir, **changes), evaluate_fn=evaluate)
    """
)

_MODES = {
    "init": {"init": "SEEDS"},
    "reuse": {"reuse_similarity": 0.9},
    "halving": {"budget": "halving"},
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(_MODES))
def test_kill_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps(["C(32,3,1) B L M(2) g F(64)", "C(16,5,1) L M(2) g F(32)"]))
    changes = {k: (str(seeds) if v == "SEEDS" else v) for k, v in _MODES[mode].items()}
    run_dir, marker, log = tmp_path / "run", tmp_path / "marker", tmp_path / "evaluated.log"
    args = [mode, str(run_dir), str(marker), str(log), json.dumps(changes)]
    kill_child_at_marker(_CHILD, marker, *args, folder=tmp_path)
    before = [json.loads(line) for line in log.read_text().splitlines()]
    if mode == "halving":
        assert {stop for _c, stop, _e in before} == {1}  # killed in the second rung
        assert any((run_dir / "checkpoints").iterdir())
    if mode == "init":
        seeds.unlink()  # the warm start is in the run: resume never reads the file again

    resumed: list[list[Any]] = []

    def counting(chromosome: Any, config: Any, progress: Any = None) -> Any:
        metrics = budget_stub(chromosome, config, progress)
        resumed.append([chromosome, config.stop_epoch, metrics["trained_epochs"]])
        return metrics

    import pyevonas.training.loop

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", counting)
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--quiet"]) == 0
    reference_changes = dict(changes)
    if mode == "init":
        seeds.write_text(json.dumps(["C(32,3,1) B L M(2) g F(64)", "C(16,5,1) L M(2) g F(32)"]))
    reference = evolve(_config(tmp_path / "reference", **reference_changes), evaluate_fn=budget_stub)
    assert stored_chromosomes(run_dir) == stored_chromosomes(reference.run_dir)
    assert _results(run_dir) == _results(reference.run_dir)
    # Nothing finished was repeated, nothing was lost, no continued candidate restarted.
    done = [(json.dumps(c, sort_keys=True), stop) for c, stop, _e in before]
    again = [(json.dumps(c, sort_keys=True), stop) for c, stop, _e in resumed]
    assert not set(done) & set(again)
    trained: dict[str, int] = {}
    for c, _stop, epochs in before + resumed:
        key = json.dumps(c, sort_keys=True)
        trained[key] = trained.get(key, 0) + epochs
    with RunStore.open(run_dir, readonly=True) as store:
        own = [ind for ind in store.individuals() if ind.status is Status.OK]
        for ind in own:
            assert trained[json.dumps(ind.chromosome, sort_keys=True)] == ind.metrics["budget_epochs"]
        assert store.get_state("finished") is not None
    assert not (run_dir / "checkpoints").exists()


# ---------------------------------------------------------------------- the command line


@pytest.fixture
def stub_training(patch_training: PatchTraining) -> None:
    patch_training(budget_stub)


def test_the_flags_reach_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: None) -> None:
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps(["C(32,3,1) B L M(2) g F(64)"]))
    args = ["evolve", "--generations", "2", "--population", "4", "--run-dir", str(tmp_path / "run"), "--quiet"]
    flags = ["--init", str(seeds), "--reuse-similarity", "0.95", "--near-duplicates", "resample", "--budget", "halving"]
    assert run_guarded(app, [*args, *flags]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"init {seeds}" in out and "near duplicates ≥ 0.95: resample" in out and "budget halving" in out
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        config = RunConfig.from_dict(store.config)
        assert (config.init, config.reuse_similarity, config.near_duplicates, config.budget) == (
            str(seeds),
            0.95,
            "resample",
            "halving",
        )
        assert sorted(ind.metrics["budget_epochs"] for ind in store.individuals(1)) == [1, 1, 2, 4]
    code = run_guarded(app, ["evolve", "--resume", str(tmp_path / "run"), "--budget", "full"])
    assert code == 2 and "--budget cannot be given with it" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--budget", "lots"], "'budget'"),
        (["--reuse-similarity", "1.5"], "'reuse_similarity'"),
        (["--reuse-similarity", "0"], "'reuse_similarity'"),
        (["--near-duplicates", "maybe"], "'near_duplicates'"),
        (["--image-size", "8"], "image_size resizes the images of a folder: dataset"),
        (["--dataset", "npz:"], "give a path after 'npz:'"),
    ],
)
def test_bad_budget_flags_are_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: None, args: list[str], named: str
) -> None:
    code = run_guarded(app, ["evolve", *args, "--run-dir", str(tmp_path / "run"), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and named in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_copies_keep_the_outcome_they_copied() -> None:
    from types import SimpleNamespace

    from pyevonas.runs.records import outcome

    oversized = SimpleNamespace(status="reused", fitness=0.0, metrics={"status": "oversized"})
    assert outcome(oversized) is Status.OVERSIZED and not is_trained(oversized)
    ok = SimpleNamespace(status="reused", fitness=0.7, metrics={"status": "ok"})
    assert outcome(ok) is Status.OK and is_trained(ok)


def test_halving_in_the_process_pool_gives_the_in_process_run(tmp_path: Path) -> None:
    inprocess = evolve(_config(tmp_path / "a", budget="halving", generations=2), evaluate_fn=budget_stub)
    pool = evolve(
        _config(tmp_path / "b", budget="halving", generations=2, workers=2, executor="pool"), evaluate_fn=budget_stub
    )
    assert _results(pool.run_dir) == _results(inprocess.run_dir)


def test_train_from_run_retrains_a_halved_candidate_to_its_budget(tmp_path: Path) -> None:
    from pyevonas.cli.train_cmds import _from_run

    result = evolve(_config(tmp_path / "run", budget="halving", generations=1), evaluate_fn=budget_stub)
    with RunStore.open(result.run_dir, readonly=True) as store:
        stopped = next(ind for ind in store.individuals() if ind.metrics["budget_epochs"] == 1)
    _chrom, config, recorded = _from_run(result.run_dir, stopped.name, device=None, data_dir=None, download=False)
    assert (config.epochs, config.stop_epoch, recorded["name"]) == (4, 1, stopped.name)
    _chrom, config, recorded = _from_run(result.run_dir, None, device=None, data_dir=None, download=False)
    assert result.best is not None and recorded["name"] == result.best.name and config.stop_epoch is None


def test_a_halving_state_naming_strangers_is_damaged_on_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rung's saved promotions with the right type but ids of no entrant (a hand edit, another
    run's record) are one line naming the record on --resume, not a KeyError."""
    import sqlite3

    def stop_at_rung_two(chromosome: Any, config: Any, progress: Any = None) -> Any:
        if config.stop_epoch == 2:
            raise KeyboardInterrupt
        return budget_stub(chromosome, config, progress)

    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        evolve(_config(run_dir, budget="halving"), evaluate_fn=stop_at_rung_two)
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        (key,) = db.execute("SELECT key FROM state WHERE key LIKE 'halving:%'").fetchone()
        db.execute("UPDATE state SET value = '[9999]' WHERE key = ?", (key,))
    import pyevonas.training.loop

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", budget_stub)
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and repr(key) in err and "[9999]" in err and "Traceback" not in err
