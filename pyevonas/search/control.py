"""Diversity control: the control functions (Eq. 2, Eq. 3, a user's) and Algorithm 1's breeding loop.

Conventions. ``s_gen`` is the diversity of the evaluated generation ``gen`` (by default the
median of the off-diagonal similarities, so higher means *less* diverse). A control function
gives two margins, ``lower = g(gen)`` and ``upper = f(gen)``; the next generation's diversity
``s_next`` is accepted when::

    s_gen + g(gen) < s_next <= s_gen + f(gen)

``gen`` runs over 1..N_gen-1 and ``N_gen`` is the configured number of generations (the
original code hard-codes 20 here, whatever the run's length).

The control loop consumes a measure of a candidate population (a function returning a number)
and does not care how it is computed, so it is testable without the similarity engine.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pyevonas.errors import ConfigError
from pyevonas.search.expressions import compile_expression

if TYPE_CHECKING:
    from pyevonas.search.config import RunConfig


_T = TypeVar("_T")
Margin = Callable[[int, int], float]


@dataclass(frozen=True)
class ControlFunction:
    """A diversity control: margins ``lower(gen, n_gen)`` and ``upper(gen, n_gen)``.

    Attributes:
        name: ``rigid``, ``soft`` or a user's label.
        upper: f(gen, n_gen), the largest allowed rise of the diversity measure.
        lower: g(gen, n_gen), the (exclusive) smallest allowed change.
    """

    name: str
    upper: Margin
    lower: Margin

    def window(self, s_gen: float, gen: int, n_gen: int) -> tuple[float, float]:
        """The accepted interval ``(lo, hi]`` of the next generation's diversity.

        Raises:
            ConfigError: a margin is not a finite number, or lower >= upper.
        """
        up = float(self.upper(gen, n_gen))
        low = float(self.lower(gen, n_gen))
        if not (math.isfinite(up) and math.isfinite(low)):
            raise ConfigError(f"control {self.name!r}: margins at gen={gen} are not finite ({low}, {up})")
        if low >= up:
            raise ConfigError(
                f"control {self.name!r}: lower margin {low} >= upper margin {up} at gen={gen}, n_gen={n_gen}"
            )
        return s_gen + low, s_gen + up


def rigid_upper(gen: int, n_gen: int) -> float:
    """Eq. 2: ``0.1 - 0.2 (gen/N)^2`` before half the run, then 0.05."""
    return 0.1 - 0.2 * (gen / n_gen) ** 2 if gen < n_gen / 2 else 0.05


def rigid_lower(gen: int, n_gen: int) -> float:
    """Eq. 2: ``g(gen) = 0``: the diversity measure must rise (the population converges)."""
    return 0.0


def soft_upper(gen: int, n_gen: int) -> float:
    """Eq. 3: 0.025 before half the run, then ``0.05 gen/N``."""
    return 0.025 if gen < n_gen / 2 else 0.05 * gen / n_gen


def soft_lower(gen: int, n_gen: int) -> float:
    """Eq. 3: ``-0.1 + 0.1 gen/N``: a bounded fall, allowed less and less."""
    return -0.1 + 0.1 * gen / n_gen


RIGID = ControlFunction("rigid", rigid_upper, rigid_lower)
SOFT = ControlFunction("soft", soft_upper, soft_lower)


@dataclass(frozen=True)
class TargetControl(ControlFunction):
    """A control on the absolute diversity as well as its change: a target path with a speed limit.

    Eq. 2 and 3 bound only the *change* of the diversity measure, so where a run ends depends on
    where it started and on how often the windows were met. This control also says where the
    measure should *be*: generation ``k`` (1..N) aims at the band ``(t(k) - tolerance, t(k) +
    tolerance]`` around the straight path ``t(k) = start + (end - start) (k - 1) / (N - 1)``,
    while one generation may change the measure by at most ``rate`` either way (the margins
    ``upper = rate``, ``lower = -rate``). The window of the next generation is the part of the
    band that the speed limit reaches; when the band is out of reach, the measure must move
    towards it: ``(s_gen, s_gen + rate]`` below the band, ``(s_gen - rate, s_gen]`` above it.

    Attributes:
        start, end: the target measure of the first and the last generation.
        tolerance: half the width of the band around the target.
        rate: the largest change of the measure from one generation to the next.

    Example:
        >>> c = target_control(start=0.35, end=0.75, tolerance=0.05, rate=0.05)
        >>> [round(v, 4) for v in c.window(0.40, 1, 21)]  # target 0.37 for gen 2: band reached
        [0.35, 0.42]
        >>> [round(v, 4) for v in c.window(0.20, 1, 21)]  # far below the band: must rise
        [0.2, 0.25]
        >>> [round(v, 4) for v in c.window(0.60, 1, 21)]  # far above it: must fall
        [0.55, 0.6]
    """

    start: float = 0.35
    end: float = 0.75
    tolerance: float = 0.05
    rate: float = 0.05

    def __post_init__(self) -> None:
        values = (self.start, self.end, self.tolerance, self.rate)
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"control {self.name!r}: start, end, tolerance and rate must be finite numbers")
        if self.tolerance <= 0 or self.rate <= 0:
            raise ConfigError(f"control {self.name!r}: tolerance and rate must be positive")

    def target(self, generation: int, n_gen: int) -> float:
        """The target measure of ``generation`` (1..n_gen)."""
        if n_gen <= 1:
            return self.start
        return self.start + (self.end - self.start) * (generation - 1) / (n_gen - 1)

    def window(self, s_gen: float, gen: int, n_gen: int) -> tuple[float, float]:
        """The accepted interval ``(lo, hi]`` of generation ``gen + 1``'s measure (see the class).

        Raises:
            ConfigError: ``s_gen`` is not a finite number.
        """
        if not math.isfinite(s_gen):
            raise ConfigError(f"control {self.name!r}: the diversity of generation {gen} is not finite ({s_gen})")
        lo, hi = super().window(s_gen, gen, n_gen)  # the speed limit
        t = self.target(gen + 1, n_gen)
        band_lo, band_hi = t - self.tolerance, t + self.tolerance
        if max(lo, band_lo) < min(hi, band_hi):
            return max(lo, band_lo), min(hi, band_hi)
        if hi <= band_lo:  # the band is above what one generation can reach: rise
            return s_gen, hi
        return lo, s_gen  # it is below: fall


def target_control(
    start: float = 0.35, end: float = 0.75, tolerance: float = 0.05, rate: float = 0.05, name: str = "target"
) -> TargetControl:
    """A :class:`TargetControl`: the measure follows ``start`` -> ``end`` within ``tolerance``,
    changing by at most ``rate`` per generation.

    Raises:
        ConfigError: a value is not finite, or tolerance or rate is not positive.
    """
    return TargetControl(
        name, lambda gen, n_gen: rate, lambda gen, n_gen: -rate, start=start, end=end, tolerance=tolerance, rate=rate
    )


#: ``control = "target"``: from 0.35 (a random population's median similarity under the paper's
#: schema is about 0.31-0.35) to 0.75, between the published naive and rigid runs' last
#: generations, within 0.05, by at most 0.05 a generation.
TARGET = target_control()


# The authors' code writes the same margins its own way, with N hard-coded as 20
# (docs/original.md#diversity-control): ``max(0.1 - g*g/2000, 0.05)``, ``max(0.1 - 0.1*g/20, 0)``
# and ``max(0.05*g/20, 0.025)``. Up to N they equal Eq. 2 and 3, but not always to the last bit
# (rigid, gen 9: 0.059500000000000004 against 0.0595), and on medians of 3-decimal similarities
# that bit decides some acceptances. The importer uses these to tell what the original decided.
def original_rigid_upper(gen: int, n_gen: int) -> float:
    """Eq. 2's upper margin as the authors' code computes it: ``max(0.1 - gen²/(5 N²), 0.05)``."""
    return max(0.1 - gen * gen / (5 * n_gen * n_gen), 0.05)


def original_soft_upper(gen: int, n_gen: int) -> float:
    """Eq. 3's upper margin as the authors' code computes it: ``max(0.05 gen/N, 0.025)``."""
    return max(0.05 * gen / n_gen, 0.025)


def original_soft_lower(gen: int, n_gen: int) -> float:
    """Eq. 3's lower margin as the authors' code computes it: ``-max(0.1 - 0.1 gen/N, 0)``."""
    return -max(0.1 - 0.1 * gen / n_gen, 0.0)


ORIGINAL_RIGID = ControlFunction("rigid (original code)", original_rigid_upper, rigid_lower)
ORIGINAL_SOFT = ControlFunction("soft (original code)", original_soft_upper, original_soft_lower)


def custom_control(upper: Callable[..., float], lower: Callable[..., float], name: str = "custom") -> ControlFunction:
    """A user's control from two callables, ``f(gen)`` / ``g(gen)`` or ``f(gen, n_gen)`` / ``g(gen, n_gen)``.

    Example:
        >>> c = custom_control(lambda gen: 0.25, lambda gen, n_gen: -0.25 * gen / n_gen)
        >>> c.window(0.5, 10, 20)
        (0.375, 0.75)
    """
    return ControlFunction(name, _two_args(upper, "upper"), _two_args(lower, "lower"))


def _two_args(fn: Callable[..., float], what: str) -> Margin:
    try:
        n_params = len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        n_params = 2
    if n_params == 1:
        return lambda gen, n_gen: float(fn(gen))
    if n_params == 2:
        return lambda gen, n_gen: float(fn(gen, n_gen))
    raise ConfigError(f"control {what} function must take (gen) or (gen, n_gen), it takes {n_params} arguments")


def control_from_config(config: RunConfig) -> ControlFunction | None:
    """The control a config asks for; None for naive evolution."""
    if config.control == "naive":
        return None
    if config.control == "rigid":
        return RIGID
    if config.control == "soft":
        return SOFT
    if config.control == "target":
        return TARGET

    assert config.control_upper is not None and config.control_lower is not None  # RunConfig checks
    return ControlFunction(
        f"custom: ({config.control_lower}, {config.control_upper}]",
        compile_expression(config.control_upper),
        compile_expression(config.control_lower),
    )


def window_distance(window: tuple[float, float], value: float) -> float:
    """How far ``value`` lies outside ``(lo, hi]``; 0 inside."""
    lo, hi = window
    if value <= lo:
        return lo - value
    if value > hi:
        return value - hi
    return 0.0


@dataclass(frozen=True, slots=True)
class ControlIteration:
    """One candidate population tried by the control loop (1-based ``iteration``)."""

    iteration: int
    diversity: float
    lo: float | None
    hi: float | None
    accepted: bool
    p_mutation: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the run store."""
        return {
            "iteration": self.iteration,
            "median": self.diversity,
            "lo": self.lo,
            "hi": self.hi,
            "accepted": self.accepted,
            "mutation_rate": self.p_mutation,
        }


@dataclass(frozen=True)
class BreedingResult:
    """What the breeding of one generation produced.

    Attributes:
        population: the chosen candidate population.
        diversity: its diversity measure.
        window: the control window ``(lo, hi)``; None for naive evolution.
        iterations: every candidate population tried, in order.
        decision: summary for the run store: control, accepted, fallback, chosen iteration...
    """

    population: list[Any]
    diversity: float
    window: tuple[float, float] | None
    iterations: list[ControlIteration]
    decision: dict[str, Any]


def breed_under_control(
    make_population: Callable[[float, np.random.Generator], Sequence[_T]],
    measure: Callable[[Sequence[_T]], float],
    *,
    control: ControlFunction | None,
    s_gen: float | None,
    gen: int,
    n_gen: int,
    p_mutation: float,
    rng: np.random.Generator,
    mutation_decay: float = 0.02,
    decay_every: int = 5,
    max_iterations: int = 30,
    on_iteration: Callable[[ControlIteration], None] | None = None,
) -> BreedingResult:
    """Algorithm 1: breed candidate populations until one's diversity falls in the control window.

    Candidate ``it`` (1-based) is bred with the current mutation rate and measured; it is accepted
    when ``lo < diversity <= hi``. After every ``decay_every`` rejected candidates the rate drops
    by ``mutation_decay`` (not below 0). After ``max_iterations`` rejections the candidate closest
    to the window is taken (distance to the window, so under rigid control a population below
    the window is not preferred just for being near ``s_gen``, as in the original). With
    ``control=None`` (naive evolution) one population is bred and measured.

    Args:
        make_population: ``(p_mutation, rng) -> population``; breeds one candidate population.
        measure: population -> diversity measure.
        control: the control function, or None for naive evolution.
        s_gen: diversity of the evaluated generation ``gen`` (needed with a control).
        gen: index of the evaluated generation (1-based).
        n_gen: the configured number of generations.
        p_mutation: the starting per-gene mutation rate.
        rng: the generator every candidate is bred with.
        mutation_decay: rate decrease per decay step.
        decay_every: rejected candidates between two decays.
        max_iterations: most candidates tried.
        on_iteration: called after every candidate (for the store and the live view).

    Returns:
        The chosen population with every iteration as data.
    """
    rate = p_mutation
    if control is None:
        population = list(make_population(rate, rng))
        value = float(measure(population))
        it = ControlIteration(1, value, None, None, True, rate)
        if on_iteration is not None:
            on_iteration(it)
        decision = {
            "control": "naive",
            "accepted": True,
            "fallback": False,
            "iteration": 1,
            "diversity": value,
            "mutation_rate": rate,
        }
        return BreedingResult(population, value, None, [it], decision)
    if s_gen is None or not math.isfinite(s_gen):
        raise ValueError("diversity control needs the diversity of the evaluated generation")
    window = control.window(s_gen, gen, n_gen)
    iterations: list[ControlIteration] = []
    best: tuple[float, int, list[_T], float] | None = None  # (distance, iteration, population, diversity)
    for number in range(1, max_iterations + 1):
        population = list(make_population(rate, rng))
        value = float(measure(population))
        accepted = window[0] < value <= window[1]
        it = ControlIteration(number, value, window[0], window[1], accepted, rate)
        iterations.append(it)
        if on_iteration is not None:
            on_iteration(it)
        if accepted:
            decision = _decision(control, True, False, number, value, rate, s_gen, window)
            return BreedingResult(population, value, window, iterations, decision)
        distance = window_distance(window, value)
        if best is None or distance < best[0]:
            best = (distance, number, population, value)
        if number % decay_every == 0:
            rate = max(rate - mutation_decay, 0.0)
    assert best is not None  # max_iterations >= 1
    chosen = iterations[best[1] - 1]
    decision = _decision(control, False, True, best[1], best[3], chosen.p_mutation, s_gen, window)
    return BreedingResult(best[2], best[3], window, iterations, decision)


def _decision(
    control: ControlFunction,
    accepted: bool,
    fallback: bool,
    iteration: int,
    value: float,
    rate: float,
    s_gen: float,
    window: tuple[float, float],
) -> dict[str, Any]:
    return {
        "control": control.name,
        "accepted": accepted,
        "fallback": fallback,
        "iteration": iteration,
        "diversity": value,
        "mutation_rate": rate,
        "previous_diversity": s_gen,
        "window": [window[0], window[1]],
    }


__all__ = [
    "ORIGINAL_RIGID",
    "ORIGINAL_SOFT",
    "RIGID",
    "SOFT",
    "TARGET",
    "BreedingResult",
    "ControlFunction",
    "ControlIteration",
    "Margin",
    "TargetControl",
    "breed_under_control",
    "control_from_config",
    "custom_control",
    "original_rigid_upper",
    "original_soft_lower",
    "original_soft_upper",
    "rigid_lower",
    "rigid_upper",
    "soft_lower",
    "soft_upper",
    "target_control",
    "window_distance",
]
