"""`koppla datastream ...`: datastreams, the `configId` a Web SDK sends to."""

from __future__ import annotations

from typing import Annotated

import typer

from koppla.cli.common import HomeOption, catalog, console, run, settings


def group() -> typer.Typer:
    """The `koppla datastream` commands."""
    app = typer.Typer(no_args_is_help=True, help="Datastreams: create and list.")
    app.command("create")(create)
    app.command("list")(list_datastreams)
    return app


def create(
    org: Annotated[str, typer.Option(help="Organization id, <24 letters or digits>@AdobeOrg.")],
    dataset: Annotated[str, typer.Option(help="Event dataset (id or name).")],
    home: HomeOption = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(help="Allowed origin (repeat).", show_default="any origin"),
    ] = None,
    profile_dataset: Annotated[
        str | None, typer.Option(help="Profile dataset (id or name).", show_default="none")
    ] = None,
    datastream_id: Annotated[
        str | None, typer.Option("--id", help="Datastream id.", show_default="a new UUID")
    ] = None,
    name: Annotated[str, typer.Option(help="Display name.", show_default="none")] = "",
) -> None:
    """Create a datastream: the `configId` the Web SDK sends to."""
    opened = catalog(settings(home))
    try:
        stream = run(
            lambda: opened.create_datastream(
                org_id=org,
                event_dataset=dataset,
                name=name,
                profile_dataset=profile_dataset,
                allowed_origins=tuple(origin or ()),
                datastream_id=datastream_id,
            )
        )
    finally:
        opened.close()
    console.print(f"datastream {stream.id} created for {stream.org_id}")


def list_datastreams(home: HomeOption = None) -> None:
    """List datastreams."""
    opened = catalog(settings(home))
    try:
        for s in opened.datastreams():
            origins = ",".join(s.allowed_origins) or "any origin"
            console.print(f"{s.id}  {s.org_id}  dataset={s.event_dataset_id}  {origins}")
    finally:
        opened.close()
