"""An archive of architectures for novelty search, deduplication and k-NN in your own code.

``Archive`` encodes each architecture once, when it is added, and keeps the encoded members in
the Rust core: adding 25 architectures to an archive of 10,000 costs about what encoding those
25 costs, and a query of 25 against 10,000 runs on the matrix path (lane kernel, every thread).

Orientation is that of :func:`~pyevonas.metric.api.similarity_matrix`: the queries are the rows
(each the first sequence, A), the members the columns (B), and every value equals
``similarity_matrix(queries, others=members)`` exactly. Under the directed ``paper`` schema a few
pairs score differently with A and B swapped, so a query against a member is not always the
member against the query.

Threads: an archive may be shared. Queries run side by side (the core releases the GIL); an
``add`` waits for the queries running and holds new ones back until it is done, so a query sees the
archive either before or after an add, never halfway (its indices always name listed members).
Do not call ``add`` from a query's ``progress`` callback: it would wait for that very query.

Files and copies: :meth:`Archive.save` writes a temporary file beside the target and renames it
over the target, so a failed save (a full disk) leaves the previous file; :meth:`Archive.load`
raises :class:`~pyevonas.errors.PyevonasError` (or a subclass) for anything that is not an
archive. ``pickle``, ``copy.copy`` and ``copy.deepcopy`` give an independent archive (members
encoded again; ``copy.copy`` shares the member objects, ``deepcopy`` copies them).

Example:
    >>> from pyevonas import Archive
    >>> archive = Archive("default", ["C(32,3,1) B L g F(64)", "C(64,3,1) M(2) g F(10)"])
    >>> archive.add(["C(32,3,1) B L g F(64)"]).tolist()
    [2]
    >>> indices, sims = archive.nearest(["C(32,3,1) B g F(64)"], k=2)
    >>> indices.tolist()
    [[0, 2]]
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas import _core
from pyevonas._userfiles import UserFileError, parse_json
from pyevonas.errors import GraphError, PyevonasError
from pyevonas.metric._args import check_threads, wants_float32
from pyevonas.metric._compiled import Arch, compiled
from pyevonas.metric.api import SchemaArg
from pyevonas.metric.graph_api import (
    BUILTIN_GRAPH_COSTS,
    CostsArg,
    GraphLike,
    GraphMembers,
    as_graphs,
    costs_for,
    is_graph_input,
    top_k,
)
from pyevonas.metric.graph_costs import GraphCosts
from pyevonas.metric.hybrid import cell_layers, encode, hybrid_matrix
from pyevonas.metric.schema import Scoring

#: What an archive holds: chains (chromosomes, text notation) or graph architectures.
Member = Arch | GraphLike

#: The ``format`` of an archive file written by :meth:`Archive.save`.
ARCHIVE_FORMAT = "pyevonas-archive"
_ARCHIVE_VERSION = 1


class _SharedLock:
    """Many readers or one writer. A waiting writer holds new readers back (adds are not starved);
    a thread already reading may read again (a query inside a query does not wait for a writer)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0
        self._mine = threading.local()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        depth = getattr(self._mine, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._writing or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            if depth == 0:
                with self._cond:
                    self._readers -= 1
                    if self._readers == 0:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class Archive:
    """Architectures encoded once, to compare many queries against all of them.

    Args:
        schema: the scoring schema: ``"default"``, ``"paper"``, a path, a Scoring or a dict.
        archs: architectures to add at once (chromosomes or text notation).

    Members are numbered from 0 in the order they were added; ``archive[i]`` is the architecture
    as it was given (not a copy: do not change it afterwards). Nothing is ever deduplicated or
    excluded: an architecture added twice is two members, and a query that is a member finds
    itself with similarity 1.
    """

    def __init__(self, schema: SchemaArg | CostsArg = "default", archs: Sequence[Member] = ()) -> None:
        self._lock = _SharedLock()
        self._schema_arg = schema
        self._graphs: GraphMembers | None = None
        if isinstance(schema, GraphCosts) or (isinstance(schema, str) and schema in BUILTIN_GRAPH_COSTS):
            self._graphs = GraphMembers(costs_for(schema, ()))
        self._compiled = compiled(schema if self._graphs is None else "default")
        #: A schema with cell genes: members kept as given, queries through the hybrid path.
        self._hybrid = bool(cell_layers(self._compiled))
        self._core = _core.Archive(self._compiled.table)
        self._members: list[Any] = []
        if len(archs):
            self.add(archs)

    def __getstate__(self) -> dict[str, Any]:
        # The schema as data and the members as given: the encoded core is rebuilt from them.
        with self._lock.reading():
            members = list(self._members)
        if self._graphs is not None:
            return {"graph_costs": self._graphs.costs.to_dict(), "members": members}
        return {"schema": self.schema.to_dict(), "members": members}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "graph_costs" in state:
            schema: SchemaArg | CostsArg = GraphCosts.from_dict(state["graph_costs"], source="a pickled archive")
        else:
            schema = Scoring.from_dict(state["schema"], source="a pickled archive")
        Archive.__init__(self, schema, state["members"])

    def _graph_side(self, archs: Sequence[Any]) -> GraphMembers | None:
        """The graph members, created when the first architectures ever added are graphs."""
        if self._graphs is None and not self._members and is_graph_input(archs):
            self._graphs = GraphMembers(costs_for(self._schema_arg, as_graphs(archs)))
        elif self._graphs is None and is_graph_input(archs):
            raise GraphError("this archive holds chains; graph architectures cannot be compared with them")
        return self._graphs

    @property
    def schema(self) -> Scoring:
        """The scoring schema the archive compares chains with."""
        return self._compiled.scoring

    @property
    def graph_costs(self) -> GraphCosts | None:
        """The edit costs the archive compares graph architectures with (None for chains)."""
        return None if self._graphs is None else self._graphs.costs

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, i: int) -> Member:
        member: Member = self._members[i]
        return member

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members)

    def __repr__(self) -> str:
        if self._graphs is not None:
            return f"Archive(graph costs {self._graphs.costs.name!r}, {len(self)} members)"
        return f"Archive({self.schema.name!r}, {len(self)} members)"

    def add(self, archs: Sequence[Member]) -> np.ndarray:
        """Add architectures as members; returns their indices (int64), in order.

        Raises:
            EncodingError: an architecture has no genes or does not fit the schema (nothing is
                added then).
        """
        archs = _as_list(archs)
        with self._lock.writing():
            graphs = self._graph_side(archs)
            if graphs is not None:
                start = len(graphs.members)
                graphs.add(as_graphs(archs))
                self._members.extend(archs)
                return np.arange(start, start + len(archs), dtype=np.int64)
            if self._hybrid:
                for i, arch in enumerate(archs):  # the same errors as a query's, nothing added
                    encode(self._compiled, arch, f"architecture {i}")
                start = len(self._members)
                self._members.extend(archs)
                return np.arange(start, start + len(archs), dtype=np.int64)
            # Plain chromosomes are encoded and added in one call; anything else is encoded
            # by the validating path first (which raises the precise error, nothing added).
            added = self._core.add_plain(self._compiled.encoder, archs)
            start = added if added is not None else self._core.add(*self._compiled.encode(archs))
            self._members.extend(archs)
        return np.arange(start, start + len(archs), dtype=np.int64)

    def similarity_matrix(
        self,
        archs: Sequence[Member],
        *,
        dtype: Any = np.float64,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> np.ndarray:
        """Similarities of ``archs`` (rows, as A) against every member (columns, as B): Q x len.

        Equal to ``similarity_matrix(archs, others=list(archive))`` exactly; ``dtype`` is float64
        or float32, ``n_threads`` and ``progress`` as there.
        """
        with self._lock.reading():
            return self._matrix(archs, wants_float32(dtype), n_threads, progress)

    def _matrix(
        self, archs: Sequence[Member], f32: bool, n_threads: int | None, progress: Callable[[int, int], Any] | None
    ) -> np.ndarray:
        if self._graphs is not None:
            return self._graphs.matrix(as_graphs(_as_list(archs)), f32, check_threads(n_threads), progress)
        if self._hybrid:
            queries = _as_list(archs)
            if not self._members:
                return np.zeros((len(queries), 0), dtype=np.float32 if f32 else np.float64)
            return hybrid_matrix(self._compiled, queries, self._members, float32=f32, progress=progress)
        codes, params, offsets = self._compiled.encode(_as_list(archs))
        return self._core.matrix(codes, params, offsets, f32, check_threads(n_threads), progress)

    def nearest(
        self,
        archs: Sequence[Member],
        k: int,
        *,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar members of each architecture, without building the matrix.

        Returns:
            ``(indices, similarities)``, both of shape (Q, k) with k capped at ``len(archive)``
            (as :func:`~pyevonas.metric.api.nearest` caps it): int64 member indices, most
            similar first (ties by lower index).
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        with self._lock.reading():
            if self._graphs is not None or self._hybrid:
                return top_k(self._matrix(archs, False, n_threads, progress), k, exclude_self=False)
            codes, params, offsets = self._compiled.encode(_as_list(archs))
            return self._core.nearest(codes, params, offsets, k, check_threads(n_threads), progress)

    def novelty(
        self,
        archs: Sequence[Member],
        k: int = 15,
        *,
        n_threads: int | None = None,
    ) -> np.ndarray:
        """Novelty of each architecture: the mean of ``1 - similarity`` over its k nearest members.

        With fewer than k members the mean is over all of them; against an empty archive every
        architecture has novelty 1. Query before adding: a member's nearest member is itself.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        archs = _as_list(archs)
        with self._lock.reading():
            return self._novelty(archs, k, n_threads)

    def _novelty(self, archs: list[Any], k: int, n_threads: int | None) -> np.ndarray:
        if not self._members:
            if self._graphs is not None or is_graph_input(archs):
                as_graphs(archs)  # the same errors as against a full archive
            elif self._hybrid:
                for i, arch in enumerate(archs):
                    encode(self._compiled, arch, f"architecture {i}")
            else:
                self._compiled.encode(archs)  # the same errors as against a full archive
            return np.ones(len(archs), dtype=np.float64)
        _, sims = self.nearest(archs, k, n_threads=n_threads)
        return np.asarray(np.mean(1.0 - sims, axis=1), dtype=np.float64)

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the schema and the members as JSON (gzip-compressed when the name ends in .gz).

        Members must be JSON data: text notation, or chromosomes of str/int/float/bool values
        (numpy scalars are written as their Python values). The file is written whole or not at
        all: a temporary file beside it, renamed over it once written and flushed to disk.

        Raises:
            TypeError: a member holds something JSON cannot store (nothing is written).
            OSError: the file cannot be written (the previous file, if any, is left as it was).
        """
        doc: dict[str, Any] = {"format": ARCHIVE_FORMAT, "version": _ARCHIVE_VERSION}
        with self._lock.reading():
            if self._graphs is None:
                doc.update(schema=self.schema.to_dict(), members=list(self._members))
            else:  # graph members as their readable text (NB201, DARTS) or DAG JSON
                members = [str(g) if g.format in ("nb201", "darts") else g.to_json() for g in self._graphs.members]
                doc.update(graph_costs=self._graphs.costs.to_dict(), members=members)
        data = json.dumps(doc, default=_json_value, separators=(",", ":")).encode("utf-8")
        p = Path(path)
        _write_whole(p, gzip.compress(data, mtime=0) if p.suffix == ".gz" else data)

    @classmethod
    def load(cls, path: str | Path) -> Archive:
        """Read an archive written by :meth:`save` (members are encoded again, once).

        Raises:
            PyevonasError: the file cannot be read or is not an archive (a subclass such as
                ``SchemaError`` or ``EncodingError`` names a bad schema or member); the message
                names the file.
        """
        p = Path(path)
        where = f"archive {str(p)!r}"
        doc = _read_doc(p, where)
        if not isinstance(doc, dict) or doc.get("format") != ARCHIVE_FORMAT:
            raise PyevonasError(f"{str(p)!r} is not a pyevonas archive (no format {ARCHIVE_FORMAT!r})")
        if doc.get("version") != _ARCHIVE_VERSION:
            raise PyevonasError(f"{str(p)!r}: archive version {doc.get('version')!r} is not supported")
        members = doc.get("members")
        if not isinstance(members, list):
            raise PyevonasError(f"{where} is damaged: 'members' must be a list of architectures, not {_kind(members)}")
        if "graph_costs" not in doc and "schema" not in doc:
            raise PyevonasError(f"{where} is damaged: it has neither 'schema' nor 'graph_costs'")
        try:
            if "graph_costs" in doc:
                return cls(GraphCosts.from_dict(doc["graph_costs"], source=str(p)), members)
            return cls(Scoring.from_dict(doc["schema"], source=str(p)), members)
        except PyevonasError as exc:
            message = " ".join(str(exc).split())
            raise type(exc)(message if str(p) in message else f"{where}: {message}") from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise PyevonasError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None


def _read_doc(path: Path, where: str) -> Any:
    """The parsed JSON of an archive file (gunzipped when its name ends in .gz)."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return parse_json(raw.decode("utf-8"))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, UserFileError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise PyevonasError(f"cannot read {where}: {why}") from None


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file beside it, flushed, then renamed over it."""
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _kind(value: Any) -> str:
    return "missing" if value is None else f"a {type(value).__name__}"


def _as_list(archs: Sequence[Member]) -> list[Any]:
    if isinstance(archs, str):
        raise TypeError("expected a sequence of architectures, got one string (wrap it in a list)")
    return archs if isinstance(archs, list) else list(archs)


def _json_value(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"an archive member holds {type(x).__name__}, which JSON cannot store")


__all__ = ["ARCHIVE_FORMAT", "Archive"]
