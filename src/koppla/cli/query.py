"""`koppla query`: read-only SQL over the datasets, in the terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from koppla.cli.common import HomeOption, console, run, settings
from koppla.core import codec


def query(
    sql: Annotated[str, typer.Argument(help="One read-only SELECT over datasets by name.")],
    home: HomeOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(help="Most rows to return.", show_default="the query_max_rows setting: 10000"),
    ] = None,
) -> None:
    """Run SQL over the datasets (read-only) and print the result."""
    from koppla.platform.query.render import render_table
    from koppla.web.services import build_services

    services = build_services(settings(home))
    try:
        result = run(lambda: services.query.run(sql, max_rows=max_rows))
    finally:
        services.close()
    if json:
        sys.stdout.write(codec.dumps(result.to_json()).decode() + "\n")
    else:
        console.print(render_table(result))
