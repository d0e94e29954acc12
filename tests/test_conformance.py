"""The `paper` schema reproduces the authors' own implementation, value for value.

Data: tests/data/conformance_*.json.gz: similarities that the authors' code (Biopython 1.83
pairwise2) computed on 4,922 real and generated pairs and on 10 real generations of the published
runs (trimmed to what the tests read). The metric is described in docs/original.md.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import pyevonas
from pyevonas.metric.api import round3, score_matrix

DATA = Path(__file__).parent / "data"


@cache
def pairs() -> list[dict]:
    with gzip.open(DATA / "conformance_pairs.json.gz", "rt") as f:
        return json.load(f)["pairs"]


@cache
def generations() -> list[dict]:
    with gzip.open(DATA / "conformance_matrices.json.gz", "rt") as f:
        return json.load(f)["generations"]


def _check_direction(sim: float, score: float, exp_score: float, exp_unrounded: float, exp_rounded: float) -> None:
    assert score == exp_score
    # The original reports raw values below 0 on odd pairs; pyevonas clamps them to 0.
    assert abs(sim - max(exp_unrounded, 0.0)) <= 1e-12
    assert round(sim, 3) == max(exp_rounded, 0.0)


def test_every_pair_both_directions_matches_the_original() -> None:
    ps = pairs()
    assert len(ps) == 4922
    archs_a = [p["a"] for p in ps]
    archs_b = [p["b"] for p in ps]
    # One population holding all pairs: row i = a_i; cross against b gives the diagonal we need.
    for first, second, key in ((archs_a, archs_b, ""), (archs_b, archs_a, "rev_")):
        sims = np.array(
            [pyevonas.similarity_matrix([x], [y], schema="paper")[0, 0] for x, y in zip(first, second, strict=True)]
        )
        scores = np.array([score_matrix([x], [y], schema="paper")[0, 0] for x, y in zip(first, second, strict=True)])
        for p, s, sc in zip(ps, sims, scores, strict=True):
            _check_direction(float(s), float(sc), p[key + "score"], p[key + "sim_unrounded"], p[key + "sim"])
    # The unrounded values are not just close: the same operation order gives the same doubles.
    exact = sum(
        float(pyevonas.similarity(p["a"], p["b"], schema="paper")) == p["sim_unrounded"]
        for p in ps
        if p["sim_unrounded"] >= 0
    )
    assert exact == sum(p["sim_unrounded"] >= 0 for p in ps)


def test_sequences_match_the_original_letters() -> None:
    for p in pairs():
        assert pyevonas.sequence(p["a"], schema="paper") == p["seq_a"]
        assert pyevonas.sequence(p["b"], schema="paper") == p["seq_b"]


def test_self_scores_match() -> None:
    for p in pairs()[:500]:
        assert score_matrix([p["a"]], [p["a"]], schema="paper")[0, 0] == p["self_a"]


@pytest.mark.parametrize("index", range(10))
def test_generation_matrix_matches_the_original(index: int) -> None:
    g = generations()[index]
    m = pyevonas.similarity_matrix(g["chromosomes"], schema="paper")
    raw = score_matrix(g["chromosomes"], schema="paper")
    assert m.shape == (25, 25)
    np.testing.assert_array_equal(raw, np.array(g["raw_score_matrix"]))
    expected = np.maximum(np.array(g["unrounded_matrix"]), 0.0)
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(round3(m), np.maximum(np.array(g["matrix"]), 0.0))
    med = g["medians_recomputed"]
    rounded = round3(m)
    assert pyevonas.diversity(rounded, how="offdiag") == pytest.approx(med["offdiag_both_triangles_median"], abs=1e-12)
    assert pyevonas.diversity(rounded, how="upper") == pytest.approx(med["upper_triangle_k1_median"], abs=1e-12)
    assert pyevonas.diversity(rounded, how="full") == pytest.approx(med["full_matrix_median_incl_diag"], abs=1e-12)


@pytest.mark.parametrize("index", range(10))
def test_default_schema_makes_every_real_generation_symmetric(index: int) -> None:
    g = generations()[index]
    m = pyevonas.similarity_matrix(g["chromosomes"])
    np.testing.assert_array_equal(m, m.T)
    assert np.all(np.diag(m) == 1.0)
    # ...and it equals the paper schema on every pair without a Flatten/global-pooling column.
    paper = pyevonas.similarity_matrix(g["chromosomes"], schema="paper")
    assert np.all((m == paper) | (m > paper))


def test_paper_schema_is_directed_and_default_is_not() -> None:
    assert not pyevonas.Scoring.builtin("paper").symmetric
    assert pyevonas.Scoring.builtin("default").symmetric
    a, b = "E F(32)", "g F(32)"
    assert pyevonas.similarity(a, b, "paper") != pyevonas.similarity(b, a, "paper")
    assert pyevonas.similarity(a, b) == pyevonas.similarity(b, a)


def test_conformance_through_the_lane_kernel() -> None:
    """The same checks with many rows per call, so the SIMD lane kernel computes every value
    (small calls take the scalar path; both must reproduce the original)."""
    ps = pairs()
    block = 160
    for start in range(0, len(ps), block):
        chunk = ps[start : start + block]
        a = [p["a"] for p in chunk]
        b = [p["b"] for p in chunk]
        fwd = np.diag(pyevonas.similarity_matrix(a, b, schema="paper"))
        rev = np.diag(pyevonas.similarity_matrix(b, a, schema="paper"))
        for p, s, r in zip(chunk, fwd, rev, strict=True):
            assert abs(s - max(p["sim_unrounded"], 0.0)) <= 1e-12 and round(float(s), 3) == max(p["sim"], 0.0)
            assert abs(r - max(p["rev_sim_unrounded"], 0.0)) <= 1e-12 and round(float(r), 3) == max(p["rev_sim"], 0.0)
    # All ten generations in one 250 x 250 population: each 25 x 25 diagonal block is a generation.
    gens = generations()
    chroms = [c for g in gens for c in g["chromosomes"]]
    big = pyevonas.similarity_matrix(chroms, schema="paper")
    for k, g in enumerate(gens):
        blk = big[25 * k : 25 * (k + 1), 25 * k : 25 * (k + 1)]
        np.testing.assert_allclose(blk, np.maximum(np.array(g["unrounded_matrix"]), 0.0), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(round3(blk), np.maximum(np.array(g["matrix"]), 0.0))
    sym = pyevonas.similarity_matrix(chroms)
    np.testing.assert_array_equal(sym, sym.T)
