"""Objectives and hypervolume references that gave silently wrong results (issue 26).

* ``report`` read a run's configured ``reference_point`` from a record the loop never writes, so
  it used the default reference instead and disagreed with the live view;
* a reference of NaN or -inf, or one that no candidate dominates, was accepted and gave a
  hypervolume of 0 in every generation;
* an objective name no evaluation records (``param`` for ``params``) ran a whole search, ranking
  every candidate by a missing value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers import PatchTraining, mo_evaluate, run_config

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError
from pyevonas.report.analysis import analyse_run, load_run
from pyevonas.report.pareto import pareto_analysis
from pyevonas.search.config import RunConfig
from pyevonas.search.events import FrontMeasured
from pyevonas.search.loop import evolve

PARETO = {"objectives": "val_accuracy,params", "generations": 2}


def _run(tmp_path: Path, name: str, **changes: Any) -> tuple[Path, list[FrontMeasured]]:
    events: list[Any] = []
    result = evolve(
        run_config(tmp_path / name, name=name, **PARETO, **changes), evaluate_fn=mo_evaluate, observers=[events.append]
    )
    return result.run_dir, [e for e in events if isinstance(e, FrontMeasured)]


def test_the_report_uses_the_configured_reference_point_as_the_live_view_did(tmp_path: Path) -> None:
    run_dir, fronts = _run(tmp_path, "ref", reference_point={"params": 50_000.0})
    assert fronts[0].reference_point["params"] == 50_000.0
    doc = pareto_analysis([analyse_run(load_run(run_dir))])
    assert doc["reference_point"]["params"] == 50_000.0
    hypervolumes = [g["hypervolume_so_far"] for g in doc["runs"][0]["generations"]]
    assert hypervolumes == pytest.approx([f.hypervolume_so_far for f in fronts])


@pytest.mark.parametrize("value", [math.nan, -math.inf, math.inf])
def test_a_reference_that_is_not_a_finite_number_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="reference_point params must be a finite number"):
        RunConfig.resolve(None, {**PARETO, "reference_point": {"params": value}})


def test_a_reference_no_candidate_can_dominate_is_refused_before_the_run(tmp_path: Path) -> None:
    for point, why in (({"params": 0.0}, "params"), ({"val_accuracy": 1.0}, "val_accuracy")):
        with pytest.raises(ValueError, match=f"reference_point {why} .* no candidate can be better"):
            RunConfig.resolve(None, {**PARETO, "reference_point": point})


def test_a_report_reference_no_candidate_dominates_is_one_line(tmp_path: Path) -> None:
    run_dir, _ = _run(tmp_path, "tiny")
    stats = [analyse_run(load_run(run_dir))]
    with pytest.raises(ConfigError, match="no trained candidate .* better than the reference point .* params 1"):
        pareto_analysis(stats, reference_point={"params": 1.0})
    with pytest.raises(ConfigError, match="finite"):
        pareto_analysis(stats, reference_point={"params": math.nan})


def test_an_unknown_objective_is_refused_before_anything_runs(
    tmp_path: Path, patch_training: PatchTraining, capsys: pytest.CaptureFixture[str]
) -> None:
    patch_training(mo_evaluate)
    run_dir = tmp_path / "typo"
    code = run_guarded(
        app, ["evolve", "--objectives", "val_accuracy,param", "--generations", "2", "--population", "4",
              "--run-dir", str(run_dir), "--quiet"]
    )  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert "objective 'param'" in err and "did you mean params" in err
    assert not run_dir.exists()
    # The built-in training is refused the name through the API too; RunConfig alone takes any metric
    # name, since an evaluate_fn of one's own may record it.
    with pytest.raises(ConfigError, match="param"):
        evolve(run_config(tmp_path / "api", objectives="val_accuracy,param"))
    assert RunConfig.resolve(None, {"objectives": "val_accuracy,min:energy"}).objectives == [
        "val_accuracy",
        "min:energy",
    ]
