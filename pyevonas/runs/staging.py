"""Staging folders: build output beside its target, then swap it in, so a failure leaves nothing half-written.

A staging folder is named ``.<prefix>-<pid>-<random>``. A process killed while it builds one
(SIGKILL, a power cut) cannot remove it; the next command that stages into the same folder
removes every staging folder of that prefix whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(parent: Path, prefix: str) -> list[Path]:
    """Remove the staging folders ``parent/.<prefix>-<pid>-*`` whose process no longer runs."""
    removed: list[Path] = []
    pattern = re.compile(rf"^\.{re.escape(prefix)}-(\d+)-")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not entry.is_symlink() and not _alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def staging_dir(parent: Path, prefix: str) -> Path:
    """A new staging folder in ``parent`` (stale ones of the same prefix are removed first)."""
    clean_stale(parent, prefix)
    return Path(tempfile.mkdtemp(prefix=f".{prefix}-{os.getpid()}-", dir=parent))


__all__ = ["clean_stale", "staging_dir"]
