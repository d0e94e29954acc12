"""The live view: a rich display on a (pseudo-)terminal, plain log lines elsewhere, driven by events."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rich.console import Console

from pyevonas.cli.live import LiveView, format_duration
from pyevonas.runs.records import Individual
from pyevonas.search.config import RunConfig
from pyevonas.search.control import ControlIteration
from pyevonas.search.events import (
    CandidateInfo,
    CandidateProgress,
    CandidateUpdate,
    ControlStep,
    GenerationBred,
    GenerationEvaluated,
    GenerationStarted,
    RunFinished,
    RunStarted,
)

REPO = Path(__file__).resolve().parents[1]


def script_events() -> list[object]:
    """A two-generation run as the loop would report it."""
    config = RunConfig.resolve(None, {"generations": 2, "population": 2, "control": "rigid"})
    cands = (
        CandidateInfo(1, 0, "g1-0", "CBLgF", "pending"),
        CandidateInfo(2, 1, "g1-1", "TTMGO", "pending"),
    )
    best = Individual(1, 1, 0, "g1-0", [], "CBLgF", None, "ok", fitness=0.91)
    return [
        RunStarted(Path("runs/demo"), config, resumed=False),
        GenerationStarted(1, 2, cands, 0.35, None),
        CandidateUpdate(1, CandidateInfo(1, 0, "g1-0", "CBLgF", "running")),
        CandidateProgress(1, 1, 1, 2, 0.5),
        CandidateUpdate(1, CandidateInfo(1, 0, "g1-0", "CBLgF", "ok", 0.91, trained=True)),
        CandidateUpdate(
            1,
            CandidateInfo(2, 1, "g1-1", "TTMGO", "failed", None, "RuntimeError: out of memory"),
        ),
        GenerationEvaluated(1, 2, 0.91, 0.91, 0.35, 1, 1, 12.0, False),
        ControlStep(2, ControlIteration(1, 0.30, 0.35, 0.4495, False, 0.2), 30),
        ControlStep(2, ControlIteration(2, 0.40, 0.35, 0.4495, True, 0.2), 30),
        GenerationBred(
            2,
            {"control": "rigid", "accepted": True, "fallback": False, "iteration": 2},
            0.40,
            (0.35, 0.4495),
        ),
        GenerationStarted(
            2,
            2,
            (CandidateInfo(3, 0, "g2-0", "CBLgF", "cached", 0.91, trained=True),),
            0.40,
            (0.35, 0.4495),
        ),
        GenerationEvaluated(2, 2, 0.91, 0.91, 0.40, 1, 0, 0.1, False),
        RunFinished(Path("runs/demo"), best, 12.5),
    ]


def test_plain_mode_prints_one_line_per_notable_event() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200))
    assert view.plain  # a StringIO is not a terminal
    with view:
        for event in script_events():
            view(event)
    text = out.getvalue()
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0].startswith("starting run runs/demo: digits · control rigid · 2 generations × 2")
    assert "generation 1/2: 2 candidates (2 to evaluate), diversity 0.350" in text
    assert "  g1-0 ok fitness 0.910" in lines
    assert "  g1-1 failed: RuntimeError: out of memory" in lines
    assert any(line.startswith("generation 1/2 done: best 0.910, median 0.910, 1 failed, 12.0 s") for line in lines)
    assert "  control 1/30: diversity 0.300 vs (0.350, 0.450] rejected (p_mutation 0.20)" in lines
    assert "generation 2 bred: diversity 0.400 (window (0.350, 0.450]); accepted at iteration 2" in lines
    assert lines[-1] == "finished in 0:00:12: best g1-0 (generation 1) fitness 0.910"
    assert "epoch 1/2" not in text  # per-epoch progress only in the live display


def test_an_untrained_candidate_shows_its_error_not_its_fitness() -> None:
    """A cached copy of an oversized result carries fitness 0.0 but never trained (``trained`` is
    False): it is not the best so far and its line says why, not a fitness."""
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200), plain=True)
    copy = CandidateInfo(4, 1, "g2-1", "CCEF", "cached", 0.0, "60.0 MB of weights > max_size_mb 40")
    with view:
        view(CandidateUpdate(2, copy))
    assert out.getvalue().splitlines() == ["  g2-1 cached: 60.0 MB of weights > max_size_mb 40"]
    assert view._state.best is None


def test_live_display_frame_shows_the_state() -> None:
    view = LiveView(
        Console(file=io.StringIO(), force_terminal=True, width=160),
        refresh_per_second=20,
    )
    assert not view.plain
    events = script_events()
    for event in events[:4]:
        view(event)
    frame = io.StringIO()
    Console(file=frame, width=160, color_system=None).print(view.render())
    text = frame.getvalue()
    assert "generation 1 of 2" in text
    assert "epoch 1/2" in text and "running" in text
    assert "median similarity 0.350" in text
    for event in events[4:9]:
        view(event)
    frame = io.StringIO()
    Console(file=frame, width=160, color_system=None).print(view.render())
    text = frame.getvalue()
    assert "best fitness 0.910 (g1-0)" in text
    assert "control iteration 2/30 for generation 2: 0.400 vs (0.350, 0.450] ✓" in text
    assert "failed" in text
    assert re.search(r"ETA 0:00:12", text)  # one generation of 12 s done, one left


def test_eta_and_durations() -> None:
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "--:--"
    view = LiveView(Console(file=io.StringIO()), plain=True)
    assert view.eta() is None


_PTY_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_live import script_events
    from pyevonas.cli.live import LiveView
    view = LiveView(refresh_per_second=50)
    print("MODE", "plain" if view.plain else "live", flush=True)
    with view:
        for event in script_events():
            view(event)
            time.sleep(0.03)
    """
)


def _run_child(tmp_path: Path, use_pty: bool) -> str:
    script = tmp_path / "child.py"
    script.write_text(_PTY_CHILD.format(tests=str(REPO / "tests")))
    env = {**os.environ, "COLUMNS": "150", "LINES": "50", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    if not use_pty:
        done = subprocess.run(
            [sys.executable, str(script)],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(script)], stdout=slave, stderr=slave, stdin=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_on_a_pseudo_terminal_the_view_is_live(tmp_path: Path) -> None:
    out = _run_child(tmp_path, use_pty=True)
    assert "MODE live" in out
    assert "\x1b[" in out  # cursor movement and colours: a redrawn display, not log lines
    assert "generation 2 of 2" in out
    assert "pyevonas evolve" in out
    assert "starting run" not in out


def test_through_a_pipe_the_view_prints_log_lines(tmp_path: Path) -> None:
    out = _run_child(tmp_path, use_pty=False)
    assert "MODE plain" in out
    assert "\x1b[" not in out
    assert "starting run runs/demo" in out
    assert "finished in 0:00:12" in out
