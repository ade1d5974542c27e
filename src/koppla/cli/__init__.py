"""The `koppla` command line: run the platform, manage datastreams and datasets, query data."""

from __future__ import annotations

import typer

from koppla.cli import (
    admin,
    batches,
    credentials,
    datasets,
    datastreams,
    debug,
    demo,
    export,
    profile,
    query,
    report,
    status,
    tokens,
    up,
)


def build() -> typer.Typer:
    """The Typer app with every command."""
    from koppla.connector.commands import connector_app

    app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
    app.command("up")(up.up)
    app.command("demo")(demo.demo)
    app.command("query")(query.query)
    app.command("export")(export.export)
    app.command("report")(report.report)
    app.command("profile")(profile.profile)
    app.command("batches")(batches.batches)
    app.command("debug")(debug.debug)
    app.command("status")(status.status)
    app.add_typer(datasets.group(), name="dataset")
    app.add_typer(datastreams.group(), name="datastream")
    app.add_typer(tokens.group(), name="token")
    app.add_typer(credentials.group(), name="credentials")
    app.add_typer(admin.group(), name="admin")
    app.add_typer(connector_app, name="connector")
    return app


def main() -> None:
    """Entry point of the `koppla` command."""
    build()()
