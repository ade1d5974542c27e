"""Datasets and their batches: list, create, inspect."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.platform.batches.errors import first_errors
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Batch, Dataset
from koppla.platform.datasets.location import table_location
from koppla.platform.datasets.tables import provision
from koppla.platform.schemas.rules import check_dataset_move
from koppla.web.auth import Caller, Svc
from koppla.web.routes.batch_view import batch_errors, batch_metrics
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event

router = APIRouter(prefix="/api/v1", tags=["datasets"])

Limit = Annotated[int, Query(ge=1, le=10_000, description="Most items to return.")]


class SchemaRef(BaseModel):
    """AEP's reference to a schema."""

    id: str


class DatasetCreate(BaseModel):
    """A new dataset: its SQL name and the XDM schema its records follow (`schemaId`, or AEP's
    `schemaRef: {"id": ...}`)."""

    name: str = Field(description="Lowercase SQL table name.")
    schema_id: str | None = Field(default=None, alias="schemaId")
    schema_ref: SchemaRef | None = Field(default=None, alias="schemaRef")
    description: str = ""
    profile_enabled: bool = Field(default=False, alias="profileEnabled", strict=True)


class DatasetChange(BaseModel):
    """A change to a dataset: whether it is enabled for Profile, and the schema it follows
    (`schemaId`, or AEP's `schemaRef: {"id": ...}`)."""

    profile_enabled: bool | None = Field(default=None, alias="profileEnabled", strict=True)
    schema_id: str | None = Field(default=None, alias="schemaId")
    schema_ref: SchemaRef | None = Field(default=None, alias="schemaRef")


@router.get("/datasets")
def list_datasets(svc: Svc, caller: Caller) -> list[dict[str, Any]]:
    """Every dataset of the caller's organization and sandbox."""
    return [asdict(d) for d in svc.catalog.datasets(caller.org_id, caller.sandbox)]


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetCreate, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Create a dataset (default schema: Koppla's commerce ExperienceEvent; or a built-in
    schema, or a tenant schema of the caller's organization and sandbox)."""
    named = _target_schema(body)
    schema_id = commerce_experience_event().id if named is None else named
    if not _usable(svc, schema_id, caller):
        raise HTTPException(400, detail=f"unknown schema {schema_id!r}")
    dataset = svc.catalog.create_dataset(
        body.name,
        schema_id=schema_id,
        description=body.description,
        profile_enabled=body.profile_enabled,
        org_id=caller.org_id,
        sandbox=caller.sandbox,
    )
    provision(svc.layout, svc.registry, dataset, location=table_location(svc.settings))
    return asdict(dataset)


@router.get("/datasets/{key}")
def get_dataset(key: str, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One dataset by id or name, with its newest batches."""
    dataset = svc.catalog.dataset(key, caller.org_id, caller.sandbox)
    batches = svc.catalog.batches(dataset_id=dataset.id, limit=20)
    return {**asdict(dataset), "batches": [asdict(b) for b in batches]}


@router.patch("/datasets/{key}")
def change_dataset(key: str, body: DatasetChange, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Enable or disable a dataset for Profile; move it onto another schema that keeps every
    field of its current one with its type (a tenant schema built on it, say)."""
    dataset = svc.catalog.dataset(key, caller.org_id, caller.sandbox)
    target = _target_schema(body)
    if target is None and body.profile_enabled is None:
        raise InvalidInput("nothing to change: give profileEnabled or schemaId", field="body")
    if target is not None and target != dataset.schema_id:
        dataset = _move(svc, caller, dataset, target)
    if body.profile_enabled is not None:
        dataset = svc.catalog.set_profile_enabled(dataset.id, body.profile_enabled)
    return asdict(dataset)


def _target_schema(body: DatasetCreate | DatasetChange) -> str | None:
    by_ref = body.schema_ref.id if body.schema_ref is not None else None
    if body.schema_id is not None and by_ref is not None and by_ref != body.schema_id:
        raise InvalidInput("schemaId and schemaRef.id name different schemas", field="schemaId")
    return body.schema_id if body.schema_id is not None else by_ref


def _usable(svc: Services, schema_id: str, caller: Principal) -> bool:
    """True when the caller may put a dataset on `schema_id`."""
    return svc.registry.usable(schema_id, caller.org_id, caller.sandbox)


def _move(svc: Services, caller: Principal, dataset: Dataset, schema_id: str) -> Dataset:
    """Move `dataset` onto `schema_id` once checked; the pipeline adds the new fields to its
    table within a step."""
    if not _usable(svc, schema_id, caller):
        raise InvalidInput(f"unknown schema {schema_id!r}", field="schemaId")
    check_dataset_move(svc.registry.get(dataset.schema_id), svc.registry.get(schema_id))
    return svc.catalog.set_dataset_schema(dataset.id, schema_id)


@router.get("/batches")
def list_batches(
    svc: Svc, caller: Caller, dataset: str | None = None, limit: Limit = 100
) -> list[dict[str, Any]]:
    """The newest batches of the caller's datasets, optionally of one dataset (id or name)."""
    dataset_id = svc.catalog.dataset(dataset, caller.org_id, caller.sandbox).id if dataset else None
    found = svc.catalog.batches(
        dataset_id=dataset_id, limit=limit, org_id=caller.org_id, sandbox=caller.sandbox
    )
    return [_batch(b) for b in found]


@router.get("/batches/{batch_id}/failed")
def failed_records(batch_id: str, svc: Svc, caller: Caller, limit: Limit = 1000) -> dict[str, Any]:
    """The records of a batch that failed validation, each with every problem found.

    For a batch-ingestion batch: its refused rows, each with its file and row number.
    """
    batch = svc.catalog.batch(batch_id, caller.org_id, caller.sandbox)
    if batch.ingested:
        return _refused_rows(svc, batch, limit)
    if not all(c in "0123456789abcdef" for c in batch_id):
        raise HTTPException(400, detail="batch ids are hexadecimal")
    result = svc.query.run(
        "SELECT event_id, event_type, received_at, errors, record FROM quarantine "
        f"WHERE batch_id = '{batch_id}' ORDER BY received_at",
        max_rows=limit,
        scope=(caller.org_id, caller.sandbox),
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
def get_batch(batch_id: str, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One batch and its outcome."""
    return _batch(svc.catalog.batch(batch_id, caller.org_id, caller.sandbox))


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
