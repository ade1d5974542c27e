"""`koppla dataset ...`: datasets (Delta tables) of events or of profile records."""

from __future__ import annotations

from typing import Annotated

import typer

from koppla.cli.common import HomeOption, OrgOption, catalog, console, fail, run, settings
from koppla.core.layout import Layout
from koppla.platform.datasets.location import table_location
from koppla.platform.datasets.tables import provision
from koppla.platform.schemas.registry import home_registry


def group() -> typer.Typer:
    """The `koppla dataset` commands."""
    app = typer.Typer(no_args_is_help=True, help="Datasets: create and list.")
    app.command("create")(create)
    app.command("enable-profile")(enable_profile)
    app.command("list")(list_datasets)
    return app


def create(
    name: Annotated[str, typer.Argument(help="SQL table name (lowercase, digits, _).")],
    home: HomeOption = None,
    description: Annotated[
        str, typer.Option(help="What the dataset holds.", show_default="none")
    ] = "",
    profile_records: Annotated[
        bool,
        typer.Option(
            "--profile-records",
            help="Hold Individual Profile records (customer attributes) instead of events.",
        ),
    ] = False,
    enable_profile: Annotated[
        bool, typer.Option("--enable-profile", help="Feed real-time customer profiles.")
    ] = False,
    org: OrgOption = None,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="A tenant schema id (see GET /data/foundation/schemaregistry/tenant/schemas) "
            "of the organization, prod sandbox.",
            show_default="the built-in ExperienceEvent (or profile) schema",
        ),
    ] = None,
) -> None:
    """Create a dataset of commerce ExperienceEvents (--profile-records: of profiles; --schema:
    of a tenant schema)."""
    from koppla.xdm.experience_event import commerce_experience_event
    from koppla.xdm.profile import commerce_profile

    loaded = settings(home)
    opened = catalog(loaded)
    registry = home_registry(Layout(loaded.home), loaded.catalog_url)
    builtin = commerce_profile() if profile_records else commerce_experience_event()
    schema_id = builtin.id if schema is None else schema
    try:
        owner = org or opened.default_org()
        if not registry.usable(schema_id, owner, "prod"):
            fail(f"unknown schema {schema_id!r}: not a schema of {owner} (prod sandbox)", 2)
        dataset = run(
            lambda: opened.create_dataset(
                name,
                schema_id=schema_id,
                description=description,
                profile_enabled=enable_profile,
                org_id=org,
            )
        )
        provision(Layout(loaded.home), registry, dataset, location=table_location(loaded))
    finally:
        opened.close()
        registry.close()
    console.print(f"dataset {dataset.name} created with id {dataset.id}")


def enable_profile(
    dataset: Annotated[str, typer.Argument(help="Dataset id or name.")],
    home: HomeOption = None,
    off: Annotated[bool, typer.Option("--off", help="Disable instead.")] = False,
) -> None:
    """Enable a dataset for Profile: its records and events feed customer profiles."""
    opened = catalog(settings(home))
    try:
        found = run(lambda: opened.set_profile_enabled(dataset, not off))
    finally:
        opened.close()
    state = "enabled" if found.profile_enabled else "disabled"
    console.print(f"dataset {found.name}: profile {state}")


def list_datasets(home: HomeOption = None) -> None:
    """List datasets: id, name, organization, schema."""
    opened = catalog(settings(home))
    try:
        for d in opened.datasets():
            profile = "  profile" if d.profile_enabled else ""
            console.print(f"{d.id}  {d.name}  {d.org_id}  {d.schema_id}{profile}")
    finally:
        opened.close()
