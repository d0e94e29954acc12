"""The terminal view of a running search: a rich live display on a terminal, plain log lines elsewhere.

``LiveView`` is an observer of ``pyevonas.search.loop``: it receives the loop's events and redraws
(on a terminal) or prints one timestamped line per notable event (when stdout is a file or a
pipe, e.g. CI or ``nohup``). It holds only display state; nothing it does can change the search.

The live display fits the terminal whatever the population and the number of generations: every
line is cut to the width (never wrapped) and the sections share the height, most important first:

- generation k of N with a progress bar, elapsed time (earlier sessions of a resumed run
  included) and ETA (from the candidates' throughput);
- the current generation's counts: ok, running, pending, failed, oversized, cached, reused;
- the best fitness of the run (with its name), the last generation's median fitness and the
  current generation's median similarity;
- the control loop: the try it is at while it breeds, otherwise its last decision
  (``bred g7: 7 tries, 0.538 in (0.493, 0.543]``);
- the last error, once a candidate has failed;
- a table of the running candidates, the best few of the run and the latest finished (a failed
  one shows ``-`` and its error, a chance-level result is marked);
- the history: a sparkline of the best fitness and of the median similarity per generation, and
  a table of the last generations as far as the height allows.

Similarity is the one name for the number the control steers: a generation's median pairwise
similarity (higher = less diverse).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pyevonas.runs.objectives import named_values, parse_objectives
from pyevonas.runs.records import OUTCOMES, UNFINISHED, Status
from pyevonas.search import halving
from pyevonas.search.events import (
    CandidateInfo,
    CandidateProgress,
    CandidateUpdate,
    ControlStep,
    FrontMeasured,
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
    Status.REUSED: "blue",
    Status.FAILED: "red",
    Status.OVERSIZED: "magenta",
}
#: The counts line, in this order (a status with no candidate is left out, except the first four).
_COUNTED = (
    Status.OK, Status.RUNNING, Status.PENDING, Status.FAILED, Status.OVERSIZED, Status.CACHED, Status.REUSED
)  # fmt: skip
_SPARK = "▁▂▃▄▅▆▇█"
#: Most rows of each table section when the terminal is tall enough.
_MAX_BEST = 5
_MAX_LATEST = 8
_MAX_HISTORY = 20


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS`` (or ``--:--`` when unknown)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "--:--"
    s = round(seconds)
    return f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cost(value: float | None) -> str:
    """An objective's value as the view shows it: a count with thousands separators (params,
    flops), else four significant digits."""
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) >= 1000:
        return format(int(value), ",")
    return format(value, ".4g")


#: The fitness columns the candidate table always has; other objectives get a column of their own.
_SHOWN_METRICS = ("fitness", "val_accuracy")
#: Most front members the run's last log line names.
_MAX_FRONT_NAMED = 10


def front_text(front: FrontMeasured) -> str:
    """One line on a generation's Pareto front: its size and hypervolume, and the run's so far."""
    return (
        f"Pareto front ({', '.join(front.objectives)}) of generation {front.generation}: {front.size},"
        f" hypervolume {_fmt(front.hypervolume)}; run so far: {front.size_so_far}, {_fmt(front.hypervolume_so_far)}"
    )


def _space_part(config: Any) -> list[str]:
    """The search space, as the title and the log name it: nothing for the paper's chains."""
    space = str(getattr(config, "space", "paper"))
    return [] if space in ("paper", "default") else [Path(space).stem.removeprefix("space.")]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _window(window: Sequence[float] | None) -> str:
    return "-" if window is None else f"({window[0]:.3f}, {window[1]:.3f}]"


def decision_text(generation: int, decision: dict[str, Any] | None, max_iterations: int | None = None) -> str:
    """One line for a stored control decision, e.g. ``bred g7: 7 tries, 0.538 in (0.493, 0.543]``."""
    if not decision:
        return ""
    control = decision.get("control")
    value = decision.get("diversity")
    if control == "initial":
        return f"g{generation}: {decision.get('sampled', '?')} sampled at random"
    if control == "naive":
        return f"bred g{generation}: naive, similarity {_fmt(value)}"
    n = decision.get("iteration")
    window = decision.get("window")
    if decision.get("fallback"):
        tries = max_iterations or n
        return f"bred g{generation}: {tries} tries, none in {_window(window)}; took try {n} ({_fmt(value)})"
    return f"bred g{generation}: {n} {'try' if n == 1 else 'tries'}, {_fmt(value)} in {_window(window)}"


def _short_decision(decision: dict[str, Any] | None) -> str:
    """The history table's column: how a generation was bred."""
    if not decision:
        return ""
    if decision.get("control") == "initial":
        return "sampled"
    if decision.get("control") == "naive":
        return "naive"
    n = decision.get("iteration")
    if decision.get("fallback"):
        return f"closest, try {n}"
    return f"{n} {'try' if n == 1 else 'tries'}, in"


def sparkline(values: Sequence[float | None], width: int) -> str:
    """The last ``width`` values as block characters scaled between their min and max (None: space)."""
    shown = list(values)[-width:] if width > 0 else []
    known = [v for v in shown if v is not None]
    if not known:
        return " " * len(shown)
    lo, hi = min(known), max(known)
    span = hi - lo
    out = []
    for v in shown:
        if v is None:
            out.append(" ")
        else:
            level = 0 if span <= 0 else round((v - lo) / span * (len(_SPARK) - 1))
            out.append(_SPARK[level if span > 0 else len(_SPARK) // 2])
    return "".join(out)


@dataclass
class _Candidate:
    info: CandidateInfo
    generation: int
    epoch: int = 0
    epochs: int = 0
    progress_val: float | None = None
    started: float | None = None
    warm: bool = False  # started on a worker that had already trained a candidate
    finished: int = 0  # order of finishing in this generation (0: not finished here)


@dataclass
class _History:
    generation: int
    best: float | None
    median: float | None
    similarity: float | None
    window: tuple[float, float] | None
    decision: dict[str, Any] | None = None  # how this generation was bred


@dataclass
class _State:
    run_dir: str = ""
    config: Any = None
    n_generations: int = 0
    population: int = 0
    elitism: int = 0
    max_iterations: int | None = None
    generation: int = 0
    completed: int = 0
    candidates: dict[int, _Candidate] = field(default_factory=dict)
    trained: dict[int, tuple[int, CandidateInfo]] = field(default_factory=dict)  # the run's, for the best few
    similarity: float | None = None
    window: tuple[float, float] | None = None
    best: CandidateInfo | None = None
    median: float | None = None
    breeding: ControlStep | None = None
    last_decision: str = ""
    last_error: str = ""
    history: list[_History] = field(default_factory=list)
    decisions: dict[int, dict[str, Any]] = field(default_factory=dict)
    resumed: str = ""
    # timing (the view's clock)
    session_start: float = 0.0
    elapsed_before: float = 0.0
    n_started: int = 0
    n_done: int = 0
    peak_running: int = 0
    cold_durations: list[float] = field(default_factory=list)
    warm_durations: list[float] = field(default_factory=list)
    first_warm_start: float | None = None
    new_per_generation: list[int] = field(default_factory=list)
    generation_jobs: int = 0
    finished_order: int = 0
    finished: bool = False
    front: FrontMeasured | None = None


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
        clock: seconds of a monotonic clock (for tests; default ``time.monotonic``).
        timestamps: start every plain log line with the local date and time.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        plain: bool | None = None,
        refresh_per_second: float = 4,
        clock: Callable[[], float] = time.monotonic,
        timestamps: bool = True,
    ) -> None:
        self.console = console or Console()
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self._clock = clock
        self._timestamps = timestamps
        self._state = _State(session_start=clock())
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
            stamp = time.strftime("%Y-%m-%d %H:%M:%S ") if self._timestamps else ""
            self.console.print(stamp + line, markup=False, highlight=False, soft_wrap=True)
        elif self._live is not None:
            self._live.refresh()

    def _apply(self, event: Any) -> str | None:
        st = self._state
        now = self._clock()
        if isinstance(event, RunStarted):
            return self._run_started(event, now)
        if isinstance(event, GenerationStarted):
            return self._generation_started(event)
        if isinstance(event, CandidateUpdate):
            return self._candidate_update(event, now)
        if isinstance(event, CandidateProgress):
            cand = st.candidates.get(event.id)
            if cand is not None:
                cand.epoch, cand.epochs, cand.progress_val = event.epoch, event.epochs, event.val_accuracy
            return None
        if isinstance(event, GenerationEvaluated):
            st.completed = max(st.completed, event.generation)
            st.median = event.median_fitness
            if event.generation > 1 and not event.from_store:
                st.new_per_generation.append(st.generation_jobs)
            st.history = [h for h in st.history if h.generation != event.generation]
            st.history.append(
                _History(
                    event.generation,
                    event.best_fitness,
                    event.median_fitness,
                    event.diversity,
                    st.window,
                    st.decisions.get(event.generation),
                )
            )
            return (
                f"generation {event.generation}/{event.n_generations} done: best {_fmt(event.best_fitness)},"
                f" median {_fmt(event.median_fitness)}, {event.n_failed} failed"
                f"{' (from the run store)' if event.from_store else f', {event.seconds:.1f} s'};"
                f" elapsed {format_duration(self.elapsed())}, ETA {format_duration(self.eta())}"
            )
        if isinstance(event, ControlStep):
            st.breeding = event
            it = event.iteration
            if it.lo is None or it.hi is None:
                return None
            verdict = "accepted" if it.accepted else "rejected"
            return (
                f"  control {it.iteration}/{event.max_iterations}: similarity {it.diversity:.3f}"
                f" vs ({it.lo:.3f}, {it.hi:.3f}] {verdict} (p_mutation {it.p_mutation:.2f})"
            )
        if isinstance(event, GenerationBred):
            st.breeding = None
            self._note_decision(event.generation, event.decision)
            return st.last_decision
        if isinstance(event, FrontMeasured):
            st.front = event
            return f"  {front_text(event)}"
        if isinstance(event, RunFinished):
            st.finished = True
            best = event.best
            who = (
                f"best {best.name} (generation {best.generation}) fitness {_fmt(best.fitness)}"
                if best
                else "no candidate succeeded"
            )
            front = tuple(getattr(event, "front", ()) or ())
            if front:
                who = self._front_members(front)
            total = f" ({format_duration(self.elapsed())} in all)" if st.resumed else ""
            return f"finished in {format_duration(event.elapsed_s)}{total}: {who}"
        return None

    def _front_members(self, front: Sequence[Any]) -> str:
        """The run's final Pareto front in one line: each member's name and objective values."""
        names = self._objective_names()
        objectives = parse_objectives(names)
        members = []
        for ind in front[:_MAX_FRONT_NAMED]:
            values = named_values(ind, objectives)
            members.append(f"{ind.name} ({', '.join(f'{n} {_cost(values.get(n))}' for n in names)})")
        more = f" and {len(front) - _MAX_FRONT_NAMED} more" if len(front) > _MAX_FRONT_NAMED else ""
        return f"Pareto front ({', '.join(names)}) of {len(front)}: {', '.join(members)}{more}"

    def _objective_names(self) -> list[str]:
        objectives = getattr(self._state.config, "objectives", None) or ["val_accuracy"]
        return [str(o) for o in ([objectives] if isinstance(objectives, str) else objectives)]

    def _cost_names(self) -> list[str]:
        """The run's objectives the candidate table shows in columns of their own (several
        objectives: all but the fitness, e.g. ``params``); none with one objective."""
        try:
            objectives = parse_objectives(self._objective_names())
        except ValueError:
            return []
        if len(objectives) < 2:
            return []
        return [o.name for o in objectives if o.metric not in _SHOWN_METRICS]

    def _rungs(self) -> list[int]:
        """The epochs of a halving run's rungs (empty for another budget)."""
        c = self._state.config
        if c is None or getattr(c, "budget", "full") != "halving":
            return []
        return halving.rungs(int(c.epochs))

    def _rung(self, budget: int | None) -> str:
        """``2/3`` for the second of three rungs (``-`` when unknown)."""
        rungs = self._rungs()
        return f"{rungs.index(budget) + 1}/{len(rungs)}" if budget in rungs else "-"

    def _run_started(self, event: RunStarted, now: float) -> str:
        st = self._state
        c = event.config
        st.session_start = now  # elapsed and ETA count from the loop's start
        st.elapsed_before = event.elapsed_before
        st.run_dir = str(event.run_dir)
        st.config = c
        st.n_generations = c.generations
        st.population = c.population
        st.elitism = c.elitism
        st.max_iterations = c.max_control_iterations
        if event.resumed:
            st.resumed = (
                f"resumed after {format_duration(event.elapsed_before)}: {event.generations_stored}/{c.generations}"
                f" generations, {event.finished} candidates kept, {event.to_evaluate} to evaluate"
            )
        verb = "resuming" if event.resumed else "starting"
        tail = f"; {st.resumed}" if event.resumed else ""
        return f"{verb} run {st.run_dir}: {self._description()}{tail}"

    def _description(self) -> str:
        c = self._state.config
        if c is None:
            return ""
        where = c.device if c.device != "auto" else "auto device"
        execution = (
            f"in-process on {where}"
            if c.executor == "inprocess"
            else f"{c.workers} {c.executor} worker{'s' if c.workers > 1 else ''} on {where}"
        )
        simulated = getattr(c, "simulated", None)
        if simulated is not None:
            execution = simulated
        space = "".join(f" · space {part}" for part in _space_part(c))
        return (
            f"{c.dataset}{space} · control {c.control} · {c.generations} generations × {c.population}"
            f" · {_plural(c.epochs, 'epoch')} · seed {c.seed} · {execution}"
        )

    def _generation_started(self, event: GenerationStarted) -> str:
        st = self._state
        st.generation = event.generation
        st.candidates = {c.id: _Candidate(c, event.generation) for c in event.candidates}
        st.similarity = event.diversity
        st.window = event.window
        st.generation_jobs = 0
        st.finished_order = 0
        for info in event.candidates:
            self._note_candidate(event.generation, info)
            if info.status not in UNFINISHED:  # finished in an earlier session (or cached)
                st.finished_order += 1
                st.candidates[info.id].finished = st.finished_order
        if event.decision is not None:
            self._note_decision(event.generation, event.decision)
        pending = sum(1 for c in event.candidates if c.status in UNFINISHED)
        window = "" if event.window is None else f" (window {_window(event.window)})"
        return (
            f"generation {event.generation}/{event.n_generations}: {len(event.candidates)} candidates"
            f" ({pending} to evaluate), median similarity {_fmt(event.diversity)}{window}"
        )

    def _candidate_update(self, event: CandidateUpdate, now: float) -> str | None:
        st = self._state
        info = event.candidate
        cand = st.candidates.get(info.id)
        if cand is None:
            cand = st.candidates[info.id] = _Candidate(info, event.generation)
        previous = cand.info.status
        cand.info = info
        if info.status == Status.RUNNING:
            if cand.started is None:
                cand.started = now
                st.n_started += 1
                running = sum(1 for c in st.candidates.values() if c.info.status == Status.RUNNING)
                st.peak_running = max(st.peak_running, running)
                # The first candidate of each worker pays its start-up (imports, data, kernels);
                # a start beyond the most ever running at once goes to a worker that is warm.
                cand.warm = st.n_started > st.peak_running
                if cand.warm and st.first_warm_start is None:
                    st.first_warm_start = now
            return None
        if previous in UNFINISHED and info.status not in UNFINISHED:
            st.finished_order += 1
            cand.finished = st.finished_order
            if info.status in OUTCOMES:  # evaluated here (a cached one took no time)
                st.n_done += 1
                st.generation_jobs += 1
                if cand.started is not None:
                    (st.warm_durations if cand.warm else st.cold_durations).append(now - cand.started)
        self._note_candidate(event.generation, info)
        rung = ""
        if info.budget is not None and self._rungs():
            rung = f", rung {self._rung(info.budget)} ({_plural(info.budget, 'epoch')})"
        if info.trained:
            extra = f", val {_fmt(info.val_accuracy)}" if info.val_accuracy is not None else ""
            extra += f", test {_fmt(info.test_accuracy)}" if info.test_accuracy is not None else ""
            extra += "".join(f", {name} {_cost(value)}" for name, value in info.costs)
            chance = "; at chance level (a collapsed training)" if info.at_chance else ""
            return f"  {info.name} {info.status} fitness {_fmt(info.fitness)}{extra}{rung}{chance}"
        return f"  {info.name} {info.status}: {info.error or ''}".rstrip(": ") + rung

    def _note_candidate(self, generation: int, info: CandidateInfo) -> None:
        st = self._state
        if info.trained and info.fitness is not None:
            st.trained[info.id] = (generation, info)
            if st.best is None or _rank(info) > _rank(st.best):
                st.best = info
        elif info.error and info.status not in UNFINISHED:
            st.last_error = f"{info.name}: {info.error}"

    def _note_decision(self, generation: int, decision: dict[str, Any]) -> None:
        st = self._state
        st.last_decision = decision_text(generation, decision, st.max_iterations)
        st.decisions[generation] = decision

    # ------------------------------------------------------------------ timing
    def elapsed(self) -> float:
        """Seconds spent on the run: earlier sessions (of a resumed run) and this one."""
        st = self._state
        return st.elapsed_before + self._clock() - st.session_start

    def eta(self) -> float | None:
        """Estimated seconds left, from the throughput of the candidates evaluated in this session.

        Known from the first finished candidate. The first candidate of each worker also pays the
        worker's start-up, so it counts only until others finish. The throughput is: the number
        of candidates trained at once over the mean duration of the first ones (the cold ones), or
        once a candidate on a warm worker finished, of those; and once as many warm candidates
        finished as train at once, the warm ones finished over the wall time since the first of
        them started (so breeding and the wait for a generation's slowest candidate count too).
        The work left is the candidates of this generation without a result (a running one by the
        share of its epochs left) plus, for every generation still to breed, the number of
        candidates the generations bred so far had to train (population minus elites before any
        was bred).
        """
        st = self._state
        if st.finished:
            return 0.0
        if st.n_done == 0:
            return None
        now = self._clock()
        warm = len(st.warm_durations)
        if warm >= max(st.peak_running, 1) and st.first_warm_start is not None and now > st.first_warm_start:
            rate = warm / (now - st.first_warm_start)
        else:
            durations = st.warm_durations or st.cold_durations
            mean = sum(durations) / len(durations) if durations else 0.0
            rate = max(st.peak_running, 1) / mean if mean > 0 else 0.0
        if rate <= 0:
            return None
        left = 0.0
        for cand in st.candidates.values():
            if cand.info.status == Status.PENDING:
                left += 1
            elif cand.info.status == Status.RUNNING:
                left += 1 - (cand.epoch / cand.epochs if cand.epochs else 0.0)
        per_generation = (
            sum(st.new_per_generation) / len(st.new_per_generation)
            if st.new_per_generation
            else max(st.population - st.elitism, 0)
        )
        left += max(st.n_generations - max(st.generation, 1), 0) * per_generation
        return left / rate

    # ------------------------------------------------------------------ rendering
    def render(self) -> RenderableType:
        """The live display's current frame; it takes the size of the console it is drawn on."""
        return _Frame(self)

    def frame(self, width: int, height: int) -> RenderableType:
        """The display laid out for ``width`` columns and at most ``height`` lines."""
        with self._lock:
            return self._frame(max(width, 20), max(height, 4))

    def _frame(self, width: int, height: int) -> RenderableType:
        st = self._state
        inner = width - 4  # the panel's borders and padding
        header = self._header_lines(inner)
        budget = height - 2 - len(header)
        groups = self._candidate_groups()
        hist = st.history[-_MAX_HISTORY:]
        alloc, spark, n_hist = _allocate(budget, [len(rows) for _, rows in groups], len(hist), len(st.history))
        parts: list[RenderableType] = [*header]
        rows = [(name, rows[:n]) for (name, rows), n in zip(groups, alloc, strict=True) if n]
        if rows:
            parts.append(self._candidate_table(rows, inner))
        if spark:
            parts.append(self._sparklines(inner))
        if n_hist:
            parts.append(self._history_table(hist[-n_hist:]))
        title = _fit(
            [
                "pyevonas evolve",
                *(
                    [
                        f"{st.config.dataset}",
                        *_space_part(st.config),
                        f"{st.config.control}" + ("" if st.config.selection == "topk" else f" + {st.config.selection}"),
                        f"{st.n_generations} gen × {st.population}",
                        _plural(st.config.epochs, "epoch"),
                        f"seed {st.config.seed}",
                    ]
                    if st.config is not None
                    else []
                ),
            ],
            width - 6,
        )
        subtitle = _fit([st.run_dir, st.resumed], width - 6)
        if st.resumed and subtitle == _fit([st.run_dir], width - 6):
            subtitle = _fit([st.run_dir, "resumed"], width - 6)
        return Panel(
            Group(*parts),
            title=Text(title, style="bold"),
            title_align="left",
            subtitle=Text(subtitle, style="dim"),
            subtitle_align="left",
            width=width,
        )

    def _header_lines(self, inner: int) -> list[RenderableType]:
        st = self._state
        lines: list[RenderableType] = []
        top = Table.grid(padding=(0, 1), expand=True)
        top.add_column(no_wrap=True)
        top.add_column(ratio=1)
        top.add_column(no_wrap=True, justify="right")
        timing = f"elapsed {format_duration(self.elapsed())}  ETA {format_duration(self.eta())}"
        gen = f"generation {st.generation}/{st.n_generations}"
        if inner >= len(gen) + len(timing) + 8:
            top.add_row(
                Text(gen, style="bold"),
                ProgressBar(total=max(st.n_generations, 1), completed=st.completed),
                Text(timing),
            )
        else:
            top.add_row(Text(gen, style="bold"), Text(""), Text(timing))
        lines.append(top)
        simulated = getattr(st.config, "simulated", None)
        if simulated is not None:
            lines.append(Text(simulated, style="bold yellow", no_wrap=True, overflow="ellipsis"))

        counts = dict.fromkeys(_COUNTED, 0)
        for cand in st.candidates.values():
            counts[cand.info.status] = counts.get(cand.info.status, 0) + 1
        chance = sum(1 for c in st.candidates.values() if c.info.at_chance)
        text = Text(f"{len(st.candidates)} candidates: ", no_wrap=True, overflow="ellipsis")
        shown = [s for s in _COUNTED if counts[s] or s in (Status.OK, Status.RUNNING, Status.PENDING, Status.FAILED)]
        for k, status in enumerate(shown):
            if k:
                text.append(" · ")
            text.append(f"{counts[status]} {status}", style=_STATUS_STYLE[status] if counts[status] else "dim")
        if chance:
            text.append(f" · {chance} at chance", style="yellow")
        lines.append(text)

        best = st.best
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"best {_fmt(best.fitness if best else None)}", style="bold green")
        if best is not None:
            line.append(f" {best.name}")
            if best.test_accuracy is not None:
                line.append(f" (test {best.test_accuracy:.3f})")
        line.append(f" · median {_fmt(st.median)} · similarity {_fmt(st.similarity)}")
        lines.append(line)

        if st.front is not None:
            lines.append(Text(front_text(st.front), no_wrap=True, overflow="ellipsis"))
        lines.append(self._control_text())
        if st.resumed and st.n_done == 0:  # until this session's first result: what was resumed
            lines.append(Text(st.resumed, style="cyan", no_wrap=True, overflow="ellipsis"))
        if st.last_error:
            lines.append(Text(f"last error {st.last_error}", style="red", no_wrap=True, overflow="ellipsis"))
        return lines

    def _control_text(self) -> Text:
        st = self._state
        step = st.breeding
        if step is not None:
            it = step.iteration
            if it.lo is None or it.hi is None:
                text = f"breeding g{step.generation} (naive): similarity {it.diversity:.3f}"
            else:
                where = "in" if it.accepted else "not in"
                text = (
                    f"breeding g{step.generation}: try {it.iteration}/{step.max_iterations},"
                    f" {it.diversity:.3f} {where} ({it.lo:.3f}, {it.hi:.3f}]  p_mutation {it.p_mutation:.2f}"
                )
            return Text(f"control: {text}", style="yellow", no_wrap=True, overflow="ellipsis")
        if st.last_decision:
            return Text(f"control: {st.last_decision}", no_wrap=True, overflow="ellipsis")
        return Text("control: -", style="dim", no_wrap=True, overflow="ellipsis")

    def _candidate_groups(self) -> list[tuple[str, list[_Candidate]]]:
        st = self._state
        cands = list(st.candidates.values())
        running = sorted((c for c in cands if c.info.status == Status.RUNNING), key=lambda c: c.info.index)
        ranked = sorted(st.trained.values(), key=lambda gi: _rank(gi[1]), reverse=True)[:_MAX_BEST]
        best = []
        for generation, info in ranked:
            current = st.candidates.get(info.id)
            best.append(current if current is not None else _Candidate(info, generation))
        shown = {c.info.id for c in best}
        latest = sorted(
            (c for c in cands if c.finished and c.info.id not in shown),
            key=lambda c: -c.finished,
        )[:_MAX_LATEST]
        return [("running", running), ("best", best), ("latest", latest)]

    def _candidate_table(self, groups: list[tuple[str, list[_Candidate]]], inner: int) -> Table:
        # With several objectives the costs (params ...) stand beside the accuracy; under halving
        # the rung each result is from, or a running candidate trains for, ends the row.
        costs = self._cost_names()
        halving_run = bool(self._rungs())
        rows: list[tuple[str | Text, ...]] = []
        for group, cands in groups:
            for k, cand in enumerate(cands):
                info = cand.info
                note: Text
                if info.status == Status.RUNNING and cand.epochs:
                    filled = round(6 * cand.epoch / cand.epochs)
                    note = Text("━" * filled, style="yellow") + Text("━" * (6 - filled), style="dim")
                    note += Text(f" epoch {cand.epoch}/{cand.epochs}")
                elif info.status == Status.RUNNING:
                    note = Text("starting", style="dim")
                elif info.at_chance:
                    note = Text("chance level", style="yellow")
                elif not info.trained and info.error:
                    note = Text(info.error, style="red")
                else:
                    note = Text("")
                val = cand.progress_val if info.status == Status.RUNNING else info.val_accuracy
                rows.append(
                    (
                        group if k == 0 else "",
                        info.name,
                        info.sequence,
                        Text(str(info.status), style=_STATUS_STYLE.get(info.status, "")),
                        note,
                        _fmt(val) if info.trained or info.status == Status.RUNNING else "-",
                        Text(_fmt(info.fitness) if info.trained else "-", style="yellow" if info.at_chance else ""),
                        *(_cost(dict(info.costs).get(name)) if info.trained else "-" for name in costs),
                        *([self._rung(info.budget)] if halving_run else []),
                    )
                )
        headers = ("", "name", "sequence", "status", "training / note", "val", "fitness", *costs)
        headers += ("rung",) if halving_run else ()
        natural = [max([len(h), *(_cell_len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        full_note = natural[4]
        natural[4] = min(natural[4], 24)  # an error message is cut first, the sequence keeps room
        # The sequence takes what the other columns leave (one space between columns); below
        # 6 columns of its own it goes, then the note. Room left over widens the note again.
        widths = list(natural)
        widths[2] = inner - (sum(natural) - natural[2]) - (len(headers) - 1)
        keep = list(range(len(headers)))
        if widths[2] < 6:
            keep.remove(2)
            widths[4] = max(inner - (sum(natural) - natural[2] - natural[4]) - (len(keep) - 1), 0)
            if widths[4] < 8:
                keep.remove(4)
        elif widths[2] > natural[2]:
            widths[4] = min(full_note, natural[4] + widths[2] - natural[2])
            widths[2] = natural[2]
        table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1), collapse_padding=True)
        for i in keep:
            table.add_column(
                headers[i],
                no_wrap=True,
                overflow="ellipsis",
                width=widths[i],
                justify="right" if i >= 5 else "left",
                style="dim" if i == 0 else None,
            )
        for row in rows:
            table.add_row(*(row[i] for i in keep))
        return table

    def _sparklines(self, inner: int) -> Text:
        hist = self._state.history
        half = (inner - 3) // 2
        best = [h.best for h in hist]
        sims = [h.similarity for h in hist]
        parts = []
        for label, values in (("best fitness", best), ("similarity", sims)):
            last = next((v for v in reversed(values) if v is not None), None)
            room = half - len(label) - len(_fmt(last)) - 2
            parts.append(f"{label} {sparkline(values, max(room, 0))} {_fmt(last)}")
        return Text(" · ".join(parts), no_wrap=True, overflow="ellipsis")

    def _history_table(self, hist: Iterable[_History]) -> Table:
        table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
        for name in ("gen", "best", "median", "similarity", "window", "bred"):
            table.add_column(name, no_wrap=True, overflow="ellipsis", justify="left" if name == "bred" else "right")
        for h in hist:
            table.add_row(
                str(h.generation),
                _fmt(h.best),
                _fmt(h.median),
                _fmt(h.similarity),
                _window(h.window),
                _short_decision(h.decision),
            )
        return table


class _Frame:
    """Renders the view at the size of the console it is drawn on (width and height)."""

    def __init__(self, view: LiveView) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or options.max_height or console.height
        yield self.view.frame(options.max_width, height)


def _rank(info: CandidateInfo) -> tuple[int, float, int]:
    """Order of trained candidates, best first when sorted descending: as the loop ranks them, the
    larger training budget first (successive halving), then fitness, then the earlier one."""
    return (info.budget or 0, info.fitness if info.fitness is not None else -math.inf, -info.id)


def _cell_len(cell: str | Text) -> int:
    return Text(cell).cell_len if isinstance(cell, str) else cell.cell_len


def _fit(parts: Sequence[str], width: int) -> str:
    """``parts`` joined by `` · ``, dropping trailing parts (then cutting the first) to fit ``width``."""
    parts = [p for p in parts if p]
    while parts:
        text = " · ".join(parts)
        if len(text) <= width:
            return text
        if len(parts) == 1:
            return text[: max(width - 1, 0)] + "…"
        parts = parts[:-1]
    return ""


def _allocate(budget: int, wants: Sequence[int], n_hist: int, n_history: int) -> tuple[list[int], bool, int]:
    """Share ``budget`` lines: rows per candidate group, the sparkline line, history rows.

    Every group first gets one row (in order: running, best, latest), then the sparklines (once
    there are two generations), then rows go round the groups and the history table in turn.
    A table's header line counts as soon as it gets its first row.
    """
    alloc = [0] * len(wants)
    spark = False
    hist = 0
    table_started = False

    def take_row(k: int) -> bool:
        nonlocal budget, table_started
        cost = 1 if table_started else 2
        if alloc[k] >= wants[k] or cost > budget:
            return False
        alloc[k] += 1
        budget -= cost
        table_started = True
        return True

    def take_hist() -> bool:
        nonlocal budget, hist
        cost = 1 if hist else 2
        if hist >= n_hist or cost > budget:
            return False
        hist += 1
        budget -= cost
        return True

    for k in range(len(wants)):
        take_row(k)
    if n_history >= 2 and budget >= 1:
        spark = True
        budget -= 1
    progressed = True
    while progressed:
        progressed = False
        for k in range(len(wants)):
            progressed |= take_row(k)
            if k == 0:  # running candidates matter most: two rows per round
                progressed |= take_row(k)
        progressed |= take_hist()
    return alloc, spark, hist


__all__ = ["LiveView", "decision_text", "format_duration", "front_text", "sparkline"]
