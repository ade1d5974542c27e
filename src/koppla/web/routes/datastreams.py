"""Datastreams: what an Edge `configId` points at."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.web.auth import Caller, Svc

router = APIRouter(prefix="/api/v1", tags=["datastreams"])


class DatastreamCreate(BaseModel):
    """A new datastream for an organization, landing events in a dataset."""

    org_id: str = Field(alias="orgId", description="`<24 letters or digits>@AdobeOrg`")
    event_dataset: str = Field(alias="eventDataset", description="Dataset id or name.")
    profile_dataset: str | None = Field(default=None, alias="profileDataset")
    name: str = ""
    allowed_origins: list[str] = Field(default_factory=list, alias="allowedOrigins")
    id: str | None = Field(default=None, description="Datastream id; a UUID when omitted.")


@router.get("/datastreams")
def list_datastreams(svc: Svc, _: Caller) -> list[dict[str, Any]]:
    """Every datastream."""
    return [asdict(s) for s in svc.catalog.datastreams()]


@router.post("/datastreams", status_code=201)
def create_datastream(body: DatastreamCreate, svc: Svc, _: Caller) -> dict[str, Any]:
    """Create a datastream; errors name the field and the rule broken."""
    try:
        stream = svc.catalog.create_datastream(
            org_id=body.org_id,
            event_dataset=body.event_dataset,
            name=body.name,
            profile_dataset=body.profile_dataset,
            allowed_origins=tuple(body.allowed_origins),
            datastream_id=body.id,
        )
    except (InvalidInput, NotFound) as error:
        raise HTTPException(400, detail=str(error)) from error
    except Conflict as error:
        raise HTTPException(409, detail=str(error)) from error
    return asdict(stream)
