"""`--help` tells the truth: every option says its real default, and no text is swallowed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from koppla.cli import build

OTHER_GROUPS = {"connector"}
"""Groups whose help lives elsewhere (`koppla.connector.commands`)."""


def _commands() -> Iterator[tuple[str, Any]]:
    """Every command but the other groups', by its path (Typer's own click objects)."""

    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        subcommands: dict[str, Any] = getattr(command, "commands", {})
        if not subcommands:
            yield path, command
        for name, sub in subcommands.items():
            if name not in OTHER_GROUPS:
                yield from walk(sub, f"{path} {name}".strip())

    yield from walk(typer.main.get_command(build()), "")


COMMANDS = dict(_commands())


def _options(command: Any) -> list[Any]:
    options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
    assert options, f"{command.name} has no options"  # (every command takes --home)
    return options


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_option_says_its_default(path: str) -> None:
    unsaid = [
        option.opts[0]
        for option in _options(COMMANDS[path])
        if not option.required
        and not option.is_flag
        and not isinstance(option.show_default, str)
        and option.default in (None, "", ())
    ]
    assert unsaid == [], f"koppla {path}: options whose help hides the default"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_help_text_holds_markup_that_would_vanish(path: str) -> None:
    command = COMMANDS[path]
    texts = [command.help or "", *(p.help or "" for p in _options(command))]
    assert [t for t in texts if "[" in t] == []


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_help_shows_the_real_home(path: str) -> None:
    result = CliRunner().invoke(build(), [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Data directory ." not in result.stdout
    assert "[default: (./koppla-data)]" in result.stdout


def test_the_overview_lists_every_group() -> None:
    result = CliRunner().invoke(build(), ["--help"], env={"COLUMNS": "200"})
    for name in ("up", "debug", "token", "credentials", "admin", "connector"):
        assert f" {name} " in result.stdout
