"""Admin page: the overview (`/admin/`), the JSON twin of `GET /api/v1/overview`.

Events per minute by event type over the last hour (a uPlot chart, refreshed from the JSON
twin), the pipeline's health, the spool backlog, quarantined records, the newest batches.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from koppla.core import clock
from koppla.platform.catalog.access import DEFAULT_SANDBOX
from koppla.web.auth import Svc
from koppla.web.pages.render import page
from koppla.web.pages.session import SignedIn
from koppla.web.routes.overview import overview, watch_of

router = APIRouter(include_in_schema=False)


@router.get("/admin/", response_class=HTMLResponse)
def overview_page(request: Request, svc: Svc, session: SignedIn) -> HTMLResponse:
    """The overview of the signed-in person's organization."""
    scope = (session.org_id, DEFAULT_SANDBOX)
    shown = overview(svc, scope, watch_of(request), now_ms=clock.now_ms())
    return page(request, "overview.html", overview=shown)
