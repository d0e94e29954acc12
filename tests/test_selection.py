"""Parent selection beyond the paper's top k: Pareto ranks, crowding, hypervolume, novelty and DNS.

The numerical functions are checked against small examples worked by hand (in the comments);
the searches use a stub evaluator (fitness and a parameter count from the chromosome:
``helpers.mo_evaluate``), so what is tested is the selection and the loop, not training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import PatchTraining, kill_search_midway, mo_evaluate, run_config, stored_chromosomes

from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.errors import ConfigError
from pyevonas.runs.objectives import (
    REFERENCE_MARGIN,
    crowding_distance,
    dominance_matrix,
    front_crowding,
    hypervolume,
    non_dominated_sort,
    normalised_hypervolume,
    objective_matrix,
    parse_objective,
    parse_objectives,
)
from pyevonas.runs.records import Individual, Status
from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig
from pyevonas.search.events import FrontMeasured, GenerationBred, RunStarted
from pyevonas.search.loop import evolve
from pyevonas.search.operators import select_top_k
from pyevonas.search.selection import (
    SelectionSettings,
    choose_parents,
    dns_scores,
    front_isolation,
    novelty_scores,
)
from pyevonas.search.space import SearchSpace

PAPER_SPACE = SearchSpace.load("paper")
INF = math.inf


# ---------------------------------------------------------------------- Pareto ranking by hand
# Minimisation, two objectives:
#   a (1,5)  b (2,3)  c (4,2)  d (6,1)   nobody dominates them         -> front 0
#   e (3,4)  dominated by b (2,3) only                                   -> front 1
#   f (5,5)  dominated by b, c and by e (3,4)                            -> front 2
POINTS = np.array([[1, 5], [2, 3], [4, 2], [6, 1], [3, 4], [5, 5]], dtype=float)


def test_dominance_and_non_dominated_sorting_by_hand() -> None:
    dom = dominance_matrix(POINTS)
    assert dom[1, 4] and dom[1, 5] and dom[4, 5] and dom[2, 5]
    assert not dom[0, 1] and not dom[1, 0]  # a and b trade off
    assert not dom.diagonal().any()
    assert non_dominated_sort(POINTS).tolist() == [0, 0, 0, 0, 1, 2]
    # Equal points share a front; nothing to sort gives nothing.
    assert non_dominated_sort(np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])).tolist() == [0, 0, 1]
    assert non_dominated_sort(np.zeros((0, 2))).tolist() == []
    # One objective: the ranks are the sorted distinct values.
    assert non_dominated_sort(np.array([[3.0], [1.0], [2.0], [1.0]])).tolist() == [2, 0, 1, 0]
    # A missing value (+inf) is worse than any value.
    assert non_dominated_sort(np.array([[1.0, INF], [1.0, 9.0]])).tolist() == [1, 0]


def test_crowding_distance_by_hand() -> None:
    # The front a, b, c, d. Objective 1 spans 1..6 (range 5), objective 2 spans 1..5 (range 4).
    # a and d are the ends: infinite.
    # b (2,3): neighbours in obj 1 are a (1) and c (4): 3/5; in obj 2 c (2) and a (5): 3/4 -> 1.35
    # c (4,2): neighbours in obj 1 are b (2) and d (6): 4/5; in obj 2 d (1) and b (3): 2/4 -> 1.30
    assert crowding_distance(POINTS[:4]).tolist() == pytest.approx([INF, 1.35, 1.3, INF])
    assert crowding_distance(POINTS[:2]).tolist() == [INF, INF]
    # An objective whose values are all equal adds nothing.
    flat = np.array([[1.0, 7.0], [2.0, 7.0], [4.0, 7.0]])
    assert crowding_distance(flat).tolist() == pytest.approx([INF, 3 / 3, INF])
    ranks = non_dominated_sort(POINTS)
    per_front = front_crowding(POINTS, ranks)
    assert per_front[:4].tolist() == pytest.approx([INF, 1.35, 1.3, INF])
    assert per_front[4:].tolist() == [INF, INF]  # alone on their fronts


def test_front_isolation_is_the_distance_to_the_nearest_member_of_the_front() -> None:
    distance = np.array(
        [
            [0.0, 0.2, 0.7],
            [0.2, 0.0, 0.5],
            [0.7, 0.5, 0.0],
        ]
    )
    assert front_isolation(distance, np.array([0, 0, 0])).tolist() == pytest.approx([0.2, 0.2, 0.5])
    assert front_isolation(distance, np.array([0, 0, 1])).tolist() == pytest.approx([0.2, 0.2, INF])


def test_hypervolume_by_hand() -> None:
    # Reference (7, 6), the front a, b, c, d sorted by objective 1:
    # [1,2) x height 6-5 = 1; [2,4) x 6-3 = 6; [4,6) x 6-2 = 8; [6,7) x 6-1 = 5 -> 20.
    assert hypervolume(POINTS[:4], [7, 6]) == pytest.approx(20.0)
    # Dominated points and points beyond the reference add nothing.
    assert hypervolume(POINTS, [7, 6]) == pytest.approx(20.0)
    assert hypervolume(np.vstack([POINTS[:4], [[8, 0]], [[0, 6]]]), [7, 6]) == pytest.approx(20.0)
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0
    # Three objectives: one point (1,1,1) against (2,2,2) is a unit cube; two points (0,1,1) and
    # (1,0,1) are boxes of volume 2 each overlapping in the unit cube [1,2]^3 -> 3.
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), [2, 2, 2]) == pytest.approx(1.0)
    assert hypervolume(np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]), [2, 2, 2]) == pytest.approx(3.0)
    # Add (1,1,0): its box [1,2]x[1,2]x[0,2] (volume 2) overlaps the union in [1,2]^2 x [1,2] -> 3 + 1 = 4.
    three = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    assert hypervolume(three, [2, 2, 2]) == pytest.approx(4.0)
    # One objective: a length.
    assert hypervolume(np.array([[0.25], [0.5]]), [1.0]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="objectives"):
        hypervolume(POINTS, [1, 2, 3])


def test_a_random_front_agrees_with_a_monte_carlo_estimate() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((12, 3))
    exact = hypervolume(points, [1, 1, 1])
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for p in points:
        covered |= np.all(samples >= p, axis=1)
    assert exact == pytest.approx(covered.mean(), abs=0.01)


# ---------------------------------------------------------------------- novelty and DNS by hand
# Four candidates on a line at x = 0, 0.1, 0.9, 1.0 with fitness 4, 3, 2, 1 (minimisation form
# -4, -3, -2, -1), distance |x_i - x_j|.
X = np.array([0.0, 0.1, 0.9, 1.0])
LINE = np.abs(X[:, None] - X[None, :])
FITNESS = np.array([[-4.0], [-3.0], [-2.0], [-1.0]])


def test_novelty_by_hand() -> None:
    # k = 1, each one left out of its own neighbours: 0.1, 0.1, 0.1, 0.1.
    assert novelty_scores(LINE, 1, self_index=[0, 1, 2, 3]).tolist() == pytest.approx([0.1, 0.1, 0.1, 0.1])
    # k = 2: x=0 -> (0.1 + 0.9)/2 = 0.5; x=0.1 -> (0.1 + 0.8)/2 = 0.45; x=0.9 -> (0.1+0.8)/2; x=1 -> (0.1+0.9)/2.
    assert novelty_scores(LINE, 2, self_index=[0, 1, 2, 3]).tolist() == pytest.approx([0.5, 0.45, 0.45, 0.5])
    # Against an archive without the candidates themselves, nothing is left out.
    assert novelty_scores(LINE[:1], 2).tolist() == pytest.approx([0.05])
    # No other archive member: infinitely novel.
    assert novelty_scores(np.zeros((1, 1)), 3, self_index=[0]).tolist() == [INF]


def test_dns_competition_by_hand() -> None:
    fitter = dominance_matrix(FITNESS).T  # fitter[i, j]: j is fitter than i
    assert fitter[3].tolist() == [True, True, True, False]
    # k = 1: the best has nobody fitter -> inf; x=0.1: nearest fitter x=0 -> 0.1;
    # x=0.9: fitter are x=0, 0.1 -> 0.8; x=1.0: fitter x=0, 0.1, 0.9 -> 0.1.
    assert dns_scores(LINE, fitter, 1).tolist() == pytest.approx([INF, 0.1, 0.8, 0.1])
    # k = 2: x=0.9 -> (0.8 + 0.9)/2 = 0.85; x=1.0 -> (0.1 + 0.9)/2 = 0.5; x=0.1 has one fitter -> 0.1.
    assert dns_scores(LINE, fitter, 2).tolist() == pytest.approx([INF, 0.1, 0.85, 0.5])
    # So the two survivors are the best and the distant x=0.9, not the second fittest x=0.1.
    order = np.argsort(-dns_scores(LINE, fitter, 1), kind="stable")
    assert order[:2].tolist() == [0, 2]


def test_dns_with_two_objectives_uses_dominance() -> None:
    # b dominates e, e dominates f (POINTS): e's fitter set is {b}, f's is {b, c, e}; the front
    # (a, b, c, d) has no one fitter.
    fitter = dominance_matrix(POINTS).T
    distance = np.abs(np.arange(6)[:, None] - np.arange(6)[None, :]).astype(float)
    scores = dns_scores(distance, fitter, 1)
    assert scores[:4].tolist() == [INF] * 4
    assert scores[4] == 3.0  # |4 - 1|
    assert scores[5] == 1.0  # nearest of b (1), c (2), e (4) to 5


# ---------------------------------------------------------------------- objectives and settings
def test_objective_names_directions_and_aliases() -> None:
    assert parse_objective("val_accuracy").metric == "fitness" and parse_objective("val_accuracy").maximise
    assert parse_objective("test_accuracy").maximise
    assert not parse_objective("params").maximise
    assert parse_objective("macs").metric == "flops"
    assert parse_objective("max:score").maximise and parse_objective("max:score").label == "score"
    assert not parse_objective("min:accuracy").maximise
    assert [o.name for o in parse_objectives("val_accuracy, params")] == ["val_accuracy", "params"]
    for bad, message in (("", "at least one"), ("val_accuracy,fitness", "twice"), ("2x", "metric name")):
        with pytest.raises(ValueError, match=message):
            parse_objectives(bad)


def test_objective_matrix_reads_fields_and_extra_metrics() -> None:
    ind = _individual(1, 0.5, params=100, metrics={"energy": 3.0})
    objectives = parse_objectives(["val_accuracy", "params", "energy", "latency_ms"])
    assert objective_matrix([ind], objectives).tolist() == [[-0.5, 100.0, 3.0, INF]]


def test_run_config_accepts_the_settings_from_flags_files_and_the_api(tmp_path: Path) -> None:
    config = RunConfig.resolve(None, {"objectives": "val_accuracy,params", "selection": "dns"})
    assert config.objectives == ["val_accuracy", "params"] and config.selection == "dns"
    assert config.run_name == "digits_rigid_dns_s0"
    toml = tmp_path / "run.toml"
    toml.write_text(
        'objectives = ["val_accuracy", "latency_ms"]\nselection = "novelty"\nneighbours = 5\narchive = "population"\n'
        'tiebreak = "similarity"\n[reference_point]\nlatency_ms = 2.5\n'
    )
    config = RunConfig.resolve(toml)
    assert (config.selection, config.neighbours, config.archive, config.tiebreak) == (
        "novelty",
        5,
        "population",
        "similarity",
    )
    assert RunConfig.from_dict(config.to_dict()) == config  # saved with the run, read back on resume
    assert RunConfig().objectives == ["val_accuracy"] and RunConfig().selection == "topk"
    for bad, named in (
        ({"selection": "random"}, "'selection'"),
        ({"neighbours": 0}, "'neighbours'"),
        ({"archive": "world"}, "'archive'"),
        ({"objectives": "val_accuracy,val_accuracy"}, "'objectives'"),
        ({"reference_point": {"params": 1.0}}, "reference_point"),
    ):
        with pytest.raises(ConfigError, match=named):
            RunConfig.resolve(None, bad)


def _individual(i: int, fitness: float | None, params: int | None = None, **more: Any) -> Individual:
    return Individual(
        id=i,
        generation=1,
        index=i,
        name=f"g1-{i}",
        chromosome=[{"layer": "Dense", "units": i}],
        sequence="F",
        parents=None,
        status=Status.OK if fitness is not None else Status.FAILED,
        fitness=fitness,
        params=params,
        canonical_key=f"k{i}",
        **more,
    )


def test_the_default_selection_is_the_papers_top_k() -> None:
    gen = [_individual(i, f) for i, f in enumerate([0.3, None, 0.9, 0.3, 0.7])]
    chosen = choose_parents(gen, SelectionSettings(), 3)
    ranked = select_top_k([ind.fitness for ind in gen], 3)
    assert [p.id for p in chosen.parents] == [gen[i].id for i in ranked] == [2, 4, 0]
    assert SelectionSettings().is_default and not SelectionSettings(method="dns").is_default


def test_a_default_run_stores_nothing_new(tmp_path: Path) -> None:
    events: list[Any] = []
    result = evolve(run_config(tmp_path / "run", generations=2), evaluate_fn=mo_evaluate, observers=[events.append])
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert "selection" not in store.meta
        assert all(store.generation_record(g).extras is None for g in store.generations())
    assert not any(isinstance(e, FrontMeasured) for e in events)


@pytest.mark.parametrize("method", ["topk", "novelty", "dns"])
def test_a_generation_without_trained_candidates_gives_no_parents(method: str) -> None:
    gen = [_individual(i, None) for i in range(3)]
    settings = SelectionSettings(method=method, objectives=parse_objectives("val_accuracy,params"))
    chosen = choose_parents(gen, settings, 2, similarity=lambda a, b: np.ones((len(a), len(b))))
    assert chosen.parents == []
    assert chosen.front is not None and chosen.front.size == 0 and chosen.front.hypervolume is None


def test_an_objective_no_candidate_records_ranks_nothing() -> None:
    gen = [_individual(i, f, params=p) for i, (f, p) in enumerate([(0.9, 300), (0.8, 100), (0.7, 200)])]
    settings = SelectionSettings(objectives=parse_objectives("val_accuracy,params,latency_ms"))
    chosen = choose_parents(gen, settings, 3)
    assert chosen.record["pareto_rank"] == [0, 0, 1]  # (0.7, 200) is dominated by (0.8, 100)
    assert chosen.front is not None and chosen.front.hypervolume is None  # no reference for latency


def test_a_longer_training_budget_ranks_first_and_is_fitter() -> None:
    # Successive halving: g1-0 trained 4 epochs (0.5), g1-1 and g1-2 only 1 (0.9 and 0.8).
    gen = [_individual(i, f, params=p) for i, (f, p) in enumerate([(0.5, 300), (0.9, 100), (0.8, 200)])]
    epochs = {0: 4, 1: 1, 2: 1}

    def budget(ind: Individual) -> int:
        return epochs[ind.id]

    def same(a: Any, b: Any) -> np.ndarray:
        return np.full((len(a), len(b)), 0.5)

    assert [p.id for p in choose_parents(gen, SelectionSettings(), 3, budget=budget).parents] == [0, 1, 2]
    pareto = SelectionSettings(objectives=parse_objectives("val_accuracy,params"))
    assert [p.id for p in choose_parents(gen, pareto, 3, budget=budget).parents][0] == 0
    dns = choose_parents(gen, SelectionSettings(method="dns"), 3, budget=budget, similarity=same)
    # Only g1-0 has no one fitter; g1-1 has g1-0, g1-2 has both: finite scores, equal distances.
    assert dns.record["competition"] == [INF, 0.5, 0.5] and dns.parents[0].id == 0


def test_pareto_top_k_takes_the_front_first_then_the_least_crowded() -> None:
    # Accuracy and params of the POINTS example (accuracy = -objective 1 / 10 so higher is better).
    gen = [_individual(i, 1 - p[0] / 10, params=int(p[1])) for i, p in enumerate(POINTS)]
    settings = SelectionSettings(objectives=parse_objectives("val_accuracy,params"))
    chosen = choose_parents(gen, settings, 5)
    # Front 0 = a, b, c, d: the ends (infinite crowding) in population order, then b (1.35), c (1.30).
    assert [p.id for p in chosen.parents] == [0, 3, 1, 2, 4]
    assert chosen.record["pareto_rank"] == [0, 0, 0, 0, 1, 2]
    assert chosen.front is not None and chosen.front.size == 4


# ---------------------------------------------------------------------- short searches
OPTIONS: dict[str, dict[str, Any]] = {
    "pareto": {"objectives": "val_accuracy,params"},
    "pareto-similarity": {"objectives": "val_accuracy,params", "tiebreak": "similarity", "control": "soft"},
    "novelty": {"selection": "novelty"},
    "novelty-population": {"selection": "novelty", "archive": "population", "control": "naive"},
    "dns": {"selection": "dns"},
    "dns-run-pareto": {"selection": "dns", "archive": "run", "objectives": "val_accuracy,params", "elitism": 1},
    "dns-custom": {"selection": "dns", "control": "custom", "control_upper": "0.05", "control_lower": "-0.05"},
    "pareto-halving": {"objectives": "val_accuracy,params", "budget": "halving"},
    "dns-halving": {"selection": "dns", "budget": "halving"},
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_short_search_with_each_option(tmp_path: Path, option: str) -> None:
    events: list[Any] = []
    config = run_config(tmp_path / "run", **OPTIONS[option])
    settings = SelectionSettings.from_config(config)
    result = evolve(config, evaluate_fn=mo_evaluate, observers=[events.append])
    bred = {e.generation: e.decision for e in events if isinstance(e, GenerationBred)}
    fronts = [e for e in events if isinstance(e, FrontMeasured)]
    assert result.best is not None
    with RunStore.open(result.run_dir, readonly=True) as store:
        assert store.meta["selection"] == settings.describe()
        assert store.meta["control"] == f"{config.control} + {settings.label}"
        for g in store.generations():
            individuals = store.individuals(g)
            for ind in individuals:
                PAPER_SPACE.check(ind.chromosome)
            record = store.generation_record(g).extras["selection"]
            assert record["method"] == config.selection
            assert len(record["parents"]) == config.top_k
            if g + 1 in bred:  # the next generation was bred from exactly these parents
                assert bred[g + 1]["parents"] == record["parents"]
            if settings.multi:
                assert len(record["pareto_rank"]) == len(individuals)
                assert min(r for r in record["pareto_rank"] if r is not None) == 0
                assert record["front"]["front_size"] >= 1
            if config.selection == "novelty":
                assert len(record["novelty"]) == len(individuals)
            if config.selection == "dns":
                assert any(s == INF for s in record["competition"])  # the best has no one fitter
    if settings.multi:
        assert [f.generation for f in fronts] == [1, 2, 3]
        so_far = [f.hypervolume_so_far for f in fronts]
        assert all(h is not None and 0 < h <= 1 for h in so_far)
        assert so_far == sorted(so_far)  # the front of everything so far never shrinks
        ref = fronts[0].reference_point
        assert ref is not None and ref["val_accuracy"] == 0.0
        with RunStore.open(result.run_dir, readonly=True) as store:
            first = [ind.params for ind in store.individuals(1)]
        assert ref["params"] == pytest.approx(REFERENCE_MARGIN * max(p for p in first if p is not None))
        assert all(f.reference_point == ref for f in fronts)
    else:
        assert fronts == []


def test_dns_prefers_a_distant_candidate_over_a_crowded_fitter_one(tmp_path: Path) -> None:
    """In a real generation, DNS picks parents that top k would not: at least one parent is not
    among the top k by fitness, and every parent it picks beats every non-parent on the score."""
    config = run_config(tmp_path / "run", selection="dns", generations=1, population=12, top_k=4)
    result = evolve(config, evaluate_fn=mo_evaluate)
    with RunStore.open(result.run_dir, readonly=True) as store:
        individuals = store.individuals(1)
        record = store.generation_record(1).extras["selection"]
    scores = {ind.id: s for ind, s in zip(individuals, record["competition"], strict=True)}
    parents = record["parents"]
    worst_parent = min(scores[p] for p in parents)
    assert all(s <= worst_parent for i, s in scores.items() if i not in parents and s is not None)
    top = [individuals[i].id for i in select_top_k([ind.fitness for ind in individuals], 4)]
    assert parents[0] == top[0]  # the fittest always survives (infinite score)
    assert set(parents) != set(top)


def test_normalised_hypervolume_is_the_share_of_the_unit_box() -> None:
    # One candidate of accuracy 0.8 and params 50 against the reference (0, 100): the box
    # [0, 0.8] x [0.5, 1] of (accuracy, params / 100), area 0.8 * 0.5 = 0.4.
    objectives = parse_objectives("val_accuracy,params")
    assert normalised_hypervolume([_individual(1, 0.8, params=50)], objectives, [0.0, 100.0]) == pytest.approx(0.4)
    assert normalised_hypervolume([_individual(1, 0.8, params=50)], objectives, [0.0, None]) is None


# ---------------------------------------------------------------------- kill and resume
@pytest.mark.parametrize(
    ("option", "mode"),
    [("pareto", "kill-breeding"), ("novelty", "kill-breeding"), ("dns-run-pareto", "kill-training")],
)
def test_kill_then_resume_gives_the_chromosomes_of_an_uninterrupted_run(
    tmp_path: Path, option: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _log = kill_search_midway(tmp_path, mode, "mo_evaluate", **OPTIONS[option])

    import pyevonas.training.loop

    monkeypatch.setattr(pyevonas.training.loop, "evaluate", mo_evaluate)
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--quiet"]) == 0
    reference = evolve(run_config(tmp_path / "reference", **OPTIONS[option]), evaluate_fn=mo_evaluate)
    assert stored_chromosomes(run_dir) == stored_chromosomes(reference.run_dir)
    with RunStore.open(run_dir, readonly=True) as a, RunStore.open(reference.run_dir, readonly=True) as b:
        for g in b.generations():
            assert a.generation_record(g).extras == b.generation_record(g).extras


# ---------------------------------------------------------------------- CLI, live view, report
@pytest.fixture
def stub_training(patch_training: PatchTraining) -> None:
    patch_training(mo_evaluate)


def test_the_options_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_training: None
) -> None:
    run_dir = tmp_path / "run"
    args = ["--generations", "2", "--population", "4", "--run-dir", str(run_dir), "--quiet"]
    options = ["--objectives", "val_accuracy,params", "--selection", "dns", "--neighbours", "2", "--archive", "run"]
    assert run_guarded(app, ["evolve", *args, *options]) == 0, capsys.readouterr().err
    with RunStore.open(run_dir, readonly=True) as store:
        config = RunConfig.from_dict(store.config)
        assert store.generation_record(2).extras["selection"]["method"] == "dns"
    assert (config.objectives, config.selection, config.neighbours, config.archive) == (
        ["val_accuracy", "params"],
        "dns",
        2,
        "run",
    )
    capsys.readouterr()
    assert run_guarded(app, ["evolve", "--resume", str(run_dir), "--selection", "topk", "--quiet"]) == 2
    assert "--selection" in capsys.readouterr().err
    assert run_guarded(app, ["evolve", *args[:4], "--selection", "best", "--quiet"]) == 2
    assert "'selection'" in " ".join(capsys.readouterr().err.split())


def test_the_live_view_shows_the_front() -> None:
    import io

    from rich.console import Console

    from pyevonas.cli.live import LiveView

    out = io.StringIO()
    view = LiveView(Console(file=out, width=200), plain=True)
    view(RunStarted(Path("runs/x"), RunConfig(selection="dns"), False))
    view(FrontMeasured(2, ("val_accuracy", "params"), 4, 0.4123, 7, 0.5, {"val_accuracy": 0.0, "params": 9.0}))
    assert "Pareto front (val_accuracy, params) of generation 2: 4, hypervolume 0.412; run so far: 7, 0.500" in (
        out.getvalue()
    )
    rendered = Console(file=io.StringIO(), width=200, record=True)
    rendered.print(view.render())
    text = rendered.export_text()
    assert "hypervolume 0.412" in text and "rigid + dns" in text


def test_the_report_shows_fronts_and_hypervolume(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from pyevonas.report import write_report

    events: list[Any] = []
    pareto = evolve(
        run_config(tmp_path / "pareto", name="pareto", **OPTIONS["pareto"]),
        evaluate_fn=mo_evaluate,
        observers=[events.append],
    )
    plain = evolve(run_config(tmp_path / "plain", name="plain"), evaluate_fn=mo_evaluate)
    doc = write_report([pareto.run_dir], tmp_path / "one", run_sections=False)
    # Alone, the report uses the run's own reference, so it says what the live view said.
    fronts = [e for e in events if isinstance(e, FrontMeasured)]
    gens = doc["pareto"]["runs"][0]["generations"]
    assert [g["hypervolume_so_far"] for g in gens] == pytest.approx([f.hypervolume_so_far for f in fronts])
    assert [g["front_size"] for g in gens] == [f.size for f in fronts]
    assert doc["pareto"]["reference_point"] == pytest.approx(fronts[0].reference_point)
    saved = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert saved["pareto"]["objectives"] == ["val_accuracy", "params"]
    both = write_report([pareto.run_dir, plain.run_dir], tmp_path / "two", run_sections=False)
    runs = {r["name"]: r for r in both["pareto"]["runs"]}
    assert runs["plain"]["selection"]["method"] == "topk"
    assert all(r["hypervolume"] is not None and r["front"] for r in runs.values())
    page = (tmp_path / "two" / "index.html").read_text()
    assert "Pareto fronts and hypervolume" in page and "objectives val_accuracy, params" in page
    assert "figures/pareto_hypervolume_runs.png" in both["figures"]
    # The per-run figure (drawn with the run sections).
    from pyevonas.report.analysis import analyse_run, load_run
    from pyevonas.report.figures import png_bytes
    from pyevonas.report.pareto import _run_figure

    st = analyse_run(load_run(pareto.run_dir))
    objectives = parse_objectives("val_accuracy,params")
    assert png_bytes(_run_figure(st, doc["pareto"]["runs"][0], objectives)()).startswith(b"\x89PNG")
    with pytest.raises(ConfigError, match="objectives"):
        write_report([plain.run_dir], tmp_path / "bad", objectives="val_accuracy,val_accuracy")


@pytest.mark.slow
def test_a_tiny_real_search_by_accuracy_and_size_with_dns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real training on digits: every trained candidate records params, so the front is real."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    args = ["--generations", "2", "--population", "4", "--epochs", "1", "--device", "cpu", "--workers", "1"]
    options = ["--objectives", "val_accuracy,params", "--selection", "dns", "--run-dir", str(run_dir), "--quiet"]
    assert run_guarded(app, ["evolve", *args, *options]) == 0, capsys.readouterr().err
    with RunStore.open(run_dir, readonly=True) as store:
        record = store.generation_record(2).extras["selection"]
        trained = [ind for ind in store.individuals() if ind.status == "ok"]
    assert trained and all(ind.params and ind.params > 0 for ind in trained)
    assert record["front"]["front_size"] >= 1 and 0 < record["front"]["hypervolume_so_far"] <= 1
