"""AEP batch ingestion (`/data/foundation/import/batches`): create, upload files, complete.

1. `POST /batches` with `{"datasetId", "inputFormat": {"format": "json"|"parquet"}}` creates a
   batch in `loading` (201, the batch in AEP's shape).
2. `PUT /batches/{id}/datasets/{datasetId}/files/{name}` streams a file to disk, `fsync`s it
   and renames it into place: a re-PUT of a name replaces the file atomically.
3. `POST /batches/{id}?action=COMPLETE` moves the batch to `processing` (durably, in the
   catalog); the pipeline ingests it. Safe to retry. `ABORT` gives a loading batch up.

Problems with the request answer 400 with `detail` naming the field and the reason; a batch no
longer taking files answers 409 naming its status.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request

from koppla.core import clock, codec, ids
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.batches.files import BatchFiles, FileTooLarge, Upload, check_file_name
from koppla.platform.batches.ingest import SOURCE
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Batch
from koppla.web.auth import Caller, Svc
from koppla.web.routes.batch_view import batch_with_id, ingestion_batch
from koppla.web.services import Services

router = APIRouter(prefix="/data/foundation/import", tags=["AEP batch ingestion"])

FORMATS = ("json", "parquet")

UPLOAD_BUFFER_BYTES = 1024 * 1024
"""An upload is gathered in memory up to this much, then written to disk in a worker thread."""


@router.post("/batches", status_code=201)
async def create_batch(request: Request, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Create a batch for a dataset; files are then uploaded into it."""
    body = _json_object(await request.body())
    dataset_key = body.get("datasetId")
    if not isinstance(dataset_key, str) or not dataset_key:
        raise HTTPException(400, detail="datasetId is required: the id of the dataset to load")
    kind, multiline = _input_format(body)
    return await anyio.to_thread.run_sync(
        partial(_create, svc, caller, dataset_key, kind, multiline)
    )


def _create(
    svc: Services, caller: Principal, dataset_key: str, kind: str, multiline: bool
) -> dict[str, Any]:
    try:
        dataset = svc.catalog.dataset(dataset_key, caller.org_id, caller.sandbox)
    except NotFound as error:
        raise HTTPException(400, detail=f"datasetId {dataset_key!r}: no such dataset") from error
    now = clock.now_ms()
    batch = Batch(
        id=ids.new_hex_id(16),
        dataset_id=dataset.id,
        status="loading",
        records=0,
        failed_records=0,
        created_ms=now,
        completed_ms=None,
        source=SOURCE,
        input_format=kind,
        multiline_json=multiline,
        created_by=caller.name,
        updated_ms=now,
    )
    svc.catalog.record_batch(batch)
    BatchFiles(svc.layout).create(batch.id)
    return batch_with_id(batch)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = codec.loads(raw)
    except codec.JSONDecodeError as error:
        raise HTTPException(400, detail=f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise HTTPException(
            400, detail="the body must be a JSON object with datasetId and inputFormat"
        )
    return body


def _input_format(body: dict[str, Any]) -> tuple[str, bool]:
    """The batch's file format and whether JSON files hold one document each."""
    given = body.get("inputFormat")
    if not isinstance(given, dict):
        raise HTTPException(
            400, detail='inputFormat is required: {"format": "json"} or {"format": "parquet"}'
        )
    kind = given.get("format")
    if not isinstance(kind, str) or kind.lower() not in FORMATS:
        raise HTTPException(
            400,
            detail=f"inputFormat.format {kind!r} is not supported: use 'json' or 'parquet'",
        )
    multiline = body.get("isMultiLineJson", given.get("isMultiLineJson", False))
    if not isinstance(multiline, bool):
        raise HTTPException(400, detail="isMultiLineJson must be true or false")
    if multiline and kind.lower() != "json":
        raise HTTPException(400, detail="isMultiLineJson applies to the json format only")
    return kind.lower(), multiline


@router.put("/batches/{batch_id}/datasets/{dataset_id}/files/{file_path:path}")
async def upload_file(
    batch_id: str, dataset_id: str, file_path: str, request: Request, svc: Svc, caller: Caller
) -> dict[str, Any]:
    """Store one file of a loading batch (any content type; up to `batch_max_file_bytes`)."""
    batch = await anyio.to_thread.run_sync(partial(_ingestion_batch, svc, batch_id, caller))
    if dataset_id != batch.dataset_id:
        raise HTTPException(
            400,
            detail=f"datasetId {dataset_id!r} is not the dataset of batch {batch_id!r} "
            f"({batch.dataset_id!r})",
        )
    _still_loading(batch)
    try:
        name = check_file_name(file_path)
    except InvalidInput as error:
        raise HTTPException(400, detail=str(error)) from error
    files = BatchFiles(svc.layout)
    limit = svc.settings.batch_max_file_bytes
    upload = await anyio.to_thread.run_sync(files.upload, batch_id, name, limit)
    try:
        await _receive(request, upload)
        await anyio.to_thread.run_sync(upload.sync)
        size = await anyio.to_thread.run_sync(partial(_place, svc, files, batch_id, upload))
    except FileTooLarge as error:
        upload.discard()
        raise HTTPException(
            413, detail=f"the file exceeds {limit} bytes (batch_max_file_bytes)"
        ) from error
    except BaseException:
        upload.discard()
        raise
    return {"name": name, "sizeInBytes": size}


async def _receive(request: Request, upload: Upload) -> None:
    """Write the request body to `upload`, a buffer of ~1 MiB at a time, off the event loop."""
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        if len(buffer) >= UPLOAD_BUFFER_BYTES:
            await anyio.to_thread.run_sync(upload.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await anyio.to_thread.run_sync(upload.write, bytes(buffer))


def _place(svc: Services, files: BatchFiles, batch_id: str, upload: Upload) -> int:
    """Move an upload into place if the batch still takes files; count the batch's files."""
    with files.locked(batch_id):
        batch = svc.catalog.batch(batch_id)
        _still_loading(batch)
        present = files.inputs(batch_id)
        most = svc.settings.batch_max_files
        if len(present) >= most and upload.name not in {f.name for f in present}:
            raise HTTPException(
                400, detail=f"the batch holds {len(present)} files already (batch_max_files)"
            )
        try:
            size = upload.place()
        except Conflict as error:
            raise HTTPException(409, detail=str(error)) from error
        present = files.inputs(batch_id)
        counted = dataclasses.replace(
            batch,
            file_count=len(present),
            input_bytes=sum(f.size for f in present),
            updated_ms=clock.now_ms(),
        )
        svc.catalog.change_batch(counted, expect=("loading",))
    return size


@router.post("/batches/{batch_id}")
def signal_batch(
    batch_id: str, svc: Svc, caller: Caller, action: str | None = None
) -> dict[str, Any]:
    """`action=COMPLETE`: ingest the batch's files (safe to retry). `ABORT`: give it up."""
    wanted = (action or "").upper()
    if wanted not in ("COMPLETE", "ABORT"):
        raise HTTPException(
            400, detail=f"action {action!r} is not supported: use COMPLETE or ABORT"
        )
    _ingestion_batch(svc, batch_id, caller)
    files = BatchFiles(svc.layout)
    with files.locked(batch_id):
        batch = svc.catalog.batch(batch_id)
        if wanted == "COMPLETE":
            return batch_with_id(_complete(svc, files, batch))
        return batch_with_id(_abort(svc, files, batch))


def _complete(svc: Services, files: BatchFiles, batch: Batch) -> Batch:
    if batch.status in ("processing", "success", "failed"):
        return batch
    if batch.status != "loading":
        raise HTTPException(409, detail=f"batch {batch.id!r} is {batch.status}; it cannot complete")
    present = files.inputs(batch.id)
    if not present:
        raise HTTPException(
            400, detail=f"batch {batch.id!r} has no files: upload at least one before COMPLETE"
        )
    now = clock.now_ms()
    processing = dataclasses.replace(
        batch,
        status="processing",
        file_count=len(present),
        input_bytes=sum(f.size for f in present),
        started_ms=now,
        updated_ms=now,
    )
    if not svc.catalog.change_batch(processing, expect=("loading",)):
        return svc.catalog.batch(batch.id)
    return processing


def _abort(svc: Services, files: BatchFiles, batch: Batch) -> Batch:
    if batch.status == "aborted":
        return batch
    if batch.status != "loading":
        raise HTTPException(
            409, detail=f"batch {batch.id!r} is {batch.status}; only a loading batch can abort"
        )
    now = clock.now_ms()
    aborted = dataclasses.replace(batch, status="aborted", completed_ms=now, updated_ms=now)
    if not svc.catalog.change_batch(aborted, expect=("loading",)):
        return svc.catalog.batch(batch.id)
    files.remove_inputs(batch.id)
    return aborted


def _ingestion_batch(svc: Services, batch_id: str, caller: Principal) -> Batch:
    return ingestion_batch(svc.catalog, batch_id, caller)


def _still_loading(batch: Batch) -> None:
    if batch.status != "loading":
        raise HTTPException(
            409, detail=f"batch {batch.id!r} is {batch.status}; files are taken while it is loading"
        )
