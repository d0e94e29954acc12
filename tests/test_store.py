"""Tests of the run store: round trips, refusal of foreign folders, WAL readers, crash safety."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyevonas
from pyevonas.errors import RunStoreError
from pyevonas.runs.records import GenerationRecord, Status, canonical_key, is_trained, outcome
from pyevonas.runs.store import APPLICATION_ID, DB_NAME, SCHEMA_VERSION, RunStore

REPO_ROOT = Path(pyevonas.__file__).resolve().parent.parent

CHROM = [
    {"layer": "Rescaling", "f_name": "Rescaling", "scale": 1 / 255},
    {"layer": "C_2D", "f_name": "Conv2D", "filters": 32, "kernel_size": 3, "strides": 1,
     "padding": "same"},
    {"layer": "BN_2D", "f_name": "BatchNormalization"},
    {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D"},
    {"layer": "D", "f_name": "Dense", "units": 10, "activation": "softmax"},
]  # fmt: skip

METRICS = {
    "status": "ok",
    "error": None,
    "fitness": 0.875,
    "val_accuracy": 0.875,
    "test_accuracy": 0.86,
    "val_accuracy_per_epoch": [0.5, 0.75, 0.875],
    "params": 12345,
    "size_mb": 0.047,
    "latency_ms": 1.25,
    "flops": 987654,
    "train_seconds": 3.5,
    "peak_memory_mb": 12.0,
}


def _new_store(tmp_path: Path, name: str = "run") -> RunStore:
    return RunStore.create(
        tmp_path / name,
        config={"generations": 3, "population": 4, "train": {"epochs": 2}},
        scoring={"name": "default", "gap": -1.0},
        space={"name": "paper", "max_feature_layers": 10},
        meta={"source": "pyevonas", "dataset": "digits", "control": "soft", "seed": 7},
    )


def _snapshot(folder: Path) -> dict[str, str]:
    """Names and content hashes of every file in a folder."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- round trips


def test_create_then_open_round_trips_the_run_description(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    store.close()
    with RunStore.open(tmp_path / "run") as again:
        assert again.config == {"generations": 3, "population": 4, "train": {"epochs": 2}}
        assert again.scoring == {"name": "default", "gap": -1.0}
        assert again.space == {"name": "paper", "max_feature_layers": 10}
        assert again.meta["control"] == "soft" and again.meta["seed"] == 7
        assert again.generations() == []


def test_database_header_identifies_a_pyevonas_run(tmp_path: Path) -> None:
    _new_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert RunStore.is_run(tmp_path / "run")
    assert not RunStore.is_run(tmp_path)


def test_individuals_round_trip_in_population_order(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    ids = {}
    for index in (2, 0, 1):
        chrom = [*CHROM[:-1], {**CHROM[-1], "units": 10 + index}]
        ids[index] = store.add_individual(1, index, f"g1-{index}", chrom, "CBGF")
    child = store.add_individual(2, 0, "g2-0", CHROM, "CBGF", parents=[ids[0], ids[2]])
    store.set_status(ids[1], "running")
    store.set_result(ids[1], METRICS)
    store.close()

    store = RunStore.open(tmp_path / "run")
    first = store.individuals(1)
    assert [ind.index for ind in first] == [0, 1, 2]
    assert [ind.name for ind in first] == ["g1-0", "g1-1", "g1-2"]
    assert first[2].chromosome[-1]["units"] == 12
    assert first[0].status == "pending" and first[0].fitness is None
    done = store.individual(ids[1])
    assert done.status == "ok"
    assert done.fitness == 0.875 and done.val_accuracy == 0.875 and done.test_accuracy == 0.86
    assert done.val_accuracy_per_epoch == [0.5, 0.75, 0.875]
    assert (done.params, done.flops) == (12345, 987654)
    assert (done.size_mb, done.latency_ms, done.train_seconds) == (0.047, 1.25, 3.5)
    assert done.metrics is not None and done.metrics["peak_memory_mb"] == 12.0
    assert done.started_at is not None and done.finished_at is not None
    assert done.started_at <= done.finished_at
    assert store.individual(child).parents == [ids[0], ids[2]]
    assert store.individual(child).chromosome == CHROM
    assert [ind.generation for ind in store.individuals()] == [1, 1, 1, 2]
    assert store.generations() == [1, 2]


def test_failed_result_keeps_its_error_and_nan_becomes_none(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    i = store.add_individual(1, 0, "a", CHROM, "CBGF")
    store.set_result(i, {"status": "failed", "error": "CUDA out of memory", "fitness": float("nan")})
    ind = store.individual(i)
    assert ind.status == "failed" and ind.error == "CUDA out of memory" and ind.fitness is None
    store.set_status(i, "pending")
    assert store.individual(i).error == "CUDA out of memory"  # kept until a new result


def test_bad_writes_are_refused(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    i = store.add_individual(1, 0, "a", CHROM, "CBGF")
    with pytest.raises(RunStoreError, match="UNIQUE"):
        store.add_individual(1, 0, "b", CHROM, "CBGF")
    with pytest.raises(ValueError, match="unknown status 'done'"):
        store.set_status(i, "done")
    with pytest.raises(RunStoreError, match="no individual with id 99"):
        store.set_status(99, "running")
    with pytest.raises(RunStoreError, match="no individual with id 99"):
        store.set_result(99, METRICS)
    with pytest.raises(ValueError, match="generation must be >= 1"):
        store.add_individual(0, 1, "c", CHROM, "CBGF")
    with pytest.raises(RunStoreError, match="not JSON-serialisable"):
        store.set_state("x", object())


def test_generation_record_round_trips_matrix_bits_and_partial_updates(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    matrix = rng.random((5, 5))
    cross = rng.random((3, 4))
    store = _new_store(tmp_path)
    store.add_individual(1, 0, "a", CHROM, "CBGF")
    rng_state = np.random.default_rng(11).bit_generator.state
    store.save_generation(1, matrix=matrix, diversity=0.42, rng_state=rng_state)
    store.save_generation(1, window=(0.3, 0.5), decision={"action": "accept", "iterations": 4})
    store.save_generation(2, matrix=cross)
    store.close()

    store = RunStore.open(tmp_path / "run")
    rec = store.generation_record(1)
    assert isinstance(rec, GenerationRecord)
    assert rec.matrix is not None and rec.matrix.dtype == np.float64
    assert np.array_equal(rec.matrix, matrix)  # bit for bit
    assert rec.diversity == 0.42 and rec.window == (0.3, 0.5)
    assert rec.decision == {"action": "accept", "iterations": 4}
    assert rec.rng_state is not None
    restored = np.random.default_rng()
    restored.bit_generator.state = rec.rng_state
    assert restored.random() == np.random.default_rng(11).random()
    second = store.generation_record(2)
    assert second.matrix is not None and second.matrix.shape == (3, 4)
    assert np.array_equal(second.matrix, cross)
    assert second.diversity is None and second.window is None and second.decision is None
    with pytest.raises(RunStoreError, match="no generation 3"):
        store.generation_record(3)


def test_generation_with_individuals_but_no_record_has_empty_record(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    store.add_individual(4, 0, "a", CHROM, "CBGF")
    assert store.generation_record(4) == GenerationRecord(generation=4)


def test_control_iterations_are_ordered_and_replayed_iterations_replace(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    store.add_control_iteration(2, 1, 0.61, 0.3, 0.5, False, 0.2)
    store.add_control_iteration(2, 0, 0.70, 0.3, 0.5, False, 0.2, extras={"closest": 0.61})
    store.add_control_iteration(2, 1, 0.45, 0.3, 0.5, True, 0.2)
    its = store.control_iterations(2)
    assert [it["iteration"] for it in its] == [0, 1]
    assert its[0] == {
        "iteration": 0, "median": 0.70, "lo": 0.3, "hi": 0.5, "accepted": False,
        "mutation_rate": 0.2, "extras": {"closest": 0.61},
    }  # fmt: skip
    assert its[1]["accepted"] is True and its[1]["median"] == 0.45
    assert store.control_iterations(1) == []


def test_state_values_round_trip(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    assert store.get_state("phase") is None
    assert store.get_state("phase", {"g": 0}) == {"g": 0}
    store.set_state("phase", {"generation": 3, "step": "training"})
    store.set_state("big", 2**100 + 1)  # PCG64 states hold 128-bit integers
    store.set_state("phase", {"generation": 3, "step": "bred"})
    store.close()
    store = RunStore.open(tmp_path / "run")
    assert store.get_state("phase") == {"generation": 3, "step": "bred"}
    assert store.get_state("big") == 2**100 + 1
    assert store.state() == {"phase": {"generation": 3, "step": "bred"}, "big": 2**100 + 1}
    store.delete_state("big")
    assert store.get_state("big") is None


def test_delete_generation_removes_everything_of_that_generation(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    store.add_individual(1, 0, "a", CHROM, "CBGF")
    store.add_individual(2, 0, "b", CHROM, "CBGF")
    store.save_generation(2, diversity=0.5)
    store.add_control_iteration(2, 0, 0.5, 0.1, 0.9, True, 0.2)
    store.delete_generation(2)
    assert store.generations() == [1]
    assert store.control_iterations(2) == []
    assert len(store.individuals()) == 1


_values = st.one_of(
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
_genes = st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6).map(lambda gene: {"layer": "X", **gene})


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    chromosome=st.lists(_genes, min_size=1, max_size=8),
    per_epoch=st.lists(st.floats(0, 1), max_size=12),
    fitness=st.floats(allow_nan=False, allow_infinity=False),
)
def test_any_json_chromosome_and_metrics_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    chromosome: list[dict],
    per_epoch: list[float],
    fitness: float,
) -> None:
    store = _new_store(tmp_path_factory.mktemp("prop"))
    try:
        i = store.add_individual(1, 0, "a", chromosome, "X" * len(chromosome), parents=["p", 3])
        store.set_result(i, {"status": "ok", "fitness": fitness, "val_accuracy_per_epoch": per_epoch})
        ind = store.individual(i)
        assert ind.chromosome == chromosome
        assert ind.parents == ["p", 3]
        assert ind.fitness == fitness and ind.val_accuracy_per_epoch == per_epoch
        assert store.find_evaluated(canonical_key(chromosome)) == ind
        shuffled = [dict(reversed(list(gene.items()))) for gene in chromosome]
        assert canonical_key(shuffled) == ind.canonical_key
    finally:
        store.close()


# ---------------------------------------------------------------- cache


def test_canonical_key_ignores_f_name_and_int_float_spelling_but_not_padding() -> None:
    same = [{**gene} for gene in CHROM]
    for gene in same:
        gene.pop("f_name")
    same[1]["filters"] = 32.0
    assert canonical_key(same) == canonical_key(CHROM)
    other = [{**gene} for gene in CHROM]
    other[1]["padding"] = "valid"
    assert canonical_key(other) != canonical_key(CHROM)
    assert canonical_key(CHROM[:-1]) != canonical_key(CHROM)


def test_find_evaluated_returns_first_evaluated_and_skips_failures(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    key = canonical_key(CHROM)
    assert store.find_evaluated(key) is None
    failed = store.add_individual(1, 0, "a", CHROM, "CBGF")
    store.set_result(failed, {"status": "failed", "error": "worker died"})
    assert store.find_evaluated(key) is None
    pending = store.add_individual(1, 1, "b", CHROM, "CBGF")
    assert store.find_evaluated(key) is None
    store.set_result(pending, METRICS)
    later = store.add_individual(2, 0, "c", CHROM, "CBGF")
    store.set_result(later, store.individual(pending).metrics or {}, status="cached",
                     cached_from=pending)  # fmt: skip
    hit = store.find_evaluated(key)
    assert hit is not None and hit.id == pending and hit.fitness == 0.875
    cached = store.individual(later)
    assert cached.status == "cached" and cached.cached_from == pending and cached.fitness == 0.875
    oversized = store.add_individual(2, 1, "d", CHROM[:-1], "CBG")
    store.set_result(oversized, {"status": "oversized", "params": 10**9})
    hit = store.find_evaluated(canonical_key(CHROM[:-1]))
    assert hit is not None and hit.status == "oversized"


def test_statuses_are_the_status_enum_with_the_stored_strings(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    i = store.add_individual(1, 0, "a", CHROM, "CBGF")
    assert store.individual(i).status is Status.PENDING
    store.set_status(i, Status.RUNNING)
    ind = store.individual(i)
    assert ind.status is Status.RUNNING and ind.started_at is not None
    store.set_result(i, METRICS)
    assert store.individual(i).status is Status.OK
    raw = sqlite3.connect(tmp_path / "run" / DB_NAME).execute("SELECT status FROM individuals").fetchall()
    assert raw == [("ok",)]  # the enum's value is what the database holds
    assert json.loads(json.dumps(store.export()))["individuals"][0]["status"] == "ok"


def test_is_trained_is_the_one_rule_and_the_export_says_it(tmp_path: Path) -> None:
    """ok, or cached from an ok result, with a finite fitness; never a cached copy of an oversized one."""
    store = _new_store(tmp_path)
    oversized = {"status": "oversized", "fitness": 0.0, "error": "too big"}
    cases = [
        ("ok", METRICS, None, True, Status.OK),
        ("failed", {"status": "failed", "fitness": 0.0, "error": "boom"}, None, False, Status.FAILED),
        ("oversized", oversized, None, False, Status.OVERSIZED),
        ("cached ok", METRICS, Status.CACHED, True, Status.OK),
        ("cached oversized", oversized, Status.CACHED, False, Status.OVERSIZED),
        ("cached, no status", {"fitness": 0.5}, Status.CACHED, True, Status.OK),  # an old store
        ("ok without fitness", {"status": "ok"}, None, False, Status.OK),
    ]
    ids = []
    for k, (name, metrics, status, _, _) in enumerate(cases):
        ids.append(store.add_individual(1, k, name, CHROM, "CBGF"))
        store.set_result(ids[-1], metrics, status=status)
    ids.append(store.add_individual(1, len(cases), "pending", CHROM, "CBGF"))
    individuals = store.individuals(1)
    assert [is_trained(ind) for ind in individuals] == [c[3] for c in cases] + [False]
    assert [outcome(ind) for ind in individuals] == [c[4] for c in cases] + [Status.PENDING]
    assert [entry["trained"] for entry in store.export()["individuals"]] == [c[3] for c in cases] + [False]


def test_the_records_and_the_store_never_load_the_search() -> None:
    """The importer builds on the search's control functions; pyevonas.runs does not load it, so
    the store (which the search loop itself uses) stays below the search, cycle-free."""
    code = (
        "import sys, pyevonas.runs, pyevonas.report.analysis; "
        "assert not [m for m in sys.modules if m.startswith(('pyevonas.search', 'pyevonas.training'))]; "
        "import pyevonas.runs.importer"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- transactions


def test_transaction_is_all_or_nothing_and_nests(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    with pytest.raises(KeyError), store.transaction():
        store.add_individual(1, 0, "a", CHROM, "CBGF")
        with store.transaction():
            store.set_state("phase", "bred")
        raise KeyError("boom")
    assert store.individuals() == [] and store.get_state("phase") is None
    with store.transaction():
        store.add_individual(1, 0, "a", CHROM, "CBGF")
        store.set_state("phase", "bred")
    assert len(store.individuals()) == 1 and store.get_state("phase") == "bred"


def test_one_writer_at_a_time_and_readers_beside_it(tmp_path: Path) -> None:
    writer = _new_store(tmp_path)
    with pytest.raises(RunStoreError, match="open for writing by another process"):
        RunStore.open(tmp_path / "run")
    with RunStore.open(tmp_path / "run", readonly=True) as reader:
        writer.set_state("x", 1)
        assert reader.get_state("x") == 1
    writer.close()
    with RunStore.open(tmp_path / "run") as again:
        assert again.get_state("x") == 1


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    _new_store(tmp_path).close()
    with RunStore.open(tmp_path / "run", readonly=True) as store, pytest.raises(RunStoreError, match="read-only"):
        store.set_state("x", 1)


# ---------------------------------------------------------------- foreign and corrupt folders


def test_create_refuses_non_empty_folders_and_touches_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    before = _snapshot(folder)
    with pytest.raises(RunStoreError, match="not empty and is not a pyevonas run"):
        _new_store(tmp_path, "mine")
    assert _snapshot(folder) == before

    _new_store(tmp_path, "run").close()
    before = _snapshot(tmp_path / "run")
    with pytest.raises(RunStoreError, match="already holds a pyevonas run"):
        _new_store(tmp_path, "run")
    assert _snapshot(tmp_path / "run") == before

    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunStoreError, match="not a folder"):
        _new_store(tmp_path, "afile")


def test_create_fills_an_empty_folder_and_ignores_a_dead_create(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / ".run.sqlite.creating").write_bytes(b"half-written")
    _new_store(tmp_path, "empty").close()
    assert sorted(p.name for p in folder.iterdir()) == [DB_NAME]


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES ('cat.jpg')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("empty", "has no run.sqlite"),
        ("other_files", "has no run.sqlite"),
        ("random_bytes", "not a SQLite database"),
        ("short_file", "not a SQLite database"),
        ("foreign_sqlite", "another application"),
        ("newer_schema", "newer pyevonas"),
        ("a_file", "is not a folder"),
    ],
)
def test_open_refuses_bad_folders_without_modifying_them(tmp_path: Path, setup: str, message: str) -> None:
    folder = tmp_path / "target"
    if setup != "missing" and setup != "a_file":
        folder.mkdir()
    if setup == "a_file":
        folder.write_text("hello")
    elif setup == "other_files":
        (folder / "notes.txt").write_text("hello")
    elif setup == "random_bytes":
        (folder / DB_NAME).write_bytes(np.random.default_rng(0).bytes(8192))
    elif setup == "short_file":
        (folder / DB_NAME).write_bytes(b"SQLite format 3\x00")
    elif setup == "foreign_sqlite":
        _foreign_sqlite(folder / DB_NAME)
    elif setup == "newer_schema":
        _new_store(tmp_path, "target").close()
        conn = sqlite3.connect(folder / DB_NAME)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.close()
    before = _snapshot(folder) if folder.is_dir() else None
    with pytest.raises(RunStoreError, match=message):
        RunStore.open(folder)
    if before is not None:
        assert _snapshot(folder) == before
    assert folder.exists() == (setup != "missing")


def test_open_reports_a_damaged_database_body(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    for k in range(40):
        store.add_individual(1, k, f"i{k}", CHROM, "CBGF")
    store.close()
    path = tmp_path / "run" / DB_NAME
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    assert len(data) > 3 * page_size
    # Keep page 1 (header and schema) intact, overwrite the rest with noise.
    data[page_size:] = np.random.default_rng(1).bytes(len(data) - page_size)
    path.write_bytes(bytes(data))
    with pytest.raises(RunStoreError, match=r"corrupt|damaged"):
        RunStore.open(tmp_path / "run")


# ---------------------------------------------------------------- other processes

_WRITER = """
import sys, numpy as np
from pyevonas.runs.store import RunStore
store = RunStore.open(sys.argv[1])
chrom = [{"layer": "C_2D", "filters": 8, "kernel_size": 3, "strides": 1}]
rng = np.random.default_rng(0)
for k in range(int(sys.argv[2])):
    # One state change: a candidate, its result, a matrix and the loop's pointer, all or nothing.
    with store.transaction():
        i = store.add_individual(1 + k // 50, k % 50, f"i{k}", chrom + [{"layer": "D", "units": k}], "CD")
        store.set_result(i, {"status": "ok", "fitness": k / 1000, "val_accuracy_per_epoch": [0.1] * 20})
        store.save_generation(1 + k // 50, matrix=rng.random((25, 25)), diversity=k / 1000)
        store.set_state("written", k + 1)
    if k == 0:
        print("started", flush=True)
print("done", flush=True)
"""


def _start_writer(run_dir: Path, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(run_dir), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "started":
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"writer did not start: {err}")
    return proc


def _consistent_counts(run_dir: Path) -> tuple[int, int, int]:
    """Individuals, results and the loop's pointer, read in one snapshot."""
    conn = sqlite3.connect(f"{(run_dir / DB_NAME).as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT (SELECT COUNT(*) FROM individuals),"
            " (SELECT COUNT(*) FROM individuals WHERE finished_at IS NOT NULL),"
            " (SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM state WHERE key='written'), 0))"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1]), int(row[2])


@pytest.mark.slow
def test_reader_sees_committed_states_while_another_process_writes(tmp_path: Path) -> None:
    _new_store(tmp_path).close()
    run_dir = tmp_path / "run"
    proc = _start_writer(run_dir, 2000)
    seen = []
    try:
        with pytest.raises(RunStoreError, match="open for writing by another process"):
            RunStore.open(run_dir)
        while proc.poll() is None:
            with RunStore.open(run_dir, readonly=True) as reader:
                n = len(reader.individuals())
                assert reader.get_state("written", 0) >= n
            counts = _consistent_counts(run_dir)
            assert counts[0] == counts[1] == counts[2]
            seen.append(counts[0])
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert seen == sorted(seen)
    assert len(set(seen)) > 1  # the reader really overlapped with the writer
    assert _consistent_counts(run_dir) == (2000, 2000, 2000)


@pytest.mark.slow
def test_process_killed_mid_write_leaves_a_consistent_run(tmp_path: Path) -> None:
    _new_store(tmp_path).close()
    run_dir = tmp_path / "run"
    rng = np.random.default_rng(5)
    total = 0
    for _ in range(3):
        proc = _start_writer(run_dir, 100_000)
        time.sleep(float(rng.uniform(0.05, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        with RunStore.open(run_dir) as store:  # integrity-checked on open
            individuals = store.individuals()
            assert len(individuals) == store.get_state("written")
            assert all(ind.status == "ok" for ind in individuals)
            last = individuals[-1]
            rec = store.generation_record(last.generation)
            assert rec.matrix is not None and rec.matrix.shape == (25, 25)
            total = len(individuals)
            # The next writer restarts from k=0: clear the run so names stay unique.
            with store.transaction():
                for g in store.generations():
                    store.delete_generation(g)
                store.delete_state("written")
        assert total > 0
    conn = sqlite3.connect(run_dir / DB_NAME)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_export_is_strict_json(tmp_path: Path) -> None:
    store = _new_store(tmp_path)
    i = store.add_individual(1, 0, "a", CHROM, "CBGF", parents=None)
    store.set_result(i, {**METRICS, "latency_ms": float("inf")})
    store.save_generation(1, matrix=np.array([[1.0, float("nan")], [0.5, 1.0]]), diversity=0.5,
                          window=(0.2, 0.6), decision={"accepted": True})  # fmt: skip
    store.add_control_iteration(1, 0, 0.5, 0.2, 0.6, True, 0.2)
    data = store.export()
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["generations"][0]["similarity_matrix"] == [[1.0, None], [0.5, 1.0]]
    assert back["individuals"][0]["latency_ms"] is None
    assert back["individuals"][0]["extra_metrics"] == {"peak_memory_mb": 12.0}
    assert "similarity_matrix" not in store.export(include_matrices=False)["generations"][0]
