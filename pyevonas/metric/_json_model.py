"""Pydantic models that users write as JSON files (scoring schemas, graph costs): one way to read
them, and one error format, a line per problem naming its JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ValidationError

from pyevonas._userfiles import UserFileError, parse_json, read_text
from pyevonas.errors import SchemaError


class JsonFileModel(BaseModel):
    """A model read from a JSON file: :meth:`load`, :meth:`from_json`, :meth:`from_dict`, each
    raising :class:`~pyevonas.errors.SchemaError` with one line per problem."""

    #: What a file of this model is, in messages: "scoring schema", "graph costs".
    file_kind: ClassVar[str] = "file"
    #: The same with its article, for "... must be a JSON object": "a scoring schema".
    file_kind_one: ClassVar[str] = "a file"

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load and validate a file.

        Raises:
            SchemaError: the file is missing, not JSON, or not valid (one line per problem).
        """
        p = Path(path)
        try:
            text = read_text(p)
        except UserFileError as exc:
            raise SchemaError(f"cannot read {cls.file_kind} {str(p)!r}: {exc}") from None
        return cls.from_json(text, source=str(p))

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> Self:
        """Validate the model given as JSON text."""
        try:
            data = parse_json(text)
        except UserFileError as exc:
            raise SchemaError(f"{source}: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Self:
        """Validate the model given as a parsed JSON object."""
        if not isinstance(data, dict):
            raise SchemaError(f"{source}: {cls.file_kind_one} must be a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(format_validation_error(exc, f"invalid {cls.file_kind} {source}")) from None


def format_validation_error(exc: ValidationError, header: str) -> str:
    """A pydantic error as ``header:`` and one line per problem, each naming its JSON path (a key
    from the file shown as typed unless it is not plain text, a newline say)."""
    lines = [f"{header}:"]
    for err in exc.errors(include_url=False):
        loc = "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" if str(p).isprintable() else f"[{str(p)!r}]" for p in err["loc"]
        ).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        for part in msg.split("\n"):
            lines.append(f"  {loc + ': ' if loc else ''}{part}")
    return "\n".join(lines)


__all__ = ["JsonFileModel", "format_validation_error"]
