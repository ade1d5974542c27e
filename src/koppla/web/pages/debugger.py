"""The live event debugger, `/admin/debugger[?datastream=ID]`: events of a datastream as they
arrive at the edge, each with its validation result.

The page picks a datastream of the person's organization (the first one unless the address
names another) and its script follows `GET /api/v1/datastreams/{id}/debug` (server-sent events,
sent with the session cookie): that stream is the page's JSON twin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.platform.catalog.models import Datastream
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import SignedIn

router = APIRouter(include_in_schema=False)


def chosen(streams: list[Datastream], asked: str | None) -> Datastream | None:
    """The datastream `asked` names among `streams`, else the first (None when none fits)."""
    if asked:
        return next((s for s in streams if s.id == asked), None)
    return streams[0] if streams else None


@router.get("/admin/debugger", response_class=HTMLResponse)
def debugger_page(
    request: Request, session: SignedIn, svc: Svc, datastream: str | None = None
) -> HTMLResponse:
    """Pick a datastream and watch its events arrive; 404 for a datastream not of the
    person's organization."""
    streams = svc.catalog.datastreams(session.org_id, DEFAULT_SANDBOX)
    stream = chosen(streams, datastream)
    names = {d.id: d.name for d in svc.catalog.datasets(session.org_id, DEFAULT_SANDBOX)}
    missing = bool(datastream) and stream is None
    return page(
        request,
        "debugger.html",
        status_code=status.HTTP_404_NOT_FOUND if missing else status.HTTP_200_OK,
        streams=streams,
        stream=stream,
        dataset_names=names,
        asked=datastream if missing else None,
        edge_url=str(request.base_url).rstrip("/"),
    )
