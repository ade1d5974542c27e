"""`koppla report`: the ready-made commerce reports, in the terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from koppla.cli.common import HomeOption, console, fail, run, settings
from koppla.core import codec


def report(
    name: Annotated[
        str | None,
        typer.Argument(help="The report to run; without it, the reports are listed."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="A report parameter as NAME=VALUE (repeatable): days=7, until=2026-03-09.",
            show_default="each parameter's default (`koppla report` lists them)",
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            help="Dataset of the storefront events.",
            show_default="the commerce event dataset (demo_events among several)",
        ),
    ] = None,
    orders: Annotated[
        str | None,
        typer.Option(help="Dataset of the back-office events.", show_default="--events"),
    ] = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the report's SQL instead of running it.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
    max_rows: Annotated[
        int | None,
        typer.Option(help="Most rows to return.", show_default="the query_max_rows setting"),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run a commerce report (funnel, abandoned carts, revenue, top products, tracking
    coverage) over the datasets, or list them."""
    from koppla.platform.query import commerce

    if name is None:
        _list(json)
        return
    chosen = run(lambda: commerce.report(name))
    params = _params(param or [])
    run(lambda: commerce.resolve(chosen, params))  # bad parameters fail before anything opens
    from koppla.platform.query.render import render_table
    from koppla.web.services import build_services
    from koppla.xdm.experience_event import commerce_experience_event

    services = build_services(settings(home))
    try:
        datasets = [
            (d.name, services.registry.base_of(d.schema_id)) for d in services.catalog.datasets()
        ]
        schema = commerce_experience_event().id
        tables = run(lambda: commerce.default_tables(datasets, schema, events, orders))
        text = run(lambda: chosen.sql(tables, params))
        if sql:
            sys.stdout.write(text + "\n")
            return
        result = run(lambda: services.query.run(text, max_rows=max_rows))
    finally:
        services.close()
    if json:
        sys.stdout.write(codec.dumps(result.to_json()).decode() + "\n")
    else:
        console.print(render_table(result))


def _list(json: bool) -> None:
    from rich.table import Table

    from koppla.platform.query.commerce import REPORTS

    if json:
        listed = [{"name": r.name, "title": r.title} for r in REPORTS]
        sys.stdout.write(codec.dumps(listed).decode() + "\n")
        return
    table = Table("report", "title", "parameters", header_style="bold")
    for found in REPORTS:
        table.add_row(found.name, found.title, ", ".join(p.name for p in found.parameters))
    console.print(table)


def _params(pairs: list[str]) -> dict[str, str]:
    """`NAME=VALUE` options as a dict; exit 2 naming a malformed or repeated one."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--param {pair!r} must look like NAME=VALUE", code=2)
        if key in params:
            fail(f"--param {key} is given twice", code=2)
        params[key] = value.strip()
    return params
