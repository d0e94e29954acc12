"""Optuna adapter: prune (or answer) trials whose architecture is a near-duplicate of an earlier
trial's, and record each trial's novelty.

Call :meth:`NearDuplicateGuard.check` in the objective once the trial's architecture is known,
before paying for its evaluation::

    guard = NearDuplicateGuard(threshold=0.95)

    def objective(trial):
        arch = build_architecture(trial)          # from trial.suggest_* calls
        earlier = guard.check(trial, arch)        # raises optuna.TrialPruned for a near-duplicate
        return evaluate(arch)

The guard compares the architecture with those of the study's finished (``COMPLETE``) trials that
were evaluated, and with the running ones that already passed the guard (so parallel workers do
not evaluate twins side by side). What it records, as user attributes of the trial:

- ``pyevonas.architecture``: the architecture in text notation (every trial);
- ``pyevonas.novelty``: the mean of ``1 - similarity`` over its ``k`` nearest evaluated
  architectures (1.0 for the first trial);
- for a near-duplicate, ``pyevonas.duplicate_of`` (the earlier trial's number),
  ``pyevonas.duplicate_similarity`` and ``pyevonas.duplicate_value`` (the earlier result, None
  while the earlier trial still runs).

A near-duplicate is pruned (``on_duplicate="prune"``; for a single objective the earlier value
is first reported as its step-0 intermediate value, so samplers and pruners see a result), or,
with ``on_duplicate="reuse"``, :meth:`~NearDuplicateGuard.check` returns the earlier value for the
objective to return as its own (a twin that is still running is pruned either way). The
architectures are read from the study's storage, so the guard works with any storage and with
several processes; within one process it serialises its checks, so ``n_jobs > 1`` is safe too.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from pyevonas.integrations._common import as_arch, check_threshold
from pyevonas.metric import Arch, Archive, format_arch, similarity_matrix
from pyevonas.metric.api import SchemaArg

ARCHITECTURE = "pyevonas.architecture"
NOVELTY = "pyevonas.novelty"
DUPLICATE_OF = "pyevonas.duplicate_of"
DUPLICATE_SIMILARITY = "pyevonas.duplicate_similarity"
DUPLICATE_VALUE = "pyevonas.duplicate_value"

OnDuplicate = Literal["prune", "reuse"]


def _text(arch: Arch) -> str:
    return arch if isinstance(arch, str) else format_arch(arch)


def is_evaluated(trial: FrozenTrial) -> bool:
    """Whether a trial evaluated its architecture (complete, and not a near-duplicate answered
    with an earlier result)."""
    return (
        trial.state == TrialState.COMPLETE and ARCHITECTURE in trial.user_attrs and DUPLICATE_OF not in trial.user_attrs
    )


class _Seen:
    """The evaluated architectures of one study, added as their trials complete."""

    def __init__(self, schema: SchemaArg) -> None:
        self.archive = Archive(schema)
        self.trials: list[FrozenTrial] = []
        self.numbers: set[int] = set()

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        new = [t for t in trials if t.number not in self.numbers and is_evaluated(t)]
        if new:
            self.archive.add([str(t.user_attrs[ARCHITECTURE]) for t in new])
            self.trials.extend(new)
            self.numbers.update(t.number for t in new)


class NearDuplicateGuard:
    """Skips architectures at or above ``threshold`` similarity to an earlier trial's.

    Args:
        threshold: in (0, 1]; 1.0 catches identical architectures only.
        schema: the scoring schema.
        k: the neighbours of the novelty score.
        on_duplicate: ``"prune"`` raises :class:`optuna.TrialPruned`; ``"reuse"`` returns the
            earlier result from :meth:`check`.
    """

    def __init__(
        self, threshold: float = 0.95, schema: SchemaArg = "default", k: int = 5, on_duplicate: OnDuplicate = "prune"
    ) -> None:
        if on_duplicate not in ("prune", "reuse"):
            raise ValueError(f"on_duplicate must be 'prune' or 'reuse', got {on_duplicate!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.threshold = check_threshold(threshold)
        self.schema = schema
        self.k = k
        self.on_duplicate = on_duplicate
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def check(self, trial: Trial, arch: Any) -> float | list[float] | None:
        """Record ``arch`` on ``trial`` and say whether to evaluate it.

        Returns:
            None for an architecture to evaluate; the earlier trial's value (its values for a
            multi-objective study) for a near-duplicate under ``on_duplicate="reuse"``.

        Raises:
            optuna.TrialPruned: a near-duplicate under ``"prune"``, or the twin of a running trial.
        """
        text = _text(as_arch(arch))
        with self._lock:
            study = trial.study
            seen = self._seen.setdefault(study.study_name, _Seen(self.schema))
            all_trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
            seen.update(all_trials)
            trial.set_user_attr(NOVELTY, float(seen.archive.novelty([text], self.k)[0]))
            twin = self._twin(text, seen, all_trials, trial.number)
            trial.set_user_attr(ARCHITECTURE, text)  # after the search: a running trial is not its own twin
        if twin is None:
            return None
        earlier, sim = twin
        value: float | list[float] | None = None
        if earlier.state == TrialState.COMPLETE:
            value = list(earlier.values) if len(earlier.values) > 1 else float(earlier.values[0])
        trial.set_user_attr(DUPLICATE_OF, earlier.number)
        trial.set_user_attr(DUPLICATE_SIMILARITY, sim)
        trial.set_user_attr(DUPLICATE_VALUE, value)
        if value is not None and self.on_duplicate == "reuse":
            return value
        if isinstance(value, float):
            trial.report(value, 0)
        raise optuna.TrialPruned(
            f"near-duplicate (similarity {sim:.3f}) of trial {earlier.number}, which scored {value}"
        )

    def _twin(
        self, text: str, seen: _Seen, all_trials: Sequence[FrozenTrial], number: int
    ) -> tuple[FrozenTrial, float] | None:
        """The most similar earlier trial at or above the threshold: evaluated ones first, then running ones."""
        if len(seen.archive):
            idx, sims = seen.archive.nearest([text], 1)
            if sims[0, 0] >= self.threshold:
                return seen.trials[int(idx[0, 0])], float(sims[0, 0])
        running = [
            t
            for t in all_trials
            if t.state == TrialState.RUNNING
            and t.number != number
            and ARCHITECTURE in t.user_attrs
            and DUPLICATE_OF not in t.user_attrs
        ]
        if running:
            sims_r = similarity_matrix(
                [text], others=[str(t.user_attrs[ARCHITECTURE]) for t in running], schema=self.schema
            )[0]
            best = int(np.argmax(sims_r))
            if sims_r[best] >= self.threshold:
                return running[best], float(sims_r[best])
        return None


__all__ = [
    "ARCHITECTURE",
    "DUPLICATE_OF",
    "DUPLICATE_SIMILARITY",
    "DUPLICATE_VALUE",
    "NOVELTY",
    "NearDuplicateGuard",
    "is_evaluated",
]
