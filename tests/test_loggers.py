"""``--log tensorboard:DIR`` and ``--log mlflow[:URI]``: what a search logs, read back with
TensorBoard's own reader and MLflow's client, and a resumed search that continues its logs
without logging a step twice."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import mo_evaluate, run_config, stub_evaluate

from pyevonas.errors import ConfigError
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig, parse_log
from pyevonas.search.loggers import STATE_NAME, make_loggers, png_image
from pyevonas.search.loop import evolve, resume

SCALARS = (
    "generation/best_fitness",
    "generation/median_fitness",
    "generation/median_similarity",
    "generation/n_ok",
    "generation/seconds",
)


def _stopping_at(n: int) -> Any:
    calls: list[int] = []

    def stops(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return stub_evaluate(chromosome, config, progress)

    return stops


def _stopped_then_resumed(run_dir: Path, log: list[str]) -> None:
    with pytest.raises(KeyboardInterrupt):
        evolve(run_config(run_dir, log=log), evaluate_fn=_stopping_at(9))
    resume(run_dir, evaluate_fn=stub_evaluate)


def _trained(run_dir: Path) -> list[Any]:
    with RunStore.open(run_dir, readonly=True) as store:
        return [i for i in store.individuals() if i.fitness is not None and i.status == "ok"]


def test_log_settings_are_checked_and_split() -> None:
    assert parse_log("tensorboard:tb") == ("tensorboard", "tb")
    assert parse_log("mlflow") == ("mlflow", None)
    assert parse_log("mlflow:sqlite:///x/mlflow.db") == ("mlflow", "sqlite:///x/mlflow.db")
    with pytest.raises(ConfigError, match="unknown log"):
        parse_log("wandb")
    with pytest.raises(ConfigError, match="needs a folder"):
        parse_log("tensorboard")
    config = RunConfig.resolve(None, {"log": "tensorboard:tb, mlflow"})
    assert config.log == ["tensorboard:tb", "mlflow"]
    with pytest.raises(ConfigError):
        RunConfig.resolve(None, {"log": ["nope"]})


def test_a_missing_library_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for root in ("tensorboard", "mlflow"):  # as if not installed, even after other tests imported them
        for name in [m for m in sys.modules if m == root or m.startswith(root + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, root, None)
    with pytest.raises(ConfigError, match="pip install 'pyevonas\\[integrations\\]'"):
        make_loggers(["tensorboard:tb"])
    with pytest.raises(ConfigError, match="mlflow-skinny"):
        make_loggers(["mlflow"])


def test_the_similarity_image_is_a_valid_png() -> None:
    png, height, width = png_image(np.array([[1.0, 0.5], [0.5, 1.0]]), cell=2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and (height, width) == (4, 4)
    idat = png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    assert rows[:5] == bytes([0, 255, 255, 128, 128])


def test_tensorboard_log_read_back_with_its_own_reader_and_continued_on_resume(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, tb = tmp_path / "run", tmp_path / "tb"
    _stopped_then_resumed(run_dir, [f"tensorboard:{tb}"])
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    n_gen = run_config(run_dir).generations
    for tag in SCALARS:
        assert [e.step for e in acc.Scalars(tag)] == list(range(1, n_gen + 1)), tag
    for tag in ("generation/window_lo", "generation/window_hi", "generation/control_iterations"):
        assert [e.step for e in acc.Scalars(tag)] == list(range(2, n_gen + 1)), tag
    assert [e.step for e in acc.Images("similarity")] == list(range(1, n_gen + 1))
    with RunStore.open(run_dir, readonly=True) as store:
        best = [max(i.fitness for i in store.individuals(g) if i.fitness is not None) for g in store.generations()]
        median_similarity = [store.generation_record(g).diversity for g in store.generations()]
    assert [e.value for e in acc.Scalars("generation/best_fitness")] == pytest.approx(best)
    assert [e.value for e in acc.Scalars("generation/median_similarity")] == pytest.approx(median_similarity)
    trained = _trained(run_dir)
    steps = [e.step for e in acc.Scalars("candidate/fitness")]
    assert sorted(steps) == sorted(i.id for i in trained) and len(set(steps)) == len(steps)  # no step twice
    assert "candidate/val_accuracy" in tags["scalars"]
    assert len(list(tb.glob("events.out.tfevents.*"))) == 2  # one file per session, one series
    assert f"tensorboard:{tb}" in json.loads((run_dir / STATE_NAME).read_text())


def test_mlflow_run_read_back_with_its_client_and_continued_on_resume(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir, uri = tmp_path / "run", f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    _stopped_then_resumed(run_dir, [f"mlflow:{uri}"])
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("pyevonas")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1  # the resumed session continued the same run
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["population"] == str(run_config(run_dir).population)
    assert run.data.params["control"] == run_config(run_dir).control
    n_gen = run_config(run_dir).generations
    for key in SCALARS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, n_gen + 1)), key
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "candidate/fitness")]
    assert sorted(steps) == sorted(i.id for i in _trained(run_dir))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"best.json", "summary.json", "similarity"} <= artifacts
    images = {a.path for a in client.list_artifacts(run.info.run_id, "similarity")}
    assert images == {f"similarity/generation_{g:03d}.png" for g in range(1, n_gen + 1)}
    summary = json.loads(Path(client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))).read_text())
    assert summary["best"]["fitness"] == max(i.fitness for i in _trained(run_dir))
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not in the current folder


def test_a_multi_objective_run_logs_its_front(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pyevonas.search.events import FrontMeasured

    run_dir, tb = tmp_path / "run", tmp_path / "tb"
    fronts: list[FrontMeasured] = []
    config = run_config(run_dir, objectives=["val_accuracy", "params"], log=[f"tensorboard:{tb}"])
    evolve(
        config,
        evaluate_fn=mo_evaluate,
        observers=[lambda e: fronts.append(e) if isinstance(e, FrontMeasured) else None],
    )
    acc = EventAccumulator(str(tb))
    acc.Reload()
    assert [e.value for e in acc.Scalars("front/size")] == [f.size for f in fronts]
    assert [e.step for e in acc.Scalars("front/size_so_far")] == [f.generation for f in fronts] == [1, 2, 3]
    expected = [f.hypervolume for f in fronts if f.hypervolume is not None]
    assert expected
    assert [e.value for e in acc.Scalars("front/hypervolume")] == pytest.approx(expected)
