"""Every command's ``--help``: an example, the defaults, and metavars that name values, not types."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from pyevonas.cli import app

# How a type (not a value) reads as a metavar: click's names, and typer >= 0.29's `<int>` style.
TYPE_METAVAR = re.compile(r"\b(PATH|INTEGER|TEXT|FLOAT|BOOLEAN)\b|<(str|int|float|bool|path|list\[[^>]*\])[^>]*>")


def _commands(typer_app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for command in typer_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        found.append((*prefix, name.replace("_", "-")))
    for group in typer_app.registered_groups:
        assert group.name and group.typer_instance
        found += _commands(group.typer_instance, (*prefix, group.name))
    return found


COMMANDS = _commands(app)


def _help(command: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_list_is_complete() -> None:
    names = {c[-1] for c in COMMANDS if c}
    expected = {"similarity", "matrix", "evolve", "train", "profile", "export", "import", "report", "align"}
    assert expected | {"schema", "validate"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "pyevonas")
def test_help_shows_an_example_and_value_metavars(command: tuple[str, ...]) -> None:
    text = _help(command)
    assert "Example" in text
    assert "pyevonas " + " ".join(command) in text  # the example uses this very command
    for line in text.splitlines():
        if "--help" in line:
            continue  # typer's own --help flag shows `<bool>` in typer >= 0.29
        options_row = re.match(r"\s*│\s*(\*\s+)?--", line)
        if options_row:
            assert not TYPE_METAVAR.search(line), line
    # Outside the arguments' type column (typer >= 0.29 always shows `<str>` there), no type names.
    assert not re.search(r"\b(PATH|INTEGER|TEXT|FLOAT|BOOLEAN)\b", text)


def test_defaults_hidden_by_none_are_shown() -> None:
    evolve = _help(("evolve",))
    for shown in ("[default: (8 on digits, else 20)]", "[default: (4 on digits, else 12)]", "[default: (rigid)]"):
        assert shown in evolve
    assert re.search(r"--seed\s+N\s+.*\[default: \(0\)\]", evolve)
    assert "[default: digits]" in _help(("profile",))  # the same dataset as every other command
    assert "[default: digits]" in _help(("train",))
