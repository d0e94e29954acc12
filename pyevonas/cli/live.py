"""The terminal view of a running search: a rich live display on a terminal, plain log lines elsewhere.

``LiveView`` is an observer of ``pyevonas.search.loop``: it receives the loop's events and redraws
(on a terminal) or prints one line per notable event (when stdout is a file or a pipe, e.g. CI or
``nohup``). It holds only display state; nothing it does can change the search.

The live display shows: generation k of N with a progress bar, elapsed time and ETA; the best
and median fitness; the diversity (median similarity) of the generation against its control
window; the control loop's current iteration; and a table of the candidates with their status,
training progress and fitness.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pyevonas.runs.records import UNFINISHED, Status
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

_STATUS_STYLE = {
    Status.PENDING: "dim",
    Status.RUNNING: "yellow",
    Status.OK: "green",
    Status.CACHED: "cyan",
    Status.FAILED: "red",
    Status.OVERSIZED: "magenta",
}
#: Longest sequence shown in the candidate table before it is cut with an ellipsis.
_SEQ_WIDTH = 28


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (or ``--:--`` when unknown)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dataclass
class _Candidate:
    info: CandidateInfo
    epoch: int = 0
    epochs: int = 0
    val_accuracy: float | None = None


@dataclass
class _History:
    generation: int
    best: float | None
    median: float | None
    diversity: float | None
    window: tuple[float, float] | None
    decision: str = ""


@dataclass
class _State:
    run_dir: str = ""
    title: str = ""
    n_generations: int = 0
    generation: int = 0
    completed: int = 0
    candidates: dict[int, _Candidate] = field(default_factory=dict)
    diversity: float | None = None
    window: tuple[float, float] | None = None
    best: float | None = None
    best_name: str = ""
    median: float | None = None
    control: ControlStep | None = None
    history: list[_History] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    generation_seconds: list[float] = field(default_factory=list)
    finished: bool = False


class LiveView:
    """Observer that shows a search in the terminal.

    Use as a context manager around the search, and pass it as an observer::

        with LiveView() as view:
            evolve(config, observers=[view])

    Args:
        console: where to draw (default: stdout).
        plain: force plain log lines (True) or the live display (False); default: live display
            only when the console is a terminal.
        refresh_per_second: redraw rate of the live display.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        plain: bool | None = None,
        refresh_per_second: float = 4,
    ) -> None:
        self.console = console or Console()
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self._state = _State()
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._refresh = refresh_per_second

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        if not self.plain:
            self._live = Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=self._refresh,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    # ------------------------------------------------------------------ events
    def __call__(self, event: Any) -> None:
        """Take one event of the loop."""
        with self._lock:
            line = self._apply(event)
        if self.plain and line:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        elif self._live is not None:
            self._live.refresh()

    def _apply(self, event: Any) -> str | None:
        st = self._state
        if isinstance(event, RunStarted):
            c = event.config
            st.started = time.monotonic()  # elapsed and ETA count from the loop's start
            st.run_dir = str(event.run_dir)
            st.n_generations = c.generations
            st.title = (
                f"{c.dataset} · control {c.control} · {c.generations} generations × {c.population}"
                f" · {c.epochs} epochs · seed {c.seed}"
            )
            verb = "resuming" if event.resumed else "starting"
            return f"{verb} run {st.run_dir}: {st.title}"
        if isinstance(event, GenerationStarted):
            st.generation = event.generation
            st.candidates = {c.id: _Candidate(c) for c in event.candidates}
            st.diversity = event.diversity
            st.window = event.window
            st.control = None
            pending = sum(1 for c in event.candidates if c.status in UNFINISHED)
            return (
                f"generation {event.generation}/{event.n_generations}: {len(event.candidates)} candidates"
                f" ({pending} to evaluate), diversity {_fmt(event.diversity)}{self._window_text(event.window)}"
            )
        if isinstance(event, CandidateUpdate):
            cand = st.candidates.get(event.candidate.id)
            if cand is None:
                cand = st.candidates[event.candidate.id] = _Candidate(event.candidate)
            cand.info = event.candidate
            info = event.candidate
            if info.status == Status.RUNNING:
                return None
            if info.trained:
                self._note_best(info)
                return f"  {info.name} {info.status} fitness {_fmt(info.fitness)}"
            return f"  {info.name} {info.status}: {info.error or ''}".rstrip(": ")
        if isinstance(event, CandidateProgress):
            cand = st.candidates.get(event.id)
            if cand is not None:
                cand.epoch, cand.epochs, cand.val_accuracy = (
                    event.epoch,
                    event.epochs,
                    event.val_accuracy,
                )
            return None
        if isinstance(event, GenerationEvaluated):
            st.completed = max(st.completed, event.generation)
            st.median = event.median_fitness
            if event.best_fitness is not None and (st.best is None or event.best_fitness > st.best):
                st.best = event.best_fitness
            if not event.from_store:
                st.generation_seconds.append(event.seconds)
            st.history.append(
                _History(
                    event.generation,
                    event.best_fitness,
                    event.median_fitness,
                    event.diversity,
                    st.window,
                )
            )
            return (
                f"generation {event.generation}/{event.n_generations} done: best {_fmt(event.best_fitness)},"
                f" median {_fmt(event.median_fitness)}, {event.n_failed} failed"
                f"{' (from the run store)' if event.from_store else f', {event.seconds:.1f} s'};"
                f" elapsed {format_duration(self.elapsed())}, ETA {format_duration(self.eta())}"
            )
        if isinstance(event, ControlStep):
            st.control = event
            it = event.iteration
            if it.lo is None or it.hi is None:
                return None
            verdict = "accepted" if it.accepted else "rejected"
            return (
                f"  control {it.iteration}/{event.max_iterations}: diversity {it.diversity:.3f}"
                f" vs ({it.lo:.3f}, {it.hi:.3f}] {verdict} (p_mutation {it.p_mutation:.2f})"
            )
        if isinstance(event, GenerationBred):
            d = event.decision
            text = self._decision_text(d)
            if st.history:
                st.history[-1].decision = text
            return f"generation {event.generation} bred: diversity {event.diversity:.3f}{self._window_text(event.window)}; {text}"
        if isinstance(event, RunFinished):
            st.finished = True
            best = event.best
            who = (
                f"best {best.name} (generation {best.generation}) fitness {_fmt(best.fitness)}"
                if best
                else "no candidate succeeded"
            )
            return f"finished in {format_duration(event.elapsed_s)}: {who}"
        return None

    def _note_best(self, info: CandidateInfo) -> None:
        st = self._state
        if info.fitness is not None and (st.best is None or info.fitness > st.best):
            st.best = info.fitness
            st.best_name = info.name

    @staticmethod
    def _window_text(window: tuple[float, float] | None) -> str:
        return "" if window is None else f" (window ({window[0]:.3f}, {window[1]:.3f}])"

    @staticmethod
    def _decision_text(d: dict[str, Any]) -> str:
        if d.get("control") == "naive":
            return "naive evolution"
        n = d.get("iteration")
        if d.get("fallback"):
            return f"no candidate in the window; took the closest (iteration {n})"
        return f"accepted at iteration {n}"

    # ------------------------------------------------------------------ timing
    def elapsed(self) -> float:
        """Seconds since the view was created."""
        return time.monotonic() - self._state.started

    def eta(self) -> float | None:
        """Estimated seconds left: mean time of the generations evaluated here × those left."""
        st = self._state
        if not st.generation_seconds or st.n_generations == 0:
            return None
        left = st.n_generations - st.completed
        return 0.0 if st.finished or left <= 0 else left * sum(st.generation_seconds) / len(st.generation_seconds)

    # ------------------------------------------------------------------ rendering
    def render(self) -> RenderableType:
        """The live display's current frame."""
        with self._lock:
            st = self._state
            header = Table.grid(padding=(0, 2))
            header.add_column()
            header.add_column()
            total = max(st.n_generations, 1)
            header.add_row(
                Text(f"generation {st.generation} of {st.n_generations}", style="bold"),
                ProgressBar(total=total, completed=st.completed, width=30),
            )
            header.add_row(
                Text(f"elapsed {format_duration(self.elapsed())}   ETA {format_duration(self.eta())}"),
                Text(st.run_dir, style="dim"),
            )
            best = f"best fitness {_fmt(st.best)}" + (f" ({st.best_name})" if st.best_name else "")
            header.add_row(
                Text(best, style="green"),
                Text(f"median fitness {_fmt(st.median)} (last generation)"),
            )
            window = self._window_text(st.window).strip()
            header.add_row(
                Text(f"median similarity {_fmt(st.diversity)} {window}"),
                self._control_text(),
            )
            parts: list[RenderableType] = [header, self._candidate_table()]
            if st.history:
                parts.append(self._history_table())
            return Panel(Group(*parts), title=f"pyevonas evolve · {st.title}", title_align="left")

    def _control_text(self) -> Text:
        step = self._state.control
        if step is None:
            return Text("control: -", style="dim")
        it = step.iteration
        if it.lo is None or it.hi is None:
            return Text(f"breeding generation {step.generation} (naive)")
        mark = "✓" if it.accepted else "✗"
        return Text(
            f"control iteration {it.iteration}/{step.max_iterations} for generation {step.generation}:"
            f" {it.diversity:.3f} vs ({it.lo:.3f}, {it.hi:.3f}] {mark}  p_mutation {it.p_mutation:.2f}"
        )

    def _candidate_table(self) -> Table:
        table = Table(expand=False, box=None, pad_edge=False, header_style="bold")
        for name, justify in (
            ("#", "right"),
            ("name", "left"),
            ("sequence", "left"),
            ("status", "left"),
            ("training", "left"),
            ("val acc", "right"),
            ("fitness", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for cand in sorted(self._state.candidates.values(), key=lambda c: c.info.index):
            info = cand.info
            seq = info.sequence if len(info.sequence) <= _SEQ_WIDTH else info.sequence[: _SEQ_WIDTH - 1] + "…"
            training: Text
            if info.status == Status.RUNNING and cand.epochs:
                filled = round(10 * cand.epoch / cand.epochs)
                training = Text("━" * filled, style="yellow") + Text("━" * (10 - filled), style="dim")
                training += Text(f" epoch {cand.epoch}/{cand.epochs}")
            elif info.status == Status.RUNNING:
                training = Text("starting", style="dim")
            else:
                training = Text("")
            table.add_row(
                str(info.index),
                info.name,
                seq,
                Text(info.status, style=_STATUS_STYLE.get(info.status, "")),
                training,
                _fmt(cand.val_accuracy),
                _fmt(info.fitness if info.trained else None),
            )
        return table

    def _history_table(self) -> Table:
        table = Table(
            title="generations",
            title_justify="left",
            box=None,
            header_style="bold",
            pad_edge=False,
        )
        for name in ("gen", "best", "median", "diversity", "window", "next generation"):
            table.add_column(name)
        for h in self._state.history[-8:]:
            window = "-" if h.window is None else f"({h.window[0]:.3f}, {h.window[1]:.3f}]"
            table.add_row(
                str(h.generation),
                _fmt(h.best),
                _fmt(h.median),
                _fmt(h.diversity),
                window,
                h.decision,
            )
        return table
