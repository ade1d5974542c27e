"""Liveness: `GET /api/v1/health` answers without credentials and reveals nothing."""

from __future__ import annotations

from fastapi import APIRouter

from koppla import __version__

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """`{"status": "ok"}` while the server runs."""
    return {"status": "ok", "version": __version__}
