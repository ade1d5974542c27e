"""Health (`GET /api/v1/health`, no credentials, reveals no secrets) and status (credentialed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from koppla import __version__
from koppla.core import clock
from koppla.platform.pipeline import health as heartbeat
from koppla.web.auth import Caller, Svc
from koppla.web.liveness import Watch, verdict
from koppla.web.services import Services
from koppla.web.status import spool_backlog, status

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/status")
def home_status(svc: Svc, caller: Caller) -> dict[str, Any]:
    """Pipeline (running, last error, restarts), the caller's datasets, quarantine, spool
    backlog, counters."""
    return status(svc, caller.org_id, caller.sandbox)


@router.get(
    "/health",
    responses={503: {"description": "The pipeline is down or stuck; `reason` says which."}},
)
async def health(request: Request) -> JSONResponse:
    """200 `{"status": "ok"}` while what the edge accepts gets stored; else 503 with a reason.
    Both say how far the pipeline is behind: `lagS` (the age of the oldest record not yet
    stored) and `backlogBytes`.

    503 when the pipeline's heartbeat is older than 10 s (not running) or the spool has a backlog
    and the pipeline made no progress for `pipeline_stall_s` (stuck).
    """
    # On the event loop, with no dependency that runs on the shared thread pool: its work is
    # a small file read (and, only while the pipeline is still, a listing of the spool), so
    # health answers even while every worker thread is busy.
    svc: Services = request.app.state.services
    watch: Watch = getattr(request.app.state, "watch", Watch(since_ms=0))
    streams = spool_backlog(svc)
    found = verdict(
        heartbeat.read(svc.layout.pipeline_health),
        lambda: sum(s.get("backlogBytes", 0) for s in streams),
        watch,
        now_ms=clock.now_ms(),
        stall_s=svc.settings.pipeline_stall_s,
    )
    lag: dict[str, Any] = (
        {"lagS": None, "backlogRecords": sum(s["backlogRecords"] for s in streams)}
        if svc.log_backlog is not None  # the shared log tells records waiting, not their age
        else {
            "lagS": max((s["lagS"] for s in streams), default=0.0),
            "backlogBytes": sum(s["backlogBytes"] for s in streams),
        }
    )
    if found.healthy:
        body = {"status": "ok", "version": __version__, "pipeline": found.pipeline}
        return JSONResponse(body | lag)
    body = {"status": "unavailable", "version": __version__, "pipeline": found.pipeline}
    return JSONResponse(body | lag | {"reason": found.reason}, status_code=503)
