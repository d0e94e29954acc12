"""Reports of mixed runs: runs sharing a seed or differing in length, several datasets, imported
latencies, the best architecture with its parameters, Fig. 6's lines, Fig. 20's table and its
chance-level filter."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyevonas
from pyevonas.report import figures as F
from pyevonas.report.html import write_report
from pyevonas.runs.importer import import_run
from pyevonas.runs.store import RunStore

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"

BETTER = "C(32,3,1) B L M(2) C(64,3,1) B L g F(64)"
WORSE = "C(32,3,1) B L M(2) C(64,3,1) L g F(64)"
POPULATIONS = [
    [BETTER, WORSE, "T(64,3,1) D(3,1) B G F(32)", "R(32,3,1) A(2) t(64,5,2) E O(0.2) F(16)"],
    [BETTER, "C(32,3,1) B L M(2) T(64,3,1) g F(64)", "T(64,3,1) D(3,1) B D(5,1) G F(32)", "D(3,1) B L M(2) g F(32)"],
    [
        "C(32,3,1) B L M(2) T(64,3,1) g F(64)",
        "C(32,3,1) B L M(2) T(64,3,1) D(3,1) g F(64)",
        "C(32,3,1) B L T(64,3,1) g F(64)",
        "C(32,3,1) B M(2) T(64,3,1) g F(64)",
    ],
]


def make_run(
    run_dir: Path,
    *,
    dataset: str = "digits",
    control: str = "rigid",
    seed: int = 0,
    generations: int = 3,
    variant: int = 0,
    source: str = "pyevonas",
    latency: dict[tuple[int, int], float] | None = None,
    fitness: dict[tuple[int, int], float] | None = None,
) -> Path:
    """A run of 4 individuals per generation; every run stores the name "digits_rigid_s0" in its
    metadata (as copies and forks of one run do), so only its folder tells it apart.

    ``variant`` changes the fitness values (so runs differ in Pearson r); ``latency`` and
    ``fitness`` override single values by (generation, index).
    """
    meta = {"source": source, "dataset": dataset, "control": control, "seed": seed, "name": "digits_rigid_s0"}
    store = RunStore.create(
        run_dir,
        config={"dataset": dataset, "seed": seed},
        scoring=pyevonas.Scoring.builtin("default").to_dict(),
        space={},
        meta=meta,
    )
    with store:
        for g in range(1, generations + 1):
            texts = POPULATIONS[(g - 1) % len(POPULATIONS)]
            chroms = [pyevonas.parse_arch(t) for t in texts]
            for k, chrom in enumerate(chroms):
                ident = store.add_individual(g, k, f"g{g}i{k}", chrom, pyevonas.sequence(chrom))
                fit = 0.5 + 0.1 * k / 3 + 0.03 * g + 0.02 * ((g * (variant + 1) + k) % 3)
                fit = (fitness or {}).get((g, k), fit)
                store.set_result(
                    ident,
                    {
                        "status": "ok",
                        "fitness": fit,
                        "val_accuracy": fit,
                        "test_accuracy": round(fit - 0.01, 4),
                        "params": 1000 * (k + 1),
                        "size_mb": 1.0 + k,
                        "latency_ms": (latency or {}).get((g, k), 2000.0 + 100 * k),
                    },
                )
            m = pyevonas.similarity_matrix(chroms)
            d = pyevonas.diversity(m)
            window = (d - 0.05, d + 0.05) if g > 1 else None
            store.save_generation(
                g, matrix=m, diversity=d, window=window, decision={"accepted": True} if window else None
            )
    return run_dir


def _page(out: Path) -> str:
    return (out / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# Table 3 and Fig. 12: one row per run, lengths never pooled silently


@pytest.fixture(scope="module")
def same_seed_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    lengths = {"digits_rigid_s0": 3, "digits_rigid_s0-2": 3, "digits_rigid_s0-3": 3, "digits_rigid_s0-4": 4}
    return [make_run(root / name, generations=n, variant=k) for k, (name, n) in enumerate(lengths.items())]


def test_runs_sharing_a_seed_get_one_table3_row_each_and_a_length_warning(
    same_seed_runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    panels: list[Any] = []
    draw = F.grouped_curves
    monkeypatch.setattr(F, "grouped_curves", lambda p: panels.extend(p) or draw(p))
    out = tmp_path / "rep"
    doc = write_report(same_seed_runs, out, run_sections=False)
    names = ["digits_rigid_s0", "digits_rigid_s0-2", "digits_rigid_s0-3", "digits_rigid_s0-4"]
    assert [r["name"] for r in doc["runs"]] == names  # the folders, not the stored name they share
    (group,) = doc["table3"]
    rs = [r["pearson_fitness_similarity"] for r in doc["runs"]]
    assert len(set(rs)) == 4 and None not in rs
    assert group["runs"] == [
        {"name": n, "seed": 0, "n_generations": g, "pearson": r}
        for n, g, r in zip(names, (3, 3, 3, 4), rs, strict=True)
    ]
    assert group["mean_pearson"] == pytest.approx(float(np.mean(rs)), abs=1e-12)
    assert group["n_generations"] == [3, 4]
    (warning,) = doc["warnings"]
    assert group["warning"] == warning
    assert "digits · rigid: the runs differ in length" in warning
    assert "4 generations: digits_rigid_s0-4; 3 generations: digits_rigid_s0, digits_rigid_s0-2" in warning
    page = _page(out)
    assert page.count(f'<p class="warn">⚠ {html.escape(warning)}</p>') == 2  # Table 3 and Fig. 12
    table3 = page[page.index('id="table3"') : page.index('id="comparison"')]
    for name, r in zip(names, rs, strict=True):
        row = re.search(
            rf'<tr><td>digits · rigid</td><td class="names"><a href="#{re.escape(name)}">{name}</a>.*?</tr>', table3
        )
        assert row is not None and f"<td>{r:.2f}</td>" in row.group(0)
    assert f"digits · rigid · mean of 4 runs</td><td></td><td></td><td>3/4</td><td>{np.mean(rs):.3f}</td>" in table3
    # Fig. 12: one band per length (the 4-generation run is never pooled with the 3-generation ones).
    (title, fitness_bands, similarity_bands) = panels[0]
    assert title == "digits"
    for bands in (fitness_bands, similarity_bands):
        assert [(b.label, b.values.shape, b.dashed, b.key) for b in bands] == [
            ("rigid · 4 gen.", (1, 4), False, "rigid"),
            ("rigid · 3 gen.", (3, 3), True, "rigid"),
        ]
    fitness_3 = [[g["max_fitness"] for g in r["generations"]] for r in doc["runs"][:3]]
    assert np.array_equal(fitness_bands[1].values, np.array(fitness_3))


def test_runs_of_one_length_get_no_warning(same_seed_runs: list[Path], tmp_path: Path) -> None:
    doc = write_report(same_seed_runs[:3], tmp_path / "rep", run_sections=False)
    assert doc["warnings"] == [] and doc["table3"][0]["warning"] is None
    assert 'class="warn"' not in _page(tmp_path / "rep")


def test_runs_of_one_name_in_different_folders_are_told_apart_by_their_parent(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a" / "run")
    b = make_run(tmp_path / "b" / "run")
    doc = write_report([a, b], tmp_path / "rep", run_sections=False)
    assert [r["name"] for r in doc["runs"]] == ["a/run", "b/run"]


# ------------------------------------------------------------------------------------------
# Figs. 7, 8/19 and 9 per dataset


def test_best_of_each_run_is_drawn_per_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [
        make_run(tmp_path / "c10_a", dataset="cifar10", variant=0),
        make_run(tmp_path / "c10_b", dataset="cifar10", variant=1),
        make_run(tmp_path / "c100_a", dataset="cifar100", variant=2),
        make_run(tmp_path / "c100_b", dataset="cifar100", control="naive", variant=3),
    ]
    drawn: dict[str, list[list[str]]] = {"alignment_chart": [], "clustergram": [], "gene_frequency": []}
    for fn in drawn:
        original = getattr(F, fn)

        def spy(first: Any, *args: Any, _fn: str = fn, _original: Any = original, **kwargs: Any) -> Any:
            drawn[_fn].append([str(kwargs.get("title", args[-1] if args else "")), *map(str, first)])
            return _original(first, *args, **kwargs)

        monkeypatch.setattr(F, fn, spy)
    doc = write_report(runs, tmp_path / "rep", run_sections=False)
    stems = {Path(f).stem for f in doc["figures"]}
    for dataset in ("cifar10", "cifar100"):
        for fig in ("fig7_alignment_chart", "fig8_19_clustergram", "fig9_gene_frequency"):
            assert f"all_{dataset}_{fig}" in stems
    assert not {s for s in stems if s.startswith(("all_fig7", "all_fig8", "all_fig9"))}
    charts = {c[0]: [label.split(" · ")[0] for label in c[1:]] for c in drawn["alignment_chart"]}
    assert charts == {
        "cifar10: best individual of each run": ["c10_a", "c10_b"],
        "cifar100: best individual of each run": ["c100_a", "c100_b"],
    }
    clusters = {c[0]: c[1:] for c in drawn["clustergram"]}
    assert clusters == {
        "cifar10: best individual of each run": ["c10_a", "c10_b"],
        "cifar100: best individual of each run": ["c100_a", "c100_b"],
    }
    # Fig. 9 counts genes of one dataset's bests: one chart per dataset, two sequences each.
    assert {c[0]: len(c) - 1 for c in drawn["gene_frequency"]} == {
        "cifar10: best individual of each run": 2,
        "cifar100: best individual of each run": 2,
    }


# ------------------------------------------------------------------------------------------
# Fig. 17/18: a robust latency axis, and where imported latencies come from


def _tick_texts(fig: Any) -> list[str]:
    fig.canvas.draw() if fig.canvas is not None else None
    return [t.get_text() for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()]


def test_one_huge_latency_puts_the_latency_axes_on_a_log_scale() -> None:
    points = [(g, 0.5 + g / 100, 1.0 + g, 2000.0 + 50 * g) for g in range(1, 11)]
    best = [(g, 1.0 + g, 3_000_000.0 if g == 4 else 2000.0 + 50 * g) for g in range(1, 11)]
    points.append((4, 0.6, 5.0, 3_000_000.0))
    fig = F.size_latency(points, best)
    axes = fig.axes
    assert axes[1].get_xscale() == "log" and "log scale" in axes[1].get_xlabel()  # latency vs fitness
    assert axes[3].get_yscale() == "log" and "log scale" in axes[3].get_ylabel()  # latency of best
    assert axes[2].get_yscale() == "linear"  # size of best: no outlier
    F.png_bytes(fig)
    labels = [t for t in _tick_texts(fig) if t]
    assert "1,000,000" in labels and not [t for t in labels if "$" in t]  # plain numbers, not mathtext
    calm = F.size_latency(points[:-1], [(g, s, 2000.0 + 50 * g) for g, s, _ in best])
    assert calm.axes[3].get_yscale() == "linear" and calm.axes[1].get_xscale() == "linear"

    def band(values: list[float]) -> F.Band:
        return F.Band("naive", list(range(1, len(values) + 1)), np.array([values]))

    grouped = F.grouped_size_latency(
        [
            ("cifar100", [band([1.0, 2.0, 3.0])], [band([1500.0, 3e6, 2000.0])]),
            ("cifar10", [band([1.0, 2.0, 3.0])], [band([1500.0, 1800.0, 2000.0])]),
        ]
    )
    bottom = [ax for ax in grouped.axes if "latency" in ax.get_ylabel()]
    assert [ax.get_yscale() for ax in bottom] == ["log", "linear"]


def test_imported_latencies_come_with_their_origin(tmp_path: Path) -> None:
    imported = make_run(tmp_path / "cifar100_s10", dataset="cifar100", source="paper_runs_json", latency={(2, 3): 3e6})
    ours = make_run(tmp_path / "ours", dataset="cifar100")
    doc = write_report([imported, ours], tmp_path / "rep")
    assert [r["imported"] for r in doc["runs"]] == [True, False]
    page = _page(tmp_path / "rep")
    notes = re.findall(r'<p class="note">Latencies of imported runs \(([^)]*)\)', page)
    assert notes == ["cifar100_s10", "cifar100_s10"]  # the comparison and the imported run's section
    assert "first call" in page and "not compare with the latencies pyevonas measures" in page
    ours_section = page[page.index('<h2 id="ours">') :]
    assert "Latencies of imported runs" not in ours_section
    best = doc["runs"][0]["generations"][1]["best"]
    assert best["latency_ms"] == 3e6


# ------------------------------------------------------------------------------------------
# The best architecture with its parameters and test accuracy


def test_best_architecture_and_test_accuracy_are_in_the_page_and_the_summary(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", fitness={(3, 1): 0.99})
    doc = write_report([run], tmp_path / "rep")
    (r,) = doc["runs"]
    best_text = POPULATIONS[2][1]
    assert r["best"] == {
        "generation": 3,
        "name": "g3i1",
        "fitness": 0.99,
        "val_accuracy": 0.99,
        "test_accuracy": 0.98,
        "params": 2000,
        "sequence": pyevonas.sequence(best_text),
        "architecture": pyevonas.format_arch(pyevonas.parse_arch(best_text)),
        "size_mb": 2.0,
        "latency_ms": 2100.0,
    }
    assert pyevonas.parse_arch(r["best"]["architecture"]) == pyevonas.parse_arch(best_text)  # usable as is
    for g in r["generations"]:
        b = g["best"]
        text = POPULATIONS[g["generation"] - 1][int(b["name"].split("i")[1])]
        assert b["architecture"] == pyevonas.format_arch(pyevonas.parse_arch(text))
        assert b["test_accuracy"] == pytest.approx(b["fitness"] - 0.01, abs=1e-4)
    page = _page(tmp_path / "rep")
    assert html.escape(r["best"]["architecture"]) in page
    assert "test accuracy <b>0.980</b>" in page and "<b>2,000</b> parameters" in page
    # Every gene box carries its parameters as a tooltip.
    boxes = re.findall(r'<span class="g" title="([^"]*)"[^>]*>(.)</span>', page)
    assert ("C(32,3,1)", "C") in boxes and ("M(2)", "M") in boxes and ("F(64)", "F") in boxes
    assert all(title.startswith(letter) for title, letter in boxes)
    best_table = page[page.index("<h3>Best individual of each generation</h3>") :]
    best_table = best_table[: best_table.index("</table>")]
    assert best_table.count("<tr>") == 4  # header + 3 generations
    assert "test accuracy" in best_table and "0.980" in best_table


def test_an_imported_runs_best_reads_in_its_own_schema(tmp_path: Path) -> None:
    import_run(EVONAS, tmp_path / "run")
    doc = write_report([tmp_path / "run"], tmp_path / "rep", run_sections=False)
    best = doc["runs"][0]["best"]
    assert best["architecture"] is not None and best["test_accuracy"] is None
    assert pyevonas.sequence(pyevonas.parse_arch(best["architecture"], "paper"), "paper") == best["sequence"]


# ------------------------------------------------------------------------------------------
# Fig. 6: two series that coincide are one line, window misses are marked


def _lines(fig: Any) -> dict[str, Any]:
    return {line.get_label(): line for line in fig.axes[1].get_lines()}


def test_fig6_draws_a_statistic_equal_to_the_median_once_and_marks_misses() -> None:
    gens = [1, 2, 3, 4]
    median = [0.30, 0.35, 0.40, 0.45]
    windows = [None, (0.30, 0.40), (0.41, 0.50), (0.40, 0.50)]
    fig = F.fitness_similarity(
        gens,
        [0.5, 0.6, 0.7, 0.8],
        median,
        control_statistic=median,
        windows=windows,
        accepted=[None, True, False, None],
    )
    lines = _lines(fig)
    assert "median similarity = control statistic" in lines and "control statistic" not in lines
    assert "median similarity" not in lines
    miss = lines["outside window (1)"]
    assert list(miss.get_xdata()) == [3] and list(miss.get_ydata()) == [0.40]
    assert {t.get_text() for t in fig.legends[0].get_texts()} >= {"outside window (1)", "control window"}


def test_fig6_draws_a_different_statistic_apart_and_checks_unrecorded_windows() -> None:
    gens = [1, 2, 3]
    fig = F.fitness_similarity(
        gens,
        [0.5, 0.6, 0.7],
        [0.30, 0.35, 0.40],
        control_statistic=[0.32, 0.37, 0.60],
        windows=[None, (0.30, 0.40), (0.40, 0.50)],
    )
    lines = _lines(fig)
    med, stat = lines["median similarity"], lines["control statistic"]
    assert med.get_color() != stat.get_color()
    assert (med.get_linestyle(), stat.get_linestyle()) == ("-", "--")
    assert med.get_marker() != stat.get_marker() and stat.get_markerfacecolor() == "none"
    miss = lines["outside window (1)"]  # no decision recorded: 0.60 is outside (0.40, 0.50]
    assert list(miss.get_xdata()) == [3] and list(miss.get_ydata()) == [0.60]
    assert F.window_misses([0.35, 0.40, 0.45], [(0.3, 0.4), (0.3, 0.4), None]) == []
    assert F.window_misses([0.30], [(0.3, 0.4)]) == [0]  # the window is (lo, hi]


def test_fig6_of_a_default_schema_run_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figs: list[Any] = []
    draw = F.fitness_similarity
    monkeypatch.setattr(F, "fitness_similarity", lambda *a, **k: figs.append(draw(*a, **k)) or figs[-1])
    write_report([make_run(tmp_path / "run")], tmp_path / "rep")
    (fig,) = figs
    assert "median similarity = control statistic" in _lines(fig)


# ------------------------------------------------------------------------------------------
# Fig. 20: a table that fits, and chance-level results left out on request


def test_chance_level_pairs_are_marked_and_can_be_left_out(tmp_path: Path) -> None:
    # digits has 10 classes: WORSE at 0.10 is a collapsed training; at 0.30 it is not.
    run = make_run(tmp_path / "run", fitness={(1, 0): 0.8, (1, 1): 0.10, (3, 0): 0.8, (3, 3): 0.3})
    doc = write_report([run], tmp_path / "rep")
    pairs = doc["runs"][0]["similar_pairs"]
    assert doc["runs"][0]["chance_level"] == pytest.approx(0.1)
    collapsed = [p for p in pairs if p["worse"]["fitness"] == 0.10]
    assert collapsed and all(p["worse_at_chance"] for p in collapsed)
    assert not any(p["worse_at_chance"] for p in pairs if p["worse"]["fitness"] > 0.12)
    page = _page(tmp_path / "rep")
    assert 'title="a collapsed training: fitness at chance level">chance</span>' in page
    assert "pyevonas report --skip-chance</code> leaves such individuals out" in page

    doc = write_report([run], tmp_path / "rep2", skip_chance=True)
    assert "fitness ≤ 0.12) are left out (<code>--skip-chance</code>)" in _page(tmp_path / "rep2")
    kept = doc["runs"][0]["similar_pairs"]
    assert doc["settings"]["skip_chance"] is True
    assert kept and all(p["worse"]["fitness"] > 0.12 and p["better"]["fitness"] > 0.12 for p in kept)
    assert len(kept) == len(pairs) - len(collapsed)


def test_chance_levels_are_those_of_the_datasets() -> None:
    from pyevonas.report.analysis import DATASET_CLASSES, chance_level
    from pyevonas.training.data import DATASETS, dataset_info

    assert set(DATASET_CLASSES) == set(DATASETS)
    for name in DATASETS:
        assert chance_level(name) == 1.0 / dataset_info(name)[1]
    assert chance_level("CIFAR-100") == 0.01 and chance_level("unknown") is None


def test_fig20_table_has_wrapping_edit_and_sequence_columns(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", generations=1, fitness={(1, 0): 0.9, (1, 1): 0.3})
    write_report([run], tmp_path / "rep")
    page = _page(tmp_path / "rep")
    table = page[page.index('<table class="pairs">') :]
    table = table[: table.index("</table>")]
    headers = re.findall(r"<th>([^<]*)</th>", table)
    assert headers == [
        "#",
        "gen",
        "individuals (1 better, 2 worse) · fitness",
        "sequences",
        "similarity",
        "fitness gap",
        "edits 1 → 2",
    ]
    assert '<td class="edits"><div><i>del.</i> -B@5</div></td>' in table
    assert "nowrap" not in page and '<div class="wide"><table class="pairs">' in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


_PROBE = """<script>
window.addEventListener('load', () => {
  const tables = [...document.querySelectorAll('table')].map(t => ({
    cls: t.className, right: t.getBoundingClientRect().right,
    box: t.parentElement.getBoundingClientRect().right, scrolls: t.parentElement.scrollWidth > t.parentElement.clientWidth + 1}));
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({page: document.documentElement.scrollWidth, tables});
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs a headless Chromium")
def test_every_table_fits_a_1400_px_page_in_a_browser(tmp_path: Path) -> None:
    """Rendered by Chromium at 1400 px: no table is wider than the page or its box (nothing cut,
    nothing to scroll sideways), the Fig. 20 table with long names and sequences included."""
    import_run(EVONAS, tmp_path / "evonas_cifar10_s1_div_g4")
    runs = [tmp_path / "evonas_cifar10_s1_div_g4", make_run(tmp_path / "digits_rigid_s0-2")]
    write_report(runs, tmp_path / "rep")
    page = _page(tmp_path / "rep").replace("</body>", _PROBE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    chromium = _chromium()
    assert chromium is not None
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, done.stderr[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["page"] <= 1400
    assert any(t["cls"] == "pairs" for t in layout["tables"])
    for t in layout["tables"]:
        assert t["right"] <= t["box"] + 0.5 and not t["scrolls"], t
