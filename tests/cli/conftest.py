"""`koppla ...` run in this process over a fresh home."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from koppla.cli import build

Koppla = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The home the commands of a test share."""
    return tmp_path / "home"


@pytest.fixture
def koppla(home: Path) -> Koppla:
    """Runs `koppla <args> --home <home>`; `input` is what standard input holds."""
    runner = CliRunner()
    app = build()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, [*args, "--home", str(home)], input=input)

    return invoke
