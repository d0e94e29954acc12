"""The engine never aborts or exhausts the host: bounded threads, fallible allocation, long
architectures, overflowing schemas (issue 11). Public API and `pyevonas._core` only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

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
