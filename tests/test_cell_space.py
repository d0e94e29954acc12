"""Cell search spaces: the nb201 space and DAG spaces of one's own, their files and errors, sampling,
the cell operators, the cells scoring schema, duplicates by isomorphism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyevonas
from pyevonas.errors import ConfigError, SearchSpaceError
from pyevonas.metric import graph_similarity
from pyevonas.metric.graphs import canonical_key as graph_key
from pyevonas.metric.schema import Scoring
from pyevonas.runs.records import canonical_key, cell_notation
from pyevonas.search.cell_operators import crossover_nodes, crossover_uniform, mutate_cell
from pyevonas.search.cells import CellSpace, check_schema, is_cell_space, load_space, nb201_ops
from pyevonas.search.config import RunConfig
from pyevonas.search.operators import breed
from pyevonas.search.space import SearchSpace

NB201 = CellSpace.load("nb201")
CELL = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
SWAPPED = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|none~2|"

DAG_SPACE: dict[str, Any] = {
    "schema_version": 1,
    "kind": "cell",
    "name": "mine",
    "cell": {
        "format": "dag",
        "ops_on": "nodes",
        "ops": {"conv": {"kernel_size": {"choices": [1, 3, 5]}}, "max_pool_3x3": {}, "skip_connect": {}},
        "min_nodes": 3,
        "max_nodes": 6,
        "max_edges": 8,
    },
    "skeleton": {"channels": 8, "cells_per_stage": 1, "stages": 2},
}
EDGE_SPACE: dict[str, Any] = {
    **DAG_SPACE,
    "name": "edges",
    "cell": {
        "format": "dag",
        "ops_on": "edges",
        "ops": ["conv_3x3", "sep_conv_3x3", "avg_pool_3x3", "skip_connect"],
        "min_nodes": 2,
        "max_nodes": 5,
        "max_edges": 6,
    },
}


# ---------------------------------------------------------------------- the nb201 space
def test_nb201_architectures_are_the_skeleton_around_one_cell() -> None:
    chrom = NB201.chromosome(CELL)
    assert [g["layer"] for g in chrom] == [
        "C_2D", "BN_2D", "cell", "RED_2D", "cell", "RED_2D", "cell", "BN_2D", "R_2D", "GAP_2D",
    ]  # fmt: skip
    assert [g.get("filters") for g in chrom if g["layer"] == "RED_2D"] == [32, 64]
    NB201.check(chrom)
    assert NB201.describe(chrom) == CELL == cell_notation(chrom)
    assert pyevonas.sequence(chrom, "cells") == "CBXYXYXBLg"
    # Same seed, same architectures; every sample is valid and uses the five ops.
    a = [NB201.sample(np.random.default_rng(4)) for _ in range(3)]
    assert a == [NB201.sample(np.random.default_rng(4)) for _ in range(3)]
    rng = np.random.default_rng(0)
    ops = set()
    for _ in range(200):
        sample = NB201.sample(rng)
        NB201.check(sample)
        ops |= set(nb201_ops(NB201.describe(sample)))
    assert ops == {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c[:4] + c[5:], "the chromosome has 9 genes; the skeleton of space 'nb201' has 10"),
        (
            lambda c: [*c[:4], {**c[4], "cell": SWAPPED}, *c[5:]],
            "gene 4 \\(cell\\): every cell gene holds the same cell",
        ),
        (lambda c: [*c[:3], {"layer": "RED_2D", "filters": 48}, *c[4:]], "gene 3 \\(RED_2D\\): the skeleton .* has"),
        (lambda c: [{**g, "cell": "|conv_9x9~0|"} if g["layer"] == "cell" else g for g in c], "unknown operation"),
        (lambda c: [{**g, "cell": "|none~0|+|none~0|none~1|"} if g["layer"] == "cell" else g for g in c], "3 nodes"),
        (lambda c: [g for g in c if g["layer"] != "cell"], "no cell gene"),
    ],
)
def test_nb201_check_names_the_gene_and_the_rule(change: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        NB201.check(change(NB201.chromosome(CELL)))


def test_a_space_of_fewer_ops_and_a_bigger_skeleton() -> None:
    space = CellSpace.from_dict(
        {
            "schema_version": 1,
            "kind": "cell",
            "name": "convs",
            "cell": {"format": "nb201", "ops": ["nor_conv_1x1", "nor_conv_3x3"]},
            "skeleton": {"channels": 16, "cells_per_stage": 5},
        }
    )
    chrom = space.sample(np.random.default_rng(1))
    assert sum(g["layer"] == "cell" for g in chrom) == 15 and len(chrom) == 22
    assert set(nb201_ops(space.describe(chrom))) <= {"nor_conv_1x1", "nor_conv_3x3"}
    with pytest.raises(SearchSpaceError, match="the chromosome has 22 genes; the skeleton of space 'nb201' has 10"):
        NB201.check(chrom)  # another skeleton
    with pytest.raises(SearchSpaceError, match="edge 1 is 'skip_connect', not one of the space's ops"):
        space.check(space.chromosome(CELL))


# ---------------------------------------------------------------------- files and errors
def test_spaces_load_by_kind_and_round_trip(tmp_path: Path) -> None:
    assert isinstance(load_space("nb201"), CellSpace) and isinstance(load_space("paper"), SearchSpace)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(DAG_SPACE))
    mine = load_space(str(path))
    assert isinstance(mine, CellSpace) and mine.name == "mine" and mine.format == "dag"
    assert is_cell_space(str(path)) and is_cell_space("nb201") and not is_cell_space("paper")
    assert not is_cell_space(str(tmp_path / "missing.json"))
    for space in (NB201, mine):
        assert CellSpace.from_dict(space.to_dict()).to_dict() == space.to_dict()
    with pytest.raises(SearchSpaceError, match="a cell search space; load it with"):
        SearchSpace.load("nb201")
    with pytest.raises(SearchSpaceError, match="is a chain space, not a cell space"):
        CellSpace.load("paper")


def _with(cell: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {**DAG_SPACE, **top, "cell": {**DAG_SPACE["cell"], **(cell or {})}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(kind="cells"), "kind: Input should be 'cell'"),
        (_with({"format": "darts"}), "cell.format: Input should be 'nb201' or 'dag'"),
        (_with({"ops": {"warp": {}}}), "cell: ops.warp: unknown op 'warp'"),
        (_with({"ops": {"conv": {"kernel_size": {"choices": [2, 3]}}}}), "cell: ops.conv: op 'conv': kernel size 2"),
        (_with({"ops": {"conv": {"size": {"choices": [3]}}}}), "ops.conv: op 'conv' has no parameter 'size'"),
        (_with({"ops": []}), "cell.ops: .*give at least one op"),
        (_with({"max_nodes": 2, "min_nodes": 3}), "max_nodes \\(2\\) is below min_nodes \\(3\\)"),
        (_with({"max_nodes": 13}), "cell.max_nodes: Input should be less than or equal to 12"),
        (_with({"max_edges": 4}), "max_edges \\(4\\) is below max_nodes - 1 \\(5\\)"),
        (_with({"ops_on": "edges"}), "ops.conv: ops on edges take no parameters"),
        (_with({"max_edges": None}), "max_edges: missing"),
        (_with({"ops": ["node"]}), "ops.node: a structural label, not an op"),
        (_with(skeleton={"channels": 0}), "skeleton.channels: Input should be greater than or equal to 1"),
        (_with(skeleton={"width": 8}), "skeleton.width: Extra inputs are not permitted"),
        (
            {**DAG_SPACE, "cell": {"format": "nb201", "ops": ["conv_3x3"]}},
            "ops\\[0\\]: 'conv_3x3' is not a NAS-Bench-201 op",
        ),
        ({**DAG_SPACE, "cell": {"format": "nb201", "max_edges": 3}}, "max_edges: not a setting of an nb201 cell"),
    ],
)
def test_invalid_space_files_are_refused_in_one_line(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SearchSpaceError, match=f"^{path}: invalid search space: .*{message}") as info:
        load_space(str(path))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- nb201 operators
def test_uniform_crossover_takes_each_edge_from_either_parent() -> None:
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    b = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
    rng = np.random.default_rng(0)
    masks = set()
    for _ in range(200):
        child, info = crossover_uniform(a, b, NB201, rng)
        ops = nb201_ops(child)
        assert [op == "avg_pool_3x3" for op in ops] == [bool(info["mask"] >> k & 1) for k in range(6)]
        masks.add(info["mask"])
    assert len(masks) > 40  # uniform over the 64 masks


def test_nb201_mutation_rate_is_per_edge_and_always_a_change() -> None:
    rng = np.random.default_rng(1)
    assert mutate_cell(CELL, NB201, rng, 0.0) == (CELL, [])
    mutant, log = mutate_cell(CELL, NB201, rng, 1.0)
    assert len(log) == 6 and all(x != y for x, y in zip(nb201_ops(CELL), nb201_ops(mutant), strict=True))
    changed = sum(len(mutate_cell(CELL, NB201, rng, 0.2)[1]) for _ in range(2000))
    assert changed / (2000 * 6) == pytest.approx(0.2, abs=0.015)


def test_breeding_in_a_cell_space_is_seeded_and_valid() -> None:
    parents = [NB201.sample(np.random.default_rng(k)) for k in range(4)]
    kids = breed(parents, 12, NB201, np.random.default_rng(5), 0.2)
    again = breed(parents, 12, NB201, np.random.default_rng(5), 0.2)
    assert [k.chromosome for k in kids] == [k.chromosome for k in again]
    for kid in kids:
        NB201.check(kid.chromosome)
        assert kid.crossover is not None and len(kid.parents) == 2
    one = breed(parents[:1], 3, NB201, np.random.default_rng(5), 0.5)
    assert all(k.parents == (0,) and k.crossover is None for k in one)


# ---------------------------------------------------------------------- dag spaces and their operators
@pytest.mark.parametrize("data", [DAG_SPACE, EDGE_SPACE], ids=["ops on nodes", "ops on edges"])
def test_dag_operators_keep_every_cell_valid(data: dict[str, Any]) -> None:
    space = CellSpace.from_dict(data)
    rng = np.random.default_rng(2)
    cells = [space.sample_cell(rng) for _ in range(60)]
    sizes = {len(c["nodes"]) for c in cells}
    assert sizes == set(range(space.min_nodes, space.max_nodes + 1))
    kinds: set[str] = set()
    crossed = 0
    for k, cell in enumerate(cells):
        space.check_cell(cell)
        mutant, log = mutate_cell(cell, space, rng, 0.5)
        space.check_cell(mutant)
        kinds |= {" ".join(line.split()[:2]) if line.startswith(("add", "remove")) else "change" for line in log}
        found = crossover_nodes(cell, cells[k - 1], space, rng)
        if found is not None:
            space.check_cell(found[0])
            crossed += 1
    assert kinds == {"add edge", "remove edge", "add node", "remove node", "change"}
    assert crossed > 40
    kids = breed([space.chromosome(c) for c in cells[:5]], 10, space, rng, 0.3)
    for kid in kids:
        space.check(kid.chromosome)


def test_dag_cells_that_break_the_space_are_named() -> None:
    space = CellSpace.from_dict(DAG_SPACE)
    conv3 = {"op": "conv", "params": {"kernel_size": 3}}

    def cell(nodes: list[Any], edges: list[list[Any]]) -> dict[str, Any]:
        return {"nodes": nodes, "edges": edges, "inputs": [0], "outputs": [len(nodes) - 1]}

    space.check_cell(cell(["input", conv3, "output"], [[0, 1], [1, 2]]))
    cases = [
        ({"nodes": ["input", conv3, "output"], "edges": [[0, 1], [1, 2]]}, "inputs \\[0\\] and outputs"),
        (
            cell(["input", "conv", "output"], [[0, 1], [1, 2]]),
            "node 1: op 'conv' takes the parameters \\['kernel_size'\\]",
        ),
        (
            cell(["input", {"op": "conv", "params": {"kernel_size": 7}}, "output"], [[0, 1], [1, 2]]),
            "kernel_size=7 is not",
        ),
        (cell(["input", conv3, "output"], [[0, 1], [0, 2]]), "node 1 lies on no path from the input to the output"),
        (
            cell(["input", conv3, "output"], [[0, 1, "x"], [1, 2]]),
            "edge \\[0, 1\\]: the ops of this space sit on nodes",
        ),
        (cell(["input", "output"], [[0, 1]]), "2 nodes; the space allows 3 to 6"),
        (cell(["input", conv3, "output"], [[0, 2]]), "node 1 lies on no path"),
        (cell(["input", conv3, "output"], [[0, 1]]), "node 2 lies on no path"),
        (cell(["output", conv3, "input"], [[0, 1], [1, 2]]), "the first node must be 'input'"),
        (cell(["input", conv3, "output"], [[0, 1], [2, 1]]), "makes a cycle|goes backwards"),
    ]
    for bad, message in cases:
        with pytest.raises(SearchSpaceError, match=message):
            space.check_cell(bad)


def test_isomorphic_cells_are_one_architecture() -> None:
    assert canonical_key(NB201.chromosome(CELL)) == canonical_key(NB201.chromosome(SWAPPED))
    assert canonical_key(NB201.chromosome(CELL)) != canonical_key(NB201.chromosome(SWAPPED.replace("skip", "nor")))
    space = CellSpace.from_dict(DAG_SPACE)
    conv = {"op": "conv", "params": {"kernel_size": 3}}
    a = {"nodes": ["input", conv, "max_pool_3x3", "output"], "edges": [[0, 1], [0, 2], [1, 3], [2, 3]]}
    b = {"nodes": ["input", "max_pool_3x3", conv, "output"], "edges": [[0, 1], [0, 2], [1, 3], [2, 3]]}
    a |= {"inputs": [0], "outputs": [3]}
    b |= {"inputs": [0], "outputs": [3]}
    space.check_cell(a)
    space.check_cell(b)
    assert a != b and graph_key(a) == graph_key(b)
    assert canonical_key(space.chromosome(a)) == canonical_key(space.chromosome(b))


# ---------------------------------------------------------------------- the cells schema
def test_the_cells_schema_is_default_plus_the_cell_genes() -> None:
    cells, default = Scoring.builtin("cells").to_dict(), Scoring.builtin("default").to_dict()
    assert [g for g in cells["genes"] if g["letter"] not in "XY"] == default["genes"]
    assert cells["rules"][: len(default["rules"])] == default["rules"]
    assert {k: v for k, v in cells.items() if k not in ("name", "description", "genes", "rules")} == {
        k: v for k, v in default.items() if k not in ("name", "description", "genes", "rules")
    }
    assert "graph" not in cells  # each cell's format's own costs: nb201 for NB201 strings, unit for dags


def test_chain_similarity_follows_the_cell_similarity() -> None:
    rng = np.random.default_rng(8)
    archs = [NB201.sample(rng) for _ in range(12)]
    sims = pyevonas.similarity_matrix(archs, schema="cells")
    cells = [NB201.describe(a) for a in archs]
    pairs = [(i, j) for i in range(12) for j in range(i + 1, 12)]
    chain = np.array([sims[i, j] for i, j in pairs])
    graph = np.array([graph_similarity(cells[i], cells[j]) for i, j in pairs])
    # One skeleton for all: the chain similarity is an increasing affine function of the cells'.
    slope, intercept = np.polyfit(graph, chain, 1)
    assert slope > 0 and np.allclose(chain, slope * graph + intercept, atol=1e-9)
    assert pyevonas.similarity(archs[0], archs[1], "cells") == sims[0, 1]


def test_a_cell_space_needs_a_schema_with_cell_genes() -> None:
    assert RunConfig(space="nb201").schema_name == "cells"
    assert RunConfig.resolve(None, {"space": "nb201", "schema_name": "paper"}).schema_name == "paper"
    with pytest.raises(ConfigError, match="invalid setting 'schema': the cell space 'nb201' needs a scoring schema"):
        check_schema(NB201, Scoring.builtin("paper"))
    check_schema(NB201, Scoring.builtin("cells"))
    check_schema(SearchSpace.load("paper"), Scoring.builtin("paper"))


def test_a_cell_space_is_never_simulated_by_the_chain_surrogate() -> None:
    with pytest.raises(ConfigError, match="the surrogates model the paper's chain space; a cell space"):
        RunConfig.resolve(None, {"space": "nb201", "evaluator": "surrogate:cifar10"})


def test_normalize_puts_a_cell_into_the_skeleton_and_writes_strings_as_the_space_does() -> None:
    loose = "|nor_conv_3x3~0|+|skip_connect~0|+|avg_pool_3x3~2|"  # the none edges left out
    assert NB201.describe(NB201.normalize(loose)) == CELL
    with pytest.raises(SearchSpaceError, match="unknown operation"):
        NB201.normalize("|conv_9x9~0|")
    chrom = NB201.normalize(NB201.chromosome(" " + CELL + " "))
    NB201.check(chrom)
    assert NB201.describe(chrom) == CELL == NB201.describe(NB201.normalize(CELL))
