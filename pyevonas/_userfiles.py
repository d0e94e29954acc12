"""Reading the files a user gives (architectures, schemas, spaces, runs): strict JSON, one clear error.

Every way such a file can be bad becomes a :class:`UserFileError` (a ``ValueError``) whose
message names the problem; callers prefix the file and raise their own error class. Strict means:
a key given twice in one object, an integer too large for a float (above 1e308) and nesting
deeper than Python can parse are refused, where :func:`json.loads` would keep the last key, fail
later with an ``OverflowError`` or raise a ``RecursionError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class UserFileError(ValueError):
    """A user's file cannot be read or is not the JSON it should be; the message says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UserFileError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _bounded_int(text: str) -> int:
    # More than 309 digits is above 1e308 whatever the digits; checked first because int() of more
    # than 4,300 digits raises a ValueError of its own (Python's limit on integer string conversion).
    if len(text.lstrip("-")) > 309 or abs(value := int(text)) > 1e308:
        raise UserFileError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def parse_json(text: str) -> Any:
    """Parse JSON text strictly.

    Raises:
        UserFileError: not valid JSON (with line and column), a duplicate key, an integer above
            1e308, or nesting too deep to parse.
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise UserFileError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise UserFileError("JSON nested too deeply to read") from None


def read_text(path: Path) -> str:
    """The text of a UTF-8 file.

    Raises:
        UserFileError: the file is missing, a folder, unreadable, or not UTF-8 text.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserFileError("no such file") from None
    except IsADirectoryError:
        raise UserFileError("is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise UserFileError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserFileError(f"cannot read it: {exc.strerror or exc}") from None


def read_json(path: Path) -> Any:
    """:func:`read_text` then :func:`parse_json`."""
    return parse_json(read_text(path))
