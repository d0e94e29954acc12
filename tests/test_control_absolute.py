"""The ``target`` control: the absolute diversity measure and its change (pyevonas.search.control.TargetControl)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyevonas.errors import ConfigError
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.control import TARGET, TargetControl, breed_under_control, control_from_config, target_control
from pyevonas.search.loop import evolve

N = 20


def test_inside_reach_the_window_is_the_band_cut_by_the_speed_limit() -> None:
    c = target_control(start=0.3, end=0.7, tolerance=0.05, rate=0.1)
    for gen in range(1, N):
        t = c.target(gen + 1, N)
        lo, hi = c.window(t, gen, N)  # on the path: the whole band is within reach
        assert lo == pytest.approx(t - 0.05)
        assert hi == pytest.approx(t + 0.05)


def test_the_target_runs_from_start_to_end() -> None:
    c = target_control(start=0.3, end=0.7)
    assert c.target(1, N) == pytest.approx(0.3)
    assert c.target(N, N) == pytest.approx(0.7)
    assert c.target(1, 1) == pytest.approx(0.3)
    assert np.all(np.diff([c.target(k, N) for k in range(1, N + 1)]) > 0)


@pytest.mark.parametrize("s_gen", [0.0, 0.1, 0.2])
def test_below_the_band_the_measure_must_rise_by_at_most_the_rate(s_gen: float) -> None:
    c = target_control(start=0.5, end=0.8, tolerance=0.05, rate=0.05)
    lo, hi = c.window(s_gen, 5, N)
    assert lo == pytest.approx(s_gen)
    assert hi == pytest.approx(s_gen + 0.05)


@pytest.mark.parametrize("s_gen", [0.9, 0.95, 1.0])
def test_above_the_band_the_measure_must_fall_by_at_most_the_rate(s_gen: float) -> None:
    c = target_control(start=0.3, end=0.5, tolerance=0.05, rate=0.05)
    lo, hi = c.window(s_gen, 5, N)
    assert lo == pytest.approx(s_gen - 0.05)
    assert hi == pytest.approx(s_gen)


def test_it_uses_the_absolute_value_not_only_the_change() -> None:
    # Eq. 2 and 3 give windows that move with s_gen; this one's depends on where s_gen is.
    c = TARGET
    lo_a, hi_a = c.window(0.40, 10, N)
    lo_b, hi_b = c.window(0.60, 10, N)
    assert (lo_a - 0.40, hi_a - 0.40) != pytest.approx((lo_b - 0.60, hi_b - 0.60))


def test_every_window_is_non_empty_and_within_the_speed_limit() -> None:
    c = TARGET
    for gen in range(1, N):
        for s_gen in np.linspace(0.0, 1.0, 41):
            lo, hi = c.window(float(s_gen), gen, N)
            assert lo < hi
            assert lo >= s_gen - c.rate - 1e-12
            assert hi <= s_gen + c.rate + 1e-12


@pytest.mark.parametrize("kwargs", [{"tolerance": 0.0}, {"rate": -0.1}, {"start": float("nan")}, {"end": float("inf")}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        target_control(**kwargs)


def test_a_non_finite_measure_is_refused() -> None:
    with pytest.raises(ConfigError):
        TARGET.window(float("nan"), 3, N)


def test_the_config_selects_it() -> None:
    config = RunConfig.resolve(None, {"control": "target"})
    control = control_from_config(config)
    assert isinstance(control, TargetControl)
    assert control is TARGET


def test_the_breeding_loop_accepts_a_population_in_its_window() -> None:
    # Populations are plain numbers here: the measure of a population is the number itself.
    values = iter([0.9, 0.1, 0.41, 0.5])
    result = breed_under_control(
        lambda rate, rng: [next(values)],
        lambda pop: pop[0],
        control=TARGET,
        s_gen=0.40,
        gen=1,
        n_gen=21,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    assert result.decision["accepted"]
    assert result.diversity == pytest.approx(0.41)
    assert len(result.iterations) == 3


def _stub(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    fitness = int(hashlib.sha256(json.dumps(chromosome, sort_keys=True).encode()).hexdigest()[:8], 16) / 2**32
    return {"status": "ok", "fitness": fitness, "val_accuracy": fitness, "val_accuracy_per_epoch": [fitness]}


def test_a_search_runs_under_it_and_records_its_windows(tmp_path: Path) -> None:
    config = RunConfig.resolve(
        None,
        {
            "control": "target",
            "generations": 4,
            "population": 6,
            "top_k": 3,
            "seed": 2,
            "max_control_iterations": 6,
            "run_dir": str(tmp_path / "run"),
        },
    )
    evolve(config, evaluate_fn=_stub)
    with RunStore.open(config.run_path, readonly=True) as store:
        assert store.generations() == [1, 2, 3, 4]
        assert store.meta["control"] == "target"
        for g in (2, 3, 4):
            iterations = store.control_iterations(g)
            assert iterations
            previous = store.generation_record(g - 1).diversity
            lo, hi = TARGET.window(previous, g - 1, 4)
            assert iterations[0]["lo"] == pytest.approx(lo)
            assert iterations[0]["hi"] == pytest.approx(hi)
