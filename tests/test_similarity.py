"""The similarity API: properties on architectures drawn from the paper's gene pool, agreement
with the pure-Python oracle, matrices, nearest neighbours, alignments, diversity and threads."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import archs

import pyevonas
from pyevonas.metric.api import round3, score_matrix

ARCH = settings(max_examples=150, deadline=None)


@ARCH
@given(archs(), archs())
def test_similarity_is_in_unit_interval_and_matches_the_oracle(a: list[dict], b: list[dict]) -> None:
    for schema, symmetric_flatten in (("paper", False), ("default", True)):
        s = pyevonas.similarity(a, b, schema=schema)
        assert 0.0 <= s <= 1.0
        assert s == pytest.approx(reference.similarity(a, b, symmetric_flatten), abs=1e-12)


@ARCH
@given(archs())
def test_self_similarity_is_exactly_one(a: list[dict]) -> None:
    assert pyevonas.similarity(a, a) == 1.0
    assert pyevonas.similarity(a, a, schema="paper") == 1.0


@ARCH
@given(archs(), archs())
def test_default_schema_is_symmetric(a: list[dict], b: list[dict]) -> None:
    assert pyevonas.similarity(a, b) == pyevonas.similarity(b, a)


@settings(max_examples=40, deadline=None)
@given(st.lists(archs(max_size=15), min_size=1, max_size=12), st.lists(archs(max_size=15), min_size=1, max_size=5))
def test_matrix_entries_equal_pairwise_calls(pop: list[list[dict]], others: list[list[dict]]) -> None:
    for schema in ("default", "paper"):
        m = pyevonas.similarity_matrix(pop, schema=schema)
        x = pyevonas.similarity_matrix(pop, others, schema=schema)
        assert m.dtype == np.float64 and m.shape == (len(pop), len(pop))
        assert x.shape == (len(pop), len(others))
        for i, a in enumerate(pop):
            for j, b in enumerate(pop):
                assert m[i, j] == pyevonas.similarity(a, b, schema=schema)
            for j, b in enumerate(others):
                assert x[i, j] == pyevonas.similarity(a, b, schema=schema)
        assert np.all(np.diag(m) == 1.0)


POP = [
    "C(32,3,1) B L M(2) g F(64)",
    "C(32,3,1) B L g F(64)",
    "T(64,3,1) T(64,3,2) D(3,1) B G O(0.2) F(32)",
    "R(16,3,1) r(32,5,2) A(2) E F(96)",
    "D(3,1) B L C(128,7,2) g",
    "C(64,5,1) L M(3) C(64,3,1) B g F(48) O(0.1)",
]


def test_condensed_and_float32_outputs() -> None:
    full = pyevonas.similarity_matrix(POP)
    cond = pyevonas.similarity_matrix(POP, condensed=True)
    iu = np.triu_indices(len(POP), k=1)
    np.testing.assert_array_equal(cond, full[iu])
    f32 = pyevonas.similarity_matrix(POP, dtype=np.float32)
    assert f32.dtype == np.float32
    np.testing.assert_array_equal(f32, full.astype(np.float32))
    assert np.max(np.abs(f32 - full)) <= 3e-8
    c32 = pyevonas.similarity_matrix(POP, condensed=True, dtype="float32")
    np.testing.assert_array_equal(c32, cond.astype(np.float32))
    scipy_spatial = pytest.importorskip("scipy.spatial.distance")
    np.testing.assert_array_equal(scipy_spatial.squareform(cond, checks=False) + np.eye(len(POP)), full)
    with pytest.raises(ValueError, match="symmetric scoring schema"):
        pyevonas.similarity_matrix(POP, schema="paper", condensed=True)
    with pytest.raises(ValueError, match="float64 or float32"):
        pyevonas.similarity_matrix(POP, dtype=np.int32)


def test_nearest_matches_the_full_matrix() -> None:
    full = pyevonas.similarity_matrix(POP)
    idx, sim = pyevonas.nearest(POP, 3)
    assert idx.shape == (len(POP), 3) and idx.dtype == np.int64
    for i in range(len(POP)):
        row = [(-full[i, j], j) for j in range(len(POP)) if j != i]
        best = sorted(row)[:3]
        assert list(idx[i]) == [j for _, j in best]
        np.testing.assert_array_equal(sim[i], [-s for s, _ in best])
    qi, qs = pyevonas.nearest(POP[:2], 2, others=POP)
    assert list(qi[0]) == [0, 1] and qs[0, 0] == 1.0  # against others the row itself counts
    pi, ps = pyevonas.nearest(POP[:2], 10)
    assert pi.shape == ps.shape == (2, 1) and list(pi[:, 0]) == [1, 0]  # k capped at the candidates


def test_align_columns_and_rescoring() -> None:
    al = pyevonas.align(POP[0], POP[1])
    assert al.aligned_a == "CBLMgF"
    assert al.aligned_b == "CBL-gF"
    assert al.column_scores[3] == -0.5
    assert sum(al.column_scores) == al.score
    assert al.similarity == pyevonas.similarity(POP[0], POP[1])
    assert al.columns_b[3] is None and al.columns_a[0].params["filters"] == 32
    assert "similarity" in str(al)
    for a in POP:
        for b in POP:
            x = pyevonas.align(a, b, schema="paper")
            assert sum(x.column_scores) == x.score == score_matrix([a], [b], schema="paper")[0, 0]
            assert x.aligned_a.replace("-", "") == pyevonas.sequence(a)


def test_diversity_definitions() -> None:
    m = np.array([[1.0, 0.2, 0.4], [0.3, 1.0, 0.6], [0.5, 0.7, 1.0]])
    assert pyevonas.diversity(m) == np.median([0.2, 0.4, 0.3, 0.6, 0.5, 0.7])
    assert pyevonas.diversity(m, how="upper") == np.median([0.2, 0.4, 0.6])
    assert pyevonas.diversity(m, how="full") == np.median(m)
    sym = pyevonas.similarity_matrix(POP)
    cond = pyevonas.similarity_matrix(POP, condensed=True)
    for how in ("offdiag", "upper", "full"):
        assert pyevonas.diversity(cond, how=how, condensed=True) == pyevonas.diversity(sym, how=how)
    with pytest.raises(ValueError, match="at least 2"):
        pyevonas.diversity(np.ones((1, 1)))
    with pytest.raises(ValueError, match="square"):
        pyevonas.diversity(np.ones((2, 3)))
    with pytest.raises(ValueError, match="how must be"):
        pyevonas.diversity(m, how="mean")  # type: ignore[arg-type]


def test_round3_is_pythons_round_not_numpys() -> None:
    assert round3(0.5375) == round(0.5375, 3) == 0.537
    assert np.round(0.5375, 3) == 0.538  # the disagreement round3 exists for
    np.testing.assert_array_equal(round3(np.array([[0.5375, 0.1]])), [[0.537, 0.1]])


def test_threads_give_identical_results_and_are_settable() -> None:
    rng = np.random.default_rng(0)
    letters = ["C(32,3,1)", "B", "L", "M(2)", "T(64,5,1)", "D(3,2)", "r(16,3,1)"]
    pop = [" ".join(rng.choice(letters, size=rng.integers(3, 20))) + " g F(32)" for _ in range(120)]
    serial = pyevonas.similarity_matrix(pop, n_threads=1)
    np.testing.assert_array_equal(pyevonas.similarity_matrix(pop, n_threads=2), serial)
    results: list[Any] = [None] * 8

    def work(k: int) -> None:
        results[k] = pyevonas.similarity_matrix(pop)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, serial)
    with pytest.raises(ValueError, match="n_threads"):
        pyevonas.similarity_matrix(pop, n_threads=0)


def test_all_gaps_lower_bound_never_clamps() -> None:
    d = pyevonas.Scoring.builtin("default").to_dict()
    d["lower_bound"] = "all_gaps"
    s = pyevonas.Scoring.from_dict(d)
    # L vs E is below the paper's bound (clamped to 0) but above the true bound.
    assert pyevonas.similarity("L", "E") == 0.0
    assert pyevonas.similarity("L", "E", schema=s) == pytest.approx((-1 + 1) / (1.5 + 1))
    assert pyevonas.similarity("L", "E", schema=s) >= 0


def test_importing_the_similarity_side_never_imports_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pyevonas; pyevonas.similarity_matrix(['C(32,3,1) g', 'B g']); "
        "pyevonas.align('B g', 'L g'); import pyevonas.cli; "
        "assert 'torch' not in sys.modules, [m for m in sys.modules if 'torch' in m]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _random_population(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    genes = ["C(32,3,1)", "C(64,5,2)", "B", "L", "M(2)", "A(3)", "T(64,5,1)", "t(32,3,2)", "D(3,2)", "r(16,3,1)", "I"]
    return [" ".join(rng.choice(genes, size=rng.integers(5, 30))) + " g F(32)" for _ in range(n)]


def test_progress_is_reported_in_blocks() -> None:
    pop = _random_population(600)
    calls: list[tuple[int, int]] = []
    m = pyevonas.similarity_matrix(pop, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    np.testing.assert_array_equal(m, pyevonas.similarity_matrix(pop))
    calls.clear()
    pyevonas.nearest(pop, 2, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1]


def test_ctrl_c_interrupts_a_long_matrix() -> None:
    """Ctrl-C stops the kernel between blocks: the matrix is left unfinished, not completed first.

    The child reports progress through `print` itself (no Python code runs in it, so no Python
    signal handler either): the interrupt can only come from the kernel's signal check.
    """
    import signal
    import subprocess
    import sys

    code = (
        "import functools, pyevonas, numpy as np\n"
        "rng = np.random.default_rng(1)\n"
        "g = ['C(32,3,1)', 'B', 'L', 'M(2)', 'T(64,5,1)', 'D(3,2)', 'r(16,3,1)', 'C(128,7,2)']\n"
        "pop = [' '.join(rng.choice(g, size=10)) + ' g F(32)' for _ in range(8000)]\n"
        "progress = functools.partial(print, flush=True)\n"
        "try:\n"
        "    pyevonas.similarity_matrix(pop, condensed=True, n_threads=1, progress=progress)\n"
        "    print('finished', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    from helpers import default_sigint

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "done total" after the first block
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    *reports, outcome = (first + out).split("\n")[:-1]
    assert outcome == "interrupted"
    done, total = (int(x) for x in reports[-1].split())
    assert 0 < done < total


def test_diversity_refuses_a_1d_array_unless_told_it_is_condensed() -> None:
    m = pyevonas.similarity_matrix(["C(32,3,1) g", "B g", "C(16,3,1) L g"])
    cond = pyevonas.similarity_matrix(["C(32,3,1) g", "B g", "C(16,3,1) L g"], condensed=True)
    with pytest.raises(ValueError, match="pass condensed=True"):
        pyevonas.diversity(np.array([0.5, 0.6, 0.7]))
    with pytest.raises(ValueError, match="needs the 1-D upper triangle"):
        pyevonas.diversity(m, condensed=True)
    assert pyevonas.diversity(cond, condensed=True) == pyevonas.diversity(m)


def test_errors_in_others_name_the_others_entry() -> None:
    with pytest.raises(pyevonas.EncodingError, match=r"^others\[1\]: "):
        pyevonas.similarity_matrix(["B g"], others=["B g", [{"layer": "XX"}]])
    with pytest.raises(pyevonas.EncodingError, match=r"^others\[0\]: "):
        pyevonas.nearest(["B g"], 1, others=[42])
    with pytest.raises(pyevonas.EncodingError, match=r"^architecture 1: "):
        pyevonas.similarity_matrix(["B g", 42])
