"""AEP Catalog Service shapes for datasets and batches (`/data/foundation/catalog/...`).

Read-only views of Koppla's catalog in the form Adobe's clients and scripts expect: objects keyed
by id, times in epoch milliseconds, batch metrics and related objects.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from koppla.core.errors import NotFound
from koppla.platform.catalog.models import Batch, Dataset
from koppla.web.auth import Caller, Svc
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


def _batch(batch: Batch) -> dict[str, Any]:
    return {
        "status": batch.status,
        "created": batch.created_ms,
        "updated": batch.completed_ms or batch.created_ms,
        "completed": batch.completed_ms,
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "metrics": {
            "recordsRead": batch.records + batch.failed_records,
            "recordsWritten": batch.records,
            "failedRecordCount": batch.failed_records,
        },
        "errors": (
            [
                {
                    "code": "validation",
                    "recordCount": batch.failed_records,
                    "description": "records failed XDM validation; see /api/v1/batches/{id}/failed",
                }
            ]
            if batch.failed_records
            else []
        ),
        "source": batch.source,
    }


@router.get("/dataSets")
def datasets(svc: Svc, _: Caller) -> dict[str, Any]:
    """Every dataset, keyed by id."""
    return {d.id: _dataset(d) for d in svc.catalog.datasets()}


@router.get("/dataSets/{dataset_id}")
def dataset(dataset_id: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One dataset, keyed by its id."""
    try:
        found = svc.catalog.dataset(dataset_id)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    return {found.id: _dataset(found)}


@router.get("/batches")
def batches(svc: Svc, _: Caller, dataSet: str | None = None, limit: Limit = 100) -> dict[str, Any]:
    """The newest batches (optionally of one dataset), keyed by id."""
    return {b.id: _batch(b) for b in svc.catalog.batches(dataset_id=dataSet, limit=limit)}


@router.get("/batches/{batch_id}")
def batch(batch_id: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One batch, keyed by its id."""
    try:
        found = svc.catalog.batch(batch_id)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    return {found.id: _batch(found)}
