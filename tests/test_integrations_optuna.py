"""The Optuna adapter against the real Optuna (in-memory studies): near-duplicates pruned with the
earlier result reported, or answered with it, novelty recorded, running twins caught."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

import pyevonas
from pyevonas.integrations.optuna import (
    ARCHITECTURE,
    DUPLICATE_OF,
    DUPLICATE_SIMILARITY,
    DUPLICATE_VALUE,
    NOVELTY,
    NearDuplicateGuard,
    is_evaluated,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
ARCHS = ["C(16,3,1) B L g F(10)", "C(16,3,1) B L g F(10)", "C(64,5,2) M(2) C(32,3,1) g F(10)", "C(16,3,1) L g F(10)"]


def _study() -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))


def _run(guard: NearDuplicateGuard, archs: list[str]) -> tuple[optuna.Study, list[str]]:
    study, evaluated, feed = _study(), [], iter(archs)

    def objective(trial: optuna.Trial) -> float:
        arch = next(feed)
        earlier = guard.check(trial, arch)
        if earlier is not None:
            return earlier  # type: ignore[return-value]
        evaluated.append(arch)
        return float(len(arch))

    study.optimize(objective, n_trials=len(archs))
    return study, evaluated


def test_an_exact_twin_is_pruned_with_the_earlier_result_reported() -> None:
    study, evaluated = _run(NearDuplicateGuard(threshold=1.0), ARCHS)
    assert evaluated == [ARCHS[0], ARCHS[2], ARCHS[3]]
    twin = study.trials[1]
    assert twin.state == optuna.trial.TrialState.PRUNED
    assert twin.user_attrs[DUPLICATE_OF] == 0 and twin.user_attrs[DUPLICATE_SIMILARITY] == 1.0
    assert twin.user_attrs[DUPLICATE_VALUE] == study.trials[0].value
    assert twin.intermediate_values == {0: study.trials[0].value}
    assert [is_evaluated(t) for t in study.trials] == [True, False, True, True]
    assert study.trials[0].user_attrs[NOVELTY] == 1.0
    expected = np.mean(1 - pyevonas.similarity_matrix([ARCHS[3]], others=[ARCHS[0], ARCHS[2]]))
    assert study.trials[3].user_attrs[NOVELTY] == pytest.approx(expected)
    assert all(t.user_attrs[ARCHITECTURE] == a for t, a in zip(study.trials, ARCHS, strict=True))


def test_a_lower_threshold_catches_near_duplicates_and_reuse_returns_the_earlier_value() -> None:
    s = pyevonas.similarity(ARCHS[0], ARCHS[3])
    assert 0.5 < s < 1.0
    study, evaluated = _run(NearDuplicateGuard(threshold=s, on_duplicate="reuse"), ARCHS)
    assert evaluated == [ARCHS[0], ARCHS[2]]
    reused = study.trials[3]
    assert reused.state == optuna.trial.TrialState.COMPLETE and reused.value == study.trials[0].value
    assert reused.user_attrs[DUPLICATE_OF] == 0 and not is_evaluated(reused)


def test_a_twin_of_a_running_trial_is_pruned_without_a_value() -> None:
    study, guard = _study(), NearDuplicateGuard(threshold=1.0)
    first, second = study.ask(), study.ask()
    assert guard.check(first, ARCHS[0]) is None
    with pytest.raises(optuna.TrialPruned, match="trial 0"):
        guard.check(second, ARCHS[1])
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    study.tell(first, 1.0)
    assert study.trials[1].user_attrs[DUPLICATE_VALUE] is None


def test_a_real_study_with_parallel_threads_evaluates_no_near_duplicates() -> None:
    guard = NearDuplicateGuard(threshold=0.9)
    evaluated: list[str] = []
    choices = [f"C({f},{k},1) B L" for f, k in itertools.product((16, 32, 64), (3, 5))]

    def objective(trial: optuna.Trial) -> float:
        blocks = [trial.suggest_categorical(f"block_{i}", choices) for i in range(trial.suggest_int("n", 1, 2))]
        arch = " ".join(blocks) + " g F(10)"
        guard.check(trial, arch)
        evaluated.append(arch)
        return float(sum(int(b[2:4]) for b in blocks))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=60, n_jobs=2)
    m = pyevonas.similarity_matrix(evaluated)
    assert not np.triu(m >= 0.9, k=1).any()
    assert sum(DUPLICATE_OF in t.user_attrs for t in study.trials) > 0
    assert len(evaluated) == sum(is_evaluated(t) for t in study.trials)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="on_duplicate"):
        NearDuplicateGuard(on_duplicate="skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicateGuard(threshold=1.5)
