"""The import, report and align commands: results, files, and one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pyevonas
from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.cli.report_cmds import render_alignment
from pyevonas.runs.store import RunStore

DATA = Path(__file__).parent / "data"
EVONAS = DATA / "evonas_cifar10_s1_div_g4.evonas"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), " ".join(out.err.split())  # rich wraps long lines


def test_import_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert "imported evonas_cifar10_s1_div_g4 (cifar10, rigid control, seed 1): 4 generations, 100 individuals" in out
    assert RunStore.is_run(tmp_path / "run")
    code, out, err = run(["report", str(tmp_path / "run"), "-o", str(tmp_path / "rep"), "--no-run-sections"], capsys)
    assert code == 0, err
    assert "run: 4 generations, best fitness 0.8142, Pearson r 0.92" in out  # named by its folder
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert summary["settings"]["median"] == "upper" and summary["settings"]["schema"] is None
    assert (tmp_path / "rep" / "index.html").is_file()


def test_an_imported_run_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run")], capsys)
    code, _, err = run(["export", str(tmp_path / "run"), "-o", str(tmp_path / "run.json")], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert doc["meta"]["name"] == "evonas_cifar10_s1_div_g4" and len(doc["generations"]) == 4
    assert len(doc["individuals"]) == 100


def test_report_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run")], capsys)
    args = [
        "report",
        str(tmp_path / "run"),
        "-o",
        str(tmp_path / "rep"),
        "--no-run-sections",
        "--schema",
        "paper",
        "--median",
        "full",
        "--min-similarity",
        "0.9",
        "--max-pairs",
        "3",
        "--title",
        "My runs",
    ]
    code, _, err = run(args, capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert summary["settings"] == {
        "schema": "paper",
        "median": "full",
        "min_similarity": 0.9,
        "min_gap": 0.1,
        "max_pairs": 3,
        "skip_chance": False,
    }
    (r,) = summary["runs"]
    assert r["matrix_source"] == "recomputed (paper schema)"
    assert len(r["similar_pairs"]) <= 3 and all(p["similarity"] > 0.9 for p in r["similar_pairs"])
    assert "<title>My runs</title>" in (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "<missing>", "--run-dir", "<tmp>/new"], "no such file"),
        (["import", "<bad>", "--run-dir", "<tmp>/new"], "not valid JSON"),
        (["import", str(EVONAS), "--run-dir", "<run>"], "exists and is not an empty folder"),
        (["report", "<tmp>/nothing", "-o", "<tmp>/rep"], "does not exist"),
        (["report", "<run>", "-o", "<tmp>/rep", "--median", "mean"], "--median must be one of offdiag, upper, full"),
        (["report", "<run>", "-o", "<tmp>/rep", "--schema", "nosuch"], "no scoring schema 'nosuch'"),
        (["align", "C(32,3,1) Q", "C(32,3,1)"], "unknown letter 'Q'"),
        (["align", '[{"layer": "Nope"}]', "C(32,3,1)"], "Nope"),
        (["align", "[oops", "C(32,3,1)"], "not valid JSON"),
        (["align", "<tmp>/none.json", "C(32,3,1)"], "no architecture file"),
    ],
)
def test_user_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.evonas"
    bad.write_text('{"total": ')
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run")], capsys)
    places = {
        "<missing>": str(tmp_path / "nope.evonas"),
        "<bad>": str(bad),
        "<run>": str(tmp_path / "run"),
        "<tmp>": str(tmp_path),
    }
    filled = []
    for arg in args:
        for key, value in places.items():
            arg = arg.replace(key, value)
        filled.append(arg)
    code, _, err = run(filled, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("error:") == 1
    assert not (tmp_path / "rep").exists() and not (tmp_path / "new").exists()


def test_align_prints_a_coloured_alignment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["align", "C(32,3,1) B L M(2) g F(64)", "C(64,3,1) L g O(0.2) F(64)", "--schema", "paper"], capsys
    )
    assert code == 0
    al = pyevonas.align("C(32,3,1) B L M(2) g F(64)", "C(64,3,1) L g O(0.2) F(64)", schema="paper")
    assert " ".join(al.aligned_a) in out and " ".join(al.aligned_b) in out
    assert f"similarity {al.similarity:.3f}" in out
    assert "B BatchNorm" in out and "O Dropout" in out  # the gene-type legend


def test_align_colours_one_per_gene_type() -> None:
    from rich.console import Console

    from pyevonas.report.figures import GENE_COLOURS

    al = pyevonas.align("T(64,3,1) D(3,1) B g F(32)", "T(64,3,1) B D(3,1) g F(32)")
    console = Console(force_terminal=True, color_system="truecolor", width=200)
    with console.capture() as cap:
        console.print(render_alignment(al))
    text = cap.get()
    for letter in set(al.aligned_a + al.aligned_b) - {"-"}:
        r, g, b = (int(GENE_COLOURS[letter][k : k + 2], 16) for k in (1, 3, 5))
        assert f"48;2;{r};{g};{b}m" in text  # background colour of that gene type


def test_align_json_and_chromosome_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chrom = pyevonas.parse_arch("C(32,3,1) B L g F(64)")
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"chromosome": chrom}))
    code, _, _ = run_guarded(app, ["align", str(path), json.dumps(chrom), "--json", "-s", "paper"]), None, None
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["similarity"] == 1.0 and data["aligned_a"] == data["aligned_b"] == "CBLgF"
    assert data["schema"] == "paper" and len(data["column_scores"]) == 5


def test_align_legend_uses_the_schemas_gene_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With a schema whose letters differ from the default's (C is Dense, F is Conv2D), the
    legend names each letter as that schema does."""
    d = pyevonas.Scoring.builtin("default").to_dict()
    swap = {"C": "F", "F": "C"}
    for gene in d["genes"]:
        gene["letter"] = swap.get(gene["letter"], gene["letter"])
    for rule in d["rules"]:
        rule["pairs"] = [[swap.get(x, x), swap.get(y, y)] for x, y in rule["pairs"]]
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps(d))
    code = run_guarded(app, ["align", "F(32,3,1) g C(64)", "F(32,3,1) B g C(64)", "-s", str(path)])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "C Dense" in out and "F Conv2D" in out and "C Conv2D" not in out


def test_report_without_output_writes_to_reports_and_the_run_folder_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "runs" / "cifar10_s1_div")], capsys)
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "runs" / "cifar10_s1_div-2")], capsys)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["report", "runs/cifar10_s1_div/", "--no-run-sections"], capsys)
    assert code == 0, err
    assert (tmp_path / "reports" / "cifar10_s1_div" / "index.html").is_file()
    assert "report written to reports/cifar10_s1_div/index.html" in out
    code, out, err = run(["report", "runs/cifar10_s1_div", "runs/cifar10_s1_div-2", "--no-run-sections"], capsys)
    assert code == 0, err
    assert (tmp_path / "reports" / "cifar10_s1_div+1" / "summary.json").is_file()
    # Both runs were imported from one file: the same stored name, told apart by their folders.
    assert "cifar10_s1_div: 4 generations" in out and "cifar10_s1_div-2: 4 generations" in out


def test_report_warns_on_stderr_when_runs_of_a_group_differ_in_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_report_mixed import make_run

    runs = [make_run(tmp_path / "long", generations=4), make_run(tmp_path / "short", generations=3)]
    code, out, err = run(["report", *map(str, runs), "-o", str(tmp_path / "rep"), "--no-run-sections"], capsys)
    assert code == 0, err
    assert "warning: digits · rigid: the runs differ in length (4 generations: long; 3 generations: short)" in err
    assert "warning" not in out


def test_report_skip_chance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["import", str(EVONAS), "--run-dir", str(tmp_path / "run")], capsys)
    for flag, expected in (([], False), (["--skip-chance"], True)):
        out_dir = tmp_path / f"rep{int(expected)}"
        code, _, err = run(["report", str(tmp_path / "run"), "-o", str(out_dir), "--no-run-sections", *flag], capsys)
        assert code == 0, err
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        assert summary["settings"]["skip_chance"] is expected
        pairs = summary["runs"][0]["similar_pairs"]
        assert any(p["worse_at_chance"] for p in pairs) is not expected  # the published run has such pairs
