"""Golden snapshot of a seeded small search: the whole run must come out exactly as committed.

Two small searches (rigid and soft control, seed 0) run with a stub evaluator whose fitness is a
fixed function of the chromosome (no torch, no training). Every generation's chromosomes and
parents, the control loop's iterations and decisions, and the diversities are compared with
``tests/golden/search_seed0.json``. Any change that alters them fails here: a reordered random
draw, a different operator, a changed control rule or a changed similarity score.

When the change is intended, regenerate the file and commit it with the change that explains it::

    PYEVONAS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

(the test then rewrites the file and reports itself skipped; ``git diff tests/golden`` shows what
moved). See docs/development.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.loop import evolve

GOLDEN = Path(__file__).resolve().parent / "golden" / "search_seed0.json"
UPDATE_ENV = "PYEVONAS_UPDATE_GOLDEN"

#: The searches of the snapshot, small enough to run in about a second together: the settings
#: they share (the mutation rate decays at every rejected population) and each one's own.
SETTINGS: dict[str, Any] = {
    "seed": 0,
    "generations": 4,
    "population": 8,
    "top_k": 3,
    "max_control_iterations": 6,
    "decay_every": 1,
}
RUNS: dict[str, dict[str, Any]] = {
    "rigid": {"control": "rigid"},
    "soft": {"control": "soft", "elitism": 1},
}
DIGITS = 12  # floats are compared after rounding to this many decimals


def golden_fitness(chromosome: list[dict[str, Any]]) -> float:
    """A fixed pseudo-fitness in [0, 1) of a chromosome (its canonical JSON, hashed)."""
    text = json.dumps(chromosome, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def golden_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """Pretend training: one epoch, fitness from the chromosome."""
    fitness = golden_fitness(chromosome)
    return {"status": "ok", "fitness": fitness, "val_accuracy": fitness, "val_accuracy_per_epoch": [fitness]}


def _plain(value: Any) -> Any:
    """JSON-ready, floats rounded to DIGITS decimals, enum members as their values."""
    if isinstance(value, float):
        return round(value, DIGITS)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


def snapshot(run_dir: Path) -> dict[str, Any]:
    """What the snapshot holds of a finished run."""
    generations = []
    with RunStore.open(run_dir, readonly=True) as store:
        for g in store.generations():
            record = store.generation_record(g)
            generations.append(
                {
                    "generation": g,
                    "diversity": record.diversity,
                    "window": record.window,
                    "decision": record.decision,
                    "control_iterations": [
                        {k: v for k, v in it.items() if k != "extras"} for it in store.control_iterations(g)
                    ],
                    "individuals": [
                        {
                            "id": ind.id,
                            "parents": ind.parents,
                            "status": ind.status,
                            "fitness": ind.fitness,
                            "sequence": ind.sequence,
                            "chromosome": ind.chromosome,
                        }
                        for ind in store.individuals(g)
                    ],
                }
            )
    return {"generations": _plain(generations)}


def run_searches(folder: Path) -> dict[str, Any]:
    """Run the snapshot's searches in `folder`; return the snapshot of each, by name."""
    runs = {}
    for name, own in RUNS.items():
        config = RunConfig.resolve(None, {**SETTINGS, **own, "run_dir": str(folder / name)})
        result = evolve(config, evaluate_fn=golden_evaluate)
        runs[name] = {"settings": own, **snapshot(result.run_dir)}
    return {"settings": SETTINGS, "runs": runs}


def dumps(data: Any, indent: int = 0) -> str:
    """JSON with one line per gene and per control iteration: compact, yet diffs stay readable."""
    flat = json.dumps(data, sort_keys=True)
    if indent + len(flat) <= 120 or not isinstance(data, (dict, list)) or not data:
        return flat
    pad = " " * (indent + 1)
    if isinstance(data, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, indent + 1)}" for k, v in sorted(data.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + dumps(v, indent + 1) for v in data]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def test_a_seeded_search_matches_the_golden_snapshot(tmp_path: Path) -> None:
    """Rigid and soft searches of seed 0 give exactly the committed generations (see the module
    docstring to regenerate the file after an intended change)."""
    current = run_searches(tmp_path)
    if os.environ.get(UPDATE_ENV):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(dumps(current) + "\n", encoding="utf-8")
        pytest.skip(f"{UPDATE_ENV} is set: rewrote {GOLDEN.relative_to(GOLDEN.parents[2])}")
    assert GOLDEN.exists(), f"no {GOLDEN.name}: run with {UPDATE_ENV}=1 to create it"
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert current["settings"] == golden["settings"]
    assert current["runs"].keys() == golden["runs"].keys()
    for name, run in current["runs"].items():
        assert run["settings"] == golden["runs"][name]["settings"]
        now, then = run["generations"], golden["runs"][name]["generations"]
        assert len(now) == len(then)
        # Generation by generation, so a failure names the first one that moved.
        for g_now, g_then in zip(now, then, strict=True):
            assert g_now == g_then, f"the {name} run's generation {g_then['generation']} moved"


def test_the_snapshot_pins_what_a_change_could_move() -> None:
    """The committed runs exercise what they are meant to pin: breeding from ranked parents,
    rejected populations with a decaying mutation rate, the fallback, elites and the cache."""
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    decisions, iterations, statuses = [], [], []
    for run in golden["runs"].values():
        generations = run["generations"]
        assert [g["generation"] for g in generations] == list(range(1, SETTINGS["generations"] + 1))
        assert all(len(g["individuals"]) == SETTINGS["population"] for g in generations)
        for g in generations[1:]:
            assert g["window"] and g["control_iterations"]
            assert all(ind["parents"] for ind in g["individuals"])
            decisions.append(g["decision"])
            iterations += g["control_iterations"]
            statuses += [ind["status"] for ind in g["individuals"]]
    assert any(not it["accepted"] for it in iterations)
    assert len({it["mutation_rate"] for it in iterations}) > 1
    assert any(d["fallback"] for d in decisions) and any(d["elites"] for d in decisions)
    assert "cached" in statuses
