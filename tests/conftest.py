"""Test-suite settings and the fixtures shared by the test modules (plain helpers are in helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# Under CI (CI=true) property tests draw the same examples on every run, so a submission's
# result does not depend on luck; locally they explore new examples each time (and keep the
# failures they find in .hypothesis/ to replay them).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def patch_training(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[..., Any]], None]:
    """Call with a stub of ``pyevonas.training.loop.evaluate``: the command line's searches then
    train with it, in this process, their default worker count being that of one core."""
    import pyevonas.search.config
    import pyevonas.training.loop

    def patch(evaluate_fn: Callable[..., Any]) -> None:
        monkeypatch.setattr(pyevonas.search.config, "usable_cores", lambda: 1)
        monkeypatch.setattr(pyevonas.training.loop, "evaluate", evaluate_fn)

    return patch


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local one-CPU Ray instance for a test module (skips without ray); its workers import
    pyevonas and the tests' modules (the executor fakes) by name. Per module, not per session:
    test_ray_cluster.py's ``ray stop --force`` stops every Ray of the machine."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}},
    )
    yield ray
    ray.shutdown()
