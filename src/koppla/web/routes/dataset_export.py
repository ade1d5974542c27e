"""AEP Data Access to stored events: a batch's data as files, and a dataset's preview.

- `GET /data/foundation/export/files/{batchId}/data.json`: the batch's events as JSON lines,
  each as it was sent (no nulls for absent fields); `.../data.parquet`: its rows as stored, in
  the schema's XDM columns. Streamed: rows are read in record batches, whatever the batch's size.
- `GET /data/foundation/export/files/{batchId}`: AEP's directory form, listing both files;
  `?path=data.json` downloads one.
- `GET /data/foundation/export/datasets/{datasetId}/preview`: the dataset's first rows (storage
  order), as sent, `{"data": [...]}`.

Only batches and datasets of the caller's organization and sandbox are found (others: 404).
See docs/export.md for what "as sent" can and cannot restore.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Batch
from koppla.platform.datasets import export as exporting
from koppla.platform.datasets.location import table_location
from koppla.web.auth import Caller, Svc
from koppla.web.services import Services

router = APIRouter(prefix="/data/foundation/export", tags=["AEP data access"])

JSON_FILE = "data.json"
PARQUET_FILE = "data.parquet"
DATA_FILES = {JSON_FILE: "application/x-ndjson", PARQUET_FILE: "application/vnd.apache.parquet"}
"""The files of a batch's stored data, and their media types."""

PreviewLimit = Annotated[int, Query(ge=1, le=1000, description="Most rows to preview.")]


@router.get("/files/{file_id:path}", response_model=None)
def dataset_file(
    file_id: str, request: Request, svc: Svc, caller: Caller, path: str | None = None
) -> dict[str, Any] | StreamingResponse:
    """Download a batch's stored data (`{batchId}/data.json` or `.parquet`), or list its files
    (`{batchId}`; then `?path=` downloads one)."""
    batch_id, _, name = file_id.partition("/")
    name = name or (path or "")
    batch = _stored_batch(svc, batch_id, caller)
    if not name:
        data = [data_file(request, batch, file) for file in DATA_FILES]
        return {"data": data, "_page": {"limit": len(data), "count": len(data)}}
    if name not in DATA_FILES:
        raise HTTPException(404, detail=f"batch {batch.id!r} has no file {name!r}")
    return _download(svc, batch, name)


@router.get("/datasets/{dataset_id}/preview")
def preview(dataset_id: str, svc: Svc, caller: Caller, limit: PreviewLimit = 100) -> dict[str, Any]:
    """The dataset's first rows (in storage order), each as it was sent."""
    dataset = svc.catalog.dataset(dataset_id, caller.org_id, caller.sandbox)
    schema = svc.registry.get(dataset.schema_id)
    tables = table_location(svc.settings)
    table, options = tables.table(dataset.id), tables.storage_options()
    rows = exporting.export_rows(table, schema, storage_options=options, limit=limit)
    return {"data": list(rows)}


def data_files(request: Request, batch: Batch) -> list[dict[str, Any]]:
    """The entries of a batch's stored data for the `/batches/{id}/files` listing (none until
    the batch has landed rows)."""
    if batch.status != "success" or not batch.records:
        return []
    return [data_file(request, batch, name) for name in DATA_FILES]


def data_file(request: Request, batch: Batch, name: str) -> dict[str, Any]:
    """One data file of a batch, as AEP lists dataset files."""
    file_id = f"{batch.id}/{name}"
    base = str(request.base_url).rstrip("/")
    return {
        "dataSetFileId": file_id,
        "name": name,
        "records": batch.records,
        "isValid": True,
        "_links": {"self": {"href": f"{base}{router.prefix}/files/{quote(file_id, safe='/')}"}},
    }


def _stored_batch(svc: Services, batch_id: str, caller: Principal) -> Batch:
    """The caller's batch `batch_id` once its rows landed; 404 otherwise."""
    batch = svc.catalog.batch(batch_id, caller.org_id, caller.sandbox)
    if batch.status != "success":
        raise HTTPException(
            404, detail=f"batch {batch.id!r} has no stored data (its status is {batch.status})"
        )
    return batch


def _download(svc: Services, batch: Batch, name: str) -> StreamingResponse:
    """The batch's rows streamed as `name` (JSON lines as sent, or Parquet as stored)."""
    dataset = svc.catalog.dataset(batch.dataset_id)
    schema = svc.registry.get(dataset.schema_id)
    tables = table_location(svc.settings)
    table, options = tables.table(dataset.id), tables.storage_options()
    chunks: Iterator[bytes]
    if name == JSON_FILE:
        rows = exporting.export_rows(table, schema, storage_options=options, batch_id=batch.id)
        chunks = exporting.jsonl_chunks(rows)
    else:
        batches = exporting.export_batches(
            table, schema, storage_options=options, batch_id=batch.id
        )
        chunks = exporting.parquet_chunks(batches, exporting.parquet_schema(schema))
    disposition = f'attachment; filename="{batch.id}-{name}"'
    return StreamingResponse(
        _primed(chunks),
        media_type=DATA_FILES[name],
        headers={"content-disposition": disposition},
    )


def _primed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, with the first one read now: a table that cannot be read fails the request
    with a status, not halfway through the body."""
    first = next(chunks, None)

    def rest() -> Iterator[bytes]:
        if first is not None:
            yield first
        yield from chunks

    return rest()
