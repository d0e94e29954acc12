"""Tests of the search space: the file format, seeded sampling and the validity rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyevonas.errors import SearchSpaceError
from pyevonas.search.space import SearchSpace

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.load("paper")


@pytest.fixture(scope="module")
def paper_chromosomes() -> list[dict[str, Any]]:
    return json.loads((DATA / "paper_chromosomes.json").read_text())["chromosomes"]


def _paper_dict() -> dict[str, Any]:
    return SearchSpace.load("paper").to_dict()


def _layers(chrom: list[dict[str, Any]]) -> list[str]:
    return [g["layer"] for g in chrom]


# ---------------------------------------------------------------- the paper's space


def test_paper_space_groups(space: SearchSpace) -> None:
    assert space.start_layer == "Rescaling"
    assert space.first_layers == ["C_2D", "DC_2D", "RES_2D", "BOT_2D"]
    assert set(space.feature_layers) == {
        "C_2D",
        "DC_2D",
        "BN_2D",
        "IN_2D",
        "R_2D",
        "MP_2D",
        "AP_2D",
        "RES_2D",
        "BOT_2D",
    }
    assert space.pooling_layers == ["GAP_2D", "GMP_2D", "FLAT"]
    assert space.dense_layers == ["DO", "D"]
    assert (space.min_feature_layers, space.max_feature_layers) == (1, 20)
    assert (space.min_dense_layers, space.max_dense_layers) == (0, 2)
    assert (space.sampling.min_feature_layers, space.sampling.max_feature_layers) == (5, 20)
    assert (space.sampling.min_dense_layers, space.sampling.max_dense_layers) == (1, 2)
    assert SearchSpace.load("default").to_dict() == space.to_dict()


def test_paper_value_sets_match_the_original(space: SearchSpace) -> None:
    assert space.param_values("C_2D")["filters"] == list(range(16, 129, 16))
    assert space.param_values("C_2D")["kernel_size"] == list(range(1, 8))
    assert space.param_values("RES_2D")["kernel_size"] == [3, 5, 7]
    assert space.param_values("BOT_2D")["skip_connection"] == [0, 1]
    assert space.param_values("MP_2D")["pool_size"] == [2, 3, 4]
    assert space.param_values("D")["units"] == list(range(16, 97, 8))
    # The original's float range excludes its stop 0.5; the file states the sampled set 0..0.4.
    assert space.param_values("DO")["rate"] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert space.param_values("Rescaling")["scale"] == [1 / 255]


def test_successor_rules_follow_rule_set(space: SearchSpace) -> None:
    assert space.successors("R_2D") == ["AP_2D", "MP_2D", "DC_2D", "C_2D", "RES_2D", "BOT_2D"]
    assert "MP_2D" not in space.successors("AP_2D")
    assert "BN_2D" not in space.successors("IN_2D")
    assert space.successors("DO") == ["D"] and space.successors("D") == ["DO"]
    # The feature -> pooling junction is not a listed successor but is always allowed.
    assert "GAP_2D" not in space.successors("C_2D")
    assert space.can_follow("C_2D", "GAP_2D") and space.can_follow("BN_2D", "FLAT")
    assert not space.can_follow("GAP_2D", "C_2D")
    with pytest.raises(SearchSpaceError, match="unknown layer 'XYZ'"):
        space.successors("XYZ")


# ---------------------------------------------------------------- sampling


def test_sampling_is_seeded(space: SearchSpace) -> None:
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(7)
    c = [space.sample(rng) for _ in range(5)]
    assert len({json.dumps(x) for x in c}) == 5


def test_samples_are_valid_and_shaped_like_the_original(space: SearchSpace) -> None:
    rng = np.random.default_rng(123)
    firsts, n_feats, n_dense = set(), set(), set()
    for _ in range(400):
        chrom = space.sample(rng)
        space.check(chrom)
        layers = _layers(chrom)
        assert layers[0] == "Rescaling" and chrom[0]["scale"] == 1 / 255
        pool = [i for i, name in enumerate(layers) if name in space.pooling_layers]
        assert len(pool) == 1
        n_feats.add(pool[0] - 1)
        n_dense.add(len(layers) - pool[0] - 1)
        firsts.add(layers[1])
        assert 8 <= len(chrom) <= 24
        # Genes carry f_name and every parameter, with plain Python values (JSON-able).
        json.dumps(chrom)
        for gene in chrom:
            assert set(space.param_values(gene["layer"])) <= set(gene)
    assert firsts == set(space.first_layers)
    assert n_feats == set(range(5, 21))
    assert n_dense == {1, 2}


def test_random_gene(space: SearchSpace) -> None:
    rng = np.random.default_rng(0)
    genes = [space.random_gene("RES_2D", rng) for _ in range(200)]
    assert all(g["layer"] == "RES_2D" and g["f_name"] == "RES_2D" for g in genes)
    assert {g["kernel_size"] for g in genes} == {3, 5, 7}
    assert {g["skip_connection"] for g in genes} == {0, 1}
    assert all(type(g["filters"]) is int for g in genes)
    assert space.random_gene("BN_2D", rng) == {"layer": "BN_2D", "f_name": "BatchNormalization()"}
    with pytest.raises(SearchSpaceError, match="unknown layer"):
        space.random_gene("SE_2D", rng)


# ---------------------------------------------------------------- check


def test_paper_run_chromosomes_against_the_rules(space: SearchSpace, paper_chromosomes: list[dict[str, Any]]) -> None:
    for item in paper_chromosomes:
        chrom = item["chromosome"]
        layers = _layers(chrom)
        has_pool = any(name in space.pooling_layers for name in layers)
        if not has_pool:
            with pytest.raises(SearchSpaceError, match="no global pooling"):
                space.check(chrom)
            continue
        pool = next(i for i, name in enumerate(layers) if name in space.pooling_layers)
        rules_hold = all(space.can_follow(a, b) for a, b in zip(layers, layers[1:], strict=False))
        within = pool - 1 <= 20 and len(layers) - pool - 1 <= 2
        assert space.is_valid(chrom) == (rules_hold and within), item["name"]
    assert sum(space.is_valid(i["chromosome"]) for i in paper_chromosomes) >= 25


def _valid() -> list[dict[str, Any]]:
    return [
        {"layer": "Rescaling", "f_name": "Rescaling", "scale": 0.00392156862745098},
        {"layer": "C_2D", "f_name": "Conv2D", "filters": 32, "kernel_size": 3, "strides": 1, "padding": "same"},
        {"layer": "BN_2D", "f_name": "BatchNormalization()"},
        {"layer": "R_2D", "f_name": "ReLU()"},
        {"layer": "MP_2D", "f_name": "MaxPooling2D", "pool_size": 2, "padding": "same"},
        {"layer": "GAP_2D", "f_name": "GlobalAveragePooling2D()"},
        {"layer": "DO", "f_name": "Dropout", "rate": 0.30000000000000004},
        {"layer": "D", "f_name": "Dense", "units": 64, "activation": "relu"},
    ]


def test_check_accepts_a_valid_chromosome_and_one_without_start(space: SearchSpace) -> None:
    space.check(_valid())
    space.check(_valid()[1:])  # the text notation has no Rescaling gene
    assert space.is_valid(_valid()[1:6])  # no dense genes: the paper allows 0..2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop(5), "no global pooling"),
        (lambda c: c.insert(6, {"layer": "GMP_2D"}), "2 global pooling genes"),
        (lambda c: c.insert(1, {"layer": "BN_2D"}), r"gene 1 \(BN_2D\) may not follow gene 0 \(Rescaling\)"),
        (lambda c: c.insert(4, {"layer": "R_2D"}), r"gene 4 \(R_2D\) may not follow gene 3 \(R_2D\)"),
        (lambda c: c.insert(7, {"layer": "DO", "rate": 0.1}), r"gene 7 \(DO\) may not follow gene 6 \(DO\)"),
        (
            lambda c: c.insert(6, {"layer": "C_2D", "filters": 16, "kernel_size": 1, "strides": 1, "padding": "same"}),
            r"gene 6 \(C_2D\): a feature gene after the global pooling",
        ),
        (lambda c: c.__setitem__(1, {**c[1], "filters": 17}), r"gene 1 \(C_2D\): filters=17 is not one of"),
        (lambda c: c[1].pop("kernel_size"), r"gene 1 \(C_2D\): missing parameter 'kernel_size'"),
        (lambda c: c.__setitem__(2, {"layer": "SE_2D"}), r"gene 2 \(SE_2D\): unknown layer"),
        (lambda c: c.__setitem__(2, "BN_2D"), "gene 2: expected a dict"),
        (lambda c: c.__setitem__(2, {"f_name": "x"}), "gene 2: missing or non-string 'layer'"),
        (
            lambda c: c.insert(3, {"layer": "Rescaling", "scale": 1 / 255}),
            r"gene 3 \(Rescaling\): the start gene may only come first",
        ),
        (lambda c: c.__setitem__(1, {"layer": "BN_2D"}), r"may not follow gene 0 \(Rescaling\)"),
        (lambda c: c.append({"layer": "DO", "rate": 0.0}), "3 dense genes; at most 2"),
    ],
)
def test_check_names_the_broken_rule(space: SearchSpace, edit: Any, message: str) -> None:
    chrom = _valid()
    edit(chrom)
    with pytest.raises(SearchSpaceError, match=message):
        space.check(chrom)
    assert not space.is_valid(chrom)


def test_text_notation_chromosomes_and_normalize(space: SearchSpace) -> None:
    # The text notation carries no start gene, f_name, padding or activation.
    text_like = [
        {"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1},
        {"layer": "MP_2D", "pool_size": 2},
        {"layer": "GAP_2D"},
        {"layer": "D", "units": 64},
    ]
    space.check(text_like)
    full = space.normalize(text_like)
    assert full[0] == {"layer": "Rescaling", "f_name": "Rescaling", "scale": 1 / 255}
    assert full[1] == {
        "layer": "C_2D",
        "f_name": "Conv2D",
        "filters": 32,
        "kernel_size": 3,
        "strides": 1,
        "padding": "same",
    }
    assert full[4] == {"layer": "D", "f_name": "Dense", "units": 64, "activation": "relu"}
    assert space.normalize(full) == full and text_like[0] == {
        "layer": "C_2D",
        "filters": 32,
        "kernel_size": 3,
        "strides": 1,
    }
    space.check(full)
    sampled = space.sample(np.random.default_rng(1))
    assert space.normalize(sampled) == sampled
    with pytest.raises(SearchSpaceError, match="missing parameter 'pool_size'"):
        space.check(
            [{"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1}, {"layer": "MP_2D"}, {"layer": "GAP_2D"}]
        )


def test_check_first_gene_without_start(space: SearchSpace) -> None:
    with pytest.raises(SearchSpaceError, match=r"gene 0 \(BN_2D\): a chromosome must start with Rescaling"):
        space.check([{"layer": "BN_2D"}, {"layer": "GAP_2D"}])


def test_check_length_limits(space: SearchSpace) -> None:
    conv = {"layer": "C_2D", "filters": 16, "kernel_size": 1, "strides": 1, "padding": "same"}
    chrom = [{"layer": "Rescaling", "scale": 1 / 255}] + [dict(conv) for _ in range(20)] + [{"layer": "FLAT"}]
    space.check(chrom)
    chrom.insert(1, dict(conv))
    with pytest.raises(SearchSpaceError, match="21 feature genes; at most 20"):
        space.check(chrom)
    with pytest.raises(SearchSpaceError, match="no global pooling"):
        space.check([{"layer": "Rescaling", "scale": 1 / 255}])
    with pytest.raises(SearchSpaceError, match="empty"):
        space.check([])
    with pytest.raises(SearchSpaceError, match="list of gene dicts"):
        space.check("C(32,3,1) g")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the file format


def test_round_trip_and_user_file(tmp_path: Path) -> None:
    data = _paper_dict()
    data["name"] = "mine"
    data["limits"]["max_feature_layers"] = None  # unbounded, as the original code
    path = tmp_path / "space.json"
    path.write_text(json.dumps(data))
    mine = SearchSpace.load(path)
    assert mine.name == "mine" and mine.max_feature_layers is None
    assert SearchSpace.load(str(path)).to_dict() == mine.to_dict()
    assert SearchSpace.from_dict(mine.to_dict()).to_dict() == mine.to_dict()
    conv = {"layer": "C_2D", "filters": 16, "kernel_size": 1, "strides": 1, "padding": "same"}
    mine.check([dict(conv) for _ in range(40)] + [{"layer": "GAP_2D"}])


def _broken(edit: Any) -> dict[str, Any]:
    data = copy.deepcopy(_paper_dict())
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("start"), "start: Field required"),
        (lambda d: d.__setitem__("schema_version", 2), "schema_version"),
        (lambda d: d.__setitem__("extra", 1), "extra: Extra inputs are not permitted"),
        (lambda d: d["genes"]["C_2D"]["successors"].append("XX"), "genes.C_2D.successors: unknown gene 'XX'"),
        (lambda d: d["genes"]["C_2D"]["successors"].append("D"), "'D' is a dense gene, but a feature gene"),
        (lambda d: d["genes"]["C_2D"].__setitem__("role", "conv"), "genes.C_2D.role"),
        (
            lambda d: d["genes"]["C_2D"]["params"].__setitem__("filters", {"range": [16, 8, 1]}),
            "stop 8 is below start 16",
        ),
        (lambda d: d["genes"]["C_2D"]["params"].__setitem__("filters", {"range": [16, 128, 0]}), "step must be > 0"),
        (lambda d: d["genes"]["C_2D"]["params"].__setitem__("filters", {"range": ["16", 128, 16]}), "three numbers"),
        (lambda d: d["genes"]["C_2D"]["params"].__setitem__("filters", {"choices": []}), "choices must not be empty"),
        (
            lambda d: d["genes"]["C_2D"]["params"].__setitem__("filters", {"range": [1, 2, 1], "choices": [1]}),
            "exactly one",
        ),
        (lambda d: d["genes"]["C_2D"]["params"].__setitem__("layer", {"choices": [1]}), "reserved"),
        (lambda d: d.__setitem__("start", "C_2D"), "must have role 'start'"),
        (lambda d: d["genes"]["GAP_2D"].__setitem__("successors", []), "every pooling gene needs successors"),
        (lambda d: d["sampling"].__setitem__("max_feature_layers", 30), "within limits"),
        (lambda d: d["sampling"].__setitem__("max_dense_layers", 0), "max_dense_layers is below"),
        (lambda d: [d["genes"].pop(k) for k in ("GAP_2D", "GMP_2D", "FLAT")], "unknown gene 'DO'|pooling"),
    ],
)
def test_bad_space_files_name_the_problem(tmp_path: Path, edit: Any, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(edit)))
    with pytest.raises(SearchSpaceError, match=message) as info:
        SearchSpace.load(path)
    assert str(path) in str(info.value)


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="neither a built-in space .*paper"):
        SearchSpace.load("no-such-space")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="not valid JSON"):
        SearchSpace.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(SearchSpaceError, match="must hold a JSON object"):
        SearchSpace.load(bad)


# ---------------------------------------------------------------- properties

from hypothesis import given, settings
from hypothesis import strategies as st

_PAPER = SearchSpace.load("paper")
_junk_value = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=True), st.text(max_size=3))
_junk_gene = st.one_of(
    st.fixed_dictionaries(
        {"layer": st.sampled_from([*_PAPER.layers, "SE_2D", ""])},
        optional=dict.fromkeys(
            ("filters", "kernel_size", "strides", "pool_size", "rate", "units", "scale", "skip_connection"), _junk_value
        ),
    ),
    _junk_value,
    st.lists(_junk_value, max_size=2),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_every_seed_samples_a_valid_chromosome(seed: int) -> None:
    chrom = _PAPER.sample(np.random.default_rng(seed))
    _PAPER.check(chrom)
    assert _PAPER.normalize(chrom) == chrom


@settings(max_examples=300, deadline=None)
@given(st.lists(_junk_gene, max_size=8))
def test_check_raises_only_search_space_errors(chrom: list[Any]) -> None:
    try:
        _PAPER.check(chrom)
    except SearchSpaceError as exc:
        assert str(exc)
    else:
        assert _PAPER.is_valid(chrom)
