"""Control functions (Eq. 2, Eq. 3, a user's) and Algorithm 1's breeding loop, on a stub measure."""

from __future__ import annotations

import numpy as np
import pytest

from pyevonas.errors import ConfigError
from pyevonas.runs.importer import control_window
from pyevonas.search.config import RunConfig
from pyevonas.search.control import (
    ORIGINAL_RIGID,
    ORIGINAL_SOFT,
    RIGID,
    SOFT,
    breed_under_control,
    control_from_config,
    custom_control,
    window_distance,
)


# ---------------------------------------------------------------------- the functions
@pytest.mark.parametrize("gen", range(1, 20))
def test_rigid_equals_the_original_formula_at_twenty_generations(gen: int) -> None:
    lo, hi = RIGID.window(0.4, gen, 20)
    assert lo == pytest.approx(0.4)
    assert hi == pytest.approx(0.4 + max(0.1 - gen * gen / 2000, 0.05))


@pytest.mark.parametrize("gen", range(1, 20))
def test_soft_equals_the_original_formula_at_twenty_generations(gen: int) -> None:
    lo, hi = SOFT.window(0.4, gen, 20)
    assert lo == pytest.approx(0.4 - max(0.1 - 0.1 * gen / 20, 0))
    assert hi == pytest.approx(0.4 + max(0.05 * gen / 20, 0.025))


@pytest.mark.parametrize("gen", range(1, 20))
def test_the_original_codes_margins_are_eq_2_and_3(gen: int) -> None:
    """Same equations as RIGID and SOFT at 20 generations, to the last bit or so."""
    for original, paper in ((ORIGINAL_RIGID, RIGID), (ORIGINAL_SOFT, SOFT)):
        assert original.window(0.4, gen, 20) == pytest.approx(paper.window(0.4, gen, 20), abs=1e-15)


def test_imported_windows_use_the_original_codes_arithmetic_bit_for_bit() -> None:
    """The importer says what the original decided, so its windows are the original's floats.

    Eq. 2 computed as written differs in the last bit at gen 9, and on medians of 3-decimal
    similarities that bit decides: the original accepted 0.539 after 0.4795 (0.4795 + 0.0595).
    """
    lasts = [k / 2000 for k in range(2001)]
    for g in range(1, 20):
        for last in lasts:
            assert control_window("rigid", g, last) == (last, last + max(0.1 - g * g / 2000, 0.05))
            assert control_window("soft", g, last) == (
                last - max(0.1 - 0.1 * g / 20, 0),
                last + max(0.05 * g / 20, 0.025),
            )
    lo, hi = control_window("rigid", 9, 0.4795)  # type: ignore[misc]
    assert lo < 0.539 <= hi
    assert not RIGID.window(0.4795, 9, 20)[1] >= 0.539


def test_windows_scale_with_the_configured_generations() -> None:
    """The original hard-codes N_gen = 20 (bug 27); at N_gen = 10 the rigid margin hits 0.05 at gen 5."""
    assert RIGID.upper(5, 10) == pytest.approx(0.05)
    assert RIGID.upper(4, 10) == pytest.approx(0.1 - 0.2 * 0.16)
    assert RIGID.upper(5, 20) == pytest.approx(0.0875)
    assert SOFT.lower(5, 10) == pytest.approx(-0.05)
    assert SOFT.upper(9, 10) == pytest.approx(0.045)


def test_custom_control_accepts_one_or_two_argument_callables() -> None:
    c = custom_control(lambda gen: 0.1, lambda gen, n_gen: -gen / n_gen)
    assert c.window(0.5, 2, 10) == pytest.approx((0.3, 0.6))
    with pytest.raises(ConfigError, match="takes 3"):
        custom_control(lambda a, b, c: 0.0, lambda gen: 0.0)


def test_a_window_with_lower_above_upper_is_refused() -> None:
    c = custom_control(lambda gen: 0.0, lambda gen: 0.1)
    with pytest.raises(ConfigError, match="lower margin"):
        c.window(0.5, 1, 10)


def test_control_from_config_entries() -> None:
    assert control_from_config(RunConfig(control="naive")) is None
    assert control_from_config(RunConfig(control="rigid")) is RIGID
    assert control_from_config(RunConfig(control="soft")) is SOFT
    cfg = RunConfig(
        control="custom",
        control_upper="0.05 if gen < n_gen / 2 else 0.02",
        control_lower="-0.01",
    )
    custom = control_from_config(cfg)
    assert custom is not None
    assert custom.window(0.3, 2, 10) == pytest.approx((0.29, 0.35))
    assert custom.window(0.3, 6, 10) == pytest.approx((0.29, 0.32))


def test_window_distance() -> None:
    assert window_distance((0.2, 0.3), 0.25) == 0.0
    assert window_distance((0.2, 0.3), 0.2) == pytest.approx(0.0)  # the lower bound is excluded...
    assert window_distance((0.2, 0.3), 0.1) == pytest.approx(0.1)  # ...but at distance 0 it ties
    assert window_distance((0.2, 0.3), 0.45) == pytest.approx(0.15)


# ---------------------------------------------------------------------- the loop
def _scripted(values: list[float]):
    """make_population/measure pair: candidate k has diversity values[k]; records the rates used."""
    rates: list[float] = []

    def make(rate: float, rng: np.random.Generator) -> list[float]:
        rates.append(rate)
        return [values[len(rates) - 1]]

    def measure(pop: list[float]) -> float:
        return pop[0]

    return make, measure, rates


def test_first_candidate_in_the_window_is_taken() -> None:
    make, measure, rates = _scripted([0.30, 0.45, 0.46])
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=1,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    assert result.population == [0.45]
    assert [it.accepted for it in result.iterations] == [False, True]
    assert result.decision["accepted"] and not result.decision["fallback"]
    assert result.decision["iteration"] == 2
    assert rates == [0.2, 0.2]


def test_rigid_lower_bound_is_strict() -> None:
    make, measure, _ = _scripted([0.4, 0.41])
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=1,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    assert result.iterations[0].accepted is False
    assert result.population == [0.41]


def test_mutation_rate_decays_every_five_iterations_and_fallback_takes_the_closest() -> None:
    # Thirty candidates below the rigid window; candidate 17 is the closest to it.
    values = [0.1] * 30
    values[16] = 0.39
    make, measure, rates = _scripted(values)
    seen = []
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=3,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
        on_iteration=seen.append,
    )
    assert len(result.iterations) == 30 == len(seen)
    assert rates == pytest.approx([0.2] * 5 + [0.18] * 5 + [0.16] * 5 + [0.14] * 5 + [0.12] * 5 + [0.10] * 5)
    assert result.decision["fallback"] is True and result.decision["accepted"] is False
    assert result.decision["iteration"] == 17
    assert result.population == [0.39]
    assert result.decision["mutation_rate"] == pytest.approx(0.14)  # iterations 16-20 run at 0.14


def test_fallback_prefers_the_window_over_the_previous_diversity() -> None:
    """The original picks by |cur - last|, so rigid control could fall below last (bug 28)."""
    # last = 0.4, window (0.4, 0.4995]: 0.38 is nearer to `last` (0.02 vs 0.11) but 0.51 is nearer
    # to the window (0.0105 vs 0.02), so the fallback takes 0.51, which respects the rigid direction.
    make, measure, _ = _scripted([0.38, 0.51, 0.70])
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=1,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
        max_iterations=3,
    )
    assert result.decision["fallback"] is True
    assert result.population == [0.51]


def test_the_last_candidate_is_measured_too() -> None:
    """The original built a 31st candidate it never tested (bug 28)."""
    values = [0.0] * 29 + [0.45]
    make, measure, rates = _scripted(values)
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=1,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    assert len(rates) == 30
    assert result.decision["accepted"] and result.population == [0.45]


def test_naive_breeds_once() -> None:
    make, measure, rates = _scripted([0.9])
    result = breed_under_control(
        make,
        measure,
        control=None,
        s_gen=None,
        gen=1,
        n_gen=5,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    assert rates == [0.2]
    assert result.window is None and result.decision["control"] == "naive"


def test_control_needs_the_previous_diversity() -> None:
    make, measure, _ = _scripted([0.5])
    with pytest.raises(ValueError, match="diversity"):
        breed_under_control(
            make,
            measure,
            control=SOFT,
            s_gen=None,
            gen=1,
            n_gen=5,
            p_mutation=0.2,
            rng=np.random.default_rng(0),
        )


def test_iterations_are_plain_data_for_the_store() -> None:
    make, measure, _ = _scripted([0.1, 0.45])
    result = breed_under_control(
        make,
        measure,
        control=RIGID,
        s_gen=0.4,
        gen=1,
        n_gen=20,
        p_mutation=0.2,
        rng=np.random.default_rng(0),
    )
    row = result.iterations[0].to_dict()
    assert row == {
        "iteration": 1,
        "median": 0.1,
        "lo": pytest.approx(0.4),
        "hi": pytest.approx(0.4995),
        "accepted": False,
        "mutation_rate": 0.2,
    }


# ---------------------------------------------------------------------- custom expressions, bounded
@pytest.mark.parametrize(
    ("upper", "why"),
    [
        ("2**2**40", "overflows"),  # an integer power would eat memory for minutes
        ("9**9**9**9", "overflows"),
        ("1e308 * 10", "not finite"),
        ("min()", "at least 2 argument"),
        ("sqrt(1, 2)", "takes 1 argument"),
        ("abs()", "takes 1 argument"),
        ("(" * 300 + "1" + ")" * 300, "nested"),
        ("-" * 300 + "1", "too large"),
        ("1 + " * 400 + "1", "characters long"),
    ],
)
def test_expressions_are_bounded_and_refused_at_once(upper: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        RunConfig.resolve(None, {"control": "custom", "control_upper": upper, "control_lower": "-0.1"})


def test_expressions_are_checked_over_every_generation_before_the_run() -> None:
    # Fine at generation 1, a division by zero at generation 3.
    with pytest.raises(ConfigError, match=r"gen=3.*division by zero"):
        RunConfig.resolve(
            None, {"control": "custom", "control_upper": "0.1 + 1/(gen-3)", "control_lower": "-1", "generations": 6}
        )
    # The window closes (lower >= upper) only at generation 4 of 10.
    with pytest.raises(ConfigError, match=r"gen=4, n_gen=10: lower .* must be below upper"):
        RunConfig.resolve(
            None, {"control": "custom", "control_upper": "0.5 - gen/8", "control_lower": "0", "generations": 10}
        )
    # Past the run's last generation nothing is evaluated: gen runs over 1..N-1.
    ok = RunConfig.resolve(
        None, {"control": "custom", "control_upper": "0.1 + 1/(gen-6)", "control_lower": "-1", "generations": 6}
    )
    assert ok.control_upper == "0.1 + 1/(gen-6)"
