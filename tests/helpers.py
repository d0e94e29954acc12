"""What the search tests share: stub training, the small run they configure, reading a run back, and
killing a child search mid-run.

The stubs replace ``pyevonas.training.loop.evaluate`` so that what a test checks is the loop, not
the models: each one's fitness is a fixed function of the chromosome, so two runs with the same
seed agree on every chromosome of every generation. Test modules import them as
``from helpers import ...`` (pytest puts tests/ on ``sys.path``); the child processes of the
kill-and-resume tests put tests/ on their path themselves (see :func:`kill_child_at_marker`).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyevonas.runs.store import RunStore
from pyevonas.search.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# The small run the search tests start from: three generations of six, rigid control.
STUB_RUN: dict[str, Any] = {
    "generations": 3,
    "population": 6,
    "top_k": 3,
    "control": "rigid",
    "seed": 3,
    "max_control_iterations": 8,
}

# The conftest fixture ``patch_training``: call it with a stub to train with that stub.
PatchTraining = Callable[[Callable[..., Any]], None]


def stub_fitness(chromosome: list[dict[str, Any]]) -> float:
    """A fixed pseudo-fitness in [0, 1) of a chromosome."""
    text = json.dumps(chromosome, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def stub_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """Pretend training: two epochs, fitness from the chromosome."""
    fitness = stub_fitness(chromosome)
    for epoch in (1, 2):
        if progress is not None:
            progress({"epoch": epoch, "epochs": 2, "val_accuracy": fitness * epoch / 2, "loss": 1.0})
    return {
        "status": "ok",
        "fitness": fitness,
        "val_accuracy": fitness,
        "val_accuracy_per_epoch": [fitness / 2, fitness],
    }


def stub_params(chromosome: list[dict[str, Any]]) -> int:
    """A fixed pseudo parameter count: longer chromosomes cost more."""
    digest = hashlib.sha256(json.dumps(chromosome, sort_keys=True).encode()).hexdigest()
    return 1000 * len(chromosome) + int(digest[8:12], 16) % 1000


def mo_evaluate(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """:func:`stub_evaluate` with a parameter count, for searches on several objectives."""
    return {**stub_evaluate(chromosome, config, progress), "params": stub_params(chromosome)}


def budget_stub(chromosome: list[dict[str, Any]], config: Any, progress: Any = None) -> dict[str, Any]:
    """Pretend training that honours ``stop_epoch`` and ``checkpoint`` as the real training does: it
    continues from the epochs its checkpoint says were trained and writes the new count, and its
    fitness depends on the architecture and on the epochs trained (so halving's rungs can reorder
    candidates)."""
    stop = config.stop_epoch or config.epochs
    start = 0
    checkpoint = Path(config.checkpoint) if config.checkpoint else None
    if checkpoint is not None and checkpoint.exists():
        start = int(checkpoint.read_text())
    for epoch in range(start + 1, stop + 1):
        if progress is not None:
            progress({"epoch": epoch, "epochs": stop, "val_accuracy": 0.5, "loss": 1.0})
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text(str(stop))
    text = json.dumps([chromosome, stop], sort_keys=True)
    noise = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32
    fitness = (stub_fitness(chromosome) + 0.5 * noise) / 1.5 * (0.5 + 0.5 * stop / config.epochs)
    return {"status": "ok", "fitness": fitness, "epochs_run": stop, "trained_epochs": stop - start}


def run_config(run_dir: Path, **changes: Any) -> RunConfig:
    """The settings of :data:`STUB_RUN` stored in ``run_dir``, with ``changes`` over them."""
    return RunConfig.resolve(None, {**STUB_RUN, "run_dir": str(run_dir), **changes})


def stored_chromosomes(run_dir: Path) -> dict[int, list[list[dict[str, Any]]]]:
    """The chromosomes of a stored run, generation by generation."""
    with RunStore.open(run_dir, readonly=True) as store:
        return {g: [ind.chromosome for ind in store.individuals(g)] for g in store.generations()}


# A search for kill_child_at_marker, run with MODE RUN_DIR MARKER LOG STUB CHANGES: the stub run of
# run_config with the CHANGES (JSON) and the helpers' STUB as training, each evaluated chromosome
# logged to LOG. It writes MARKER and sleeps in its 9th evaluation (MODE kill-training) or while
# breeding generation 3, at its first control step (kill-breeding).
SEARCH_CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
import helpers
from helpers import run_config
from pyevonas.search.loop import evolve
from pyevonas.search.events import ControlStep
from pathlib import Path

mode, run_dir, marker, log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
stub, changes = getattr(helpers, sys.argv[5]), json.loads(sys.argv[6])
count = {{"n": 0}}

def evaluate(chromosome, config, progress=None):
    count["n"] += 1
    if mode == "kill-training" and count["n"] == 9:
        marker.write_text("training")
        time.sleep(60)
    metrics = stub(chromosome, config, progress)
    with log.open("a") as fh:
        fh.write(json.dumps(chromosome, sort_keys=True) + "\\n")
    return metrics

def observer(event):
    if mode == "kill-breeding" and isinstance(event, ControlStep) and event.generation == 3 and event.iteration.iteration == 1:
        marker.write_text("breeding")
        time.sleep(60)

evolve(run_config(run_dir, **changes), evaluate_fn=evaluate, observers=[observer])
"""


def kill_search_midway(folder: Path, mode: str, stub: str = "stub_evaluate", **changes: Any) -> tuple[Path, Path]:
    """Run :data:`SEARCH_CHILD` in ``folder`` and SIGKILL it where ``mode`` says; return the run's
    folder and the log of the chromosomes it evaluated, one JSON line each."""
    run_dir, marker, log = folder / "run", folder / "marker", folder / "evaluated.log"
    args = [mode, str(run_dir), str(marker), str(log), stub, json.dumps(changes)]
    kill_child_at_marker(SEARCH_CHILD, marker, *args, folder=folder)
    return run_dir, log


def kill_child_at_marker(script: str, marker: Path, *args: str, folder: Path, timeout_s: float = 120) -> None:
    """Run ``script`` in a child Python, wait until it writes ``marker``, then SIGKILL it.

    ``script`` is a template: ``{tests}`` in it becomes the tests folder (``{{``/``}}`` for braces),
    so that it can ``sys.path.insert(0, {tests!r})`` and import these helpers; it is written to
    ``folder`` and run with ``args`` and this checkout first on ``PYTHONPATH``. It should write the
    marker where it wants to be killed and then sleep. Fails the test if the child exits or never
    gets there in ``timeout_s``.
    """
    path = folder / "child.py"
    path.write_text(script.format(tests=str(TESTS)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(path), *args], env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the child exited with {proc.returncode} before reaching the kill point")
            if time.monotonic() > deadline:
                pytest.fail("the child never reached the kill point")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``pyevonas ARGS`` as the console script runs it: (exit code, stdout, stderr with rich's line
    wrapping undone)."""
    from pyevonas.cli import app
    from pyevonas.cli._common import run_guarded

    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def default_sigint() -> None:
    """``preexec_fn`` of a child that must take Ctrl-C: a shell without job control starts its
    background jobs with SIGINT ignored, and a child would inherit that (then never interrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
