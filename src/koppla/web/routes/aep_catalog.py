"""AEP Catalog Service shapes for datasets and batches (`/data/foundation/catalog/...`).

Read-only views of Koppla's catalog in the form Adobe's clients and scripts expect: objects keyed
by id, times in epoch milliseconds, batch metrics, errors and related objects. Batches created
through the batch ingestion API show their input format, files, duplicates skipped and errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from koppla.core.errors import NotFound
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
    return {b.id: batch_object(b) for b in svc.catalog.batches(dataset_id=dataSet, limit=limit)}


@router.get("/batches/{batch_id}")
def batch(batch_id: str, svc: Svc, _: Caller) -> dict[str, Any]:
    """One batch, keyed by its id."""
    try:
        found = svc.catalog.batch(batch_id)
    except NotFound as error:
        raise HTTPException(404, detail=str(error)) from error
    return {found.id: batch_object(found)}
