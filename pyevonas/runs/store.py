"""The run store: one SQLite database per run folder that holds everything a search produces.

Layout of a run folder::

    RUN_DIR/run.sqlite        the database (plus SQLite's -wal/-shm files while it is open)

Conventions:

* The database is recognised by its header, never by its name: ``PRAGMA application_id`` is
  :data:`APPLICATION_ID` and ``PRAGMA user_version`` is :data:`SCHEMA_VERSION`. :meth:`RunStore.open`
  checks both straight from the file's first 100 bytes, before SQLite touches it, so opening a
  foreign or corrupt file never modifies it.
* Journal mode is WAL: readers (a report, ``pyevonas export``) see the last committed state while
  the search keeps writing.
* Every public write is one transaction. :meth:`RunStore.transaction` groups several writes into one
  state change (e.g. "a generation's individuals and the loop's resume pointer"), so a process killed
  at any instant leaves either all of them or none.
* Chromosomes, parents, metrics, decisions and extras are stored as JSON text; similarity matrices
  as raw little-endian float64 bytes plus their shape. Generations are 1-based; ``index`` is the
  position in the population (0-based).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import RunStoreError
from pyevonas.runs.records import (
    EVALUATED_STATUSES,
    STATUSES,
    GenerationRecord,
    Individual,
    Status,
    canonical_key,
    finite_json,
    is_trained,
    selection_scores,
)

DB_NAME = "run.sqlite"
# "pyEv" in ASCII; stored at byte offset 68 of the SQLite header.
APPLICATION_ID = 0x70794576
SCHEMA_VERSION = 1
# Name of the half-built database during `create`; renamed to DB_NAME once complete, so a run
# folder never holds a database without its config.
_CREATING_NAME = ".run.sqlite.creating"


_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE individuals (
    id                     INTEGER PRIMARY KEY,
    generation             INTEGER NOT NULL,
    idx                    INTEGER NOT NULL,
    name                   TEXT NOT NULL,
    chromosome             TEXT NOT NULL,
    sequence               TEXT NOT NULL,
    parents                TEXT,
    canonical_key          TEXT NOT NULL,
    status                 TEXT NOT NULL,
    fitness                REAL,
    val_accuracy           REAL,
    test_accuracy          REAL,
    val_accuracy_per_epoch TEXT,
    params                 INTEGER,
    size_mb                REAL,
    latency_ms             REAL,
    flops                  INTEGER,
    train_seconds          REAL,
    error                  TEXT,
    metrics                TEXT,
    cached_from            INTEGER,
    created_at             REAL NOT NULL,
    started_at             REAL,
    finished_at            REAL,
    UNIQUE (generation, idx)
);
CREATE INDEX individuals_by_key ON individuals (canonical_key, status);
CREATE TABLE generations (
    generation   INTEGER PRIMARY KEY,
    matrix       BLOB,
    matrix_shape TEXT,
    diversity    REAL,
    window_lo    REAL,
    window_hi    REAL,
    decision     TEXT,
    rng_state    TEXT,
    extras       TEXT,
    updated_at   REAL NOT NULL
);
CREATE TABLE control_iterations (
    generation    INTEGER NOT NULL,
    iteration     INTEGER NOT NULL,
    median        REAL,
    lo            REAL,
    hi            REAL,
    accepted      INTEGER NOT NULL,
    mutation_rate REAL,
    extras        TEXT,
    created_at    REAL NOT NULL,
    PRIMARY KEY (generation, iteration)
);
CREATE TABLE state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"cannot store {what}: it is not JSON-serialisable ({exc})") from exc


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays reach the store from the loop and from metrics.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    # SQLite stores NaN as NULL anyway; say so explicitly.
    return None if math.isnan(number) else number


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


#: Below this many free bytes a failing SQLite call is blamed on the disk, not on the file.
_FULL_BELOW = 1 << 20


def _disk_full(folder: Path) -> str | None:
    """'the disk is full (...)' when the folder's file system has almost no space left, else None."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return f"the disk is full ({free:,} bytes free on the file system of {folder})" if free < _FULL_BELOW else None


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (false on a read-only mount, even for root)."""
    if not os.access(folder, os.W_OK):
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return True
    return not st.f_flag & os.ST_RDONLY


def _read_header(path: Path) -> tuple[int, int]:
    """Return (application_id, user_version) read from a SQLite file's header, or raise."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise RunStoreError(f"cannot read the run database {path}: {exc}") from exc
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise RunStoreError(f"{path} is not a SQLite database (corrupt or foreign file); not a pyevonas run")
    (user_version,) = struct.unpack(">i", header[60:64])
    (application_id,) = struct.unpack(">i", header[68:72])
    return application_id, user_version


def _lock_writer(path: Path) -> int | None:
    """Take the run's single-writer lock and return the descriptor that holds it.

    Two searches writing one run would interleave generations, so a second writer is refused. The
    lock is ``flock`` on the database file itself: independent of SQLite's own byte-range locks,
    no extra file in the run folder, and released by the kernel when a killed process dies, so a
    crashed run can be resumed at once. Where ``flock`` does not exist (Windows) there is no lock.
    """
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunStoreError(
            f"{path.parent} is open for writing by another process (is a search still running on "
            "it?); wait for it to finish or stop it"
        ) from None
    except OSError:
        os.close(fd)  # a filesystem without flock: go on unlocked
        return None
    return fd


def _unlock_writer(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


class RunStore:
    """A run's SQLite database: read it, write it, resume from it.

    Create with :meth:`create` or open with :meth:`open`; close with :meth:`close` or use it as a
    context manager. One process at a time may open a run for writing; any number may read
    beside it. One ``RunStore`` may be used from several threads (writes are serialised by a lock).

    Example::

        store = RunStore.create("runs/demo", config={}, scoring={}, space={}, meta={})
        i = store.add_individual(1, 0, "g1-0", chrom, "CMGF")
        store.set_result(i, {"status": "ok", "fitness": 0.9})
    """

    def __init__(
        self, run_dir: Path, connection: sqlite3.Connection, readonly: bool, writer_fd: int | None = None
    ) -> None:
        """Wrap an open connection; use :meth:`create` or :meth:`open` instead."""
        self.run_dir = run_dir
        self.path = run_dir / DB_NAME
        self.readonly = readonly
        self._conn = connection
        self._writer_fd = writer_fd
        self._lock = threading.RLock()
        self._depth = 0
        try:
            meta = {row[0]: row[1] for row in self._conn.execute("SELECT key, value FROM meta")}
            self.config: dict[str, Any] = _meta_object(meta, "config")
            self.scoring: dict[str, Any] = _meta_object(meta, "scoring")
            self.space: dict[str, Any] = _meta_object(meta, "space")
            self.meta: dict[str, Any] = _meta_object(meta, "meta")
            self.created_at = _number(_meta_value(meta, "created_at"), "created_at")
        except (sqlite3.DatabaseError, KeyError, ValueError, TypeError, RecursionError) as exc:
            self.close()
            full = _disk_full(run_dir)
            if full is not None:
                raise RunStoreError(f"cannot open {self.path}: {full}") from exc
            why = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise RunStoreError(f"{self.path} is damaged: its run description cannot be read ({why})") from None

    @contextlib.contextmanager
    def _damaged(self, what: str) -> Iterator[None]:
        """Turn a record that cannot be decoded into a RunStoreError naming it (nothing is changed)."""
        try:
            yield
        except (ValueError, TypeError, KeyError) as exc:  # json.JSONDecodeError is a ValueError
            raise RunStoreError(f"{self.path} is damaged: {what}{exc}") from None
        except RecursionError:  # JSON nested deeper than Python parses
            raise RunStoreError(f"{self.path} is damaged: {what}JSON nested too deeply") from None

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(
        cls,
        run_dir: str | os.PathLike[str],
        config: Mapping[str, Any],
        scoring: Mapping[str, Any],
        space: Mapping[str, Any],
        meta: Mapping[str, Any],
    ) -> RunStore:
        """Create a new run folder (or fill an empty one) and return its open store.

        Args:
            run_dir: The run folder; created with its parents if missing.
            config: The resolved run configuration.
            scoring: The scoring schema (JSON dict).
            space: The search space (``SearchSpace.to_dict()``).
            meta: Run metadata: source, dataset, control, seed, name...

        Returns:
            The store, open for writing.

        Raises:
            RunStoreError: If the folder exists and is not empty (it may hold another run or
                someone's files: it is never overwritten), or a value is not JSON-serialisable.
        """
        folder = Path(run_dir)
        if folder.exists() and not folder.is_dir():
            raise RunStoreError(f"run folder {folder} exists and is not a folder")
        if folder.is_dir():
            entries = [p for p in folder.iterdir() if p.name != _CREATING_NAME]
            if (folder / DB_NAME).exists():
                raise RunStoreError(f"{folder} already holds a pyevonas run; resume it or choose another run folder")
            if entries:
                raise RunStoreError(f"{folder} is not empty and is not a pyevonas run; refusing to write into it")
        texts = {
            "config": _dumps(dict(config), "the config"),
            "scoring": _dumps(dict(scoring), "the scoring schema"),
            "space": _dumps(dict(space), "the search space"),
            "meta": _dumps(dict(meta), "the run metadata"),
            "created_at": json.dumps(time.time()),
            "application": json.dumps("pyevonas-run"),
            "schema_version": json.dumps(SCHEMA_VERSION),
        }
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunStoreError(f"cannot create run folder {folder}: {exc}") from exc
        tmp = folder / _CREATING_NAME
        # A leftover of a create that was killed before its rename: it never held a run.
        tmp.unlink(missing_ok=True)
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute("BEGIN")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", texts.items())
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.replace(tmp, folder / DB_NAME)
        except (sqlite3.Error, OSError) as exc:
            tmp.unlink(missing_ok=True)
            why = _disk_full(folder) or str(exc)
            raise RunStoreError(f"cannot create the run database in {folder}: {why}") from exc
        return cls.open(folder)

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], readonly: bool = False) -> RunStore:
        """Open an existing run.

        The file is checked (SQLite header, application id, schema version) before SQLite opens
        it, so a foreign or corrupt file is reported and left exactly as it was.

        Args:
            run_dir: The run folder.
            readonly: Open without write access (for reports and exports).

        Returns:
            The open store.

        Raises:
            RunStoreError: If the folder or its database is missing, corrupt, foreign, or from a
                newer pyevonas.
        """
        folder = Path(run_dir)
        if not folder.exists():
            raise RunStoreError(f"run folder {folder} does not exist")
        if not folder.is_dir():
            raise RunStoreError(f"{folder} is not a folder; a run folder holds {DB_NAME}")
        path = folder / DB_NAME
        if not path.is_file():
            raise RunStoreError(f"{folder} is not a pyevonas run: it has no {DB_NAME}")
        application_id, user_version = _read_header(path)
        if application_id != APPLICATION_ID:
            raise RunStoreError(
                f"{path} is a SQLite database of another application "
                f"(application id {application_id:#x}); not a pyevonas run"
            )
        if user_version > SCHEMA_VERSION:
            raise RunStoreError(
                f"{path} was written by a newer pyevonas (store schema {user_version}, "
                f"this version reads up to {SCHEMA_VERSION}); upgrade pyevonas"
            )
        if user_version < 1:
            raise RunStoreError(f"{path} has no store schema version; not a pyevonas run")
        mode = "ro" if readonly else "rw"
        writer_fd = None if readonly else _lock_writer(path)
        # A reader on a read-only mount cannot create SQLite's -shm file; it opens the file as
        # immutable instead (nothing can write it there anyway).
        if readonly and not _writable(folder):
            mode = "ro&immutable=1"
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode={mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            _unlock_writer(writer_fd)
            raise RunStoreError(f"cannot open {path}: {exc}") from exc
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise RunStoreError(f"{path} is corrupt: SQLite integrity check says {check!r}")
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit survives a power cut, not only a killed process.
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            _unlock_writer(writer_fd)
            full = _disk_full(folder)
            if full is not None:
                raise RunStoreError(f"cannot open {path}: {full}") from exc
            raise RunStoreError(f"{path} is corrupt or unreadable: {exc}") from exc
        except RunStoreError:
            conn.close()
            _unlock_writer(writer_fd)
            raise
        return cls(folder, conn, readonly, writer_fd)

    @staticmethod
    def is_run(run_dir: str | os.PathLike[str]) -> bool:
        """Return whether a folder holds a pyevonas run database (header check only)."""
        path = Path(run_dir) / DB_NAME
        try:
            application_id, _ = _read_header(path)
        except RunStoreError:
            return False
        return application_id == APPLICATION_ID

    def close(self) -> None:
        """Close the database and release the writer lock (idempotent)."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            _unlock_writer(self._writer_fd)
            self._writer_fd = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({str(self.run_dir)!r})"

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[RunStore]:
        """Group writes into one atomic state change; nests (only the outermost one commits).

        Example::

            with store.transaction():
                for k, chrom in enumerate(children):
                    store.add_individual(g, k, f"g{g}-{k}", chrom, seq(chrom))
                store.set_state("phase", {"generation": g, "step": "bred"})
        """
        with self._lock:
            if self.readonly:
                raise RunStoreError(f"{self.path} is open read-only")
            outermost = self._depth == 0
            if outermost:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise RunStoreError(f"cannot write to {self.path}: {exc}") from exc
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outermost:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outermost:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise RunStoreError(f"cannot commit to {self.path}: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise RunStoreError(f"cannot read {self.path}: {exc}") from exc

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.transaction():
            try:
                return self._conn.execute(sql, params)
            except sqlite3.IntegrityError as exc:
                raise RunStoreError(f"rejected by {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise RunStoreError(f"cannot write to {self.path}: {exc}") from exc

    # ------------------------------------------------------------------ individuals

    def add_individual(
        self,
        generation: int,
        index: int,
        name: str,
        chromosome: Sequence[Mapping[str, Any]],
        sequence: str,
        parents: Sequence[Any] | None = None,
        *,
        key: str | None = None,
        status: Status = Status.PENDING,
    ) -> int:
        """Record a new candidate and return its id.

        Args:
            generation: 1-based generation number.
            index: Position in the population (0-based); unique within the generation.
            name: Display name.
            chromosome: The layer dicts.
            sequence: Its letter sequence.
            parents: Parent ids or names, or ``None`` for a sampled individual.
            key: Cache key; computed with :func:`canonical_key` when not given.
            status: Initial status (normally ``pending``).

        Returns:
            The new individual's id.

        Raises:
            RunStoreError: If (generation, index) is already taken.
            ValueError: If the generation or status is invalid.
        """
        if generation < 1:
            raise ValueError(f"generation must be >= 1, got {generation}")
        status = _status(status)
        chrom = [dict(gene) for gene in chromosome]
        cursor = self._write(
            "INSERT INTO individuals (generation, idx, name, chromosome, sequence, parents,"
            " canonical_key, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(generation),
                int(index),
                str(name),
                _dumps(chrom, "the chromosome"),
                str(sequence),
                None if parents is None else _dumps(list(parents), "the parents"),
                key if key is not None else canonical_key(chrom),
                status,
                time.time(),
            ),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    def set_status(self, individual_id: int, status: Status, error: str | None = None) -> None:
        """Change a candidate's status (``running`` also records its start time).

        Raises:
            RunStoreError: If no individual has this id.
            ValueError: If the status is not a :class:`Status`.
        """
        status = _status(status)
        now = time.time()
        cursor = self._write(
            "UPDATE individuals SET status = ?, error = COALESCE(?, error),"
            " started_at = CASE WHEN ? THEN ? ELSE started_at END"
            " WHERE id = ?",
            (status, error, status is Status.RUNNING, now, int(individual_id)),
        )
        if cursor.rowcount == 0:
            raise RunStoreError(f"run has no individual with id {individual_id}")

    def set_result(
        self,
        individual_id: int,
        metrics: Mapping[str, Any],
        *,
        status: Status | None = None,
        cached_from: int | None = None,
    ) -> None:
        """Record a candidate's evaluation.

        Args:
            individual_id: The candidate.
            metrics: ``Metrics.to_dict()``: status, error, fitness, val_accuracy, test_accuracy,
                val_accuracy_per_epoch, params, size_mb, latency_ms, flops, train_seconds. Missing
                keys are stored as ``None``; the whole dict is kept too.
            status: Overrides ``metrics["status"]`` (e.g. ``cached``); default is the metrics'
                status, or ``ok``.
            cached_from: For a cached result, the id of the individual it came from.

        Raises:
            RunStoreError: If no individual has this id.
            ValueError: If the status is invalid.
        """
        final = _status(status if status is not None else metrics.get("status") or Status.OK)
        per_epoch = metrics.get("val_accuracy_per_epoch") or []
        cursor = self._write(
            "UPDATE individuals SET status = ?, fitness = ?, val_accuracy = ?, test_accuracy = ?,"
            " val_accuracy_per_epoch = ?, params = ?, size_mb = ?, latency_ms = ?, flops = ?,"
            " train_seconds = ?, error = ?, metrics = ?, cached_from = ?, finished_at = ?"
            " WHERE id = ?",
            (
                final,
                _float_or_none(metrics.get("fitness")),
                _float_or_none(metrics.get("val_accuracy")),
                _float_or_none(metrics.get("test_accuracy")),
                _dumps([float(x) for x in per_epoch], "val_accuracy_per_epoch"),
                _int_or_none(metrics.get("params")),
                _float_or_none(metrics.get("size_mb")),
                _float_or_none(metrics.get("latency_ms")),
                _int_or_none(metrics.get("flops")),
                _float_or_none(metrics.get("train_seconds")),
                metrics.get("error"),
                _dumps(dict(metrics), "the metrics"),
                cached_from,
                time.time(),
                int(individual_id),
            ),
        )
        if cursor.rowcount == 0:
            raise RunStoreError(f"run has no individual with id {individual_id}")

    def individual(self, individual_id: int) -> Individual:
        """Return one individual by id.

        Raises:
            RunStoreError: If no individual has this id.
        """
        rows = self._read(f"SELECT {_IND_COLUMNS} FROM individuals WHERE id = ?", (individual_id,))
        if not rows:
            raise RunStoreError(f"run has no individual with id {individual_id}")
        with self._damaged("individual "):
            return _individual(rows[0])

    def individuals(self, generation: int | None = None) -> list[Individual]:
        """Return the individuals of one generation (population order), or of all generations."""
        if generation is None:
            rows = self._read(f"SELECT {_IND_COLUMNS} FROM individuals ORDER BY generation, idx")
        else:
            rows = self._read(
                f"SELECT {_IND_COLUMNS} FROM individuals WHERE generation = ? ORDER BY idx",
                (int(generation),),
            )
        with self._damaged("individual "):
            return [_individual(row) for row in rows]

    def find_evaluated(self, key: str) -> Individual | None:
        """Return the first individual with this cache key that was evaluated, or ``None``.

        Only statuses in :data:`EVALUATED_STATUSES` count: a failed evaluation may succeed on a
        second try, and a "cached" individual points back at an evaluated one anyway.

        Args:
            key: A :func:`canonical_key`.
        """
        placeholders = ",".join("?" for _ in EVALUATED_STATUSES)
        rows = self._read(
            f"SELECT {_IND_COLUMNS} FROM individuals WHERE canonical_key = ?"
            f" AND status IN ({placeholders}) ORDER BY id LIMIT 1",
            (key, *EVALUATED_STATUSES),
        )
        with self._damaged("individual "):
            return _individual(rows[0]) if rows else None

    # ------------------------------------------------------------------ generations

    def generations(self) -> list[int]:
        """Return the generations that have individuals or a saved record, ascending."""
        rows = self._read(
            "SELECT generation FROM individuals UNION SELECT generation FROM generations ORDER BY generation"
        )
        if any(type(row[0]) is not int for row in rows):
            self._bad_generation_number()
        return [row[0] for row in rows]

    def _bad_generation_number(self) -> None:
        """Raise the RunStoreError that names a record whose generation number is not a whole number."""
        found = self._read(
            "SELECT 'individual ' || name || ' (id ' || id || ')', generation FROM individuals"
            " WHERE typeof(generation) != 'integer' UNION ALL SELECT 'a generation record', generation"
            " FROM generations WHERE typeof(generation) != 'integer' LIMIT 1"
        )
        what, value = found[0] if found else ("a record", None)
        raise RunStoreError(f"{self.path} is damaged: {what} has the generation {value!r}, not a whole number")

    def save_generation(
        self,
        generation: int,
        matrix: np.ndarray | None = None,
        diversity: float | None = None,
        window: tuple[float, float] | None = None,
        decision: Mapping[str, Any] | None = None,
        *,
        rng_state: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        """Save (or update) a generation's record; arguments left ``None`` keep their stored value.

        Args:
            generation: 1-based generation number.
            matrix: The population's similarity matrix (any shape; stored as float64).
            diversity: The diversity measure.
            window: The control window ``(lo, hi)``.
            decision: The control loop's decision (JSON dict).
            rng_state: The loop's RNG state (``rng.bit_generator.state``), for resume.
            extras: Any other JSON dict.
        """
        blob = shape = None
        if matrix is not None:
            array = np.ascontiguousarray(matrix, dtype="<f8")
            blob = array.tobytes()
            shape = json.dumps(list(array.shape))
        lo = hi = None
        if window is not None:
            lo, hi = (float(window[0]), float(window[1]))
        self._write(
            "INSERT INTO generations (generation, matrix, matrix_shape, diversity, window_lo,"
            " window_hi, decision, rng_state, extras, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (generation) DO UPDATE SET"
            " matrix = COALESCE(excluded.matrix, matrix),"
            " matrix_shape = COALESCE(excluded.matrix_shape, matrix_shape),"
            " diversity = COALESCE(excluded.diversity, diversity),"
            " window_lo = COALESCE(excluded.window_lo, window_lo),"
            " window_hi = COALESCE(excluded.window_hi, window_hi),"
            " decision = COALESCE(excluded.decision, decision),"
            " rng_state = COALESCE(excluded.rng_state, rng_state),"
            " extras = COALESCE(excluded.extras, extras),"
            " updated_at = excluded.updated_at",
            (
                int(generation),
                blob,
                shape,
                _float_or_none(diversity),
                lo,
                hi,
                None if decision is None else _dumps(dict(decision), "the decision"),
                None if rng_state is None else _dumps(dict(rng_state), "the RNG state"),
                None if extras is None else _dumps(dict(extras), "the extras"),
                time.time(),
            ),
        )

    def generation_record(self, generation: int) -> GenerationRecord:
        """Return a generation's record (fields never saved are ``None``).

        Raises:
            RunStoreError: If the run has no such generation.
        """
        rows = self._read(
            "SELECT matrix, matrix_shape, diversity, window_lo, window_hi, decision, rng_state,"
            " extras FROM generations WHERE generation = ?",
            (int(generation),),
        )
        if not rows:
            if generation in self.generations():
                return GenerationRecord(generation=int(generation))
            raise RunStoreError(f"run has no generation {generation}")
        blob, shape, diversity, lo, hi, decision, rng_state, extras = rows[0]
        with self._damaged(f"generation {generation}'s record cannot be read: "):
            matrix = None
            if blob is not None:
                if not isinstance(blob, bytes):
                    raise TypeError(f"its matrix is {_kind(blob)}, not bytes")
                matrix = np.frombuffer(blob, dtype="<f8").reshape(json.loads(shape)).astype(np.float64)
            return GenerationRecord(
                generation=int(generation),
                matrix=matrix,
                diversity=_number_or_none(diversity, "diversity"),
                window=None if lo is None or hi is None else (_number(lo, "window_lo"), _number(hi, "window_hi")),
                decision=_object_or_none(decision, "decision"),
                rng_state=_object_or_none(rng_state, "rng_state"),
                extras=_object_or_none(extras, "extras"),
            )

    def delete_generation(self, generation: int) -> None:
        """Delete a generation's individuals, record and control iterations (one transaction).

        For resuming a run killed while it bred this generation, when the loop prefers to breed it
        again from the saved RNG state rather than keep the partial population.
        """
        with self.transaction():
            for table in ("individuals", "generations", "control_iterations"):
                self._write(f"DELETE FROM {table} WHERE generation = ?", (int(generation),))

    # ------------------------------------------------------------------ control loop

    def add_control_iteration(
        self,
        generation: int,
        iteration: int,
        median: float | None,
        lo: float | None,
        hi: float | None,
        accepted: bool,
        mutation_rate: float | None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one iteration of a generation's diversity-control loop.

        Recording the same (generation, iteration) again replaces it, so a resumed run that
        replays its control loop does not duplicate rows.
        """
        self._write(
            "INSERT OR REPLACE INTO control_iterations (generation, iteration, median, lo, hi,"
            " accepted, mutation_rate, extras, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(generation),
                int(iteration),
                _float_or_none(median),
                _float_or_none(lo),
                _float_or_none(hi),
                1 if accepted else 0,
                _float_or_none(mutation_rate),
                None if extras is None else _dumps(dict(extras), "the extras"),
                time.time(),
            ),
        )

    def control_iterations(self, generation: int) -> list[dict[str, Any]]:
        """Return a generation's control iterations in order.

        Each dict has ``iteration, median, lo, hi, accepted (bool), mutation_rate, extras``.
        """
        rows = self._read(
            "SELECT iteration, median, lo, hi, accepted, mutation_rate, extras"
            " FROM control_iterations WHERE generation = ? ORDER BY iteration",
            (int(generation),),
        )
        with self._damaged(f"generation {generation}'s control loop cannot be read: "):
            return self._iterations(rows)

    @staticmethod
    def _iterations(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [
            {
                "iteration": _whole(it, "iteration"),
                "median": _number_or_none(median, "median"),
                "lo": _number_or_none(lo, "lo"),
                "hi": _number_or_none(hi, "hi"),
                "accepted": bool(_whole(accepted, "accepted")),
                "mutation_rate": _number_or_none(rate, "mutation_rate"),
                "extras": _object_or_none(extras, "extras") or {},
            }
            for it, median, lo, hi, accepted, rate, extras in rows
        ]

    # ------------------------------------------------------------------ loop state

    def get_state(self, key: str, default: Any = None, *, kind: type | tuple[type, ...] | None = None) -> Any:
        """Return a value the loop saved with :meth:`set_state`, or ``default``.

        Args:
            key: The state key.
            default: What a missing key gives.
            kind: The type(s) the saved value must have (``(int, float)`` for a number) unless it
                is null; another one is a damaged record (RunStoreError naming the key).
        """
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        with self._damaged(f"the loop state {key!r} cannot be read: "):
            if not rows:
                return default
            value = _json(rows[0][0], "value")
            if kind is not None and value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                kinds = kind if isinstance(kind, tuple) else (kind,)
                expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
                raise TypeError(f"its value is {_kind(value)}, not {expected}")
            return value

    def set_state(self, key: str, value: Any) -> None:
        """Save a JSON-able value under a key (resume bookkeeping of the loop)."""
        self._write(
            "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (key, _dumps(value, f"state {key!r}"), time.time()),
        )

    def delete_state(self, key: str) -> None:
        """Remove a state key (no error if absent)."""
        self._write("DELETE FROM state WHERE key = ?", (key,))

    def state(self) -> dict[str, Any]:
        """Return every saved state key and value."""
        with self._damaged("the loop state cannot be read: "):
            return {key: json.loads(value) for key, value in self._read("SELECT key, value FROM state")}

    # ------------------------------------------------------------------ export

    def export(self, include_matrices: bool = True) -> dict[str, Any]:
        """Return the whole run as one JSON-able dict (what ``pyevonas export`` writes).

        NaN and infinities become ``None`` so the result is strict JSON.

        Args:
            include_matrices: Include each generation's similarity matrix as nested lists.

        Returns:
            ``{"format", "format_version", "meta", "config", "scoring", "space", "generations",
            "individuals"}``; each generation has its diversity, window, decision and control
            iterations; each individual its generation, index, chromosome, parents, status,
            metrics, ``trained`` (:func:`~pyevonas.runs.records.is_trained`: whether it
            counts as trained, as the loop and the report count it) and ``selection``: its
            Pareto rank, tie-breaker, novelty or competition score where its generation's
            selection computed one (:func:`~pyevonas.runs.records.selection_scores`).
        """
        generations = []
        selections: dict[int, Any] = {}
        for g in self.generations():
            record = self.generation_record(g)
            selections[g] = (record.extras or {}).get("selection")
            entry: dict[str, Any] = {
                "generation": g,
                "diversity": record.diversity,
                "window": None if record.window is None else list(record.window),
                "decision": record.decision,
                "control_iterations": self.control_iterations(g),
            }
            if include_matrices:
                entry["similarity_matrix"] = None if record.matrix is None else record.matrix.tolist()
            generations.append(entry)
        individuals = []
        for ind in self.individuals():
            entry = ind.to_dict()
            entry.pop("metrics")
            entry["trained"] = is_trained(ind)
            entry["extra_metrics"] = {k: v for k, v in (ind.metrics or {}).items() if k not in entry}
            entry["selection"] = selection_scores(selections.get(ind.generation), ind.index)
            individuals.append(entry)
        data: dict[str, Any] = finite_json(
            {
                "format": "pyevonas-run",
                "format_version": 1,
                "meta": self.meta,
                "config": self.config,
                "scoring": self.scoring,
                "space": self.space,
                "created_at": self.created_at,
                "generations": generations,
                "individuals": individuals,
            }
        )
        return data


def _status(status: Any) -> Status:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return Status(status)


_IND_COLUMNS = (
    "id, generation, idx, name, chromosome, sequence, parents, status, fitness, val_accuracy,"
    " test_accuracy, val_accuracy_per_epoch, params, size_mb, latency_ms, flops, train_seconds,"
    " error, canonical_key, metrics, cached_from, created_at, started_at, finished_at"
)


def _individual(row: tuple[Any, ...]) -> Individual:
    try:
        return _decode_individual(row)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{row[3]} (id {row[0]}) cannot be read: {exc}") from None
    except RecursionError:
        raise ValueError(f"{row[3]} (id {row[0]}) cannot be read: JSON nested too deeply") from None


def _decode_individual(row: tuple[Any, ...]) -> Individual:
    (
        id_, generation, idx, name, chromosome, sequence, parents, status, fitness, val_acc,
        test_acc, per_epoch, params, size_mb, latency_ms, flops, train_seconds, error, key,
        metrics, cached_from, created_at, started_at, finished_at,
    ) = row  # fmt: skip
    # Each column is checked for the type the store writes: a hand-edited or damaged row is named
    # here, not met later as a TypeError deep in the loop, the report or the export.
    genes = _json(chromosome, "chromosome")
    if not isinstance(genes, list):
        raise TypeError(f"its chromosome is {_kind(genes)}, not a list of gene objects")
    for k, gene in enumerate(genes):
        if not isinstance(gene, dict):
            raise TypeError(f"gene {k} of its chromosome is {_kind(gene)}, not a gene object")
    epochs = _list_or_none(per_epoch, "val_accuracy_per_epoch") or []
    if not all(_is_number(x) for x in epochs):
        raise TypeError("its val_accuracy_per_epoch holds something other than numbers")
    return Individual(
        id=_whole(id_, "id"),
        generation=_whole(generation, "generation"),
        index=_whole(idx, "idx"),
        name=_text(name, "name"),
        chromosome=genes,
        sequence=_text(sequence, "sequence"),
        parents=_list_or_none(parents, "parents"),
        status=_status(status),
        fitness=_number_or_none(fitness, "fitness"),
        val_accuracy=_number_or_none(val_acc, "val_accuracy"),
        test_accuracy=_number_or_none(test_acc, "test_accuracy"),
        val_accuracy_per_epoch=epochs,
        params=_whole_or_none(params, "params"),
        size_mb=_number_or_none(size_mb, "size_mb"),
        latency_ms=_number_or_none(latency_ms, "latency_ms"),
        flops=_whole_or_none(flops, "flops"),
        train_seconds=_number_or_none(train_seconds, "train_seconds"),
        error=None if error is None else _text(error, "error"),
        canonical_key=_text(key, "canonical_key"),
        metrics=_object_or_none(metrics, "metrics"),
        cached_from=_whole_or_none(cached_from, "cached_from"),
        created_at=_number(created_at, "created_at"),
        started_at=_number_or_none(started_at, "started_at"),
        finished_at=_number_or_none(finished_at, "finished_at"),
    )


# ---------------------------------------------------------------------- typed reading of columns
# Each raises TypeError (or ValueError for bad JSON) naming the column and what it holds instead.


def _kind(value: Any) -> str:
    """What a value is, for a message: ``the text 'high'``, ``a number (5)``, ``a list``."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return (
        f"a {'list' if isinstance(value, list) else 'JSON object' if isinstance(value, dict) else type(value).__name__}"
    )


_KIND_NAMES = {int: "a whole number", float: "a number", str: "text", list: "a list", dict: "a JSON object"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, column: str) -> float:
    if not _is_number(value):
        raise TypeError(f"its {column} is {_kind(value)}, not a number")
    return float(value)


def _number_or_none(value: Any, column: str) -> float | None:
    return None if value is None else _number(value, column)


def _whole(value: Any, column: str) -> int:
    if type(value) is not int:
        raise TypeError(f"its {column} is {_kind(value)}, not a whole number")
    return value


def _whole_or_none(value: Any, column: str) -> int | None:
    return None if value is None else _whole(value, column)


def _text(value: Any, column: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"its {column} is {_kind(value)}, not text")
    return value


def _json(text: Any, column: str) -> Any:
    """The JSON a text column holds; a number SQLite stored as one is read as that number."""
    if isinstance(text, bytes):
        raise TypeError(f"its {column} is {_kind(text)}, not JSON text")
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise ValueError(f"its {column} is not JSON ({exc})") from None


def _object_or_none(text: Any, column: str) -> dict[str, Any] | None:
    value = None if text is None else _json(text, column)
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"its {column} is {_kind(value)}, not a JSON object")
    return value


def _list_or_none(text: Any, column: str) -> list[Any] | None:
    value = None if text is None else _json(text, column)
    if value is not None and not isinstance(value, list):
        raise TypeError(f"its {column} is {_kind(value)}, not a list")
    return value


def _meta_value(meta: Mapping[str, Any], key: str) -> Any:
    if key not in meta:
        raise ValueError(f"it has no {key}")
    return _json(meta[key], key)


def _meta_object(meta: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _meta_value(meta, key)
    if not isinstance(value, dict):
        raise TypeError(f"its {key} is {_kind(value)}, not a JSON object")
    return value


__all__ = ["APPLICATION_ID", "DB_NAME", "SCHEMA_VERSION", "RunStore"]
