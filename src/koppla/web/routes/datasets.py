"""Datasets and their batches: list, create, inspect."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from koppla.core import codec
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.batches.errors import first_errors
from koppla.platform.catalog.models import Batch
from koppla.platform.datasets.tables import provision
from koppla.web.auth import Caller, Svc
from koppla.web.routes.batch_view import batch_errors, batch_metrics
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event

router = APIRouter(prefix="/api/v1", tags=["datasets"])

Limit = Annotated[int, Query(ge=1, le=10_000, description="Most items to return.")]


class DatasetCreate(BaseModel):
    """A new dataset: its SQL name and the XDM schema its records follow."""

    name: str = Field(description="Lowercase SQL table name.")
    schema_id: str | None = Field(default=None, alias="schemaId")
    description: str = ""
    profile_enabled: bool = Field(default=False, alias="profileEnabled", strict=True)


class DatasetChange(BaseModel):
    """A change to a dataset: whether it is enabled for Profile."""

    profile_enabled: bool = Field(alias="profileEnabled", strict=True)


@router.get("/datasets")
def list_datasets(svc: Svc, _: Caller) -> list[dict[str, Any]]:
    """Every dataset."""
    return [asdict(d) for d in svc.catalog.datasets()]


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetCreate, svc: Svc, _: Caller) -> dict[str, Any]:
    """Create a dataset (default schema: Koppla's commerce ExperienceEvent)."""
    schema_id = body.schema_id or commerce_experience_event().id
    if schema_id not in svc.registry.ids():
        raise HTTPException(400, detail=f"unknown schema {schema_id!r}")
    try:
        dataset = svc.catalog.create_dataset(
            body.name,
            schema_id=schema_id,
            description=body.description,
            profile_enabled=body.profile_enabled,
        )
    except InvalidInput as error:
        raise HTTPException(400, detail=str(error)) from error
    except Conflict as error:
        raise HTTPException(409, detail=str(error)) from error
    provision(svc.layout, svc.registry, dataset)
    return asdict(dataset)


@router.get("/datasets/{key}")
def get_dataset(key: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One dataset by id or name, with its newest batches."""
    try:
        dataset = svc.catalog.dataset(key)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    batches = svc.catalog.batches(dataset_id=dataset.id, limit=20)
    return {**asdict(dataset), "batches": [asdict(b) for b in batches]}


@router.patch("/datasets/{key}")
def change_dataset(key: str, body: DatasetChange, svc: Svc, _: Caller) -> dict[str, Any]:
    """Enable or disable a dataset for Profile."""
    try:
        return asdict(svc.catalog.set_profile_enabled(key, body.profile_enabled))
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error


@router.get("/batches")
def list_batches(
    svc: Svc, _: Caller, dataset: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    """The newest batches, optionally of one dataset (id or name)."""
    try:
        dataset_id = svc.catalog.dataset(dataset).id if dataset else None
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    return [_batch(b) for b in svc.catalog.batches(dataset_id=dataset_id, limit=limit)]


@router.get("/batches/{batch_id}/failed")
def failed_records(batch_id: str, svc: Svc, _: Caller, limit: Limit = 1000) -> dict[str, Any]:
    """The records of a batch that failed validation, each with every problem found.

    For a batch-ingestion batch: its refused rows, each with its file and row number.
    """
    try:
        batch = svc.catalog.batch(batch_id)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    if batch.ingested:
        return _refused_rows(svc, batch, limit)
    if not all(c in "0123456789abcdef" for c in batch_id):
        raise HTTPException(400, detail="batch ids are hexadecimal")
    result = svc.query.run(
        "SELECT event_id, event_type, received_at, errors, record FROM quarantine "
        f"WHERE batch_id = '{batch_id}' ORDER BY received_at",
        max_rows=limit,
    )
    rows = result.to_json()["rows"]
    return {
        "batchId": batch_id,
        "records": [
            {
                "eventId": r[0],
                "eventType": r[1],
                "receivedAt": r[2],
                "errors": r[3],
                "record": codec.loads(r[4]),
            }
            for r in rows
        ],
        "truncated": result.truncated,
    }


@router.get("/batches/{batch_id}")
def get_batch(batch_id: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One batch and its outcome."""
    try:
        return _batch(svc.catalog.batch(batch_id))
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error


def _refused_rows(svc: Services, batch: Batch, limit: int) -> dict[str, Any]:
    """The refused rows of an ingestion batch, as sent where they can be parsed."""
    rows, truncated = first_errors(svc.layout.batch(batch.id), limit)
    for row in rows:
        with suppress(codec.JSONDecodeError):  # a row that was not JSON stays the text it was
            row["record"] = codec.loads(row["record"])
    return {"batchId": batch.id, "records": rows, "truncated": truncated}


def _batch(batch: Batch) -> dict[str, Any]:
    """A batch's fields, with AEP-shaped `metrics` and `errors`."""
    return {**asdict(batch), "metrics": batch_metrics(batch), "errors": batch_errors(batch)}
