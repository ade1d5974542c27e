"""A batch as AEP's Catalog and Batch Ingestion APIs show it: status, times, metrics, errors."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Batch
from koppla.platform.catalog.store import Catalog


def batch_metrics(batch: Batch) -> dict[str, int]:
    """AEP-style `metrics`: rows read, written, failed, skipped as duplicates (and, for an
    ingestion batch, its files' count and bytes). A failed ingestion batch writes none of its
    rows, but still counts every row it read."""
    read = batch.records + batch.failed_records + batch.duplicates
    metrics = {
        "recordsRead": read if batch.records_read is None else batch.records_read,
        "recordsWritten": batch.records,
        "failedRecordCount": batch.failed_records,
        "recordsSkipped": batch.duplicates,
    }
    if batch.ingested:
        metrics["inputFileCount"] = batch.file_count
        metrics["inputByteSize"] = batch.input_bytes
    return metrics


def batch_errors(batch: Batch) -> list[dict[str, Any]]:
    """AEP-style `errors`: one entry per kind of problem, with how many records it hit."""
    if batch.ingested:
        return [
            {"code": e.code, "description": e.description, "recordCount": e.record_count}
            for e in batch.errors
        ]
    if not batch.failed_records:
        return []
    return [
        {
            "code": "validation",
            "recordCount": batch.failed_records,
            "description": f"records failed XDM validation; see /api/v1/batches/{batch.id}/failed",
        }
    ]


def batch_object(batch: Batch) -> dict[str, Any]:
    """The batch in AEP's shape (times in epoch milliseconds), without its id."""
    shown: dict[str, Any] = {
        "status": batch.status,
        "created": batch.created_ms,
        "updated": batch.updated_ms or batch.completed_ms or batch.created_ms,
        "completed": batch.completed_ms,
        "relatedObjects": [{"type": "dataSet", "id": batch.dataset_id}],
        "metrics": batch_metrics(batch),
        "errors": batch_errors(batch),
        "recordCount": batch.records,
        "failedRecordCount": batch.failed_records,
        "source": batch.source,
    }
    if batch.ingested:
        shown["started"] = batch.started_ms
        shown["createdUser"] = batch.created_by
        shown["inputFormat"] = {"format": batch.input_format}
        if batch.input_format == "json":
            shown["inputFormat"]["isMultiLineJson"] = batch.multiline_json
        shown["size"] = batch.input_bytes
    return shown


def batch_with_id(batch: Batch) -> dict[str, Any]:
    """The batch in AEP's shape with its `id` (what creating or completing one answers)."""
    return {"id": batch.id, **batch_object(batch)}


def ingestion_batch(catalog: Catalog, batch_id: str, caller: Principal) -> Batch:
    """The batch-ingestion batch `batch_id` of the caller's organization and sandbox; 404 for an
    unknown (or a streaming, or another organization's) batch."""
    batch = catalog.batch(batch_id, caller.org_id, caller.sandbox)
    if not batch.ingested:
        raise HTTPException(404, detail=f"batch {batch_id!r} was not created by batch ingestion")
    return batch
