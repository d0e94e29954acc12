"""The engine never aborts or exhausts the host: bounded threads, fallible allocation, long
architectures, overflowing schemas (issue 11). Public API and `pyevonas._core` only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import default_sigint

import pyevonas
from pyevonas import _core

ARCHS = ["C(32,3,1) B L M(2) g F(64)", "C(64,3,1) B g F(64)", "T(64,3,1) D(3,1) B G F(32)", "L g"]


# --- threads -------------------------------------------------------------------------------
def test_n_threads_above_the_cap_is_refused_not_spawned() -> None:
    with pytest.raises(ValueError, match=r"n_threads must be between 1 and \d+ threads, got 1000000000"):
        pyevonas.similarity_matrix(ARCHS, n_threads=10**9)
    with pytest.raises(ValueError, match="n_threads"):
        pyevonas.nearest(ARCHS, 1, n_threads=_core.max_threads() + 1)
    assert _core.max_threads() >= 256


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5", "100000"])
def test_bad_thread_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PYEVONAS_NUM_THREADS", value)
    with pytest.raises(ValueError, match="PYEVONAS_NUM_THREADS"):
        _core.default_threads()
    with pytest.raises(ValueError, match="PYEVONAS_NUM_THREADS"):
        pyevonas.similarity_matrix(ARCHS)


def test_good_thread_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYEVONAS_NUM_THREADS", " 3 ")
    assert _core.default_threads() == 3
    monkeypatch.delenv("PYEVONAS_NUM_THREADS")
    unset = _core.default_threads()
    monkeypatch.setenv("PYEVONAS_NUM_THREADS", "")
    assert _core.default_threads() == unset >= 1


def _threads_alive() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_pool_cache_is_small_so_many_thread_counts_do_not_pile_up_threads() -> None:
    before = _threads_alive()
    for n in range(1, 41):
        pyevonas.similarity_matrix(ARCHS, n_threads=n)
    # Without a bound this leaves 1 + 2 + ... + 40 = 820 threads; with 4 pools at most
    # 40 + 39 + 38 + 37. Dropped pools' threads exit asynchronously: wait for them (bounded).
    bound = before + 40 + 39 + 38 + 37
    deadline = time.monotonic() + 60
    while _threads_alive() > bound and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _threads_alive() <= bound


# --- no abort on huge requests ---------------------------------------------------------------
CHROM = [{"layer": "BN_2D"}, {"layer": "GAP_2D"}]  # "B g", a plain chromosome (fast encoder)


def test_nearest_caps_k_at_the_number_of_candidates() -> None:
    idx, sim = pyevonas.nearest(["B g", "C(32,3,1) g"], 10**10)
    assert idx.shape == sim.shape == (2, 1)
    assert idx.tolist() == [[1], [0]]
    idx, sim = pyevonas.nearest(["B g", "C(32,3,1) g"], 10**10, others=["L g", "B g", "g"])
    assert idx.shape == (2, 3)
    assert idx[0, 0] == 1 and sim[0, 0] == 1.0


@pytest.mark.slow
def test_a_matrix_too_large_for_the_machine_is_a_memory_error_not_an_abort() -> None:
    archs = [CHROM] * 3_000_000  # 9e12 cells: 72 TB as float64, 36 TB condensed
    with pytest.raises(MemoryError, match=r"cannot allocate [\d.]+ TiB for a 3000000 x 3000000"):
        pyevonas.similarity_matrix(archs)
    with pytest.raises(MemoryError, match=r"cannot allocate [\d.]+ TiB for a condensed matrix of 3000000"):
        pyevonas.similarity_matrix(archs, condensed=True, dtype="float32")
    with pytest.raises(MemoryError, match=r"cannot allocate [\d.]+ TiB for a 1000000 x 2000000"):
        pyevonas.similarity_matrix(archs[:1_000_000], others=archs[1_000_000:])
    # The interpreter is fine afterwards.
    assert pyevonas.similarity("B g", "B g") == 1.0


@pytest.mark.slow
def test_align_of_long_architectures_needs_little_memory_and_matches_the_score() -> None:
    import resource

    n = 10_000  # a whole traceback table was 2.4 GB; checkpointed it is a few tens of MB
    a = [{"layer": "C_2D", "filters": 16 * (1 + i % 4), "kernel_size": 3, "strides": 1} for i in range(n)]
    b = [{"layer": "R_2D"} if i % 5 == 0 else dict(a[i]) for i in range(n)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    al = pyevonas.align(a, b)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 400, f"peak memory grew by {grown_mb:.0f} MB"
    assert sum(al.column_scores) == al.score  # the column scores re-add to the DP score exactly
    assert al.similarity == pyevonas.similarity(a, b)


def test_private_encoder_refuses_a_bad_column_instead_of_panicking() -> None:
    with pytest.raises(ValueError, match="column 5"):
        _core.Encoder([], [("X", [(0, [], [("p", 5)])])], 1)


def test_pair_path_checks_what_an_encoder_leaves_out() -> None:
    """The per-call path skips its input check only for an encoder that fills every column the
    table's rules read; a (private) encoder that leaves one out gets the check's error, never a
    similarity computed from a NaN."""
    base = np.array([[1.0]])
    term_param = np.zeros((1, 1, 1), dtype=np.int64)  # the one rule reads column 0
    table = _core.ScoreTable(base, term_param, np.ones((1, 1, 1)), np.ones((1, 1, 1)), 2, -0.5, -0.5, "paper")
    full = _core.Encoder([], [("X", [(0, [], [("p", 0), ("q", 1)])])], 2)
    short = _core.Encoder([], [("X", [(0, [], [("q", 1)])])], 2)
    a = [{"layer": "X", "p": 1, "q": 2}, {"layer": "X", "p": 3, "q": 2}]
    b = [{"layer": "X", "p": 2, "q": 2}]
    assert 0.0 <= _core.pair_similarity(table, full, a, b) <= 1.0
    with pytest.raises(pyevonas.EncodingError, match="not finite|NaN"):
        _core.pair_similarity(table, short, a, b)


# --- overflowing schemas -----------------------------------------------------------------------
def _schema_with(**changes: float) -> dict:
    d = pyevonas.Scoring.builtin("default").to_dict()
    self_rule = next(r for r in d["rules"] if r["pairs"][0][0] == r["pairs"][0][1])
    if "self_base" in changes:
        self_rule["base"] = changes["self_base"]
    if "gap" in changes:
        d["gap"] = {"open": changes["gap"], "extend": changes["gap"]}
    return d


@pytest.mark.parametrize("change", [{"self_base": 1e308}, {"gap": -1e308}, {"self_base": 2e12}])
def test_schemas_whose_sums_could_overflow_are_refused(change: dict) -> None:
    with pytest.raises(pyevonas.SchemaError, match=r"beyond ±1e\+12"):
        pyevonas.Scoring.from_dict(_schema_with(**change))


def test_rust_table_refuses_overflowing_scores_too() -> None:
    base = np.array([[1e308]])
    none = np.full((1, 1, 1), -1, dtype=np.int64)
    with pytest.raises(pyevonas.SchemaError, match="beyond the bound"):
        _core.ScoreTable(base, none, np.zeros((1, 1, 1)), np.ones((1, 1, 1)), 1, -0.5, -0.5, "paper")


def test_at_the_bound_self_similarity_is_still_one() -> None:
    s = pyevonas.Scoring.from_dict(_schema_with(self_base=1e12, gap=-1e12))
    long = "C(32,3,1) B L M(2) " * 200 + "g F(64)"
    assert pyevonas.similarity(long, long, s) == 1.0
    assert pyevonas.similarity("C(32,3,1) g", "C(64,3,1) g", s) < 1.0


# --- Ctrl-C inside one long alignment ----------------------------------------------------------
_LONG_PAIR = """
import sys
import pyevonas

n = int(sys.argv[1])
a = [{"layer": "C_2D", "filters": 16 * (1 + i % 4), "kernel_size": 3, "strides": 1} for i in range(n)]
b = [{"layer": "R_2D"} if i % 5 == 0 else a[i] for i in range(n)]
print("ready", flush=True)
try:
    getattr(pyevonas, sys.argv[2])(a, b)
    print("finished", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("call", ["similarity", "align"])
def test_ctrl_c_interrupts_one_long_alignment(call: str) -> None:
    # 300,000 genes each: minutes of DP (9e10 cells per alignment) that used to ignore Ctrl-C
    # until done. The wait below is a hang detector, far beyond the ~50 ms the check takes.
    package_root = str(Path(pyevonas.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": package_root}
    proc = subprocess.Popen(
        [sys.executable, "-c", _LONG_PAIR, "300000", call],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # well inside the alignment by now
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "interrupted"
