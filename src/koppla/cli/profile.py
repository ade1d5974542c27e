"""`koppla profile`: a customer profile, its identities and timeline, in the terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from koppla.cli.common import HomeOption, console, err, fail, run, settings
from koppla.core import codec


def profile(
    identity: Annotated[
        str, typer.Argument(help="namespace:id, e.g. email:ann@example.com or ecid:123...")
    ],
    home: HomeOption = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Merge policy id.", show_default="the default policy"),
    ] = None,
    events: Annotated[int, typer.Option("--events", min=0, help="Newest events to show.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
) -> None:
    """Show a customer profile: attributes, identities, timeline and guardrail hits."""
    from koppla.platform.profiles.identity import Identity
    from koppla.platform.profiles.render import profile_json, render_profile
    from koppla.web.services import build_services

    try:
        asked = Identity.parse(identity)
    except ValueError as error:
        fail(str(error), 2)
    services = build_services(settings(home))
    try:
        lookup = services.lookup
        view = run(lambda: lookup.profile(asked, policy))
        if view is None:
            err.print(f"no profile for {asked}", markup=False, highlight=False)
            raise typer.Exit(1)
        timeline = lookup.events(asked, limit=events, newest_first=True) if events else []
        names = {d.id: d.name for d in services.catalog.datasets()}
    finally:
        services.close()
    if json:
        sys.stdout.write(codec.dumps(profile_json(view, timeline)).decode() + "\n")
    else:
        console.print(render_profile(view, timeline, names))
