"""Scoring schemas: the shipped files, the published JSON Schema, and one clear error per problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import pyevonas
from pyevonas.errors import SchemaError
from pyevonas.metric import Gene, compiled
from pyevonas.metric.schema import Scoring, json_schema, resolve_scoring

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def paper_dict() -> dict[str, Any]:
    return json.loads((SCHEMAS / "paper.json").read_text())


def test_shipped_schemas_load_and_differ_only_in_the_flatten_rule() -> None:
    paper, default = Scoring.builtin("paper"), Scoring.builtin("default")
    assert [g.letter for g in paper.genes] == list("CDMAgGELBIOFRrTt")
    assert paper.genes == default.genes
    flat_p = [r for r in paper.rules if ("E", "g") in r.pairs]
    flat_d = [r for r in default.rules if ("E", "g") in r.pairs]
    assert flat_p[0].directed and not flat_d[0].directed
    assert (paper.pair_mismatch, default.pair_mismatch) == ("first", "min")


def test_published_json_schema_matches_the_models() -> None:
    """Fails when schemas/scoring.schema.json drifts from schema.py (regenerate with
    `pyevonas schema export -o schemas/scoring.schema.json`)."""
    published = json.loads((SCHEMAS / "scoring.schema.json").read_text())
    assert published == json_schema()


def test_schema_files_validate_against_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCHEMAS / "scoring.schema.json").read_text())
    for name in ("paper.json", "default.json"):
        jsonschema.validate(json.loads((SCHEMAS / name).read_text()), schema)


def test_round_trip_and_resolution(tmp_path: Path) -> None:
    s = Scoring.builtin("paper")
    again = Scoring.from_json(s.to_json())
    assert again == s
    p = tmp_path / "mine.json"
    p.write_text(s.to_json())
    assert resolve_scoring(p) == s
    assert resolve_scoring(str(p)) == s
    assert resolve_scoring(s) is s
    assert pyevonas.similarity("C(32,3,1) g", "C(32,3,2) g", schema=p) == pyevonas.similarity(
        "C(32,3,1) g", "C(32,3,2) g", schema="paper"
    )
    with pytest.raises(SchemaError, match="no scoring schema 'nope'"):
        resolve_scoring("nope")
    with pytest.raises(SchemaError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        Scoring.load(tmp_path / "bad.json")
    with pytest.raises(SchemaError, match="cannot read"):
        Scoring.load(tmp_path / "missing.json")


def _mutated(edit) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    d = paper_dict()
    edit(d)
    return d


CASES = [
    (
        "duplicate letter",
        lambda d: d["genes"][1].__setitem__("letter", "C"),
        r"genes\[1\]\.letter: duplicate letter 'C'",
    ),
    ("missing letter", lambda d: d["genes"][2].pop("letter"), r"genes\[2\]\.letter: Field required"),
    ("two-char letter", lambda d: d["genes"][2].__setitem__("letter", "MM"), r"genes\[2\]\.letter"),
    ("reserved letter", lambda d: d["genes"][2].__setitem__("letter", "-"), r"genes\[2\]\.letter: '-' is reserved"),
    (
        "no-break space letter",
        lambda d: d["genes"][2].__setitem__("letter", "\u00a0"),
        r"genes\[2\]\.letter: '\\xa0' is a space or an invisible character",
    ),
    ("unknown key", lambda d: d.__setitem__("colour", 1), r"colour: unknown key"),
    (
        "unknown rule letter",
        lambda d: d["rules"][0]["pairs"].append(["C", "Q"]),
        r"rules\[0\]\.pairs\[1\]\[1\]: unknown letter 'Q'",
    ),
    (
        "unknown parameter",
        lambda d: d["rules"][0]["terms"].append({"param": "colour", "weight": 1}),
        r"rules\[0\]\.terms\[3\]\.param: unknown parameter 'colour'",
    ),
    (
        "negative weight",
        lambda d: d["rules"][0]["terms"][0].__setitem__("weight", -0.6),
        r"rules\.0\.terms\.0\.weight|rules\[0\]\.terms\[0\]\.weight",
    ),
    (
        "non-finite weight",
        lambda d: d["rules"][0]["terms"][0].__setitem__("weight", float("inf")),
        r"rules\[0\]\.terms\[0\]\.weight",
    ),
    (
        "self match not positive",
        lambda d: d["rules"][8].__setitem__("base", 0),
        r"genes\[7\]: the self match of 'L' is not positive",
    ),
    (
        "no self rule",
        lambda d: d["rules"].pop(8),
        r"genes\[7\]: the self match of 'L' is not positive \(no rule scores it",
    ),
    (
        "rule above self match",
        lambda d: d["rules"][1].__setitem__("base", 3.5),
        r"rules\[1\]: pair CD can score 3.5, above the self match",
    ),
    (
        "mismatch above self",
        lambda d: d["genes"][0].__setitem__("mismatch", 1.2),
        r"genes\[0\]\.mismatch: 1.2 is above the self match of 'L'",
    ),
    (
        "empty range as normaliser",
        lambda d: d["genes"][2]["params"].__setitem__("pool_size", {"min": 2, "max": 2}),
        r"the range of 'pool_size' is empty",
    ),
    (
        "min above max",
        lambda d: d["genes"][2]["params"].__setitem__("pool_size", {"min": 4, "max": 2}),
        r"genes\[2\]\.params\.pool_size: min 4.0 is greater than max 2.0",
    ),
    ("duplicate pair", lambda d: d["rules"].append({"pairs": [["D", "C"]], "base": 1}), r"pair DC already has a rule"),
    ("positive gap", lambda d: d["gap"].__setitem__("open", 0.5), r"gap\.open"),
    ("open above extend", lambda d: d["gap"].update(open=-0.1, extend=-0.5), r"gap: open \(-0.1\) must be <= extend"),
    ("wrong version", lambda d: d.__setitem__("schema_version", 2), r"schema_version"),
    ("bad lower bound", lambda d: d.__setitem__("lower_bound", "zero"), r"lower_bound"),
    (
        "ambiguous layer",
        lambda d: d["genes"][13]["when"].__setitem__("skip_connection", 1),
        r"genes\[13\]: layer 'RES_2D' .* is already genes\[12\]",
    ),
]


@pytest.mark.parametrize("name,edit,pattern", CASES, ids=[c[0] for c in CASES])
def test_each_problem_gets_a_clear_error_naming_its_path(name: str, edit, pattern: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=pattern) as info:
        Scoring.from_dict(_mutated(edit), source="mine.json")
    assert "mine.json" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_several_problems_are_all_reported() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["genes"][1]["letter"] = "C"
        d["genes"][3]["letter"] = "M"

    with pytest.raises(SchemaError) as info:
        Scoring.from_dict(_mutated(edit))
    text = str(info.value)
    assert "genes[1].letter: duplicate" in text and "genes[3].letter: duplicate" in text


def test_a_user_schema_scores_a_new_layer_type() -> None:
    d = paper_dict()
    d["name"] = "with-separable"
    d["genes"].append(
        {
            "letter": "S",
            "layer": "SEP_2D",
            "name": "SeparableConv2D",
            "params": {"filters": {"min": 16, "max": 128, "step": 16}, "kernel_size": {"min": 1, "max": 7}},
            "mismatch": -2,
        }
    )
    d["rules"].append(
        {
            "pairs": [["S", "S"]],
            "base": 3,
            "terms": [{"param": "filters", "weight": 0.6}, {"param": "kernel_size", "weight": 0.8}],
        }
    )
    d["rules"].append({"pairs": [["S", "C"]], "base": 2, "terms": [{"param": "kernel_size", "weight": 1.0}]})
    s = Scoring.from_dict(d)
    a = [{"layer": "SEP_2D", "filters": 32, "kernel_size": 3}, {"layer": "GAP_2D"}]
    b = [{"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1}, {"layer": "GAP_2D"}]
    # S vs C: 2 - 0; g vs g: 1.5 -> score 3.5; lo = -1; hi = max(4.5, 4.5) -> (3.5 + 1) / 5.5
    assert pyevonas.similarity(a, b, schema=s) == pytest.approx(4.5 / 5.5, abs=1e-15)
    assert pyevonas.sequence(a, schema=s) == "Sg"
    assert pyevonas.parse_arch("S(64,5) g", schema=s)[0] == {"layer": "SEP_2D", "filters": 64, "kernel_size": 5}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=True) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def damaged_schemas(draw) -> Any:  # type: ignore[no-untyped-def]
    """A real schema with random parts replaced by random JSON: close enough to get deep."""
    d = paper_dict()
    for _ in range(draw(st.integers(1, 4))):
        node: Any = d
        path = []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
            path.append((node, key))
            node = node[key]
        if path:
            parent, key = path[-1]
            parent[key] = draw(json_values)
        else:
            return draw(json_values)
    return d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_schemas())
@example(paper_dict())  # the property below always runs on a valid schema at least once
def test_fuzzed_schemas_raise_only_schema_error(data: Any) -> None:
    try:
        s = Scoring.from_dict(copy.deepcopy(data))
    except SchemaError:
        return
    # Whatever validates round-trips, compiles, and scores as the format promises: an
    # architecture of one gene of each type (parameters at their minimum) is exactly as similar
    # to itself as possible (every rule and mismatch stays below a gene's self match), and to
    # its reverse somewhere in [0, 1].
    assert Scoring.from_dict(s.to_dict()) == s
    table = compiled(s)
    arch = [
        table.to_layer(Gene(g.letter, g.layer, {k: r.min for k, r in g.params.items()}))
        for g in s.genes
        if g.layer not in s.ignore_layers
    ]
    if not arch:
        return
    assert pyevonas.similarity(arch, arch, schema=s) == 1.0
    assert 0.0 <= pyevonas.similarity(arch, arch[::-1], schema=s) <= 1.0
