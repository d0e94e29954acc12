"""Tests of pyevonas.report: every figure for a small run and an imported run, the numbers, and Table 3."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import pyevonas
from pyevonas.errors import RunStoreError
from pyevonas.report.analysis import GenerationData, RunData, analyse_run, load_run, pearson, similar_pairs
from pyevonas.report.html import write_report
from pyevonas.runs.importer import import_run
from pyevonas.runs.store import RunStore

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FIGURES = (
    "fig5_heatmaps",
    "fig6_fitness_similarity",
    "fig7_alignment_chart",
    "fig8_clustergram",
    "fig9_gene_frequency",
    "fig20_pairs",
    "fig17_18_size_latency",
)
COMPARISON_FIGURES = (
    "all_fig12_grouped_curves",
    "all_fig17_18_grouped_size_latency",
    "all_cifar10_fig7_alignment_chart",
    "all_cifar10_fig8_19_clustergram",
    "all_cifar10_fig9_gene_frequency",
    "all_digits_fig7_alignment_chart",
    "all_digits_fig9_gene_frequency",
)

# Three generations of six; (text notation, status, fitness, size MB, latency ms).
# In generation 1, BETTER and WORSE differ by one BatchNorm and 0.4 in fitness (a Fig. 20 pair).
BETTER = "C(32,3,1) B L M(2) C(64,3,1) B L g F(64)"
WORSE = "C(32,3,1) B L M(2) C(64,3,1) L g F(64)"
SMALL_RUN: list[list[tuple[str, str, float | None, float | None, float | None]]] = [
    [
        (BETTER, "ok", 0.80, 1.2, 3.0),
        (WORSE, "ok", 0.40, 1.1, 2.5),
        ("T(64,3,1) D(3,1) B G F(32)", "ok", 0.55, 0.7, 1.5),
        ("R(32,3,1) A(2) t(64,5,2) E O(0.2) F(16)", "ok", 0.60, 2.0, 4.0),
        ("C(16,1,1) I L g", "failed", None, 0.2, None),
        ("C(128,7,1) C(128,7,1) C(128,7,1) E F(96)", "oversized", None, 55.0, None),
    ],
    [
        (BETTER, "ok", 0.82, 1.2, 3.1),
        ("C(32,3,1) B L M(2) T(64,3,1) g F(64)", "ok", 0.85, 1.5, 3.3),
        ("T(64,3,1) D(3,1) B D(5,1) G F(32)", "ok", 0.70, 0.8, 1.7),
        ("C(32,3,1) B L A(2) g", "ok", 0.65, 0.6, 1.0),
        ("D(3,1) B L M(2) g F(32)", "ok", 0.50, 0.3, 0.8),
        ("C(32,5,2) B L M(2) g F(64)", "ok", 0.78, 1.0, 2.0),
    ],
    [
        ("C(32,3,1) B L M(2) T(64,3,1) g F(64)", "ok", 0.86, 1.5, 3.2),
        ("C(32,3,1) B L M(2) T(64,3,1) D(3,1) g F(64)", "ok", 0.88, 1.6, 3.6),
        ("C(32,3,1) B L M(2) T(64,3,1) g O(0.1) F(64)", "ok", 0.84, 1.5, 3.0),
        ("C(32,3,1) B L T(64,3,1) g F(64)", "ok", 0.83, 1.4, 2.9),
        ("C(32,3,1) B M(2) T(64,3,1) g F(64)", "ok", 0.81, 1.4, 2.8),
        ("C(32,3,1) B L M(2) T(64,3,1) g", "ok", 0.79, 1.3, 2.7),
    ],
]
WINDOWS = {2: (0.30, 0.40), 3: (0.45, 0.55)}


def make_small_run(run_dir: Path) -> Path:
    """A three-generation run written with the RunStore API; generation 3 has no stored matrix."""
    store = RunStore.create(
        run_dir,
        config={"dataset": "digits", "seed": 7},
        scoring=pyevonas.Scoring.builtin("default").to_dict(),
        space={},
        meta={"source": "test", "dataset": "digits", "control": "rigid", "seed": 7, "name": "small"},
    )
    with store:
        for g, population in enumerate(SMALL_RUN, 1):
            chroms = [pyevonas.parse_arch(text) for text, *_ in population]
            for k, ((_, status, fitness, size, latency), chrom) in enumerate(zip(population, chroms, strict=True)):
                ident = store.add_individual(g, k, f"g{g}i{k}", chrom, pyevonas.sequence(chrom))
                metrics = {"status": status, "fitness": fitness, "size_mb": size, "latency_ms": latency}
                if status != "ok":
                    metrics["error"] = f"{status} on purpose"
                store.set_result(ident, metrics)
            matrix = pyevonas.similarity_matrix(chroms) if g < 3 else None
            diversity = None if matrix is None else pyevonas.diversity(matrix)
            store.save_generation(
                g,
                matrix=matrix,
                diversity=diversity,
                window=WINDOWS.get(g),
                decision={"accepted": True} if g in WINDOWS else None,
            )
            if g == 2:
                for it in (1, 2, 3):
                    store.add_control_iteration(g, it, 0.2 + 0.1 * it, 0.30, 0.40, it == 3, 20 - 2 * it)
    return run_dir


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_small_run(tmp_path_factory.mktemp("small") / "small")


@pytest.fixture(scope="module")
def imported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("imported") / "evonas_cifar10_s1_div_g4"
    import_run(EVONAS, run_dir)
    return run_dir


def _embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _check_report(out: Path, doc: dict[str, Any], expected: list[str]) -> None:
    page = (out / "index.html").read_text(encoding="utf-8")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8")) == json.loads(json.dumps(doc))
    files = {Path(f).stem for f in doc["figures"]}
    assert set(expected) <= files, set(expected) - files
    pngs = _embedded_pngs(page)
    assert len(pngs) == len(doc["figures"])  # every figure is embedded: the page opens offline
    for name in doc["figures"]:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        assert data in pngs
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a server
    assert not list(out.glob(".report-*"))  # no temporary folder left


def test_small_run_report_has_every_figure_and_the_right_numbers(small_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    doc = write_report([small_run], out)
    _check_report(out, doc, [f"small_{f}" for f in RUN_FIGURES])
    (run,) = doc["runs"]
    gens = run["generations"]
    assert [g["max_fitness"] for g in gens] == [0.80, 0.85, 0.88]
    assert [(g["n_failed"], g["n_oversized"], g["n_trained"]) for g in gens] == [(1, 1, 4), (0, 0, 6), (0, 0, 6)]
    assert run["best"]["name"] == "g3i1" and run["best"]["fitness"] == 0.88
    medians = []
    for population in SMALL_RUN:
        m = pyevonas.similarity_matrix([t for t, *_ in population])  # default schema: the run's scoring
        medians.append(pyevonas.diversity(m, how="upper"))
    assert [g["median_similarity"] for g in gens] == pytest.approx(medians, abs=1e-12)
    assert run["matrix_source"] == "recomputed (default schema) + stored"
    expected_r = float(np.corrcoef([0.80, 0.85, 0.88], medians)[0, 1])
    assert run["pearson_fitness_similarity"] == pytest.approx(expected_r, abs=1e-12)
    assert doc["table3"] == [
        {
            "dataset": "digits",
            "control": "rigid",
            "label": "rigid",
            "settings": {},
            "runs": [{"name": "small", "seed": 7, "n_generations": 3, "pearson": run["pearson_fitness_similarity"]}],
            "n_generations": [3],
            "mean_pearson": run["pearson_fitness_similarity"],
            "warning": None,
        }
    ]
    assert doc["warnings"] == []
    assert gens[1]["window"] == [0.30, 0.40] and gens[0]["window"] is None
    assert [g["control_iterations"] for g in gens] == [0, 3, 0]
    assert [g["window_accepted"] for g in gens] == [None, True, True]
    # The Fig. 20 pair: one BatchNorm less, fitness 0.8 -> 0.4.
    pairs = [(p["better"]["name"], p["worse"]["name"]) for p in run["similar_pairs"]]
    assert pyevonas.similarity(BETTER, WORSE) > 0.8
    assert ("g1i0", "g1i1") in pairs
    pair = next(p for p in run["similar_pairs"] if p["better"]["name"] == "g1i0" and p["worse"]["name"] == "g1i1")
    assert pair["fitness_gap"] == pytest.approx(0.4) and pair["deletions"] == ["-B@5"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Table 3" in page and "Fig. 20" in page and "g1i0" in page


def test_imported_run_report_uses_the_stored_matrices(imported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    doc = write_report([imported_run], out)
    name = "evonas_cifar10_s1_div_g4"
    _check_report(out, doc, [f"{name}_{f}" for f in RUN_FIGURES])
    (run,) = doc["runs"]
    assert run["matrix_source"] == "stored"
    raw = json.loads(EVONAS.read_text(encoding="utf-8"))
    fits, meds = [], []
    for g in range(1, 5):
        gen = raw[f"Generation_{g}"]
        fits.append(max(r["fitness"] for r in gen["individuals_results"].values()))
        frame = json.loads(gen["similarity"])
        m = np.array([[frame[c][str(i)] for c in gen["sequences"]] for i in range(25)])
        meds.append(float(np.median(m[np.triu_indices(25, 1)])))
    assert [g["max_fitness"] for g in run["generations"]] == fits
    assert [g["median_similarity"] for g in run["generations"]] == meds
    assert run["pearson_fitness_similarity"] == pytest.approx(float(np.corrcoef(fits, meds)[0, 1]), abs=1e-12)
    assert all(g["window"] is not None for g in run["generations"][1:])


def test_paper_schema_recomputation_equals_the_stored_matrices(imported_run: Path) -> None:
    run = load_run(imported_run)
    stored = analyse_run(run)
    recomputed = analyse_run(run, schema="paper")
    assert recomputed.matrix_source == "recomputed (paper schema)"
    for g in stored.matrices:
        assert np.array_equal(stored.matrices[g], recomputed.matrices[g])
    assert stored.pearson == recomputed.pearson


def test_several_runs_get_the_comparison_figures(small_run: Path, imported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    doc = write_report([small_run, imported_run, imported_run], out, run_sections=False)
    _check_report(out, doc, list(COMPARISON_FIGURES))
    twice = f"{imported_run.parent.name}/evonas_cifar10_s1_div_g4"  # one folder given twice
    assert [r["name"] for r in doc["runs"]] == ["small", twice, f"{twice}#2"]
    groups = {(t["dataset"], t["control"]): t for t in doc["table3"]}
    assert set(groups) == {("digits", "rigid"), ("cifar10", "rigid")}
    assert len(groups[("cifar10", "rigid")]["runs"]) == 2
    assert not any(Path(f).stem.startswith("small_") for f in doc["figures"])


def test_report_never_writes_to_the_run(imported_run: Path, tmp_path: Path) -> None:
    db = imported_run / "run.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    write_report([imported_run], tmp_path / "r1", run_sections=False)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_second_report_replaces_the_first(small_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report([small_run], out)
    (out / "figures" / "stale.png").write_bytes(b"old")
    doc = write_report([small_run], out, run_sections=False)
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(Path(f).name for f in doc["figures"])


def test_report_of_a_search_run_by_the_loop(tmp_path: Path) -> None:
    """A run written by pyevonas.search.loop (training stubbed) reports with its control windows and tries."""
    import hashlib as _hashlib

    from pyevonas.search.config import RunConfig
    from pyevonas.search.loop import evolve

    def evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
        h = int(_hashlib.sha256(json.dumps(chromosome, sort_keys=True).encode()).hexdigest()[:8], 16) / 2**32
        return {
            "status": "ok",
            "fitness": 0.5 + h / 2,
            "val_accuracy": 0.5 + h / 2,
            "size_mb": 1 + 10 * h,
            "latency_ms": 2 + h,
        }

    settings = {
        "run_dir": str(tmp_path / "search"),
        "generations": 3,
        "population": 6,
        "top_k": 3,
        "control": "rigid",
        "seed": 3,
        "max_control_iterations": 4,
    }
    evolve(RunConfig.resolve(None, settings), evaluate_fn=evaluate)
    out = tmp_path / "report"
    doc = write_report([tmp_path / "search"], out)
    (run,) = doc["runs"]
    _check_report(out, doc, [f"{run['name']}_{f}" for f in RUN_FIGURES if f != "fig20_pairs"])
    assert run["control"] == "rigid" and run["matrix_source"] == "stored"
    gens = run["generations"]
    assert len(gens) == 3 and all(g["window"] is not None for g in gens[1:])
    assert all(g["control_iterations"] >= 1 for g in gens[1:])


def test_foreign_files_in_the_output_folder_are_never_replaced(small_run: Path, tmp_path: Path) -> None:
    from pyevonas.errors import ConfigError

    out = tmp_path / "site"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "mine.png").write_bytes(b"mine")
    with pytest.raises(ConfigError, match="figures not written by pyevonas report"):
        write_report([small_run], out, run_sections=False)
    assert sorted(p.name for p in out.rglob("*")) == ["figures", "mine.png"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        write_report([small_run], tmp_path / "file", run_sections=False)


def test_bad_run_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RunStoreError, match="does not exist"):
        write_report([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunStoreError, match="not a pyevonas run"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(RunStoreError, match="no run"):
        write_report([], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _ind(name: str, seq: str, fitness: float | None, status: str = "ok") -> SimpleNamespace:
    return SimpleNamespace(
        name=name, index=0, chromosome=[], sequence=seq, status=status, fitness=fitness, size_mb=None, latency_ms=None
    )


def test_similar_pairs_follow_the_dashboard_rule() -> None:
    inds = [
        _ind("a", "CBL", 0.90),
        _ind("b", "CL", 0.70),
        _ind("c", "CBLB", 0.75),
        _ind("d", "CLB", 0.5),
        _ind("e", "C", None, "failed"),
        _ind("f", "CB", 0.95),
    ]
    m = np.full((6, 6), 0.5)
    np.fill_diagonal(m, 1.0)
    m[0, 1] = 0.90  # a>b: gap 0.2 -> kept
    m[0, 2] = 0.95  # a>c: gap 0.15 -> kept, most similar
    m[0, 3] = 0.80  # similarity not strictly above 0.8 -> dropped
    m[2, 3] = 1.0  # similarity 1 -> dropped
    m[1, 3] = 0.85  # gap exactly 0.2... b>d kept
    m[0, 4] = 0.99  # failed individual -> dropped
    m[5, 0] = 0.99  # gap 0.05 -> dropped
    m[1, 0] = 0.99  # b is worse than a: the ordered pair (b, a) has a negative gap -> dropped
    run = RunData("r", "", {}, {}, [GenerationData(1, inds, m)])
    stats = analyse_run(run)
    pairs = similar_pairs(stats)
    assert [(p.better.name, p.worse.name) for p in pairs] == [("a", "c"), ("a", "b"), ("b", "d")]
    assert [p.similarity for p in pairs] == [0.95, 0.90, 0.85]
    assert similar_pairs(stats, min_gap=0.19) == [pairs[1], pairs[2]]
    assert similar_pairs(stats, max_pairs=1) == pairs[:1]
    assert pairs[1].edits() == {"substitutions": [], "insertions": [], "deletions": ["-B@1"]}


def test_pearson_is_none_when_undefined() -> None:
    assert pearson([1.0, 2.0], [1.0, 2.0]) is None
    assert pearson([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]) is None
    assert pearson([1.0, None, 3.0, 4.0], [2.0, 5.0, None, 8.0]) is None  # only 2 common points
    assert pearson([1.0, 2.0, 3.0, None], [2.0, 4.0, 7.0, 1.0]) == pytest.approx(0.9933992677987828)


def test_degenerate_run_still_reports(tmp_path: Path) -> None:
    """One generation of one trained and one failed individual: no median, no clustergram, no Pearson."""
    store = RunStore.create(tmp_path / "run", config={}, scoring={}, space={}, meta={})
    with store:
        a = store.add_individual(1, 0, "only", pyevonas.parse_arch("C(32,3,1) g"), "Cg")
        store.set_result(a, {"status": "ok", "fitness": 0.5})
        b = store.add_individual(1, 1, "broken", pyevonas.parse_arch("C(16,3,1) g"), "Cg")
        store.set_result(b, {"status": "failed", "error": "boom"})
    doc = write_report([tmp_path / "run"], tmp_path / "out")
    (run,) = doc["runs"]
    assert run["name"] == "run" and run["dataset"] == "unknown" and run["pearson_fitness_similarity"] is None
    assert run["generations"][0]["max_fitness"] == 0.5
    stems = {Path(f).stem for f in doc["figures"]}
    assert "run_fig6_fitness_similarity" in stems and "run_fig8_clustergram" not in stems


# Paper, Table 3: Pearson r of max fitness and median similarity per generation, seeds 1..10.
TABLE3 = {
    ("cifar10", "rigid"): [0.97, 0.82, 0.9, 0.87, 0.96, 0.91, 0.83, 0.92, 0.9, 0.94],
    ("cifar10", "naive"): [0.78, 0.84, 0.78, 0.55, 0.54, 0.7, 0.62, 0.73, 0.78, 0.84],
    ("cifar100", "rigid"): [0.93, 0.84, 0.96, 0.59, 0.94, 0.97, 0.94, 0.84, 0.95, 0.95],
    ("cifar100", "naive"): [0.75, 0.79, 0.79, 0.45, 0.92, 0.34, 0.88, 0.88, 0.89, 0.82],
}
TABLE3_MEANS = {
    ("cifar10", "rigid"): 0.902,
    ("cifar10", "naive"): 0.716,
    ("cifar100", "rigid"): 0.891,
    ("cifar100", "naive"): 0.751,
}


def _table3_runs() -> list[RunData]:
    """The 40 published CIFAR runs, reduced to chromosomes and each generation's best (see make_report_data.py)."""
    with gzip.open(DATA / "table3_cifar.json.gz", "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    genes = data["genes"]
    runs = []
    for name, r in data["runs"].items():
        gens = []
        for g, gen in enumerate(r["generations"], 1):
            # Only the best's fitness is kept; the others are "ok" with an unknown fitness, so the
            # generation's best fitness is the published one.
            inds = [
                _ind(f"{name}-g{g}-{k}", "", gen["max_fitness"] if k == gen["best_index"] else None)
                for k in range(len(gen["chromosomes"]))
            ]
            for ind, codes in zip(inds, gen["chromosomes"], strict=True):
                ind.chromosome = [genes[c] for c in codes]
            gens.append(GenerationData(g, inds))
        runs.append(RunData(name, "", {"dataset": r["dataset"], "control": r["control"], "seed": r["seed"]}, {}, gens))
    return runs


def test_table3_of_the_paper_is_reproduced_with_the_paper_schema() -> None:
    """Matrices recomputed with the `paper` schema, upper-triangle median, Pearson per run: the
    published CIFAR-10 and CIFAR-100 columns to two decimals, and their means to three."""
    from pyevonas.report.analysis import summary

    stats = [analyse_run(run, schema="paper", median="upper") for run in _table3_runs()]
    assert len(stats) == 40
    got: dict[tuple[str, str], list[float]] = {}
    for st in sorted(stats, key=lambda s: s.run.meta["seed"]):
        assert st.matrix_source == "recomputed (paper schema)"
        assert st.pearson is not None
        got.setdefault((st.run.dataset, st.run.control), []).append(round(st.pearson, 2))
    assert got == TABLE3
    for key, values in got.items():
        assert round(float(np.mean(values)), 3) == TABLE3_MEANS[key]
    groups = {(t["dataset"], t["control"]): t for t in summary(stats)["table3"]}
    by_seed = {k: {r["seed"]: r["pearson"] for r in g["runs"]} for k, g in groups.items()}
    assert {k: [round(by_seed[k][s], 2) for s in range(1, 11)] for k in groups} == TABLE3


def test_a_cached_copy_of_an_oversized_result_is_not_trained(tmp_path: Path) -> None:
    """With max_size_mb set, an oversized candidate is stored with fitness 0.0 (``FAILED_FITNESS``),
    and the loop gives a later copy of it status "cached" with those metrics. The copy never trained:
    it must not count as trained nor pull the median fitness down (the loop never picks it as a parent)."""
    store = RunStore.create(tmp_path / "run", config={}, scoring={}, space={}, meta={})
    big = pyevonas.parse_arch("C(128,7,1) C(128,7,1) E F(96)")
    with store:
        for k, fitness in enumerate((0.8, 0.6)):
            ident = store.add_individual(1, k, f"ok{k}", pyevonas.parse_arch(f"C({16 * (k + 1)},3,1) g"), "Cg")
            store.set_result(ident, {"status": "ok", "fitness": fitness})
        first = store.add_individual(1, 2, "big", big, "CCEF")
        store.set_result(first, {"status": "oversized", "fitness": 0.0, "error": "60.0 MB of weights > max_size_mb 40"})
        hit = store.find_evaluated(store.individual(first).canonical_key)
        assert hit is not None and hit.id == first
        copy = store.add_individual(1, 3, "big again", big, "CCEF")
        store.set_result(copy, hit.metrics or {}, status="cached", cached_from=hit.id)  # what the loop does
    (gen,) = analyse_run(load_run(tmp_path / "run")).generations
    assert gen.n_trained == 2
    assert gen.n_oversized == 2
    assert gen.median_fitness == pytest.approx(0.7)
    assert gen.max_fitness == 0.8


def test_one_set_of_diversity_kinds_for_the_metric_the_search_and_the_report(small_run: Path) -> None:
    from typing import get_args

    from pyevonas.errors import ConfigError
    from pyevonas.metric import DIVERSITY_KINDS
    from pyevonas.search.config import RunConfig

    assert DIVERSITY_KINDS == ("offdiag", "upper", "full")
    assert get_args(RunConfig.model_fields["diversity"].annotation) == DIVERSITY_KINDS
    run = load_run(small_run)
    for how in DIVERSITY_KINDS:
        assert RunConfig(diversity=how).diversity == how
        m = analyse_run(run, median=how).matrices[1]
        assert analyse_run(run, median=how).generations[0].median_similarity == pyevonas.diversity(m, how=how)
    with pytest.raises(ValueError, match="median must be one of offdiag, upper, full"):
        analyse_run(run, median="mean")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="diversity"):
        RunConfig.resolve(None, {"diversity": "mean"})


def _swapped_schema() -> pyevonas.Scoring:
    """The default schema with the letters of Conv2D and Dense swapped: C is Dense, F is Conv2D."""
    swap = {"C": "F", "F": "C"}
    d = pyevonas.Scoring.builtin("default").to_dict()
    d["name"] = "swapped"
    for gene in d["genes"]:
        gene["letter"] = swap.get(gene["letter"], gene["letter"])
    for rule in d["rules"]:
        rule["pairs"] = [[swap.get(x, x), swap.get(y, y)] for x, y in rule["pairs"]]
    return pyevonas.Scoring.from_dict(d)


def test_legends_name_the_genes_as_the_runs_own_schema_does(tmp_path: Path) -> None:
    """A run scored with a custom schema gets legends from that schema's gene names, not the
    default schema's letters: here C is Dense and F is Conv2D."""
    from pyevonas.report import figures as F
    from pyevonas.report.html import _gene_names

    schema = _swapped_schema()
    chrom = pyevonas.parse_arch("C(32,3,1) B L g F(64)")  # Conv2D ... Dense
    store = RunStore.create(tmp_path / "run", config={}, scoring=schema.to_dict(), space={}, meta={})
    with store:
        ident = store.add_individual(1, 0, "a", chrom, pyevonas.sequence(chrom, schema=schema))
        store.set_result(ident, {"status": "ok", "fitness": 0.5})
    run = load_run(tmp_path / "run")
    seq = run.generations[0].individuals[0].sequence
    assert seq == "FBLgC"
    names = _gene_names(run)
    assert names["C"] == "Dense" and names["F"] == "Conv2D"
    fig = F.alignment_chart(["a"], [seq], gene_names=names)
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {"F  Conv2D", "C  Dense", "B  BatchNormalization"} <= labels
    pair = F.AlignedPair("a", "b", seq, seq, "")
    assert "C  Dense" in {t.get_text() for t in F.pair_alignments([pair], gene_names=names).legends[0].get_texts()}
