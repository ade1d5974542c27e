"""Customer profiles, `/admin/profiles[?identity=namespace:id]`: look one up by any identity.

A profile shows its merged attributes, identities, computed attributes, timeline (newest first,
each event with its XDM) and guardrail hits: the facts of `GET /api/v1/profiles/{identity}`
(its JSON twin), built by the same functions. Only profiles fed by the person's organization's
datasets are shown, and only the events of those datasets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from koppla.core import codec
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.render import profile_json
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import SignedIn
from koppla.web.services import Services

router = APIRouter(include_in_schema=False)

TIMELINE_EVENTS = 50
SCANNED_EVENTS = 1000
"""Newest events of a profile looked through for those of the person's organization."""
EXAMPLES = ("email:ann@example.com", "customerid:7", "ecid:…")


def lookup(svc: Services, identity: Identity, datasets: Collection[str]) -> dict[str, Any] | None:
    """The profile holding `identity` as `GET /api/v1/profiles/{identity}` shows it, with the
    events of `datasets` (the organization's) alone; None when there is no profile, or when
    nothing of it comes from `datasets` (no attribute source, none of its newest events)."""
    found = svc.lookup
    view = found.profile(identity)
    if view is None:
        return None
    newest = found.events(identity, limit=SCANNED_EVENTS, newest_first=True)
    events = [e for e in newest if e.dataset_id in datasets][:TIMELINE_EVENTS]
    if not events and not any(source in datasets for source in view.sources):
        return None
    return profile_json(view, events)


def pretty(value: Any) -> str:
    """`value` as indented JSON, for a page's JSON view."""
    return codec.dumps_pretty(value)


def moment(iso: str | None) -> str:
    """An RFC 3339 time of the API as people read it: `2026-01-03 09:30:00 UTC`; '' for None."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@router.get("/admin/profiles", response_class=HTMLResponse)
def profiles_page(
    request: Request, session: SignedIn, svc: Svc, identity: str = ""
) -> HTMLResponse:
    """The lookup form; with `identity`, that profile, or why there is none."""
    asked = identity.strip()
    if not asked:
        return page(request, "profiles.html", asked="", problem="", examples=EXAMPLES)
    try:
        parsed = Identity.parse(asked)
    except ValueError as error:
        return page(
            request,
            "profiles.html",
            status_code=status.HTTP_400_BAD_REQUEST,
            asked=asked,
            problem=str(error),
            examples=EXAMPLES,
        )
    names = {d.id: d.name for d in svc.catalog.datasets(session.org_id, DEFAULT_SANDBOX)}
    owns_store = session.org_id == svc.catalog.default_org()  # as the profile APIs rule
    profile = lookup(svc, parsed, names.keys()) if owns_store else None
    if profile is None:
        return page(
            request,
            "profiles.html",
            status_code=status.HTTP_404_NOT_FOUND,
            asked=asked,
            identity=str(parsed),
            problem="",
            examples=EXAMPLES,
        )
    return page(
        request,
        "profile.html",
        asked=asked,
        profile=profile,
        attributes=_shown(profile["attributes"]),
        dataset_names=names,
        pretty=pretty,
        moment=moment,
        examples=EXAMPLES,
    )


def _shown(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The merged attributes as listed: `identityMap` left out (the identities show it)."""
    return {k: attributes[k] for k in sorted(attributes) if k != "identityMap"}
