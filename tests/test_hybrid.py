"""Hybrid chains: chains whose genes may be cells (``"cell": true`` gene types), aligned as chains
with each cell gene's score taken from the graph similarity of the two cells."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import pyevonas
from pyevonas import Archive, Scoring, align, nearest, similarity, similarity_matrix
from pyevonas.cli import app
from pyevonas.errors import EncodingError, GraphError, SchemaError
from pyevonas.metric import compiled, graph_similarity

CELL_A = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
CELL_B = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
CELL_C = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
#: The base of two identical cells and the mismatch of two completely different ones.
BASE, MISMATCH = 3.0, -1.0


def hybrid_schema(**gene: Any) -> Scoring:
    """The default schema with a cell gene type X (layer 'cell')."""
    d = Scoring.builtin("default").to_dict()
    d["name"] = "hybrid"
    d["genes"].append({"letter": "X", "layer": "cell", "name": "Cell", "cell": True, "mismatch": MISMATCH, **gene})
    d["rules"].append({"pairs": [["X", "X"]], "base": BASE})
    return Scoring.from_dict(d)


SCHEMA = hybrid_schema()


def chain(cell: Any = None, filters: int = 32) -> list[dict[str, Any]]:
    stem = [{"layer": "C_2D", "filters": filters, "kernel_size": 3, "strides": 1}]
    middle = [] if cell is None else [{"layer": "cell", "cell": cell}]
    return [*stem, *middle, {"layer": "GAP_2D"}, {"layer": "D", "units": 10}]


def test_a_cell_column_scores_mismatch_plus_range_times_the_cell_similarity() -> None:
    al = align(chain(CELL_A), chain(CELL_C), SCHEMA)
    assert al.aligned_a == al.aligned_b == "CXgF"
    sim = graph_similarity(CELL_A, CELL_C)  # nb201 cells: the nb201 costs
    assert 0 < sim < 1
    assert al.column_scores[1] == pytest.approx(MISMATCH + (BASE - MISMATCH) * sim, abs=1e-12)
    # Identical cells score the rule's base, and the chain is identical: similarity 1.
    same = align(chain(CELL_A), chain(CELL_A), SCHEMA)
    assert same.column_scores[1] == BASE
    assert same.similarity == 1.0 == similarity(chain(CELL_A), chain(CELL_A), SCHEMA)


def test_more_similar_cells_give_a_more_similar_chain() -> None:
    a, b, c = chain(CELL_A), chain(CELL_B), chain(CELL_C)
    assert graph_similarity(CELL_A, CELL_B) > graph_similarity(CELL_A, CELL_C)
    assert 1.0 > similarity(a, b, SCHEMA) > similarity(a, c, SCHEMA)


def test_chains_without_cells_score_exactly_as_the_chain_path() -> None:
    plain = [chain(None, 32), chain(None, 64), [{"layer": "C_2D", "filters": 16, "kernel_size": 5, "strides": 2}]]
    default = similarity_matrix(plain, schema="default")
    # In a call that holds a hybrid chain, the plain pairs still take the same doubles.
    mixed = similarity_matrix([chain(CELL_A), *plain], schema=SCHEMA)
    assert np.array_equal(mixed[1:, 1:], default)
    assert similarity(plain[0], plain[1], SCHEMA) == similarity(plain[0], plain[1], "default")


def test_matrix_nearest_and_pair_paths_agree() -> None:
    archs = [chain(CELL_A), chain(CELL_B), chain(CELL_C, 64), chain(None), chain(CELL_A)]
    m = similarity_matrix(archs, schema=SCHEMA)
    for i, a in enumerate(archs):
        for j, b in enumerate(archs):
            assert m[i, j] == (1.0 if i == j else similarity(a, b, SCHEMA)), (i, j)
    others = similarity_matrix(archs[:2], archs[2:], schema=SCHEMA)
    assert np.array_equal(others, m[:2, 2:])
    assert np.array_equal(similarity_matrix(archs, schema=SCHEMA, dtype=np.float32), m.astype(np.float32))
    idx, sims = nearest(archs, 1, schema=SCHEMA)
    assert idx[0, 0] == 4 and sims[0, 0] == 1.0  # the identical chain
    with pytest.raises(ValueError, match="condensed"):
        similarity_matrix(archs, schema=SCHEMA, condensed=True)


def test_the_schema_graph_section_gives_the_cell_costs() -> None:
    d = SCHEMA.to_dict()
    d["graph"] = {"name": "flat", "node": {}, "edge": {}}  # unit-like: every edit costs 1
    unit = Scoring.from_dict(d)
    al = align(chain(CELL_A), chain(CELL_B), unit)
    sim = graph_similarity(CELL_A, CELL_B, "unit")
    assert al.column_scores[1] == pytest.approx(MISMATCH + (BASE - MISMATCH) * sim, abs=1e-12)
    assert sim != graph_similarity(CELL_A, CELL_B)  # differs from the nb201 costs used above


def test_cells_in_any_format_and_different_formats_score_low() -> None:
    nb101 = {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}
    s = similarity(chain(nb101), chain(nb101), SCHEMA)
    assert s == 1.0
    assert 0 <= similarity(chain(nb101), chain(CELL_A), SCHEMA) < 1


def test_archive_of_hybrid_chains_equals_the_matrix(tmp_path: Any) -> None:
    members = [chain(CELL_A), chain(CELL_B), chain(None)]
    archive = Archive(SCHEMA, members)
    queries = [chain(CELL_C), chain(CELL_A)]
    assert np.array_equal(archive.similarity_matrix(queries), similarity_matrix(queries, members, SCHEMA))
    idx, _ = archive.nearest(queries, 1)
    assert idx[1, 0] == 0
    assert archive.novelty([chain(CELL_A)], k=1)[0] == 0.0
    archive.save(tmp_path / "a.json")
    back = Archive.load(tmp_path / "a.json")
    assert np.array_equal(back.similarity_matrix(queries), archive.similarity_matrix(queries))


def test_bad_cells_are_refused_with_one_line_naming_the_layer() -> None:
    with pytest.raises(
        EncodingError, match=r"^architecture 1: layer 1 \(cell\): a cell gene holds its cell under 'cell'$"
    ):
        similarity(
            chain(CELL_A), [{"layer": "C_2D", "filters": 8, "kernel_size": 3, "strides": 1}, {"layer": "cell"}], SCHEMA
        )
    with pytest.raises(GraphError, match=r"architecture 0: layer 1 \(cell\): cell") as err:
        similarity(chain("|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"), chain(CELL_A), SCHEMA)
    assert "\n" not in str(err.value)
    with pytest.raises(SchemaError, match="a cell gene has no parameters"):
        hybrid_schema(params={"width": {"min": 1, "max": 4}})


def test_cli_align_shows_each_cell_genes_score(tmp_path: Any) -> None:
    schema = tmp_path / "hybrid.json"
    schema.write_text(json.dumps(SCHEMA.to_dict()), encoding="utf-8")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(chain(CELL_A)), encoding="utf-8")
    b.write_text(json.dumps(chain(CELL_C)), encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(app, ["align", str(a), str(b), "--schema", str(schema), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    (col,) = doc["cell_columns"]
    sim = graph_similarity(CELL_A, CELL_C)
    assert col["column"] == 1 and col["letters"] == "XX"
    assert col["cell_similarity"] == pytest.approx(sim, abs=1e-12)
    text = runner.invoke(app, ["align", str(a), str(b), "--schema", str(schema)])
    assert text.exit_code == 0
    assert f"cell similarity {sim:.3f}" in text.output


def test_a_schema_with_cell_genes_never_takes_the_rust_fast_lane() -> None:
    # The fast lane would score two cell genes by their rule alone, ignoring the cells.
    c = compiled(SCHEMA)
    a, b = chain(CELL_A), chain(CELL_C)
    assert c.pair_fast(a, b) is not None  # the plain encoder reads them (cells ignored) ...
    for _ in range(3):  # ... but the public call, repeated, always scores the cells
        assert similarity(a, b, SCHEMA) < 1.0
    assert pyevonas.similarity(a, b, SCHEMA) == similarity(a, b, SCHEMA)
