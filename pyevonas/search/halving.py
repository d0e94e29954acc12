"""Successive halving inside a generation (``budget = "halving"``), and ranking at equal budget.

Every new child of a generation trains ``epochs // 4`` epochs (rung 1); the better half of them,
by fitness at that budget, continues to ``epochs // 2`` (rung 2); the better half of those to
``epochs`` (rung 3). Rungs of equal length are merged (``epochs = 2`` has rungs 1 and 2; ``epochs =
1`` only one). The learning rate follows the whole ``epochs``-epoch schedule, and a continued
candidate resumes from its checkpoint (``RUN_DIR/checkpoints/<id>.pt``; weights, optimizer,
generators, history), so a candidate that reaches the last rung has trained exactly as it would
have under ``budget = "full"``.

The loop records each candidate's budget as ``budget_epochs`` in its metrics (in both modes), its
fitness is the best validation accuracy over the epochs it trained, and the candidates promoted to
each rung are saved as loop state (``halving:<generation>:<rung epochs>``) before they train, so a
run killed at any point resumes the same rungs without repeating or losing a finished step.

Comparing candidates of different budgets. Within a rung every candidate has the same budget.
Across rungs, :func:`rank_key` orders by budget first, then fitness: a candidate that reached a
larger budget ranks above every candidate that stopped at a smaller one (it won the comparisons
at equal budget that stopped the others). Parents, elites and the run's best are chosen with this
order. Under ``budget = "full"`` every candidate has the same budget and the order is by fitness
alone, as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyevonas.runs.objectives import Objective, pareto_front
from pyevonas.runs.records import COPIES, Status, is_trained

#: Metrics key of the epochs a candidate was given.
BUDGET_KEY = "budget_epochs"
#: Subfolder of the run folder that holds the checkpoints of candidates that may continue.
CHECKPOINTS = "checkpoints"


def rungs(epochs: int) -> list[int]:
    """The budgets of the rungs: ``epochs // 4``, ``epochs // 2``, ``epochs`` (at least 1, no repeats)."""
    return sorted({max(1, epochs // 4), max(1, epochs // 2), epochs})


def budget_of(ind: Any, default: int) -> int:
    """The epochs an individual's result was trained for (``default`` when its metrics do not say)."""
    value = (getattr(ind, "metrics", None) or {}).get(BUDGET_KEY)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def reached(ind: Any) -> int:
    """The budget of an individual's last recorded result: 0 when it has none yet (or is pending again).

    A candidate running towards the next rung still holds its result of the rung before.
    """
    metrics = getattr(ind, "metrics", None) or {}
    if Status(ind.status) is Status.PENDING or not metrics.get("status"):
        return 0
    return budget_of(ind, 0)


def rank_key(ind: Any, default_budget: int) -> tuple[int, float]:
    """Sort key (larger is better) of a trained individual: its budget, then its fitness."""
    return budget_of(ind, default_budget), float(ind.fitness)


def selection_budgets(individuals: Sequence[Any], default_budget: int) -> list[int]:
    """The budget of each individual, for :func:`pyevonas.search.operators.select_top_k`."""
    return [budget_of(ind, default_budget) for ind in individuals]


def entrants(individuals: Sequence[Any]) -> list[Any]:
    """The candidates of a generation that take part in its halving: one per architecture, no copies.

    Cached and reused individuals carry another candidate's result and are left out; of several
    candidates with one architecture only the first (by index) trains, the others copy it.
    """
    seen: set[str] = set()
    out = []
    for ind in sorted(individuals, key=lambda i: i.index):
        if ind.status in COPIES or ind.canonical_key in seen:
            continue
        seen.add(ind.canonical_key)
        out.append(ind)
    return out


def promote(field: Sequence[Any]) -> list[int]:
    """Ids of the better half of a rung's field, trained ones only, best first.

    Half of the field rounded up, so that one candidate of three continues with two others. The
    order is by fitness; at equal fitness (after one short epoch many candidates still score the
    majority class) the lower last training loss, then the lower index, goes first.
    """
    trained = [ind for ind in field if is_trained(ind)]
    trained.sort(key=lambda ind: (-float(ind.fitness), _last_loss(ind), ind.index))
    return [ind.id for ind in trained[: math.ceil(len(field) / 2)]]


def _last_loss(ind: Any) -> float:
    losses = (getattr(ind, "metrics", None) or {}).get("train_loss_per_epoch") or []
    last = losses[-1] if losses else None
    return float(last) if isinstance(last, (int, float)) and math.isfinite(last) else math.inf


def state_key(generation: int, rung: int) -> str:
    """The loop-state key of the candidates promoted to the rung of ``rung`` epochs."""
    return f"halving:{generation}:{rung}"


def final_front(individuals: Sequence[Any], objectives: Sequence[Objective], epochs: int) -> list[Any]:
    """A run's final Pareto front (:func:`pyevonas.runs.objectives.pareto_front`), where only the
    results of the largest budget compete (``epochs``: the budget of a result that does not say):
    what best.json, the summary, the export and ``train --from-run`` give. Empty with one objective."""
    if len(objectives) < 2:
        return []
    return pareto_front(individuals, objectives, budget=lambda ind: budget_of(ind, epochs))


def checkpoint_path(run_dir: Path, individual_id: int) -> Path:
    """Where a candidate's training state is kept between rungs."""
    return Path(run_dir) / CHECKPOINTS / f"{individual_id}.pt"


def drop_checkpoints(run_dir: Path, ids: Sequence[int]) -> None:
    """Delete the checkpoints of candidates that will not continue (no error when absent)."""
    for individual_id in ids:
        path = checkpoint_path(run_dir, individual_id)
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)
    folder = Path(run_dir) / CHECKPOINTS
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


__all__ = [
    "BUDGET_KEY",
    "CHECKPOINTS",
    "budget_of",
    "checkpoint_path",
    "drop_checkpoints",
    "entrants",
    "final_front",
    "promote",
    "rank_key",
    "reached",
    "rungs",
    "selection_budgets",
    "state_key",
]
