"""A fork after pyevonas used its thread pool: the child computes, it never hangs.

The child inherits the parent's pools but none of their threads; before the fork guard a
child's matrix call waited forever on a pool with no workers.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings

import numpy as np
import pytest

import pyevonas

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ARCHS = ["C(32,3,1) B L M(2) g F(64)", "C(64,3,1) B g F(64)", "T(64,3,1) D(3,1) B G F(32)", "L g"] * 20


def _wait(pid: int, timeout_s: float) -> int | None:
    """The child's exit status, or None if it is still running after timeout_s (then killed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _fork_and_compute(n_threads: int | None) -> int | None:
    expected = pyevonas.similarity_matrix(ARCHS, n_threads=n_threads)
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock: that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: compute, report through the exit status, never return to pytest
        code = 3
        try:
            m = pyevonas.similarity_matrix(ARCHS, n_threads=n_threads)
            near, _ = pyevonas.nearest(ARCHS, 2, n_threads=n_threads)
            code = 0 if np.array_equal(m, expected) and near.shape == (len(ARCHS), 2) else 1
        except BaseException as exc:  # any failure is reported as status 2
            print(f"child failed: {exc!r}", file=sys.stderr)
            code = 2
        finally:
            os._exit(code)
    return _wait(pid, timeout_s=60)


@pytest.mark.parametrize("n_threads", [None, 2])
def test_child_of_a_fork_computes_with_a_working_pool(n_threads: int | None) -> None:
    assert _fork_and_compute(n_threads) == 0


def test_parent_still_computes_after_forking() -> None:
    assert _fork_and_compute(2) == 0
    m = pyevonas.similarity_matrix(ARCHS, n_threads=2)
    assert m.shape == (len(ARCHS), len(ARCHS))
    assert np.all(np.diag(m) == 1.0)
