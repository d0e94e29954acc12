"""The surrogate of training (pyevonas.surrogate): the shipped data, features, fit, predict,
curves, coverage, noise, sources, and model files (good and bad)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import kendalltau

from pyevonas.errors import EncodingError, PyevonasError
from pyevonas.metric import parse_arch
from pyevonas.runs.importer import import_run
from pyevonas.surrogate import Settings, Surrogate, load_evaluations, read_rows
from pyevonas.surrogate.features import FEATURE_NAMES, SEQUENCE_NAMES, features, sequence_features
from pyevonas.surrogate.model import MODEL_FORMAT
from pyevonas.training.sizes import arch_size

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"  # a published run, 4 generations
EXTRACT = DATA / "paper_cifar10_s1_div_g2.json"  # its JSON extract, 2 generations
QUICK = Settings(iterations=40, learning_rate=0.2)


@pytest.fixture(scope="module")
def held_out() -> Surrogate:
    """A quick CIFAR-10 surrogate fitted without seeds 9 and 10."""
    return Surrogate.fit(dataset="cifar10", exclude_seeds=(9, 10), settings=QUICK)


@pytest.fixture(scope="module")
def unseen() -> tuple[list[Any], np.ndarray]:
    """The trained CIFAR-10 rows of seeds 9 and 10: architectures and fitness."""
    ev = load_evaluations("cifar10")
    rows = ev.subset(ev.trained & (ev.seed >= 9))
    return rows.architectures(), rows.fitness


# ------------------------------------------------------------------------------------ the data
def test_the_shipped_table_holds_every_published_evaluation() -> None:
    ev = load_evaluations()
    assert len(ev) == 25_000
    counts = ev.provenance["counts"]
    assert counts["evaluations"] == 25_000 and counts["runs"] == 50
    assert sorted(set(ev.dataset.tolist())) == ["cifar10", "cifar100"]
    ok = ev.trained
    # fitness is the best epoch of every trained row; the untrained have none
    assert np.array_equal(ev.fitness[ok], np.nanmax(ev.val_accuracy_per_epoch[ok], axis=1))
    assert np.isnan(ev.fitness[~ok]).all()
    assert set(ev.generation.tolist()) == set(range(1, 21))
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_evaluations("mnist")


# ------------------------------------------------------------------------------------ features
def test_the_feature_walk_counts_the_parameters_of_the_built_model() -> None:
    """features' parameter count and training.sizes (what the built model has) agree."""
    ev = load_evaluations("cifar10")
    rows = ev.subset(ev.trained)
    archs = rows.architectures()[::97]
    x = features(archs, num_classes=10)
    column = FEATURE_NAMES.index("log_params")
    for arch, value in zip(archs, x[:, column], strict=True):
        assert value == pytest.approx(np.log10(arch_size(arch, (3, 32, 32), 10).params), abs=1e-12)


def test_order_features_follow_the_sequence() -> None:
    a, b = sequence_features(["C(32,3,1) B L M(2) g", "C(32,3,1) L B M(2) g"])
    assert a[SEQUENCE_NAMES.index("C_2D>BN_2D")] == 1 and b[SEQUENCE_NAMES.index("C_2D>BN_2D")] == 0
    assert a[SEQUENCE_NAMES.index("reducing_MP_2D")] == 1
    assert a[SEQUENCE_NAMES.index("first_R_2D")] == 3 and b[SEQUENCE_NAMES.index("first_R_2D")] == 2
    # the counts do not see the order
    assert np.array_equal(*features(["C(32,3,1) B L M(2) g", "C(32,3,1) L B M(2) g"], num_classes=10))


def test_an_unreadable_architecture_is_named() -> None:
    with pytest.raises(EncodingError, match=r"architecture 1, layer 0 \(C_2D\).*'filters'"):
        features(["C(32,3,1) g", [{"layer": "C_2D", "kernel_size": 3, "strides": 1}]], num_classes=10)
    with pytest.raises(EncodingError, match="architecture 0"):
        features([42], num_classes=10)


# ------------------------------------------------------------------------------------ predictions
def test_predictions_rank_unseen_seeds_far_above_chance(
    held_out: Surrogate, unseen: tuple[list[Any], np.ndarray]
) -> None:
    archs, fitness = unseen
    predicted = held_out.predict(archs)
    assert predicted.shape == fitness.shape and predicted.dtype == np.float64
    assert ((predicted >= 0) & (predicted <= 1)).all()
    # the quick model; the default one and its baselines are measured by benchmarks/surrogate_quality.py
    assert kendalltau(predicted, fitness)[0] > 0.45
    assert 9 not in held_out.rows.seed and 10 not in held_out.rows.seed
    assert held_out.excluded_seeds == (9, 10)


def test_a_prediction_depends_only_on_its_architecture(
    held_out: Surrogate, unseen: tuple[list[Any], np.ndarray]
) -> None:
    archs = unseen[0][:30]
    together = held_out.predict(archs)
    alone = np.concatenate([held_out.predict([a]) for a in archs[::-1]])[::-1]
    assert np.array_equal(together, alone)
    assert np.array_equal(held_out.predict([format_text(archs[0])]), together[:1])  # text notation too
    assert held_out.predict([]).shape == (0,) and held_out.predict_curve([]).shape == (0, 12)


def format_text(arch: Any) -> str:
    from pyevonas.metric import format_arch

    return format_arch(arch)


def test_fitting_twice_gives_the_same_model(unseen: tuple[list[Any], np.ndarray]) -> None:
    settings = Settings(iterations=10, learning_rate=0.3)
    a = Surrogate.fit(dataset="cifar10", exclude_seeds=(9, 10), settings=settings)
    b = Surrogate.fit(dataset="cifar10", exclude_seeds=(10, 9), settings=settings)
    archs = unseen[0][:200]
    assert np.array_equal(a.predict(archs), b.predict(archs))


def test_curves_rise_to_the_prediction_and_stop_there(
    held_out: Surrogate, unseen: tuple[list[Any], np.ndarray]
) -> None:
    archs = unseen[0][:100]
    final = held_out.predict(archs)
    curves = held_out.predict_curve(archs)
    assert curves.shape == (100, 12)
    assert (curves <= final[:, None] + 1e-12).all()
    # on average a training gains accuracy over its epochs
    mean = curves.mean(axis=0)
    assert mean[0] < mean[5] < mean[11]


def test_coverage_is_one_for_a_published_architecture_and_low_far_from_them(held_out: Surrogate) -> None:
    member = held_out.rows.chromosomes[0]
    far = "D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) D(7,2) E"
    coverage = held_out.coverage([member, far])
    assert coverage[0] == pytest.approx(1.0)
    assert coverage[1] < 0.8


def test_the_noise_model_draws_trainings_reproducibly(
    held_out: Surrogate, unseen: tuple[list[Any], np.ndarray]
) -> None:
    archs = unseen[0][:300]
    a = held_out.predict(archs, noise=True, seed=1)
    b = held_out.predict(archs, noise=True, seed=1)
    c = held_out.predict(archs, noise=True, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert ((a >= 0) & (a <= 1)).all()
    # some draws die at chance accuracy, as some published trainings did
    assert np.any(a < 0.15)
    expected = held_out.predict(archs)
    assert abs(float(np.median(a - expected))) < 0.05


# ------------------------------------------------------------------------------------ sources
def test_sources_are_run_files_and_run_folders(tmp_path: Path) -> None:
    from_file = read_rows(EVONAS)
    imported = tmp_path / "run"
    import_run(EVONAS, imported)
    from_folder = read_rows(imported)
    assert len(from_file) == len(from_folder) > 50
    assert np.array_equal(np.sort(from_file.fitness), np.sort(from_folder.fitness))
    assert set(from_file.dataset.tolist()) == {"cifar10"} and set(from_file.seed.tolist()) == {1}
    both = read_rows([EVONAS, EXTRACT])
    assert len(both) == len(from_file) + len(read_rows(EXTRACT))
    model = Surrogate.fit([EVONAS, EXTRACT], dataset="cifar10", settings=Settings(iterations=5))
    assert model.predict(["C(32,3,1) B L g"]).shape == (1,)


def test_bad_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(PyevonasError, match="does not exist"):
        read_rows(tmp_path / "nothing")
    with pytest.raises(PyevonasError, match="not a pyevonas run"):
        read_rows(tmp_path)
    with pytest.raises(PyevonasError, match="no surrogate sources"):
        read_rows([])
    with pytest.raises(PyevonasError, match="hold no trained cifar100"):
        Surrogate.fit(EVONAS, dataset="cifar100")
    with pytest.raises(PyevonasError, match="hold no trained cifar10 evaluation"):
        Surrogate.fit(EVONAS, dataset="cifar10", exclude_seeds=[1])
    with pytest.raises(PyevonasError, match="'leaves' is out of range"):
        Settings(leaves=1)


def test_a_simulated_run_is_not_a_source(tmp_path: Path) -> None:
    from pyevonas.runs.store import RunStore

    folder = tmp_path / "simulated"
    store = RunStore.create(
        folder,
        config={"dataset": "cifar10", "epochs": 12},
        scoring={},
        space={},
        meta={"evaluator": {"kind": "surrogate", "model": "cifar10"}},
    )
    store.close()
    with pytest.raises(PyevonasError, match="simulated by a surrogate"):
        read_rows(folder)


# ------------------------------------------------------------------------------------ model files
def test_a_saved_model_loads_to_the_same_predictions(tmp_path: Path, unseen: tuple[list[Any], np.ndarray]) -> None:
    model = Surrogate.fit(EVONAS, dataset="cifar10", settings=Settings(iterations=15, seed=3))
    path = tmp_path / "model.json.gz"
    model.save(path)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        doc = json.load(f)  # data only: JSON, no pickle
    assert doc["format"] == MODEL_FORMAT and doc["settings"]["seed"] == 3
    loaded = Surrogate.load(path)
    archs = unseen[0][:50]
    assert np.array_equal(loaded.predict(archs), model.predict(archs))
    assert np.array_equal(loaded.predict_curve(archs), model.predict_curve(archs))
    assert loaded.dataset == "cifar10" and loaded.settings == model.settings


def _saved(tmp_path: Path) -> dict[str, Any]:
    model = Surrogate.fit(EXTRACT, dataset="cifar10", settings=Settings(iterations=3))
    model.save(tmp_path / "good.gz")
    with gzip.open(tmp_path / "good.gz", "rt", encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


def _write(path: Path, doc: Any) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(doc, f)
    return path


def test_bad_model_files_are_refused_with_one_line(tmp_path: Path) -> None:
    doc = _saved(tmp_path)
    plain = tmp_path / "plain.json"
    plain.write_text("{}", encoding="utf-8")
    cut = tmp_path / "cut.gz"
    cut.write_bytes((tmp_path / "good.gz").read_bytes()[:200])
    short = json.loads(json.dumps(doc))
    short["rows"]["fitness"] = short["rows"]["fitness"][:-1]
    cases = {
        tmp_path / "missing.gz": "does not exist",
        plain: "not a surrogate model file",
        cut: "not a surrogate model file",
        _write(tmp_path / "other.gz", {"format": "something"}): "no format 'pyevonas-surrogate'",
        _write(tmp_path / "v9.gz", {**doc, "version": 9}): "version 9 is not supported",
        _write(tmp_path / "short.gz", short): "damaged surrogate model file .*differ in length",
        _write(tmp_path / "norows.gz", {**doc, "rows": []}): "damaged surrogate model file",
        _write(tmp_path / "knob.gz", {**doc, "settings": {"depth": 3}}): r"unknown settings \['depth'\]",
        _write(tmp_path / "range.gz", {**doc, "settings": {"iterations": 0}}): "'iterations' is out of range",
    }
    for path, message in cases.items():
        with pytest.raises(PyevonasError, match=message) as info:
            Surrogate.load(path)
        assert "\n" not in str(info.value) and str(path.name) in str(info.value)


def test_builtin_names(unseen: tuple[list[Any], np.ndarray]) -> None:
    with pytest.raises(KeyError, match="no built-in surrogate 'imagenet'"):
        Surrogate.builtin("imagenet")
    model = Surrogate.builtin("cifar10")
    assert model is Surrogate.builtin("cifar10")
    assert repr(model).startswith("Surrogate('cifar10'")
    assert model.predict([parse_arch("C(64,3,1) B L M(2) C(128,3,1) B L g")]).shape == (1,)
