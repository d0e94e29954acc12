"""Observers that log a search to TensorBoard or MLflow (``--log tensorboard:DIR``, ``--log mlflow[:URI]``).

Both log the same things from the loop's events (:mod:`pyevonas.search.events`):

- per generation (step = the generation): ``generation/best_fitness``, ``generation/median_fitness``,
  ``generation/median_similarity``, ``generation/window_lo`` and ``generation/window_hi`` (the
  control window it was bred for), ``generation/control_iterations`` (of the control loop that
  bred it), ``generation/n_ok``, ``generation/n_failed``, ``generation/seconds``; for runs with two
  or more objectives ``front/size``, ``front/hypervolume``, ``front/size_so_far`` and
  ``front/hypervolume_so_far``;
- per candidate (step = its id, in the order candidates were made): ``candidate/fitness``,
  ``candidate/val_accuracy``, ``candidate/test_accuracy`` of each trained one;
- the similarity matrix of each generation as a grayscale image (white = 1);
- MLflow (``mlflow`` alone: a local store in ``./mlflow.db``) also gets one run per search, with its settings as parameters, and ``best.json`` and a
  ``summary.json`` as artifacts when the search finishes.

A resumed search continues the same log: what each logger already wrote is kept in
``loggers.json`` in the run folder (the MLflow run id, the last step of each series, the
candidates logged), and nothing is logged twice. A logger for a run that had none logs the
generations read back from the store too.

The libraries are imported when a logger is made: ``tensorboard`` and ``mlflow-skinny`` (the
``integrations`` extra).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import ConfigError
from pyevonas.search.config import parse_log
from pyevonas.search.events import (
    CandidateUpdate,
    ControlStep,
    Event,
    FrontMeasured,
    GenerationBred,
    GenerationEvaluated,
    GenerationStarted,
    RunFinished,
    RunStarted,
)

STATE_NAME = "loggers.json"
#: Pixels per matrix cell of the similarity image.
CELL_PIXELS = 8


def make_loggers(specs: Sequence[str]) -> list[SearchLogger]:
    """One logger per ``--log`` spec (the library of each is imported here)."""
    loggers: list[SearchLogger] = []
    for spec in specs:
        kind, target = parse_log(spec)
        try:
            loggers.append(TensorBoardLogger(str(target)) if kind == "tensorboard" else MlflowLogger(target))
        except ModuleNotFoundError as exc:
            package = "tensorboard" if kind == "tensorboard" else "mlflow-skinny"
            raise ConfigError(
                f"--log {spec} needs {package} ({exc.name} is missing): pip install 'pyevonas[integrations]'"
            ) from None
    return loggers


def png_image(matrix: np.ndarray, cell: int = CELL_PIXELS) -> tuple[bytes, int, int]:
    """A similarity matrix as an 8-bit grayscale PNG (``cell`` pixels per entry): ``(png, height, width)``."""
    values = np.clip(np.nan_to_num(np.asarray(matrix, dtype=float)), 0.0, 1.0)
    img = np.kron(np.round(values * 255).astype(np.uint8), np.ones((cell, cell), dtype=np.uint8))
    height, width = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return png, height, width


class SearchLogger:
    """The events -> series logic both loggers share; subclasses write (``_scalars``, ``_image``)."""

    spec: str

    def __init__(self) -> None:
        self._run_dir: Path | None = None
        self._state: dict[str, Any] = {}
        self._windows: dict[int, tuple[float, float] | None] = {}
        self._control_steps: dict[int, int] = {}

    # --- what subclasses write -------------------------------------------------------------
    def _start(self, event: RunStarted) -> None:
        raise NotImplementedError

    def _scalars(self, step: int, values: Mapping[str, float | None]) -> None:
        raise NotImplementedError

    def _image(self, tag: str, step: int, matrix: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self, event: RunFinished) -> None:
        raise NotImplementedError

    # --- state kept in the run folder ------------------------------------------------------
    def _load_state(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        try:
            every = json.loads((run_dir / STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            every = {}
        self._state = dict(every.get(self.spec, {})) if isinstance(every, dict) else {}
        self._state.setdefault("last", {})
        self._state.setdefault("candidates", [])

    def _save_state(self) -> None:
        if self._run_dir is None:
            return
        path = self._run_dir / STATE_NAME
        try:
            every = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            every = {}
        every[self.spec] = self._state
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(every, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def _new(self, series: str, step: int) -> bool:
        """Whether ``step`` of ``series`` is not logged yet (and mark it logged)."""
        last: dict[str, int] = self._state["last"]
        if step <= last.get(series, 0):
            return False
        last[series] = step
        return True

    # --- the events ------------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._load_state(event.run_dir)
            self._start(event)
            self._save_state()
        elif isinstance(event, GenerationStarted):
            self._windows[event.generation] = event.window
            if event.matrix is not None and self._new("image", event.generation):
                self._image("similarity", event.generation, event.matrix)
                self._save_state()
        elif isinstance(event, CandidateUpdate):
            self._candidate(event)
        elif isinstance(event, ControlStep):
            self._control_steps[event.generation] = self._control_steps.get(event.generation, 0) + 1
        elif isinstance(event, GenerationBred):
            if self._new("bred", event.generation):
                self._scalars(
                    event.generation, {"generation/control_iterations": self._control_steps.get(event.generation, 0)}
                )
                self._save_state()
        elif isinstance(event, FrontMeasured):
            if self._new("front", event.generation):
                self._scalars(
                    event.generation,
                    {
                        "front/size": event.size,
                        "front/hypervolume": event.hypervolume,
                        "front/size_so_far": event.size_so_far,
                        "front/hypervolume_so_far": event.hypervolume_so_far,
                    },
                )
                self._save_state()
        elif isinstance(event, GenerationEvaluated):
            self._generation(event)
        elif isinstance(event, RunFinished):
            self._finish(event)
            self._save_state()

    def _candidate(self, event: CandidateUpdate) -> None:
        c = event.candidate
        logged: list[int] = self._state["candidates"]
        if not c.trained or c.fitness is None or c.id in logged:
            return
        self._scalars(
            c.id,
            {
                "candidate/fitness": c.fitness,
                "candidate/val_accuracy": c.val_accuracy,
                "candidate/test_accuracy": c.test_accuracy,
            },
        )
        logged.append(c.id)
        self._save_state()

    def _generation(self, event: GenerationEvaluated) -> None:
        if not self._new("generation", event.generation):
            return
        window = self._windows.get(event.generation)
        self._scalars(
            event.generation,
            {
                "generation/best_fitness": event.best_fitness,
                "generation/median_fitness": event.median_fitness,
                "generation/median_similarity": event.diversity,
                "generation/window_lo": window[0] if window else None,
                "generation/window_hi": window[1] if window else None,
                "generation/n_ok": event.n_ok,
                "generation/n_failed": event.n_failed,
                "generation/seconds": event.seconds,
            },
        )
        self._save_state()


def _finite(values: Mapping[str, float | None]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if value is not None and np.isfinite(float(value)):
            out[key] = float(value)
    return out


class TensorBoardLogger(SearchLogger):
    """Writes TensorBoard event files into ``log_dir``: one file per session, the same series.

    Each event is appended and the file closed again (TensorBoard's record format, through its
    own ``RecordWriter``), so a search stopped by Ctrl-C or a crash leaves a complete file and no
    writer thread behind.
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        from tensorboard.compat.proto.event_pb2 import Event as TbEvent
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.spec = f"tensorboard:{log_dir}"
        self.log_dir = Path(log_dir)
        self._event_cls, self._summary_cls, self._record_writer = TbEvent, Summary, RecordWriter
        self.path: Path | None = None

    def _append(self, event: Any) -> None:
        assert self.path is not None
        with self.path.open("ab") as f:
            self._record_writer(f).write(event.SerializeToString())

    def _start(self, event: RunStarted) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = self.log_dir / f"events.out.tfevents.{now:.6f}.{socket.gethostname()}.{os.getpid()}.pyevonas"
        self._append(self._event_cls(wall_time=now, file_version="brain.Event:2"))

    def _write(self, step: int, values: list[Any]) -> None:
        summary = self._summary_cls(value=values)
        self._append(self._event_cls(wall_time=time.time(), step=step, summary=summary))

    def _scalars(self, step: int, values: Mapping[str, float | None]) -> None:
        finite = _finite(values)
        if finite:
            self._write(step, [self._summary_cls.Value(tag=k, simple_value=v) for k, v in finite.items()])

    def _image(self, tag: str, step: int, matrix: np.ndarray) -> None:
        png, height, width = png_image(matrix)
        image = self._summary_cls.Image(height=height, width=width, colorspace=1, encoded_image_string=png)
        self._write(step, [self._summary_cls.Value(tag=tag, image=image)])

    def _finish(self, event: RunFinished) -> None:
        pass  # every event is on disk already


def default_tracking_uri() -> str:
    """A local MLflow store in one file: ``sqlite:///<current folder>/mlflow.db``."""
    return f"sqlite:///{Path('mlflow.db').resolve().as_posix()}"


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local ``sqlite:///`` store (in
    ``mlartifacts/`` next to the database file; MLflow's own default would be ``./mlruns`` in
    whatever folder the search runs from), else the server's or store's default (None)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    if not database.is_absolute():  # sqlite:///relative.db
        database = database.resolve()
    return (database.parent / "mlartifacts").as_uri()


def _flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flat_params(value, f"{name}."))
        else:
            out[name] = (value if isinstance(value, str) else json.dumps(value))[:500]
    return out


class MlflowLogger(SearchLogger):
    """Logs to an MLflow tracking server or store: one run per search (resumed searches continue it).

    ``tracking_uri`` None is ``MLFLOW_TRACKING_URI`` when set, else a local store in one file,
    ``sqlite:///<current folder>/mlflow.db`` (MLflow's own default since 3.x: recent versions refuse
    the ``./mlruns`` folder store unless ``MLFLOW_ALLOW_FILE_STORE=true``). The experiment is
    ``pyevonas``.
    """

    EXPERIMENT = "pyevonas"

    def __init__(self, tracking_uri: str | None = None) -> None:
        super().__init__()
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self.spec = "mlflow" if tracking_uri is None else f"mlflow:{tracking_uri}"
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
        self._metric_cls, self._param_cls = Metric, Param
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.run_id: str | None = None

    def _start(self, event: RunStarted) -> None:
        run_id = self._state.get("run_id")
        if run_id is not None:
            self.run_id = str(run_id)
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(self.EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(self.EXPERIMENT, artifact_location=artifact_location(self.tracking_uri))
        )
        run = self.client.create_run(
            experiment_id, run_name=event.run_dir.name, tags={"pyevonas.run_dir": str(event.run_dir.resolve())}
        )
        self.run_id = run.info.run_id
        self._state["run_id"] = self.run_id
        params = [self._param_cls(k, v) for k, v in _flat_params(event.config.to_dict()).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _scalars(self, step: int, values: Mapping[str, float | None]) -> None:
        stamp = int(time.time() * 1000)
        metrics = [self._metric_cls(k, v, stamp, step) for k, v in _finite(values).items()]
        if metrics and self.run_id is not None:
            self.client.log_batch(self.run_id, metrics=metrics)

    def _image(self, tag: str, step: int, matrix: np.ndarray) -> None:
        if self.run_id is None:
            return
        png, _, _ = png_image(matrix)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"generation_{step:03d}.png"
            path.write_bytes(png)
            self.client.log_artifact(self.run_id, str(path), artifact_path=tag)

    def _finish(self, event: RunFinished) -> None:
        if self.run_id is None:
            return
        best = event.run_dir / "best.json"
        if best.is_file():
            self.client.log_artifact(self.run_id, str(best))
        summary = {
            "run_dir": str(event.run_dir),
            "elapsed_s": event.elapsed_s,
            "best": None
            if event.best is None
            else {"name": event.best.name, "fitness": event.best.fitness, "sequence": event.best.sequence},
        }
        self.client.log_dict(self.run_id, summary, "summary.json")
        self.client.set_terminated(self.run_id)


__all__ = [
    "CELL_PIXELS",
    "STATE_NAME",
    "MlflowLogger",
    "SearchLogger",
    "TensorBoardLogger",
    "artifact_location",
    "default_tracking_uri",
    "make_loggers",
    "png_image",
]
