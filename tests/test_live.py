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
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pyevonas.cli.live import LiveView, decision_text, format_duration, sparkline
from pyevonas.runs.records import Individual
from pyevonas.runs.store import RunStore
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
from pyevonas.search.loop import evolve, resume

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


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
        GenerationStarted(1, 2, cands, 0.35, None, {"control": "initial", "sampled": 2}),
        CandidateUpdate(1, CandidateInfo(1, 0, "g1-0", "CBLgF", "running")),
        CandidateProgress(1, 1, 1, 2, 0.5),
        CandidateUpdate(
            1, CandidateInfo(1, 0, "g1-0", "CBLgF", "ok", 0.91, trained=True, val_accuracy=0.9, test_accuracy=0.88)
        ),
        CandidateUpdate(
            1,
            CandidateInfo(2, 1, "g1-1", "TTMGO", "failed", None, "RuntimeError: out of memory"),
        ),
        GenerationEvaluated(1, 2, 0.91, 0.91, 0.35, 1, 1, 12.0, False),
        ControlStep(2, ControlIteration(1, 0.30, 0.35, 0.4495, False, 0.2), 30),
        ControlStep(2, ControlIteration(2, 0.40, 0.35, 0.4495, True, 0.2), 30),
        GenerationBred(
            2,
            {
                "control": "rigid",
                "accepted": True,
                "fallback": False,
                "iteration": 2,
                "diversity": 0.40,
                "window": [0.35, 0.4495],
            },
            0.40,
            (0.35, 0.4495),
        ),
        GenerationStarted(
            2,
            2,
            (CandidateInfo(3, 0, "g2-0", "CBLgF", "cached", 0.91, trained=True),),
            0.40,
            (0.35, 0.4495),
            {
                "control": "rigid",
                "accepted": True,
                "fallback": False,
                "iteration": 2,
                "diversity": 0.40,
                "window": [0.35, 0.4495],
            },
        ),
        GenerationEvaluated(2, 2, 0.91, 0.91, 0.40, 1, 0, 0.1, False),
        RunFinished(Path("runs/demo"), best, 12.5),
    ]


STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ")


def _log_lines(text: str) -> list[str]:
    """The plain log's lines without their timestamps (every line must have one)."""
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


def test_plain_mode_prints_one_timestamped_line_per_notable_event() -> None:
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200))
    assert view.plain  # a StringIO is not a terminal
    with view:
        for event in script_events():
            view(event)
    text = out.getvalue()
    assert "\x1b[" not in text
    lines = _log_lines(text)
    # One header line: the run, its settings and where it trains.
    assert lines[0].startswith("starting run runs/demo: digits · control rigid · 2 generations × 2")
    assert lines[0].endswith("in-process on auto device")
    assert sum(1 for line in lines if "runs/demo" in line) == 1
    assert "generation 1/2: 2 candidates (2 to evaluate), median similarity 0.350" in lines
    assert "  g1-0 ok fitness 0.910, val 0.900, test 0.880" in lines
    assert "  g1-1 failed: RuntimeError: out of memory" in lines
    assert any(line.startswith("generation 1/2 done: best 0.910, median 0.910, 1 failed, 12.0 s") for line in lines)
    assert "  control 1/30: similarity 0.300 vs (0.350, 0.450] rejected (p_mutation 0.20)" in lines
    assert "bred g2: 2 tries, 0.400 in (0.350, 0.450]" in lines
    assert lines[-1] == "finished in 0:00:12: best g1-0 (generation 1) fitness 0.910"
    assert "diversity" not in text  # one name for the number: similarity
    assert "epoch 1/2" not in text  # per-epoch progress only in the live display


def test_an_untrained_candidate_shows_its_error_not_its_fitness() -> None:
    """A cached copy of an oversized result carries fitness 0.0 but never trained (``trained`` is
    False): it is not the best so far and its line says why, not a fitness."""
    out = io.StringIO()
    view = LiveView(Console(file=out, width=200), plain=True, timestamps=False)
    copy = CandidateInfo(4, 1, "g2-1", "CCEF", "cached", 0.0, "60.0 MB of weights > max_size_mb 40")
    with view:
        view(CandidateUpdate(2, copy))
    assert out.getvalue().splitlines() == ["  g2-1 cached: 60.0 MB of weights > max_size_mb 40"]
    assert view._state.best is None
    text = _frame(view, 100, 30)
    assert "0.000" not in text  # its fitness shows as -, its error as the last error
    assert "last error g2-1: 60.0 MB of weights > max_size_mb 40" in text


def _frame(view: LiveView, width: int, height: int) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO())
    console.print(view.render())
    return console.export_text()


def test_live_display_frame_shows_the_state_and_keeps_the_last_decision() -> None:
    view = LiveView(Console(file=io.StringIO(), force_terminal=True, width=160), refresh_per_second=20)
    assert not view.plain
    events = script_events()
    for event in events[:4]:
        view(event)
    text = _frame(view, 160, 40)
    assert "generation 1/2" in text
    assert "epoch 1/2" in text and "running" in text
    assert "similarity 0.350" in text
    assert "control: g1: 2 sampled at random" in text
    for event in events[4:9]:
        view(event)
    text = _frame(view, 160, 40)
    assert "best 0.910 g1-0 (test 0.880)" in text
    assert "control: breeding g2: try 2/30, 0.400 in (0.350, 0.450]" in text
    assert "1 failed" in text and "last error g1-1: RuntimeError: out of memory" in text
    for event in events[9:12]:
        view(event)
    text = _frame(view, 160, 40)
    # The decision stays once the next generation starts (it used to be cleared: `control: -`).
    assert "control: bred g2: 2 tries, 0.400 in (0.350, 0.450]" in text
    assert "control: -" not in text


# ---------------------------------------------------------------------- a paper-size search fits
def paper_size_events(population: int = 25, generations: int = 20, running: int = 5) -> list[object]:
    """A search of ``population`` x ``generations`` as the loop reports it, stopped while
    ``running`` candidates of the last generation train; some fail, one trains to chance level."""
    config = RunConfig.resolve(
        None, {"generations": generations, "population": population, "dataset": "cifar10", "epochs": 12}
    )
    events: list[object] = [RunStarted(Path("runs/cifar10_rigid_s0"), config, resumed=False)]
    ident = 0
    decision = {"control": "rigid", "accepted": True, "fallback": False, "iteration": 7, "diversity": 0.538,
                "window": [0.493, 0.543]}  # fmt: skip
    for g in range(1, generations + 1):
        cands = []
        for i in range(population):
            ident += 1
            seq = "RRDILCRMRTMBgOF"[: 4 + (i * 7) % 11] * 2
            cands.append(CandidateInfo(ident, i, f"g{g}-{i}", seq, "pending"))
        bred = {"control": "initial", "sampled": population} if g == 1 else decision
        similarity = 0.45 + 0.01 * (g % 7)
        window = None if g == 1 else (0.493, 0.543)
        events.append(GenerationStarted(g, generations, tuple(cands), similarity, window, bred))
        last = g == generations
        n_done = population - running - 6 if last else population
        fitness = []
        for c in cands[:n_done]:
            events.append(CandidateUpdate(g, replace(c, status="running")))
            events.append(CandidateProgress(g, c.id, 12, 12, 0.6))
            if c.index % 9 == 4:
                done = replace(c, status="failed", fitness=0.0, error="RuntimeError: CUDA out of memory. Tried a lot")
            elif c.index % 11 == 3:
                done = replace(c, status="ok", fitness=0.1, trained=True, val_accuracy=0.1, at_chance=True)
            else:
                f = 0.5 + 0.02 * g + 0.001 * c.index
                fitness.append(f)
                done = replace(c, status="ok", fitness=f, trained=True, val_accuracy=f, test_accuracy=f - 0.01)
            events.append(CandidateUpdate(g, done))
        if not last:
            fitness.sort()
            median = fitness[len(fitness) // 2]
            events.append(GenerationEvaluated(g, generations, fitness[-1], median, similarity, 20, 3, 60.0, False))
            for it in range(1, 8):
                events.append(ControlStep(g + 1, ControlIteration(it, 0.6 - it * 0.01, 0.493, 0.543, it == 7, 0.2), 30))
            events.append(GenerationBred(g + 1, decision, 0.538, (0.493, 0.543)))
        else:
            for c in cands[n_done : n_done + running]:
                events.append(CandidateUpdate(g, replace(c, status="running")))
                events.append(CandidateProgress(g, c.id, 3, 12, 0.41))
    return events


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 40)])
def test_a_paper_size_search_fits_the_terminal(width: int, height: int) -> None:
    view = LiveView(Console(file=io.StringIO()), plain=False)
    for event in paper_size_events():
        view(event)
    text = _frame(view, width, height)
    lines = text.splitlines()
    assert len(lines) <= height
    assert max(len(line) for line in lines) <= width
    # The title is whole and every candidate row is one line (no wrapping, so no jumping rows).
    assert "pyevonas evolve · cifar10 · rigid · 20 gen × 25 · 12 epochs · seed 0" in lines[0]
    running = [line for line in lines if " running " in line and "g20-" in line]
    assert len(running) == 5 and all("epoch 3/12" in line for line in running)
    assert "generation 20/20" in text
    assert "25 candidates: 12 ok · 5 running · 6 pending · 2 failed · 1 at chance" in text
    assert "best 0.912 g20-12 (test 0.902)" in text
    assert "control: bred g20: 7 tries, 0.538 in (0.493, 0.543]" in text
    assert "last error g20-13: RuntimeError: CUDA out" in text
    failed = [line for line in lines if " failed " in line and "g20-" in line]
    assert failed and all(line.rstrip(" │").endswith("-       -") for line in failed)
    if height >= 40:  # tall enough for the latest finished down to the one at chance level
        assert "chance level" in text
    assert "best fitness" in text and "similarity" in text and "diversity" not in text
    history_rows = [line for line in lines if re.match(r"│\s+\d+\s+0\.\d{3}\s+0\.\d{3}\s+0\.\d{3}\s+\(", line)]
    assert history_rows and history_rows[-1].split()[1] == "19"  # the history ends at the last generation


def test_the_view_fits_any_terminal() -> None:
    view = LiveView(Console(file=io.StringIO()), plain=False)
    for event in paper_size_events(population=40, generations=30, running=12):
        view(event)
    for width in (40, 60, 80, 100, 200):
        for height in (8, 12, 24, 60):
            lines = _frame(view, width, height).splitlines()
            assert len(lines) <= height, (width, height)
            assert max(len(line) for line in lines) <= width, (width, height)


# ---------------------------------------------------------------------- ETA
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("workers", [1, 3])
def test_eta_from_candidate_throughput_from_the_first_finished_candidate(workers: int) -> None:
    """10 candidates x 3 generations, 10 s each, ``workers`` at a time: the ETA is known as soon as
    the first candidate finishes, is then within 20 % of the run's length (the idle workers at the
    end of a generation are not known yet) and within 10 % once a generation is done."""
    clock = FakeClock()
    view = LiveView(Console(file=io.StringIO()), plain=True, clock=clock, timestamps=False)
    config = RunConfig.resolve(None, {"generations": 3, "population": 10})
    view(RunStarted(Path("runs/x"), config, resumed=False))
    start = clock.now
    total = 3 * -(-10 // workers) * 10  # a generation takes ceil(10 / workers) waves of 10 s
    ident = 0
    seen = []
    for g in (1, 2, 3):
        cands = [CandidateInfo(ident + i, i, f"g{g}-{i}", "CBF", "pending") for i in range(10)]
        ident += 10
        view(GenerationStarted(g, 3, tuple(cands), 0.5, None))
        for wave in range(0, 10, workers):
            batch = cands[wave : wave + workers]
            for c in batch:
                view(CandidateUpdate(g, replace(c, status="running")))
            if g == 1 and wave == 0:
                assert view.eta() is None  # nothing finished yet
            clock.now += 10
            for c in batch:
                view(CandidateUpdate(g, replace(c, status="ok", fitness=0.5, trained=True)))
            eta = view.eta()
            assert eta is not None  # never blank once a candidate finished
            truth = total - (clock.now - start)
            seen.append((eta, truth))
            if truth > 0:
                assert abs(eta - truth) <= (0.2 if g == 1 else 0.1) * total, (g, wave, eta, truth)
        view(GenerationEvaluated(g, 3, 0.5, 0.5, 0.5, 10, 0, 100.0, False))
    if workers == 1:  # one at a time: exact from the first finished candidate
        assert seen[0][0] == pytest.approx(seen[0][1])


def test_the_eta_leaves_out_the_workers_start_up() -> None:
    """Each of 2 workers spends 40 s on its first candidate (imports, data), 10 s on the others:
    once warm candidates finished, the ETA forgets the start-up and is within 10 % of the truth."""
    clock = FakeClock()
    view = LiveView(Console(file=io.StringIO()), plain=True, clock=clock, timestamps=False)
    config = RunConfig.resolve(None, {"generations": 2, "population": 10})
    view(RunStarted(Path("runs/x"), config, resumed=False))
    cands = [CandidateInfo(i, i, f"g1-{i}", "CBF", "pending") for i in range(10)]
    view(GenerationStarted(1, 2, tuple(cands), 0.5, None))
    for c in cands[:2]:
        view(CandidateUpdate(1, replace(c, status="running")))
    clock.now += 40
    for c in cands[:2]:
        view(CandidateUpdate(1, replace(c, status="ok", fitness=0.5, trained=True)))
    assert view.eta() is not None  # known at once, if pessimistic: so far it only knows start-up
    for wave in range(2, 10, 2):
        for c in cands[wave : wave + 2]:
            view(CandidateUpdate(1, replace(c, status="running")))
        clock.now += 10
        for c in cands[wave : wave + 2]:
            view(CandidateUpdate(1, replace(c, status="ok", fitness=0.5, trained=True)))
        eta = view.eta()
        truth = (10 - wave - 2) / 2 * 10 + 10 / 2 * 10  # the rest of this generation and the next
        assert eta == pytest.approx(truth, rel=0.1), (wave, eta, truth)


def test_eta_and_durations() -> None:
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "--:--"
    view = LiveView(Console(file=io.StringIO()), plain=True)
    assert view.eta() is None


def test_sparkline_and_decision_texts() -> None:
    assert sparkline([0.1, 0.5, 0.9], 10) == "▁▅█"
    assert sparkline([0.1, None, 0.9, 0.5], 3) == " █▁"
    assert sparkline([0.5, 0.5], 5) == "▅▅"
    fallback = {"control": "rigid", "fallback": True, "iteration": 12, "diversity": 0.561, "window": [0.49, 0.54]}
    assert decision_text(7, fallback, 30) == "bred g7: 30 tries, none in (0.490, 0.540]; took try 12 (0.561)"
    assert decision_text(3, {"control": "naive", "diversity": 0.5}) == "bred g3: naive, similarity 0.500"


# ---------------------------------------------------------------------- resume
def test_after_resume_the_view_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    """Stop a run in its second generation, resume it with a fresh view: the elapsed time goes on
    from the stored time, the best keeps its name, finished candidates keep their accuracy, the
    decision that bred the generation shows, and the view says what is resumed."""
    from helpers import stub_evaluate

    calls: list[int] = []

    def stops(chromosome: Any, config: Any, progress: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return {**stub_evaluate(chromosome, config, progress), "test_accuracy": 0.5}

    run_dir = tmp_path / "run"
    config = RunConfig.resolve(
        None, {"run_dir": str(run_dir), "generations": 3, "population": 6, "top_k": 3, "seed": 3}
    )
    with pytest.raises(KeyboardInterrupt):
        evolve(config, evaluate_fn=stops)
    with RunStore.open(run_dir) as store:
        store.set_state("elapsed_s", 3600.0)  # as if the first session had run for an hour
        best = max((i for i in store.individuals() if i.status == "ok"), key=lambda i: (i.fitness, -i.id))
        kept = [i for i in store.individuals(2) if i.status in ("ok", "cached")]
        decision = store.generation_record(2).decision
    assert kept and decision is not None

    clock = FakeClock()
    view = LiveView(Console(file=io.StringIO()), plain=False, clock=clock)
    seen: list[str] = []

    def watch(event: Any) -> None:
        view(event)
        if isinstance(event, GenerationStarted) and event.generation == 2:
            seen.append(_frame(view, 120, 40))

    resume(run_dir, evaluate_fn=stub_evaluate, observers=[watch])
    frame = seen[0]
    assert "resumed after 1:00:00: 2/3 generations, 8 candidates kept, 4 to evaluate" in frame
    assert view.elapsed() >= 3600.0
    assert f"best {best.fitness:.3f} {best.name}" in frame
    ok = kept[0]
    row = next(line for line in frame.splitlines() if f" {ok.name} " in line)
    assert f"{ok.val_accuracy:.3f}" in row
    it = decision["iteration"]
    assert f"control: bred g2: {it} {'try' if it == 1 else 'tries'}, {decision['diversity']:.3f} in" in frame
    assert "0 running · 4 pending" in frame  # the candidate the stop interrupted waits again


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
    assert "generation 2/2" in out
    assert "pyevonas evolve" in out
    assert "starting run" not in out


def test_through_a_pipe_the_view_prints_log_lines(tmp_path: Path) -> None:
    out = _run_child(tmp_path, use_pty=False)
    assert "MODE plain" in out
    assert "\x1b[" not in out
    assert "starting run runs/demo" in out
    assert "finished in 0:00:12" in out
