"""Library use: the per-call paths, compiled-schema caching, small matrices and the Archive.

Every fast path is checked against the population path it stands in for, value for value
(``array_equal``, not approx), on architectures drawn from the paper's gene pool.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import archs

import pyevonas
from pyevonas import _core
from pyevonas.errors import EncodingError, PyevonasError, SchemaError
from pyevonas.metric._compiled import compiled
from pyevonas.metric.api import score_matrix

ARCH = settings(max_examples=60, deadline=None)
SCHEMAS = ("default", "paper")


def _population_matrix(rows: list, cols: list | None, schema: str) -> np.ndarray:
    """The matrix through the pool path (a Population), whatever its size."""
    c = compiled(schema)
    if cols is None:
        return c.population(rows).matrix()
    return c.population(rows + cols).matrix(split=len(rows))


def _text(arch: list[dict], schema: str = "default") -> str:
    return pyevonas.format_arch(arch, schema)


# --- one pair ---------------------------------------------------------------------------
@ARCH
@given(archs(), archs(), st.sampled_from(SCHEMAS))
def test_pair_equals_the_matrix_cell(a: list[dict], b: list[dict], schema: str) -> None:
    want = _population_matrix([a], [b], schema)[0, 0]
    assert pyevonas.similarity(a, b, schema=schema) == want
    # Text notation takes the validating path (and its cache): the same double.
    assert pyevonas.similarity(_text(a, schema), _text(b, schema), schema=schema) == want
    assert pyevonas.similarity(_text(a, schema), b, schema=schema) == want
    al = pyevonas.align(a, b, schema=schema)
    assert al.similarity == want
    assert al.score == score_matrix([a], [b], schema=schema)[0, 0]


def test_pair_errors_name_the_architecture() -> None:
    good = "C(32,3,1) g F(64)"
    with pytest.raises(EncodingError, match=r"architecture 1: layer 0: unknown layer 'X'"):
        pyevonas.similarity([{"layer": "C_2D", "filters": 3, "kernel_size": 3, "strides": 1}], [{"layer": "X"}])
    with pytest.raises(EncodingError, match=r"architecture 0: empty architecture"):
        pyevonas.similarity([], good)
    with pytest.raises(EncodingError, match=r"architecture 1: gene 0: unknown letter"):
        pyevonas.align(good, "Q")


def test_alignment_columns_are_built_on_first_use() -> None:
    al = pyevonas.align("C(32,3,1) B L g F(64)", "C(32,3,1) L g F(64)")
    assert al.pairs[1] == (1, -1)
    assert al.columns_b[1] is None and al.columns_a[1] is not None and al.columns_a[1].letter == "B"
    assert al.aligned_b == "C-LgF"
    assert sum(al.column_scores) == al.score


def test_pairs_from_many_threads_agree() -> None:
    pop = [f"C({16 * (i % 8 + 1)},3,1) B L M(2) g F({8 * (i % 5 + 1)})" for i in range(40)]
    want = _population_matrix(pop[:20], pop[20:], "default")
    out = np.zeros_like(want)

    def work(r: int) -> None:
        for j in range(20):
            out[r, j] = pyevonas.similarity(pop[r], pop[20 + j])

    threads = [threading.Thread(target=work, args=(r,)) for r in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(out, want)


# --- compiled schemas are cached ------------------------------------------------------------
def test_schemas_are_compiled_once(tmp_path: Path) -> None:
    assert compiled("default") is compiled("default")
    scoring = pyevonas.Scoring.builtin("paper")
    assert compiled(scoring) is compiled(scoring) is compiled("paper")
    path = tmp_path / "mine.json"
    path.write_text(pyevonas.Scoring.builtin("default").to_json())
    first = compiled(path)
    assert compiled(str(path)) is first and compiled(path) is first
    # An edited file is compiled again (its modification time and size change).
    data = json.loads(path.read_text())
    data["gap"] = {"open": -1.0, "extend": -1.0}
    path.write_text(json.dumps(data))
    os.utime(path, ns=(1, 10**18))
    second = compiled(path)
    assert second is not first and second.scoring.gap.open == -1.0
    a, b = "C(32,3,1) B L g F(64)", "C(64,3,1) g F(64)"
    assert pyevonas.similarity(a, b, schema=path) == pyevonas.similarity(a, b, schema=second.scoring)
    with pytest.raises(SchemaError, match="no scoring schema"):
        compiled(tmp_path / "missing.json")
    with pytest.raises(SchemaError, match="no scoring schema"):
        compiled(str(tmp_path))


# --- pyevonas.similarity is native ---------------------------------------------------------
def _conv(filters: int, kernel: int) -> dict:
    return {"layer": "C_2D", "filters": filters, "kernel_size": kernel, "strides": 1}


_PLAIN = [
    [_conv(32, 3), {"layer": "BN_2D"}, {"layer": "R_2D"}, {"layer": "GAP_2D"}, {"layer": "D", "units": 64}],
    [_conv(64, 3), {"layer": "MP_2D", "pool_size": 2}, {"layer": "GAP_2D"}, {"layer": "D", "units": 10}],
    [_conv(16, 5), _conv(32, 3), {"layer": "DO", "rate": 0.2}, {"layer": "FLAT"}, {"layer": "D", "units": 64}],
]


def test_similarity_is_native_and_equals_the_matrix_for_every_schema_form(tmp_path: Path) -> None:
    import inspect

    assert type(pyevonas.similarity).__name__ == "builtin_function_or_method"
    assert str(inspect.signature(pyevonas.similarity)) == "(a, b, schema='default')"
    assert "Similarity of two architectures" in (pyevonas.similarity.__doc__ or "")
    path = tmp_path / "mine.json"
    data = json.loads(pyevonas.Scoring.builtin("default").to_json())
    data["gap"] = {"open": -0.75, "extend": -0.75}
    path.write_text(json.dumps(data))
    # More Scorings than the native side remembers, each met twice: once through Python, then
    # (while remembered) natively.
    scorings = [pyevonas.Scoring.builtin(n).model_copy() for n in ("default", "paper") * 6]
    for schema in ["default", "paper", path, str(path), *scorings, *scorings[:2], data]:
        want = pyevonas.similarity_matrix(_PLAIN, schema=schema)
        for _ in range(2):
            got = [[pyevonas.similarity(x, y, schema) for y in _PLAIN] for x in _PLAIN]
            np.testing.assert_array_equal(got, want, err_msg=f"schema {schema!r:.60}")
    assert pyevonas.similarity(_PLAIN[0], _PLAIN[1], schema="default") == pyevonas.similarity(_PLAIN[0], _PLAIN[1])
    # Left out means the default schema; None is refused, as by every other function.
    for call in (
        lambda: pyevonas.similarity(_PLAIN[0], _PLAIN[1], None),
        lambda: pyevonas.similarity_matrix(_PLAIN, schema=None),
    ):
        with pytest.raises(SchemaError, match="got NoneType"):
            call()


def test_native_similarity_survives_a_path_that_calls_back(tmp_path: Path) -> None:
    """A path object's ``__fspath__`` is Python code: the native lookup holds no lock while it
    runs, so a callback into ``similarity`` (from the same thread here) cannot deadlock."""
    path = tmp_path / "mine.json"
    path.write_text(pyevonas.Scoring.builtin("default").to_json())
    a, b = _PLAIN[0], _PLAIN[1]
    assert pyevonas.similarity(a, b, path) == pyevonas.similarity(a, b)  # now remembered

    class CallsBack:
        def __fspath__(self) -> str:
            assert pyevonas.similarity(a, b, str(path)) == pyevonas.similarity(a, b)
            return str(path)

    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(pyevonas.similarity(a, b, CallsBack())), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert result == [pyevonas.similarity(a, b)], "similarity with a calling-back path did not return"


def test_reloading_the_api_module_keeps_similarity_working() -> None:
    """An autoreloading notebook imports pyevonas.metric.api again; the native similarity keeps
    the first installation and gives the same results (in a child: reloading here would give
    the other tests new classes)."""
    import subprocess
    import sys

    code = (
        "import importlib, pyevonas, pyevonas.metric.api as api\n"
        f"a, b = {_PLAIN[0]!r}, {_PLAIN[2]!r}\n"
        "before = [pyevonas.similarity(a, b, s) for s in ('default', 'paper')]\n"
        "importlib.reload(api)\n"
        "after = [api.similarity(a, b, s) for s in ('default', 'paper', 'default')]\n"
        "assert after == before + before[:1], (before, after)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_native_similarity_follows_an_edited_schema_file(tmp_path: Path) -> None:
    a, b = _PLAIN[0], _PLAIN[2]
    path = tmp_path / "mine.json"
    data = json.loads(pyevonas.Scoring.builtin("default").to_json())
    path.write_text(json.dumps(data))
    for _ in range(3):  # remembered by its version after the first call
        assert pyevonas.similarity(a, b, path) == pyevonas.similarity(a, b)
    data["gap"] = {"open": -2.5, "extend": -2.5}
    path.write_text(json.dumps(data))
    os.utime(path, ns=(1, 10**18))
    edited = pyevonas.Scoring.from_dict(data)
    assert pyevonas.similarity(a, b, path) == pyevonas.similarity(a, b, edited) != pyevonas.similarity(a, b)
    assert pyevonas.similarity(a, b, str(path)) == pyevonas.similarity(a, b, edited)
    path.unlink()
    with pytest.raises(SchemaError, match="no scoring schema"):
        pyevonas.similarity(a, b, path)


# --- small matrices on the calling thread ---------------------------------------------------
@ARCH
@given(st.lists(archs(max_size=12), min_size=1, max_size=30), st.integers(0, 30), st.sampled_from(SCHEMAS))
def test_small_matrices_equal_the_pool_path(pop: list[list[dict]], split: int, schema: str) -> None:
    c = compiled(schema)
    enc = c.encode(pop)
    np.testing.assert_array_equal(_core.matrix_here(c.table, *enc), _population_matrix(pop, None, schema))
    full = pyevonas.similarity_matrix(pop, schema=schema)
    np.testing.assert_array_equal(full, _population_matrix(pop, None, schema))
    split = min(split, len(pop))
    np.testing.assert_array_equal(
        pyevonas.similarity_matrix(pop[:split], pop[split:], schema=schema),
        _population_matrix(pop[:split], pop[split:], schema),
    )
    f32 = pyevonas.similarity_matrix(pop, schema=schema, dtype=np.float32)
    np.testing.assert_array_equal(f32, full.astype(np.float32))
    if schema == "default" and len(pop) >= 2:
        cond = pyevonas.similarity_matrix(pop, condensed=True)
        np.testing.assert_array_equal(cond, full[np.triu_indices(len(pop), k=1)])
        cond32 = pyevonas.similarity_matrix(pop, condensed=True, dtype=np.float32)
        np.testing.assert_array_equal(cond32, cond.astype(np.float32))


def test_small_path_progress_and_errors() -> None:
    calls: list[tuple[int, int]] = []
    pyevonas.similarity_matrix(["B g", "L g"], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 1)]
    with pytest.raises(ValueError, match="symmetric"):
        pyevonas.similarity_matrix(["B g", "L g"], schema="paper", condensed=True)


# --- the archive ----------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(archs(max_size=10), max_size=8), min_size=1, max_size=4),
    st.lists(archs(max_size=10), max_size=8),
    st.integers(0, 6),
    st.sampled_from(SCHEMAS),
)
def test_archive_equals_brute_force(
    adds: list[list[list[dict]]], queries: list[list[dict]], k: int, schema: str
) -> None:
    ar = pyevonas.Archive(schema)
    members: list[list[dict]] = []
    for batch in adds:
        ids = ar.add(batch)
        np.testing.assert_array_equal(ids, np.arange(len(members), len(members) + len(batch)))
        members.extend(batch)
        assert len(ar) == len(members)
        # Queries interleaved with additions see every member added so far.
        if members and queries:
            m = ar.similarity_matrix(queries)
            np.testing.assert_array_equal(m, pyevonas.similarity_matrix(queries, others=members, schema=schema))
    assert [ar[i] for i in range(len(ar))] == members
    if not queries:
        return
    want = pyevonas.similarity_matrix(queries, others=members, schema=schema)
    np.testing.assert_array_equal(ar.similarity_matrix(queries), want)
    np.testing.assert_array_equal(ar.similarity_matrix(queries, dtype=np.float32), want.astype(np.float32))
    idx, sims = ar.nearest(queries, k)
    want_idx, want_sims = pyevonas.nearest(queries, k, others=members, schema=schema) if members else (None, None)
    if members:
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(sims, want_sims)
    assert idx.shape == (len(queries), min(k, len(members)))
    for q in range(len(queries)):
        order = sorted(range(len(members)), key=lambda j: (-want[q, j], j))[:k]
        assert idx[q].tolist() == order
    nov = ar.novelty(queries, max(k, 1))
    for q in range(len(queries)):
        top = np.sort(want[q])[::-1][: max(k, 1)] if members else np.array([])
        assert nov[q] == (np.mean(1.0 - top) if members else 1.0)


def test_archive_big_query_runs_on_the_pool_and_agrees() -> None:
    rng = np.random.default_rng(3)
    genes = ["C(32,3,1)", "C(64,5,2)", "B", "L", "M(2)", "A(3)", "T(64,5,1)", "D(3,2)", "r(16,3,1)", "I"]
    pop = [" ".join(rng.choice(genes, size=rng.integers(5, 25))) + " g F(32)" for _ in range(900)]
    ar = pyevonas.Archive("default", pop[:400])
    ar.add(pop[400:800])
    calls: list[tuple[int, int]] = []
    m = ar.similarity_matrix(pop[800:], n_threads=2, progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(m, pyevonas.similarity_matrix(pop[800:], others=pop[:800]))
    assert calls and calls[-1][0] == calls[-1][1]
    idx, sims = ar.nearest(pop[800:], 3, n_threads=1)
    want_idx, want_sims = pyevonas.nearest(pop[800:], 3, others=pop[:800])
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(sims, want_sims)


def test_archive_finds_duplicates_and_members_find_themselves() -> None:
    ar = pyevonas.Archive(archs=["C(32,3,1) B L g F(64)", "C(64,3,1) M(2) g F(10)"])
    idx, sims = ar.nearest(["C(64,3,1) M(2) g F(10)", "B g"], k=1)
    assert idx[0, 0] == 1 and sims[0, 0] == 1.0
    assert sims[1, 0] < 1.0
    assert ar.novelty(["C(64,3,1) M(2) g F(10)"], k=1).tolist() == [0.0]
    assert pyevonas.Archive().novelty(["B g"], k=3).tolist() == [1.0]
    assert ar.similarity_matrix([]).shape == (0, 2)
    assert pyevonas.Archive().similarity_matrix(["B g"]).shape == (1, 0)


def test_archive_rejects_bad_input_without_changing() -> None:
    ar = pyevonas.Archive(archs=["B g"])
    with pytest.raises(EncodingError, match="architecture 1"):
        ar.add(["L g", "Q"])
    assert len(ar) == 1 and list(ar) == ["B g"]
    with pytest.raises(TypeError, match="one string"):
        ar.add("B g")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        ar.novelty(["B g"], k=0)
    with pytest.raises(ValueError, match="k must be"):
        ar.nearest(["B g"], k=-1)


@pytest.mark.parametrize("name", ["archive.json", "archive.json.gz"])
def test_archive_save_and_load(tmp_path: Path, name: str) -> None:
    chrom = pyevonas.parse_arch("C(32,3,1) B L g F(64)")
    chrom[0]["filters"] = np.int64(32)  # numpy scalars are written as plain numbers
    ar = pyevonas.Archive("paper", [chrom, "C(64,3,1) M(2) g F(10)"])
    path = tmp_path / name
    ar.save(path)
    back = pyevonas.Archive.load(path)
    assert back.schema == ar.schema and len(back) == 2 and back[1] == "C(64,3,1) M(2) g F(10)"
    queries = ["C(32,3,1) B g F(64)", "L g"]
    np.testing.assert_array_equal(back.similarity_matrix(queries), ar.similarity_matrix(queries))
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(PyevonasError, match="not a pyevonas archive"):
        pyevonas.Archive.load(tmp_path / "bad.json")
    with pytest.raises(PyevonasError, match="cannot read archive"):
        pyevonas.Archive.load(tmp_path / "missing.json")


def test_archive_from_many_threads_keeps_members_and_ids_together() -> None:
    ar = pyevonas.Archive()
    names = [[f"C({8 * (t + 1)},3,1) M(2) g F({n + 1})" for n in range(30)] for t in range(4)]
    errors: list[BaseException] = []

    def work(batch: list[str]) -> None:
        try:
            for n in range(0, 30, 3):
                ids = ar.add(batch[n : n + 3])
                assert [ar[int(i)] for i in ids] == batch[n : n + 3]
                ar.nearest(batch[n : n + 3], 2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ar) == 120
    members = list(ar)
    np.testing.assert_array_equal(ar.similarity_matrix(members), pyevonas.similarity_matrix(members))


def test_long_pairs_take_the_population_path_with_the_same_values() -> None:
    # 400 genes each: beyond SMALL_CELLS, so the pair runs on the pool (and can be interrupted).
    a = " ".join(["C(32,3,1) B L", "M(2)", "C(64,5,2) L", "A(3)"] * 100) + " g F(64)"
    b = " ".join(["C(32,3,1) L", "T(64,5,1)", "B", "D(3,2)"] * 100) + " g F(32)"
    assert (len(pyevonas.sequence(a)) + len(pyevonas.sequence(b))) ** 2 > _core.SMALL_CELLS
    for schema in SCHEMAS:
        want = _population_matrix([a], [b], schema)[0, 0]
        assert pyevonas.similarity(a, b, schema=schema) == want
        al = pyevonas.align(a, b, schema=schema)
        assert al.similarity == want and al.score == score_matrix([a], [b], schema=schema)[0, 0]
