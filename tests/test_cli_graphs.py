"""`pyevonas similarity` and `pyevonas matrix` on graph architectures: every way to give one, the
edit costs, exact or bounded, the docs' examples run as written, and one-line errors (exit 2)."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_graphs import DARTS_V1, DARTS_V2
from typer.testing import CliRunner

import pyevonas
from pyevonas.cli import app
from pyevonas.cli._common import run_guarded
from pyevonas.metric.graph_api import graph_edit_distance
from pyevonas.metric.graphs import parse_graph

A = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
B = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
DAG_G = {"nodes": ["input", "output"], "edges": [[0, 1]], "inputs": [0], "outputs": [1]}
DAG_H = {"nodes": ["input", "conv", "output"], "edges": [[0, 1], [1, 2]], "inputs": [0], "outputs": [2]}
NB101 = {
    "matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
}
NB101_B = {**NB101, "ops": ["input", "conv1x1-bn-relu", "maxpool3x3", "output"]}
CHAIN = "C(32,3,1) B L g F(64)"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def similarity_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run(["similarity", *args, "--json"], capsys)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def genotype_json(text: str) -> dict[str, Any]:
    """A ``Genotype(...)`` text as the JSON form: ``{"normal": [[op, input], ...], "normal_concat": [...], ...}``."""
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call)
    return {
        str(k.arg): [list(x) if isinstance(x, tuple) else x for x in ast.literal_eval(k.value)] for k in call.keywords
    }


def path(dag: int, n: int = 13) -> dict[str, Any]:
    """A path of n nodes; dag 1 misses its last edge, so the two differ."""
    edges = [[i, i + 1] for i in range(n - 1 - dag)]
    return {"nodes": ["a"] * n, "edges": edges, "inputs": [0], "outputs": [n - 1]}


# ---------------------------------------------------------------------- similarity
def test_similarity_of_two_nb201_strings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["similarity", A, B], capsys)
    assert code == 0
    assert out.splitlines() == [
        "graph edit distance 0.4 of at most 14 (costs 'nb201')",
        "similarity 0.971429 (exact)",
    ]
    data = similarity_json([A, B], capsys)
    d = graph_edit_distance(A, B, "nb201")
    assert data == {
        "similarity": pyevonas.similarity(A, B),
        "distance": float(d),
        "dmax": d.dmax,
        "exact": True,
        "costs": "nb201",
        "format_a": "nb201",
        "format_b": "nb201",
    }


def test_every_way_to_give_a_graph(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Genotype text, inline JSON, JSON files of every format: each compares as the library does."""
    files = {}
    for name, obj in (("g.json", DAG_G), ("h.json", DAG_H), ("a.json", NB101), ("b.json", NB101_B)):
        files[name] = tmp_path / name
        files[name].write_text(json.dumps(obj))
    darts_json = tmp_path / "v2.json"
    darts_json.write_text(json.dumps(genotype_json(DARTS_V2)))
    assert parse_graph(json.loads(darts_json.read_text())).cells == parse_graph(DARTS_V2).cells
    cases = [
        ([DARTS_V1, DARTS_V2], (DARTS_V1, DARTS_V2), "darts"),
        ([DARTS_V1, str(darts_json)], (DARTS_V1, DARTS_V2), "darts"),
        ([json.dumps(DAG_G), json.dumps(DAG_H)], (DAG_G, DAG_H), "unit"),
        ([str(files["g.json"]), str(files["h.json"])], (DAG_G, DAG_H), "unit"),
        ([str(files["a.json"]), str(files["b.json"])], (NB101, NB101_B), "nb101"),
        ([A, str(files["g.json"])], (A, DAG_G), "unit"),  # mixed formats: unit costs
    ]
    for args, (x, y), costs in cases:
        data = similarity_json(args, capsys)
        assert data["similarity"] == pyevonas.similarity(x, y) and data["costs"] == costs, args
        assert data["exact"] is True
    data = similarity_json([json.dumps(DAG_G), json.dumps(DAG_H)], capsys)
    assert (data["distance"], data["dmax"], data["similarity"]) == (4.0, 8.0, 0.5)  # as docs/graphs.md says


def test_costs_by_name_file_or_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    unit = similarity_json([A, B, "--costs", "unit"], capsys)
    assert unit["costs"] == "unit" and unit["distance"] == 1.0 == graph_edit_distance(A, B, "unit")
    costs = {"name": "cheap edges", "edge": {"substitute": 0.25}}
    cost_file = tmp_path / "costs.json"
    cost_file.write_text(json.dumps(costs))
    mine = similarity_json([A, B, "--costs", str(cost_file)], capsys)
    assert mine["costs"] == "cheap edges" and mine["similarity"] == pyevonas.similarity(A, B, costs)
    assert mine["distance"] == 0.25
    # Without --costs a scoring schema's graph section counts, as in the library.
    schema = json.loads(Path("schemas/default.json").read_text())
    schema["graph"] = costs
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema))
    assert similarity_json([A, B, "--schema", str(schema_file)], capsys)["costs"] == "cheap edges"


def test_a_bound_is_said_to_be_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["similarity", json.dumps(path(0)), json.dumps(path(1))], capsys)
    assert code == 0 and "Warning" not in err
    assert "(a lower bound: a cell has more than 12 nodes, so the edit distance is the bounded method's" in out
    data = similarity_json([json.dumps(path(0)), json.dumps(path(1))], capsys)
    assert data["exact"] is False


# ---------------------------------------------------------------------- matrix
def test_matrix_of_graph_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pop = [A, B, DARTS_V1, DAG_G]
    pop_file = tmp_path / "pop.json"
    pop_file.write_text(json.dumps(pop))
    npy = tmp_path / "m.npy"
    assert run(["matrix", str(pop_file), "-o", str(npy)], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(npy), pyevonas.similarity_matrix(pop))  # mixed formats: unit
    code, out, _ = run(["matrix", str(pop_file)], capsys)
    assert code == 0 and "median similarity" in out and "1.000" in out
    txt = tmp_path / "cells.txt"
    txt.write_text(f"# NAS-Bench-201 cells and DARTS genotypes, one per line\n{A}\n\n{B}\n{A}\n")
    csv = tmp_path / "m.csv"
    assert run(["matrix", str(txt), "-o", str(csv), "--costs", "unit"], capsys)[0] == 0
    rows = csv.read_text().splitlines()
    assert rows[0] == "name,0,1,2" and float(rows[1].split(",")[2]) == pyevonas.similarity(A, B, "unit")
    genotypes = tmp_path / "genotypes.txt"
    genotypes.write_text(f"{DARTS_V1}\n{DARTS_V2}\n")
    assert run(["matrix", str(genotypes), "--others", str(txt), "-o", str(npy)], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(npy), pyevonas.similarity_matrix([DARTS_V1, DARTS_V2], others=[A, B, A]))
    cond = tmp_path / "c.npy"
    assert run(["matrix", str(txt), "-o", str(cond), "--condensed", "--float32"], capsys)[0] == 0
    np.testing.assert_array_equal(
        np.load(cond), pyevonas.similarity_matrix([A, B, A], condensed=True, dtype=np.float32)
    )


def test_matrix_with_big_cells_warns_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pop_file = tmp_path / "big.json"
    pop_file.write_text(json.dumps([path(0), path(1), path(0, 5)]))
    code, out, err = run(["matrix", str(pop_file)], capsys)
    assert code == 0 and "median similarity" in out
    (line,) = [ln for ln in err.splitlines() if ln.strip()]
    assert line.startswith("warning: 3 similarities are lower bounds: their pairs have a cell of more than 12")


def test_directed_costs_refuse_condensed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    costs = tmp_path / "directed.json"
    costs.write_text(json.dumps({"name": "one way", "edge": {"insert": 2}}))
    pop = tmp_path / "pop.json"
    pop.write_text(json.dumps([A, B]))
    code, _, err = run(
        ["matrix", str(pop), "--costs", str(costs), "--condensed", "-o", str(tmp_path / "c.npy")], capsys
    )
    assert code == 2 and "needs a symmetric schema; the edit costs 'one way' are directed" in err


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["similarity", A.replace("skip_connect~1", "conv_9x9~1"), B],
            "error: A: nb201 string: edge 2 ('conv_9x9~1'): unknown operation 'conv_9x9'",
        ),
        (
            ["similarity", A, '{"nodes": ["a", "b"], "edges": [[0, 3]]}'],
            "error: B: dag: edges[0]: node 3 does not exist",
        ),
        (["similarity", A, CHAIN], "error: B is a chain and A a graph architecture; chains and graphs cannot be"),
        (["similarity", CHAIN, DARTS_V1], "error: A is a chain and B a graph architecture"),
        (["similarity", A, B, "--costs", "nope"], "error: no graph costs 'nope': not a built-in name"),
        (["similarity", CHAIN, CHAIN, "--costs", "unit"], "edit costs are for graph architectures; chains are scored"),
        (
            ["similarity", '{"nodes": ["a"]}', A],
            "expected a chromosome (a JSON list of gene objects with a 'layer' key) or a graph",
        ),
        (["similarity", "Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[])", A], "error: A: darts"),
    ],
    ids=["bad op", "bad edge", "graph-chain", "chain-graph", "bad costs", "costs for chains", "neither", "genotype"],
)
def test_similarity_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    if err.startswith("error:"):
        assert len(err.strip().splitlines()) == 1, err


def test_matrix_errors_name_the_file_and_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cases = {
        "bad.json": ([A, B, {"nodes": ["a"], "edges": [[0, 2]]}], "error: bad.json[2]: dag: edges[0]: node 2 does not"),
        "graph-chain.json": ([A, CHAIN], "error: graph-chain.json[1]: expected a graph architecture"),
        "chain-graph.json": ([CHAIN, A], "error: architecture 1: expected a chain (a list of layer dicts or text"),
        "nb101.json": (
            [NB101, {**NB101, "ops": ["input", "conv9x9", "maxpool3x3", "output"]}],
            "error: nb101.json[1]: nb101",
        ),
    }
    for name, (pop, message) in cases.items():
        Path(name).write_text(json.dumps(pop))
        code, _, err = run(["matrix", name], capsys)
        assert code == 2 and err.strip().startswith(message) and len(err.strip().splitlines()) == 1, err
    Path("cells.txt").write_text(f"# comment\n{A}\n|nor_conv_3x3~1|\n")
    code, _, err = run(["matrix", "cells.txt", "--others", "cells.txt"], capsys)
    assert err.strip() == "error: cells.txt[1]: nb201 string: edge 0 ('nor_conv_3x3~1'): node 1 is not before node 1"
    assert code == 2
    code, _, err = run(["matrix", "bad.json", "--costs", "unit", "--others", "nope.json"], capsys)
    assert code == 2 and "no population file" in err


def test_help_says_graphs_are_read() -> None:
    runner = CliRunner()
    for command in ("similarity", "matrix"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        text = " ".join(result.output.split())
        assert result.exit_code == 0 and "--costs" in text and "NAS-Bench-201" in text, result.output
        assert "unit, nb201, nb101, darts" in text


# ---------------------------------------------------------------------- the docs' examples
DOCS = Path(__file__).resolve().parent.parent / "docs" / "graphs.md"


def _console_session() -> list[tuple[str, list[str]]]:
    """The `$ command` lines of docs/graphs.md's command-line section and the output shown after each."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## From the command line") :]
    (block,) = re.findall(r"^```console\n(.*?)^```", section.split("\n## ")[0], re.DOTALL | re.MULTILINE)
    session: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(line)
    return session


def test_the_docs_command_line_examples_run_as_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    session = _console_session()
    assert len(session) >= 4
    for command, shown in session:
        words = shlex.split(command)
        if words[0] == "cat":  # the page shows a file: write it
            Path(words[1]).write_text("\n".join(shown) + "\n", encoding="utf-8")
            continue
        assert words[0] == "pyevonas"
        code, out, err = run(words[1:], capsys)
        if shown and shown[0].startswith("error: "):
            assert code == 2 and [ln for ln in err.splitlines() if ln.strip()] == shown, err
            continue
        assert code == 0, err
        got = [ln.rstrip() for ln in out.splitlines() if ln.strip()]
        assert got == [ln.rstrip() for ln in shown if ln.strip()], command


def test_the_docs_error_lines_are_real(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## From the command line") :].split("\n## ")[0]
    (block,) = re.findall(r"^```text\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    Path("cells.txt").write_text(f"{A}\n|nor_conv_3x3~1|\n")
    Path("pop.json").write_text(json.dumps([A, B, {"nodes": ["a"], "edges": [[0, 2]]}]))
    Path("chains.json").write_text(json.dumps([CHAIN, A]))
    commands = [["similarity", A, CHAIN], ["matrix", "cells.txt"], ["matrix", "pop.json"], ["matrix", "chains.json"]]
    got = []
    for args in commands:
        code, _, err = run(args, capsys)
        assert code == 2
        got.append(err.strip())
    assert got == block.splitlines()
