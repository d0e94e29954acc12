"""What a multi-objective run's outputs show (issue 26): the Pareto figure's log axis has ordinary
tick labels (run names still drawn literally), and ``export`` gives each individual's Pareto rank
and tie-breaker (and novelty or competition score) in JSON and CSV.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from helpers import mo_evaluate, run_config

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.runs.store import RunStore
from pyevonas.search.loop import evolve


def test_the_pareto_figure_has_ordinary_log_ticks_and_literal_names() -> None:
    pytest.importorskip("matplotlib")
    from pyevonas.report.figures import png_bytes
    from pyevonas.report.pareto import front_figure

    points = [(1, 1e3, 0.5), (1, 1e5, 0.7), (2, 1e6, 0.9)]
    fronts = [(1, [(1e3, 0.5), (1e5, 0.7)]), (2, [(1e3, 0.5), (1e6, 0.9)])]
    fig = front_figure(points, fronts, [(1, 0.1, 0.1), (2, 0.2, 0.3)], "params", "val_accuracy", title="run $a_1$")
    png_bytes(fig)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and not any("$" in label or "mathdefault" in label for label in labels), labels
    assert "100,000" in labels
    title = fig._suptitle  # type: ignore[attr-defined]
    assert title is not None and title.get_text() == "run $a_1$" and not title.get_parse_math()


@pytest.mark.parametrize("options", [{"objectives": "val_accuracy,params"}, {"selection": "dns"}])
def test_export_holds_each_individuals_rank_and_scores(
    tmp_path: Path, options: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = evolve(run_config(tmp_path / "run", **options), evaluate_fn=mo_evaluate)
    with RunStore.open(result.run_dir, readonly=True) as store:
        records = {g: (store.generation_record(g).extras or {}).get("selection") or {} for g in store.generations()}
    keys = ("pareto_rank", "crowding") if "objectives" in options else ("competition",)

    assert run_guarded(app, ["export", str(result.run_dir), "-o", str(tmp_path / "run.json")]) == 0
    data = json.loads((tmp_path / "run.json").read_text())
    checked = 0
    for ind in data["individuals"]:
        expected = {k: records[ind["generation"]][k][ind["index"]] for k in keys if k in records[ind["generation"]]}
        got = {k: ind["selection"][k] for k in expected}
        assert got == {k: (None if v == float("inf") else v) for k, v in expected.items()}
        checked += bool(expected)
    assert checked >= len(data["individuals"]) // 2  # every generation that chose parents

    assert run_guarded(app, ["export", str(result.run_dir), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(data["individuals"])
    for row, ind in zip(rows, data["individuals"], strict=True):
        for k in keys:
            value = records[ind["generation"]].get(k, [None] * 100)[ind["index"]]
            assert row[k] == ("" if value is None else str(value)), (k, row[k], value)
