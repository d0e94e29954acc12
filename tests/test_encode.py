"""Encoding: chromosomes and the text notation into genes, and clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import RESCALING, archs

import pyevonas
from pyevonas.errors import EncodingError

CHROM = [
    RESCALING,
    {"layer": "C_2D", "f_name": "Conv2D", "filters": 32, "kernel_size": 3, "strides": 1, "padding": "same"},
    {"layer": "BN_2D", "f_name": "BatchNormalization()"},
    {"layer": "RES_2D", "f_name": "RES_2D", "filters": 64, "strides": 2, "kernel_size": 5, "skip_connection": 0},
    {"layer": "MP_2D", "pool_size": 2, "padding": "same"},
    {"layer": "GAP_2D"},
    {"layer": "DO", "rate": 0.30000000000000004},
    {"layer": "D", "units": 64, "activation": "relu"},
]


def test_sequence_and_text_notation() -> None:
    assert pyevonas.sequence(CHROM) == "CBrMgOF"
    text = pyevonas.format_arch(CHROM)
    assert text == "C(32,3,1) B r(64,5,2) M(2) g O(0.30000000000000004) F(64)"
    back = pyevonas.parse_arch(text)
    assert back[2] == {"layer": "RES_2D", "skip_connection": 0, "filters": 64, "kernel_size": 5, "strides": 2}
    assert back[5]["rate"] == 0.30000000000000004  # the exact double survives
    assert pyevonas.similarity(CHROM, text) == 1.0
    assert pyevonas.sequence("C(32,3,1)BLM(2)gF(64)") == "CBLMgF"  # spaces are optional
    assert pyevonas.sequence("  R(16, 3, 1)   t(32,7,2) G ") == "RtG"


@settings(max_examples=200, deadline=None)
@given(archs())
def test_text_notation_round_trips(arch: list[dict[str, Any]]) -> None:
    text = pyevonas.format_arch(arch)
    assert pyevonas.format_arch(pyevonas.parse_arch(text)) == text
    assert pyevonas.similarity(arch, text) == 1.0


BAD = [
    ([], "empty architecture"),
    ([RESCALING], r"empty architecture: no gene to align \(only ignored layers"),
    ("", "empty architecture"),
    ("   ", "empty architecture"),
    ([{"layer": "FOO_2D"}], r"layer 0: unknown layer 'FOO_2D'"),
    ([RESCALING, {"layer": "C_2D", "filters": 32, "strides": 1}], r"layer 1 \(C_2D\): missing parameter 'kernel_size'"),
    ([{"layer": "DO", "rate": float("nan")}], r"layer 0 \(DO\): parameter 'rate' is nan"),
    ([{"layer": "D", "units": "64"}], r"parameter 'units' must be a number, got '64'"),
    ([{"layer": "D", "units": True}], r"parameter 'units' must be a number"),
    (
        [{"layer": "RES_2D", "filters": 16, "kernel_size": 3, "strides": 1, "skip_connection": 2}],
        r"layer 0 \(RES_2D\): \{'skip_connection': 2\} matches no gene type",
    ),
    ([{"layer": "RES_2D", "filters": 16, "kernel_size": 3, "strides": 1}], r"matches no gene type"),
    ([{"filters": 3}], r"layer 0: the layer dict has no 'layer' name"),
    (["C_2D"], r"layer 0: expected a layer dict, got str"),
    ({"layer": "C_2D"}, r"must be a list of layer dicts or a text-notation string, got dict"),
    (42, r"got int"),
    ("C(32,3) B", r"gene 0 \(C\): expected \(filters, kernel_size, strides\), got 2 value"),
    ("C(32,3,x)", r"gene 0 \(C\): kernel_size|strides 'x' is not a number"),
    ("Q B", r"gene 0: unknown letter 'Q'"),
    ("B(2)", r"gene 0 \(B\): expected no parameters, got 1"),
    ("C(32,3,1) (", r"cannot read the architecture text"),
    ("C(32", r"gene 0 \(C\): unbalanced parenthesis at character 1: '\(32'"),
    ("B C((1,2,3) g", r"gene 1 \(C\): unbalanced parenthesis"),
    ("O(inf)", r"must be finite"),
]


@pytest.mark.parametrize("arch,pattern", BAD)
def test_bad_architectures_raise_encoding_error_naming_the_layer(arch: Any, pattern: str) -> None:
    with pytest.raises(EncodingError, match=pattern):
        pyevonas.similarity(arch, "C(32,3,1) g")


def test_matrix_errors_name_the_architecture() -> None:
    with pytest.raises(EncodingError, match=r"architecture 2: layer 0: unknown layer 'X'"):
        pyevonas.similarity_matrix(["B", "L", [{"layer": "X"}]])


def test_no_length_limit() -> None:
    # The original crashes beyond 61 genes; pyevonas aligns any length.
    long_a = " ".join(["C(32,3,1) B L"] * 100) + " g F(32)"
    long_b = " ".join(["C(32,3,1) B L"] * 99) + " g F(32)"
    s = pyevonas.similarity(long_a, long_b)
    assert 0.98 < s < 1.0
    assert pyevonas.similarity(long_a, long_a) == 1.0


layer_dicts = st.dictionaries(
    st.sampled_from(
        ["layer", "filters", "kernel_size", "strides", "skip_connection", "rate", "units", "pool_size", "x"]
    ),
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["C_2D", "DC_2D", "RES_2D", "BOT_2D", "DO", "D", "MP_2D", "GAP_2D", "Rescaling"]),
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(layer_dicts | st.integers() | st.text(max_size=3), max_size=6) | st.text(max_size=20))
def test_fuzzed_layers_raise_only_encoding_error(arch: Any) -> None:
    try:
        s = pyevonas.similarity(arch, "C(32,3,1) g")
    except EncodingError:
        return
    assert 0.0 <= s <= 1.0


@settings(max_examples=150, deadline=None)
@given(st.lists(archs(max_size=12), min_size=1, max_size=6))
def test_rust_fast_encoder_equals_the_validating_path(pop: list[list[dict[str, Any]]]) -> None:
    import numpy as np

    from pyevonas.metric._compiled import compiled

    for schema in ("default", "paper"):
        c = compiled(schema)
        fast = c.encoder.encode(pop)
        assert fast is not None
        codes, params, offsets = fast
        genes = [g for a in pop for g in c.genes(a)]
        exp_codes, exp_params = c.encode_genes(genes)
        np.testing.assert_array_equal(codes, exp_codes)
        np.testing.assert_array_equal(params, exp_params)  # NaN == NaN here
        assert list(offsets) == list(np.cumsum([0] + [len(c.genes(a)) for a in pop]))


def test_rust_fast_encoder_gives_up_on_anything_unusual() -> None:
    from pyevonas.metric._compiled import compiled

    c = compiled("default")
    for pop in (
        ["C(32,3,1) g"],
        [[{"layer": "D", "units": True}]],
        [[{"layer": "D", "units": "8"}]],
        [[{"layer": "D", "units": float("nan")}]],
        [[{"layer": "X"}]],
        [[RESCALING]],
        [[]],
        [({"layer": "B"},)],
    ):
        assert c.encoder.encode(pop) is None


def test_odd_when_values_go_to_the_validating_path_which_runs_their_eq() -> None:
    """A `when` value of another type than the built-in scalars is compared by the validating
    path (its `==` may be Python code, which the fast encoder never runs: it could call back
    into pyevonas while the encoder holds its state); bools, ints and floats are compared fast."""
    import numpy as np

    from pyevonas.metric._compiled import compiled

    c = compiled("default")
    res = {"layer": "RES_2D", "filters": 32, "kernel_size": 3, "strides": 1}
    other = [{"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1}, {"layer": "GAP_2D"}]
    calls = []

    class CallsBack:
        def __init__(self, v: int) -> None:
            self.v = v

        def __eq__(self, o: object) -> bool:
            calls.append(pyevonas.similarity(other, other))  # re-enters the native path
            return bool(self.v == o)

        __hash__ = None  # type: ignore[assignment]

    plain = [[dict(res, skip_connection=1)], [dict(res, skip_connection=0)]]
    for value in (1.0, True, np.int64(1), CallsBack(1)):
        odd = [[dict(res, skip_connection=value)], [dict(res, skip_connection=0)]]
        fast = c.encoder.encode(odd)
        assert (fast is None) == isinstance(value, (np.integer, CallsBack)), value
        np.testing.assert_array_equal(pyevonas.similarity_matrix(odd), pyevonas.similarity_matrix(plain))
        assert pyevonas.similarity(odd[0], other) == pyevonas.similarity(plain[0], other)
    assert calls and all(x == 1.0 for x in calls)


@pytest.mark.parametrize("text", ["C(３２,3,1) g", "C(3_2,3,1) g", "C(0x20,3,1) g", "C(32,３,1) g"])
def test_the_notation_takes_plain_ascii_numbers_only(text: str) -> None:
    with pytest.raises(EncodingError, match="is not a number"):
        pyevonas.parse_arch(text)


def test_the_fast_encoder_reads_any_key_objects_alike() -> None:
    """The encoder looks keys up with key objects it met before (an address compare); dicts
    whose keys are other objects with the same text, or str subclasses, read the same values."""
    import json

    import numpy as np

    from pyevonas.metric._compiled import compiled

    class Key(str):
        pass

    base = [
        {"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1},
        {"layer": "BN_2D"},
        {"layer": "D", "units": 10},
    ]
    text = json.dumps(base)
    variants = [
        base,
        json.loads(text),  # key objects of another decode
        [{"".join(k): v for k, v in layer.items()} for layer in base],  # fresh, uninterned keys
        [{Key(k): v for k, v in layer.items()} for layer in base],  # a str subclass
    ]
    c = compiled("default")
    want = c.encode([base])
    for _ in range(3):  # past the encoder's relearning of key objects
        for arch in variants * 20:
            got = c.encode([arch])
            for w, g in zip(want, got, strict=True):
                np.testing.assert_array_equal(w, g)
            assert pyevonas.similarity(arch, base) == 1.0
