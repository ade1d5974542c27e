"""Liveness (`GET /api/v1/health`, no credentials, reveals nothing) and status (credentialed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from koppla import __version__
from koppla.web.auth import Caller, Svc
from koppla.web.status import status

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/status")
def home_status(svc: Svc, _: Caller) -> dict[str, Any]:
    """Datasets (rows, last batch), quarantined records, spool backlog, datastream counters."""
    return status(svc)


@router.get("/health")
def health() -> dict[str, str]:
    """`{"status": "ok"}` while the server runs."""
    return {"status": "ok", "version": __version__}
