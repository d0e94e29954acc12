"""The Archive under threads and faults (issue 26): queries beside adds, a save onto a full disk,
damaged or crafted files, and copies.

* a query running beside ``add`` never answers with a member the archive does not list yet;
* ``save`` writes a temporary file and renames it, so a failed save leaves the previous file;
* ``load`` of anything but an archive raises the package's error (``PyevonasError``) only;
* ``pickle``, ``copy.copy`` and ``copy.deepcopy`` give an independent archive that answers alike.
"""

from __future__ import annotations

import copy
import gzip
import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyevonas import Archive
from pyevonas.errors import PyevonasError

CHAINS = [f"C({8 * (1 + i % 5)},3,1) B L {'M(2) ' * (i % 3)}g F({16 * (1 + i % 4)})" for i in range(40)]
CELLS = [
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|",
]


# ---------------------------------------------------------------------- threads


class _SlowToPublish:
    """The archive's core, pausing after each add until a query has run (the race, made certain)."""

    def __init__(self, core: Any) -> None:
        self._core = core
        self.added = threading.Event()
        self.queried = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def _paused(self, out: Any) -> Any:
        if out is not None:  # members were added
            self.added.set()
            self.queried.wait(0.5)
        return out

    def add_plain(self, *args: Any) -> Any:
        return self._paused(self._core.add_plain(*args))

    def add(self, *args: Any) -> Any:
        return self._paused(self._core.add(*args))


def test_a_query_beside_an_add_never_names_a_member_not_yet_listed() -> None:
    archive = Archive("default", CHAINS[:5])
    slow = _SlowToPublish(archive._core)
    archive._core = slow
    seen: list[tuple[int, int]] = []

    def query() -> None:
        slow.added.wait(5)
        indices, _ = archive.nearest(CHAINS[:2], k=10)
        seen.append((int(indices.max()), len(archive)))
        slow.queried.set()

    t = threading.Thread(target=query)
    t.start()
    archive.add(CHAINS[5:8])
    t.join(10)
    assert seen and all(top < n for top, n in seen), seen
    assert len(archive) == 8


def test_many_threads_adding_and_querying() -> None:
    archive = Archive("default", CHAINS[:3])
    bad: list[str] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:

        def adder(start: int) -> None:
            for i in range(start, len(CHAINS), 4):
                archive.add([CHAINS[i]])

        def reader() -> None:
            for _ in range(200):
                indices, sims = archive.nearest(CHAINS[:3], k=4)
                n = len(archive)
                if indices.size and int(indices.max()) >= n:
                    bad.append(f"index {int(indices.max())} of {n} members")
                m = archive.similarity_matrix(CHAINS[:1])
                if m.shape[1] > len(archive):
                    bad.append(f"{m.shape[1]} columns of {len(archive)} members")
                for i in indices.ravel():
                    archive[int(i)]

        threads = [threading.Thread(target=adder, args=(s,)) for s in (3, 4, 5, 6)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(old)
    assert not bad, bad[:5]
    assert len(archive) == len(CHAINS)  # every chain once: 3 given, 37 added
    assert sorted(map(str, archive)) == sorted(CHAINS)


# ---------------------------------------------------------------------- a full disk

# Saves a larger archive over PATH with files limited to 4 KiB (a full disk, as the writer sees it).
_FULL_DISK = """
import resource, signal, sys
from pyevonas import Archive
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
archive = Archive("default", [f"C({8 + i % 500},{1 + i % 7},1) B L M(2) g F({i + 1})" for i in range(3000)])
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    archive.save(sys.argv[1])
except OSError as exc:
    print("OSError", exc.errno)
"""


@pytest.mark.parametrize("name", ["archive.json", "archive.json.gz"])
def test_a_failed_save_leaves_the_previous_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    Archive("default", CHAINS[:3]).save(path)
    before = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("OSError"), done.stdout
    assert path.read_bytes() == before
    assert list(Archive.load(path)) == CHAINS[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_save_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    Archive("default", CHAINS[:2]).save(path)
    Archive("default", CHAINS[:5]).save(path)
    assert list(Archive.load(path)) == CHAINS[:5]
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


# ---------------------------------------------------------------------- damaged and crafted files


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(_saved_doc()))
    doc.update(changes)
    return doc


def _saved_doc() -> dict[str, Any]:
    if not hasattr(_saved_doc, "doc"):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            p = Path(folder) / "a.json"
            Archive("default", CHAINS[:2]).save(p)
            _saved_doc.doc = json.loads(p.read_text())  # type: ignore[attr-defined]
    return _saved_doc.doc  # type: ignore[attr-defined, no-any-return]


def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


CASES: dict[str, tuple[str, Any]] = {
    "truncated gzip": ("a.json.gz", lambda: _gz(json.dumps(_doc()).encode())[:-12]),
    "corrupt gzip": ("a.json.gz", lambda: _gz(json.dumps(_doc()).encode())[:12] + b"\xff" * 40),
    "not gzip": ("a.json.gz", lambda: b"plain text"),
    "no members": ("a.json", lambda: json.dumps({k: v for k, v in _doc().items() if k != "members"}).encode()),
    "no schema": ("a.json", lambda: json.dumps({k: v for k, v in _doc().items() if k != "schema"}).encode()),
    "members a dict": ("a.json", lambda: json.dumps(_doc(members={"C(8,3,1) g": 1, "B g": 2})).encode()),
    "members a string": ("a.json", lambda: json.dumps(_doc(members="C(8,3,1) g")).encode()),
    "member a number": ("a.json", lambda: json.dumps(_doc(members=[3])).encode()),
    "member of numbers": ("a.json", lambda: json.dumps(_doc(members=[[1, 2]])).encode()),
    "schema a list": ("a.json", lambda: json.dumps(_doc(schema=[1])).encode()),
    "graph costs a string": ("a.json", lambda: json.dumps(_doc(graph_costs="x")).encode()),
    "deep": ("a.json", lambda: b'{"format": "pyevonas-archive", "version": 1, "members": ' + b"[" * 100_000),
    "deep and closed": ("a.json", lambda: b"[" * 50_000 + b"]" * 50_000),
    "not utf-8": ("a.json", lambda: b"\xff\xfe{}"),
    "empty": ("a.json", lambda: b""),
    "a folder": ("a.json", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_load_of_a_damaged_file_raises_the_package_error_only(tmp_path: Path, case: str) -> None:
    name, make = CASES[case]
    path = tmp_path / name
    if make is None:
        path.mkdir()
    else:
        path.write_bytes(make())
    with pytest.raises(PyevonasError) as info:
        Archive.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_refuses_a_dict_of_members_instead_of_taking_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps(_doc(members={"C(8,3,1) g": 1, "B g": 2})))
    with pytest.raises(PyevonasError, match="members"):
        Archive.load(path)


# ---------------------------------------------------------------------- copies


@pytest.mark.parametrize(("schema", "members"), [("default", CHAINS[:6]), ("nb201", CELLS)], ids=["chains", "cells"])
@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_copies_are_independent_and_answer_alike(schema: str, members: list[str], how: str) -> None:
    archive = Archive(schema, members)
    twin: Archive = {
        "pickle": lambda a: pickle.loads(pickle.dumps(a)),
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }[how](archive)
    assert twin is not archive and list(twin) == list(archive) and repr(twin) == repr(archive)
    queries = members[:2]
    np.testing.assert_array_equal(twin.similarity_matrix(queries), archive.similarity_matrix(queries))
    twin.add(members[:1])
    assert len(twin) == len(archive) + 1
    np.testing.assert_array_equal(archive.nearest(queries, 2)[0], Archive(schema, members).nearest(queries, 2)[0])


def test_a_pickled_archive_keeps_its_schema_object() -> None:
    archive = Archive("paper", CHAINS[:3])
    twin = pickle.loads(pickle.dumps(archive))
    assert twin.schema.name == archive.schema.name
    assert twin.similarity_matrix(CHAINS[3:5]).tolist() == archive.similarity_matrix(CHAINS[3:5]).tolist()


def test_no_lock_is_held_after_a_failed_add() -> None:
    archive = Archive("default", CHAINS[:2])
    with pytest.raises(PyevonasError):
        archive.add(["Q(9)"])
    started = time.monotonic()
    assert archive.nearest(CHAINS[:1], 1)[0].tolist() == [[0]]
    archive.add(CHAINS[2:3])
    assert time.monotonic() - started < 5 and len(archive) == 3
