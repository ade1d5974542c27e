"""AEP Catalog Service shapes for datasets and batches (`/data/foundation/catalog/...`).

Read-only views of Koppla's catalog in the form Adobe's clients and scripts expect: objects keyed
by id, times in epoch milliseconds, batch metrics, errors and related objects. Batches created
through the batch ingestion API show their input format, files, duplicates skipped and errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from koppla.platform.catalog.models import Dataset
from koppla.web.auth import Caller, Svc
from koppla.web.routes.batch_view import batch_object
from koppla.web.routes.datasets import Limit

router = APIRouter(prefix="/data/foundation/catalog", tags=["AEP catalog"])

CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1"


def _dataset(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "description": dataset.description,
        "created": dataset.created_ms,
        "updated": dataset.created_ms,
        "schemaRef": {"id": dataset.schema_id, "contentType": CONTENT_TYPE},
        "tags": {"unifiedProfile": ["enabled:true"]} if dataset.profile_enabled else {},
    }


@router.get("/dataSets")
def datasets(svc: Svc, caller: Caller) -> dict[str, Any]:
    """Every dataset of the caller's organization and sandbox, keyed by id."""
    return {d.id: _dataset(d) for d in svc.catalog.datasets(caller.org_id, caller.sandbox)}


@router.get("/dataSets/{dataset_id}")
def dataset(dataset_id: str, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One dataset, keyed by its id."""
    found = svc.catalog.dataset(dataset_id, caller.org_id, caller.sandbox)
    return {found.id: _dataset(found)}


@router.get("/batches")
def batches(
    svc: Svc, caller: Caller, dataSet: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """The newest batches (optionally of one dataset), keyed by id."""
    found = svc.catalog.batches(
        dataset_id=dataSet, limit=limit, org_id=caller.org_id, sandbox=caller.sandbox
    )
    return {b.id: batch_object(b) for b in found}


@router.get("/batches/{batch_id}")
def batch(batch_id: str, svc: Svc, caller: Caller) -> dict[str, Any]:
    """One batch, keyed by its id."""
    found = svc.catalog.batch(batch_id, caller.org_id, caller.sandbox)
    return {found.id: batch_object(found)}
