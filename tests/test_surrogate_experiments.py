"""benchmarks/surrogate_experiments.py: the statistics behind docs/experiments.md's paper-scale
tables (bootstrap intervals, Mann-Whitney against naive, Holm's correction), on synthetic runs
whose answer is known, and the published results file's shape."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("scipy")


def _load() -> ModuleType:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(
            "surrogate_experiments", REPO / "benchmarks" / "surrogate_experiments.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


exp = _load()


def _runs(shift: dict[str, float], n: int = 12) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(0)
    runs = {}
    for setting in exp.SETTINGS:
        for seed in range(1, n + 1):
            runs[exp.key("cifar10", 25, setting, seed)] = {
                "dataset": "cifar10",
                "population": 25,
                "setting": setting,
                "seed": seed,
                "best_fitness": 0.85 + shift.get(setting, 0.0) + rng.normal(0, 0.005),
                "final_median": 0.5 + rng.normal(0, 0.01),
                "outside_share": 0.98,
                "seconds": 1.0,
            }
    return runs


def test_holm_adjusts_in_order_and_stays_monotone() -> None:
    # Sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, kept monotone).
    assert exp.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert exp.holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])


def test_a_real_difference_is_found_and_no_difference_is_not() -> None:
    table = exp.analyse(_runs({"rigid": 0.02}))["cifar10/p25"]
    rigid = table["rigid"]["best_fitness"]["vs_naive"]
    assert rigid["difference"] == pytest.approx(0.02, abs=0.006)
    lo, hi = rigid["bootstrap95"]
    assert 0 < lo < hi and rigid["p_holm"] < 0.01
    soft = table["soft"]["best_fitness"]["vs_naive"]
    assert soft["bootstrap95"][0] < 0 < soft["bootstrap95"][1] or soft["p_holm"] > 0.05
    assert table["naive"]["n"] == 12 and "vs_naive" not in table["naive"]["best_fitness"]
    assert table["naive"]["best_fitness"]["bootstrap95"][0] < table["naive"]["best_fitness"]["mean"]


def test_the_markdown_has_one_row_per_setting() -> None:
    text = exp.markdown(exp.analyse(_runs({})))
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| setting")]
    assert [r.split("|")[1].strip() for r in rows] == list(exp.SETTINGS)


def test_the_published_results_hold_every_planned_search() -> None:
    doc = json.loads((REPO / "benchmarks" / "results_surrogate_experiments.json").read_text(encoding="utf-8"))
    runs = doc["runs"]
    assert len(runs) == 2 * 3 * len(exp.SETTINGS) * 30
    for run in runs.values():
        assert len(run["best_per_generation"]) == 20 and 0 <= run["outside_share"] <= 1
    assert set(doc["analysis"]) == {f"{d}/p{p}" for d in ("cifar10", "cifar100") for p in (10, 25, 50)}
