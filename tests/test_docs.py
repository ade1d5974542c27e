"""Every setting and every command is documented where a newcomer looks."""

from __future__ import annotations

from pathlib import Path

import typer.main

from koppla.cli import build
from koppla.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert missing == []


def _commands(group: typer.Typer, prefix: str = "koppla") -> list[str]:
    click_group = typer.main.get_command(group)
    names: list[str] = []

    def walk(command: object, path: str) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, f"{path} {name}")
        else:
            names.append(path)

    walk(click_group, prefix)
    return names


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in _commands(build()) if f"`{name}" not in readme]
    assert missing == []


def test_every_command_has_help() -> None:
    group = typer.main.get_command(build())
    for name, command in getattr(group, "commands", {}).items():
        assert command.help, f"koppla {name} has no help text"
