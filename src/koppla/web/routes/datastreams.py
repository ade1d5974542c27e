"""Datastreams: what an Edge `configId` points at."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from koppla.core.errors import NotFound
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, DEMO_ORG_ID
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1", tags=["datastreams"])


class DatastreamCreate(BaseModel):
    """A new datastream for an organization, landing events in a dataset."""

    org_id: str | None = Field(
        default=None,
        alias="orgId",
        description="`<24 letters or digits>@AdobeOrg`; the caller's organization (the only "
        "one allowed) when omitted.",
    )
    event_dataset: str = Field(alias="eventDataset", description="Dataset id or name.")
    profile_dataset: str | None = Field(default=None, alias="profileDataset")
    name: str = ""
    allowed_origins: list[str] = Field(default_factory=list, alias="allowedOrigins")
    id: str | None = Field(default=None, description="Datastream id; a UUID when omitted.")


@router.get("/datastreams")
def list_datastreams(svc: Svc, caller: Caller) -> list[dict[str, Any]]:
    """Every datastream of the caller's organization and sandbox."""
    return [asdict(s) for s in svc.catalog.datastreams(caller.org_id, caller.sandbox)]


@router.post("/datastreams", status_code=201)
def create_datastream(body: DatastreamCreate, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Create a datastream; errors name the field and the rule broken."""
    if body.id == DEMO_DATASTREAM_ID and caller.org_id != DEMO_ORG_ID:
        raise HTTPException(409, detail=f"id: {DEMO_DATASTREAM_ID} is the demo's datastream id")
    if body.org_id is not None and body.org_id != caller.org_id:
        raise HTTPException(
            403, detail="orgId: a token creates datastreams of its own organization"
        )
    try:
        stream = svc.catalog.create_datastream(
            org_id=caller.org_id,
            event_dataset=body.event_dataset,
            name=body.name,
            profile_dataset=body.profile_dataset,
            allowed_origins=tuple(body.allowed_origins),
            datastream_id=body.id,
            sandbox=caller.sandbox,
        )
    except NotFound as error:  # a dataset named in the body: the body is wrong, not the URL
        raise HTTPException(400, detail=str(error)) from error
    return asdict(stream)
