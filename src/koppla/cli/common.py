"""What every command shares: the `--home` option, settings, the catalog, the consoles, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from koppla.core.errors import KopplaError
from koppla.core.settings import Settings
from koppla.platform.catalog.opening import open_catalog
from koppla.platform.catalog.store import Catalog

T = TypeVar("T")

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="KOPPLA_HOME",
        help="Data directory: all of Koppla's state.",
        show_default="./koppla-data",
    ),
]

OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Organization id, <24 letters or digits>@AdobeOrg.",
        show_default="the home's organization",
    ),
]

console = Console(soft_wrap=True)
"""Standard output: what a command answers."""
err = Console(stderr=True, soft_wrap=True)
"""Standard error: errors, warnings and hints."""


def settings(home: Path | None, **overrides: object) -> Settings:
    """The settings of `home` (`None`: `KOPPLA_HOME` or `./koppla-data`), options given winning."""
    return Settings.load(home=home, **overrides)


def catalog(loaded: Settings) -> Catalog:
    """The catalog of the home, created when it does not exist yet."""
    loaded.home.mkdir(parents=True, exist_ok=True)
    return open_catalog(loaded)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` as one line on standard error and exit with `code`."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def run(action: Callable[[], T]) -> T:
    """`action()`, or exit 2 with one line when it refuses with a `KopplaError`."""
    try:
        return action()
    except KopplaError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from error
