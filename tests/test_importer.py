"""Tests of pyevonas.runs.importer: the published .evonas runs and their JSON extracts become run stores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyevonas.errors import PyevonasError, RunStoreError
from pyevonas.runs.importer import RunImportError, control_window, import_run, read_run
from pyevonas.runs.store import RunStore

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"  # results_compressed_paper_cifar10_s1_div.evonas, 4 generations
EXTRACT = DATA / "paper_cifar10_s1_div_g2.json"  # the same run's JSON extract, 2 generations


def _doc() -> dict[str, Any]:
    return json.loads(EVONAS.read_text(encoding="utf-8"))


def _write(tmp_path: Path, doc: Any, name: str = "results_compressed_paper_cifar10_s1_div.evonas") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_evonas_import_keeps_population_order_results_and_matrices(tmp_path: Path) -> None:
    raw = _doc()
    run = import_run(EVONAS, tmp_path / "run")
    store = RunStore.open(tmp_path / "run", readonly=True)
    try:
        assert store.meta["dataset"] == "cifar10"
        assert store.meta["seed"] == 1
        assert store.meta["source"] == "evonas"
        # No control suffix in this file name: the params decide (exploration_generations 1 < 20).
        assert store.meta["control"] == "rigid" == run.control
        assert store.config["original_params"] == raw["total"]["params"]
        assert store.generations() == [1, 2, 3, 4]
        for g in (1, 2, 3, 4):
            gen = raw[f"Generation_{g}"]
            inds = store.individuals(g)
            assert [i.name for i in inds] == list(gen["sequences"])  # population order
            assert [i.index for i in inds] == list(range(25))
            for ind in inds:
                res = gen["individuals_results"][ind.name]
                assert ind.chromosome == gen["chromosomes"][ind.name]
                assert ind.sequence == gen["sequences"][ind.name]
                assert ind.status == "ok"
                assert ind.fitness == res["fitness"]
                assert ind.val_accuracy == res["val_acc"]
                assert ind.val_accuracy_per_epoch == gen["acc_epochs"][ind.name]
                assert ind.size_mb == pytest.approx(res["memory_footprint_h5"] / 1e6, rel=1e-15)
                assert ind.latency_ms == pytest.approx(res["inference_time"] * 1e3, rel=1e-15)
            frame = json.loads(gen["similarity"])
            names = list(gen["sequences"])
            expected = np.array([[frame[c][str(i)] for c in names] for i in range(25)])
            record = store.generation_record(g)
            assert np.array_equal(record.matrix, expected)  # exact: json.loads, no re-parsing
            assert record.diversity == float(np.median(expected))
    finally:
        store.close()


def test_parents_come_from_the_crossover_log_of_the_previous_generation(tmp_path: Path) -> None:
    import_run(EVONAS, tmp_path / "run")
    store = RunStore.open(tmp_path / "run", readonly=True)
    try:
        assert all(i.parents is None for i in store.individuals(1))
        for g in (2, 3, 4):
            previous = {i.name for i in store.individuals(g - 1)}
            cuts = store.generation_record(g).extras["crossover_cuts"]
            for ind in store.individuals(g):
                assert ind.parents is not None and len(ind.parents) == 2
                assert set(ind.parents) <= previous
                assert len(cuts[ind.name]) == 2
        # First record of the log became the DataFrame's column names; it must not be lost.
        first_child = "bronze_axolotl"
        first = next(i for i in store.individuals(2) if i.name == first_child)
        assert first.parents == ["rebel_falcon", "complex_pudu"]
        assert store.generation_record(2).extras["crossover_cuts"][first_child] == [4, 15]
    finally:
        store.close()


def test_rigid_window_is_derived_from_the_previous_full_matrix_median() -> None:
    run = read_run(EVONAS)
    g1, g2, g3 = run.generations[:3]
    assert g1.window is None
    last = float(np.median(g1.matrix))
    assert g2.window == pytest.approx((last, last + 0.0995))  # 0.1 - 1/2000
    assert g2.decision is not None and g2.decision["accepted"] == (last < g2.diversity <= last + 0.0995)
    last = float(np.median(g2.matrix))
    assert g3.window == pytest.approx((last, last + 0.1 - 4 / 2000))


@pytest.mark.parametrize(
    ("control", "g", "lo_margin", "hi_margin"),
    [
        ("rigid", 1, 0.0, 0.0995),
        ("rigid", 10, 0.0, 0.05),
        ("rigid", 19, 0.0, 0.05),
        ("soft", 1, 0.095, 0.025),
        ("soft", 10, 0.05, 0.025),
        ("soft", 15, 0.025, 0.0375),
        ("soft", 19, 0.005, 0.0475),
    ],
)
def test_control_window_matches_the_original_margins(control: str, g: int, lo_margin: float, hi_margin: float) -> None:
    lo, hi = control_window(control, g, 0.5)  # type: ignore[misc]
    assert lo == pytest.approx(0.5 - lo_margin)
    assert hi == pytest.approx(0.5 + hi_margin)
    assert control_window("naive", g, 0.5) is None


def test_json_extract_and_evonas_file_give_the_same_run() -> None:
    a, b = read_run(EVONAS), read_run(EXTRACT)
    assert b.name == "cifar10_s1_div" and b.control == "rigid" and b.dataset == "cifar10" and b.seed == 1
    assert len(b.generations) == 2
    for ga, gb in zip(a.generations, b.generations, strict=False):
        assert ga.individuals == gb.individuals
        assert np.array_equal(ga.matrix, gb.matrix)
        assert ga.window == gb.window


def test_json_extract_imports_into_a_store(tmp_path: Path) -> None:
    import_run(EXTRACT, tmp_path / "run")
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        assert store.meta["source"] == "paper_runs_json"
        assert [len(store.individuals(g)) for g in store.generations()] == [25, 25]
        assert store.individuals(2)[0].parents == ["rebel_falcon", "complex_pudu"]


@pytest.mark.parametrize(
    ("file_name", "control"),
    [
        ("results_compressed_paper_cifar10_s1.evonas", "naive"),  # the name wins over the params
        ("results_compressed_paper_cifar10_s1_div.evonas", "rigid"),
        ("results_compressed_paper_cifar10_s1_div_soft.evonas", "soft"),
    ],
)
def test_control_mode_comes_from_the_file_name(tmp_path: Path, file_name: str, control: str) -> None:
    path = tmp_path / file_name
    shutil.copyfile(EVONAS, path)
    run = read_run(path)
    assert run.control == control
    assert run.name == file_name.removeprefix("results_compressed_paper_").removesuffix(".evonas")
    assert (run.generations[1].window is None) == (control == "naive")


def test_both_control_param_means_soft(tmp_path: Path) -> None:
    doc = _doc()
    doc["total"]["params"]["both_control"] = True
    run = read_run(_write(tmp_path, doc, "some_run.evonas"))
    assert run.control == "soft"


def test_failed_and_oversized_individuals(tmp_path: Path) -> None:
    doc = _doc()
    gen = doc["Generation_2"]
    names = list(gen["sequences"])
    gen["individuals_results"][names[3]] = {"memory_footprint_h5": 40_000_001, "fitness": 0}
    gen["acc_epochs"][names[3]] = [0] * 12
    gen["individuals_results"][names[5]] = {"memory_footprint_h5": 1_234_567, "fitness": -10001.0}
    gen["individuals_results"][names[7]] = {"memory_footprint_h5": 1_000, "fitness": 0}  # untrained, not oversized
    import_run(_write(tmp_path, doc), tmp_path / "run")
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        inds = store.individuals(2)
        assert inds[3].status == "oversized" and inds[3].fitness is None
        assert "40000001" in (inds[3].error or "") and inds[3].size_mb == pytest.approx(40.000001)
        assert inds[3].val_accuracy_per_epoch == []
        assert inds[5].status == "failed" and inds[5].fitness is None and "-10001" in (inds[5].error or "")
        assert inds[7].status == "failed" and "no val_acc" in (inds[7].error or "")
        assert sum(i.status == "ok" for i in inds) == 22


def _drop(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


def _set(doc: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _first_name(doc: dict[str, Any], g: int = 2) -> str:
    return next(iter(doc[f"Generation_{g}"]["sequences"]))


MALFORMED = {
    "not an object": (lambda d: [d], "expected a JSON object"),
    "unknown layout": (lambda d: {"hello": 1}, "neither an .evonas export"),
    "no params": (lambda d: _drop(d, "total", "params"), "missing key 'params'"),
    "gap in generations": (lambda d: _drop(d, "Generation_2"), "without gaps"),
    "missing similarity": (lambda d: _drop(d, "Generation_3", "similarity"), "Generation_3: missing key 'similarity'"),
    "similarity not json": (
        lambda d: _set(d, "{oops", "Generation_2", "similarity"),
        "embedded DataFrame is not valid JSON",
    ),
    "similarity wrong order": (
        lambda d: _set(d, dict(reversed(list(d["Generation_2"]["sequences"].items()))), "Generation_2", "sequences"),
        "not the population order",
    ),
    "chromosome missing": (
        lambda d: _drop(d, "Generation_2", "chromosomes", _first_name(d)),
        "names differ from 'sequences'",
    ),
    "chromosome not a list": (
        lambda d: _set(d, "CDE", "Generation_2", "chromosomes", _first_name(d)),
        "expected a list",
    ),
    "gene without layer": (
        lambda d: _set(d, [{"filters": 3}], "Generation_2", "chromosomes", _first_name(d)),
        "string 'layer'",
    ),
    "fitness not a number": (
        lambda d: _set(d, "high", "Generation_2", "individuals_results", _first_name(d), "fitness"),
        "expected a finite number",
    ),
    "crossover garbage": (
        lambda d: _set(
            d, json.dumps({"a": {"0": 1}, "b": {"0": 2}, "c": {"0": 3}, "d": {"0": 4}}), "total", "crossover"
        ),
        "unreadable crossover record",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    mutate, message = MALFORMED[case]
    path = _write(tmp_path, mutate(_doc()))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RunImportError, match=message) as info:
        import_run(path, out / "run")
    assert str(path) in str(info.value)  # the message names the file
    assert isinstance(info.value, PyevonasError)
    assert _leftovers(out) == []


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "cut.evonas"
    path.write_bytes(EVONAS.read_bytes()[:5000])
    with pytest.raises(RunImportError, match=r"not valid JSON .* line 1 column"):
        import_run(path, tmp_path / "run")
    with pytest.raises(RunImportError, match="no such file"):
        import_run(tmp_path / "nope.evonas", tmp_path / "run")
    binary = tmp_path / "bin.evonas"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RunImportError, match="not UTF-8"):
        import_run(binary, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_refuses_a_non_empty_run_dir_and_leaves_it_alone(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(RunStoreError, match="not an empty folder"):
        import_run(EVONAS, target)
    assert _leftovers(target) == ["notes.txt"]
    assert _leftovers(tmp_path) == ["busy"]


def test_an_empty_existing_run_dir_is_used(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    import_run(EVONAS, target)
    assert RunStore.is_run(target)


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = RunStore.save_generation

    def broken(self: RunStore, generation: int, *args: Any, **kwargs: Any) -> None:
        if generation == 3:
            raise RunStoreError("disk full (simulated)")
        real(self, generation, *args, **kwargs)

    monkeypatch.setattr(RunStore, "save_generation", broken)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RunStoreError, match="simulated"):
        import_run(EVONAS, out / "run")
    assert _leftovers(out) == []


def test_stored_matrices_are_the_paper_schema_rounded_to_3_decimals() -> None:
    """The importer's population order is the matrix order: recomputing with `paper` gives the stored cells."""
    import pyevonas

    run = read_run(EVONAS)
    for gen in run.generations:
        m = pyevonas.similarity_matrix([i.chromosome for i in gen.individuals], schema="paper")
        rounded = np.vectorize(lambda x: round(float(x), 3))(m)
        assert np.array_equal(rounded, gen.matrix), gen.generation
