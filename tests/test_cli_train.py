"""``pyevonas train``: metrics as a table or JSON, failed candidates, and one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded

FAST = ["--set", "latency_repeats=2", "--set", "flops=false", "--quiet"]
CHROM = [
    {"layer": "Rescaling", "f_name": "Rescaling", "scale": 0.00392156862745098},
    {"layer": "C_2D", "f_name": "Conv2D", "filters": 16, "kernel_size": 3, "strides": 1, "padding": "same"},
    {"layer": "BN_2D", "f_name": "BatchNormalization()"},
    {"layer": "R_2D", "f_name": "ReLU()"},
    {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D()"},
    {"layer": "D", "f_name": "Dense", "units": 32, "activation": "relu"},
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_json_file_prints_metrics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"name": "mine", "chromosome": CHROM}))
    code, out, _ = run(["train", str(path), "--epochs", "2", "--json", "--set", "max_train_images=400", *FAST], capsys)
    assert code == 0
    data = json.loads(out)
    for key in (
        "fitness",
        "val_accuracy",
        "test_accuracy",
        "params",
        "size_mb",
        "latency_ms",
        "train_seconds",
        "status",
    ):
        assert key in data
    assert data["status"] == "ok" and data["dataset"] == "digits" and data["epochs_run"] == 2
    assert data["fitness"] == max(data["val_accuracy_per_epoch"])
    assert data["flops"] is None  # --set flops=false


def test_train_text_notation_shows_a_table_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "C(16,3,1) B L g F(32)", "--epochs", "1", "--set", "latency_repeats=2"], capsys)
    assert code == 0
    assert "epoch   1/1" in out and "fitness" in out and "test_accuracy" in out and "ok" in out


def test_failed_candidate_exits_1_with_the_reason(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nopool.json"
    path.write_text(json.dumps(CHROM[:4]))
    code, out, _ = run(["train", str(path), "--epochs", "1", "--json", *FAST], capsys)
    assert code == 1
    data = json.loads(out)
    assert data["status"] == "failed" and "no global pooling" in data["error"]


def test_space_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    bad = [CHROM[0], CHROM[2], *CHROM[1:2], *CHROM[3:]]  # BN right after Rescaling
    path.write_text(json.dumps(bad))
    code, _, err = run(["train", str(path), "--space", "paper", *FAST], capsys)
    assert code == 2 and "gene 1 (BN_2D) may not follow gene 0 (Rescaling)" in " ".join(err.split())
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "missing.json"], "no architecture file at 'missing.json'"),
        (["train", "C(16,3,1) g", "--dataset", "svhn"], "unknown dataset 'svhn'"),
        (["train", "C(16,3,1) g", "--set", "nonsense"], "--set expects KEY=VALUE"),
        (["train", "C(16,3,1) g", "--set", "epochs=3"], "repeats a flag"),
        (["train", "C(16,3,1) g", "--set", "warp_speed=9"], "warp_speed"),
        (
            ["train", "C(16,3,1) g", "--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"],
            "cifar10 not found: looked for",
        ),
    ],
)
def test_user_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(args, capsys)
    assert code == 2
    assert message in " ".join(err.split()) and "Traceback" not in err  # rich wraps at 80 columns


def test_bad_json_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text("{oops")
    code, _, err = run(["train", str(path)], capsys)
    assert code == 2 and "cannot read architecture file" in " ".join(err.split())
    path.write_text(json.dumps({"chromosome": [1, 2]}))
    code, _, err = run(["train", str(path)], capsys)
    assert code == 2 and "expected a JSON list of gene objects" in " ".join(err.split())


def test_profile_times_every_gene(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(CHROM))
    code, out, err = run(
        ["profile", str(path), "--dataset", "cifar10", "--batch-size", "4", "--repeats", "1", "--json"], capsys
    )
    assert code == 0, err
    doc = json.loads(out)
    assert [row["layer"] for row in doc["layers"]] == [g["layer"] for g in CHROM] + ["head"]
    assert doc["layers"][1]["in_shape"] == [3, 32, 32] and doc["layers"][1]["out_shape"] == [16, 32, 32]
    assert doc["device"] == "cpu" and doc["batch_size"] == 4 and doc["total_ms"] > 0
    assert doc["step"]["step_ms"] > 0 and doc["step"]["host_ms"] > 0

    code, out, err = run(
        ["profile", "C(8,3,1) D(3,2) g", "--batch-size", "2", "--repeats", "1", "--autotune"],  # digits by default
        capsys,
    )
    assert code == 0, err
    assert "DC_2D" in out and "depthwise kernels" in out and "1x8x8" in out and "whole training step" in out

    code, out, err = run(["profile", "C(8,3,1) g", "--batch-size", "0"], capsys)
    assert code == 2 and "--batch-size" in err


# ---------------------------------------------------------------------- --from-run
@pytest.fixture
def stub_run(tmp_path: Path) -> Path:
    """A finished 2-generation search with stub training (its recipe differs from train's defaults)."""
    from helpers import stub_evaluate

    from pyevonas.search.config import RunConfig
    from pyevonas.search.loop import evolve

    config = RunConfig.resolve(
        None,
        {"run_dir": str(tmp_path / "run"), "generations": 2, "population": 4, "top_k": 2, "seed": 5, "epochs": 3,
         "train": {"lr": 0.07, "batch_size": 48, "max_train_images": 500}},
    )  # fmt: skip
    return evolve(config, evaluate_fn=stub_evaluate).run_dir


def test_from_run_retrains_with_the_runs_recipe_and_seed(
    capsys: pytest.CaptureFixture[str], stub_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyevonas.training.loop
    from pyevonas.runs.store import RunStore
    from pyevonas.search.config import RunConfig
    from pyevonas.search.loop import candidate_train_config
    from pyevonas.training.config import Metrics

    seen: list[Any] = []

    def fake(chromosome: Any, config: Any, progress: Any = None) -> Any:
        seen.append((chromosome, config))
        return Metrics(status="ok", fitness=0.5, val_accuracy=0.5)

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", fake)
    with RunStore.open(stub_run, readonly=True) as store:
        run_config = RunConfig.from_dict(store.config)
        individuals = store.individuals()
    best = max((i for i in individuals if i.status == "ok"), key=lambda i: (i.fitness, -i.id))

    code, out, err = run(["train", "--from-run", str(stub_run), "--json"], capsys)
    assert code == 0, err
    chromosome, config = seen[-1]
    assert chromosome == best.chromosome
    assert config == candidate_train_config(run_config, best.canonical_key)  # the search's exact recipe
    assert (config.lr, config.batch_size, config.epochs, config.max_train_images) == (0.07, 48, 3, 500)
    data = json.loads(out)
    assert data["from_run"]["name"] == best.name and data["from_run"]["fitness"] == best.fitness
    assert f"retraining {best.name}" in err

    other = individuals[2]
    code, out, err = run(["train", "--from-run", str(stub_run), other.name, "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    chromosome, config = seen[-1]
    assert chromosome == other.chromosome and config.device == "cpu"
    assert config.seed == candidate_train_config(run_config, other.canonical_key).seed
    assert "the run measured: fitness" in " ".join(out.split())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seed", "3"], "--from-run trains with the run's dataset, seed and architecture; --seed cannot be given"),
        (["--dataset", "cifar10"], "--dataset cannot be given with it"),
        (["--set", "seed=1"], "--set seed=... is not a setting --set may change here"),
        (["g9-9"], "has no candidate named 'g9-9'"),
    ],
)
def test_from_run_refuses_a_changed_recipe_and_unknown_names(
    capsys: pytest.CaptureFixture[str], stub_run: Path, extra: list[str], message: str
) -> None:
    code, _out, err = run(["train", "--from-run", str(stub_run), *extra], capsys)
    assert code == 2 and message in " ".join(err.split())


def test_train_without_an_architecture_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(["train"], capsys)
    assert code == 2 and "give the architecture to train" in err


@pytest.mark.slow
def test_the_best_of_a_real_search_retrains_to_the_same_fitness(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on digits: a tiny real search, then `pyevonas train --from-run` of its best on
    the same device scores exactly what the search measured."""
    import pyevonas.search.config

    monkeypatch.setattr(pyevonas.search.config, "usable_cores", lambda: 1)  # in-process, as train
    run_dir = tmp_path / "run"
    args = ["evolve", "--generations", "1", "--population", "3", "--epochs", "1", "--device", "cpu"]
    code, out, err = run([*args, "--run-dir", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    saved = json.loads((run_dir / "best.json").read_text())
    code, out, err = run(["train", "--from-run", str(run_dir), "--json", "--quiet"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["fitness"] == saved["fitness"] and data["test_accuracy"] == saved["test_accuracy"]
