"""Hypothesis strategies: layers and architectures drawn from the paper's gene pool."""

from __future__ import annotations

from hypothesis import strategies as st

FILTERS = list(range(16, 129, 16))
DROPOUT = [0.0, 0.1, 0.2, 0.30000000000000004, 0.3, 0.4, 0.5]


def _block(name: str):
    return st.fixed_dictionaries(
        {
            "layer": st.just(name),
            "filters": st.sampled_from(FILTERS),
            "kernel_size": st.sampled_from([3, 5, 7]),
            "strides": st.sampled_from([1, 2]),
            "skip_connection": st.sampled_from([0, 1]),
        }
    )


layers = st.one_of(
    st.fixed_dictionaries(
        {
            "layer": st.just("C_2D"),
            "filters": st.sampled_from(FILTERS),
            "kernel_size": st.integers(1, 7),
            "strides": st.integers(1, 2),
            "padding": st.just("same"),
        }
    ),
    st.fixed_dictionaries({"layer": st.just("DC_2D"), "kernel_size": st.integers(1, 7), "strides": st.integers(1, 2)}),
    st.fixed_dictionaries({"layer": st.sampled_from(["MP_2D", "AP_2D"]), "pool_size": st.integers(2, 4)}),
    st.fixed_dictionaries({"layer": st.sampled_from(["GAP_2D", "GMP_2D", "FLAT", "R_2D", "BN_2D", "IN_2D"])}),
    st.fixed_dictionaries({"layer": st.just("DO"), "rate": st.sampled_from(DROPOUT)}),
    st.fixed_dictionaries(
        {"layer": st.just("D"), "units": st.sampled_from(list(range(16, 97, 8))), "activation": st.just("relu")}
    ),
    _block("RES_2D"),
    _block("BOT_2D"),
)

RESCALING = {"layer": "Rescaling", "f_name": "Rescaling", "scale": 0.00392156862745098}


@st.composite
def archs(draw, min_size: int = 1, max_size: int = 25):
    body = draw(st.lists(layers, min_size=min_size, max_size=max_size))
    return ([RESCALING] if draw(st.booleans()) else []) + body
