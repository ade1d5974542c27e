"""AEP Data Access diagnostics of ingestion batches (`/data/foundation/export/batches/{id}`).

- `/files`: the batch's input files (name, size, rows read, whether it could be read).
- `/failed`: lists one failed-rows file per input file that had refused rows; `?path=<name>`
  downloads it as JSON lines, one refused row each: `{"file", "row", "errors": [{"path",
  "code", "message"}], "record"}` (`record`: the row as sent).
- `/meta`: lists `row_errors` and `input_files`; `?path=row_errors` lists the row-error files
  (`row_errors/<input file>`, each downloadable: the same lines without `record`);
  `?path=input_files` lists the input files' metadata (`input_files/<name>`, each downloadable).

Listings take AEP's `start` and `limit` (at most 100). Failed rows and row errors are there once
the batch finished (`success` or `failed`), for `batch_diagnostics_days`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from koppla.platform.batches import manifest
from koppla.platform.batches.errors import ErrorLog, stream_lines
from koppla.platform.batches.files import BatchFiles
from koppla.platform.batches.manifest import FileReport
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Batch
from koppla.web.auth import Caller, Svc
from koppla.web.routes import dataset_export
from koppla.web.routes.batch_view import ingestion_batch
from koppla.web.services import Services

router = APIRouter(prefix="/data/foundation/export", tags=["AEP data access"])

NDJSON = "application/x-ndjson"
ROW_ERRORS = "row_errors"
INPUT_FILES = "input_files"

Start = Annotated[int, Query(ge=0, description="The first item of the page.")]
PageLimit = Annotated[int, Query(ge=1, le=100, description="Most items in the page.")]


@router.get("/batches/{batch_id}/files")
def batch_files(
    batch_id: str,
    request: Request,
    svc: Svc,
    caller: Caller,
    start: Start = 0,
    limit: PageLimit = 100,
) -> dict[str, Any]:
    """The batch's input files (of an ingestion batch), and its stored rows as files to
    download (`data.json` as sent, `data.parquet`) once it succeeded."""
    batch = svc.catalog.batch(batch_id, caller.org_id, caller.sandbox)  # streaming ones too
    reports = _reports(svc, batch) if batch.ingested else []
    data = [
        {
            "dataSetFileId": f"{batch.id}/{report.name}",
            "name": report.name,
            "size": report.size,
            "records": report.rows,
            "isValid": report.error is None,
            "_links": {
                "self": {"href": _meta_link(request, batch, f"{INPUT_FILES}/{report.name}")}
            },
        }
        for report in reports
    ]
    data += dataset_export.data_files(request, batch)
    return _page(data, start, limit)


@router.get("/batches/{batch_id}/failed", response_model=None)
def failed_rows(
    batch_id: str,
    request: Request,
    svc: Svc,
    caller: Caller,
    path: str | None = None,
    start: Start = 0,
    limit: PageLimit = 100,
) -> dict[str, Any] | StreamingResponse:
    """List the failed-rows files, or download one (`path`) as JSON lines."""
    batch = _batch(svc, batch_id, caller)
    files = _error_files(svc, batch)
    if path is None:
        data = [
            _entry(request, f"/batches/{batch.id}/failed", report.name, file, report.failed)
            for report, file in files
        ]
        return _page(data, start, limit)
    for report, file in files:
        if report.name == path:
            return StreamingResponse(stream_lines(file), media_type=NDJSON)
    raise HTTPException(404, detail=f"batch {batch.id!r} has no failed rows in {path!r}")


@router.get("/batches/{batch_id}/meta", response_model=None)
def meta(
    batch_id: str,
    request: Request,
    svc: Svc,
    caller: Caller,
    path: str | None = None,
    start: Start = 0,
    limit: PageLimit = 100,
) -> dict[str, Any] | StreamingResponse:
    """List the batch's meta files (`row_errors`, `input_files`), or read one (`path`)."""
    batch = _batch(svc, batch_id, caller)
    where = f"/batches/{batch.id}/meta"
    if path is None:
        data = [
            {"name": name, "_links": {"self": {"href": _link(request, where, name)}}}
            for name in (ROW_ERRORS, INPUT_FILES)
        ]
        return _page(data, start, limit)
    if path == ROW_ERRORS:
        data = [
            _entry(request, where, f"{ROW_ERRORS}/{report.name}", file, report.failed)
            for report, file in _error_files(svc, batch)
        ]
        return _page(data, start, limit, path)
    if path == INPUT_FILES:
        data = [
            {
                "name": f"{INPUT_FILES}/{report.name}",
                "length": str(report.size),
                "_links": {"self": {"href": _link(request, where, f"{INPUT_FILES}/{report.name}")}},
            }
            for report in _reports(svc, batch)
        ]
        return _page(data, start, limit, path)
    return _meta_file(svc, batch, path)


def _meta_file(svc: Services, batch: Batch, path: str) -> dict[str, Any] | StreamingResponse:
    folder, _, name = path.partition("/")
    if folder == ROW_ERRORS:
        for report, file in _error_files(svc, batch):
            if report.name == name:
                return StreamingResponse(stream_lines(file, with_records=False), media_type=NDJSON)
    if folder == INPUT_FILES:
        for report in _reports(svc, batch):
            if report.name == name:
                return _input_file(batch, report)
    raise HTTPException(404, detail=f"batch {batch.id!r} has no meta file {path!r}")


def _input_file(batch: Batch, report: FileReport) -> dict[str, Any]:
    return {
        "name": report.name,
        "sizeInBytes": report.size,
        "format": batch.input_format,
        "records": report.rows,
        "failedRecords": report.failed,
        "skippedRecords": report.skipped,
        "isValid": report.error is None,
        "error": report.error,
    }


def _batch(svc: Services, batch_id: str, caller: Principal) -> Batch:
    return ingestion_batch(svc.catalog, batch_id, caller)


def _reports(svc: Services, batch: Batch) -> list[FileReport]:
    """The batch's input files: from its manifest once finished, else as uploaded so far."""
    files = BatchFiles(svc.layout)
    found = manifest.read(files.directory(batch.id))
    if found is not None:
        return found
    if batch.status not in ("loading", "processing"):
        return []
    return [FileReport(n, f.name, f.size) for n, f in enumerate(files.inputs(batch.id))]


def _error_files(svc: Services, batch: Batch) -> list[tuple[FileReport, Path]]:
    """Each input file with refused rows, and its row-error file (finished batches only)."""
    if batch.status not in ("success", "failed"):
        return []
    directory = BatchFiles(svc.layout).directory(batch.id)
    reports = manifest.read(directory) or []
    errors = ErrorLog(directory)
    return [
        (r, errors.path(r.index)) for r in reports if r.failed and errors.path(r.index).exists()
    ]


def _entry(request: Request, where: str, name: str, file: Path, records: int) -> dict[str, Any]:
    return {
        "name": name,
        "length": str(file.stat().st_size),
        "records": records,
        "_links": {"self": {"href": _link(request, where, name)}},
    }


def _link(request: Request, where: str, name: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}{router.prefix}{where}?path={quote(name, safe='/')}"


def _meta_link(request: Request, batch: Batch, name: str) -> str:
    return _link(request, f"/batches/{batch.id}/meta", name)


def _page(
    data: list[dict[str, Any]], start: int, limit: int, path: str | None = None
) -> dict[str, Any]:
    """One page of a listing; its `next` link keeps the listing's `path`, if it has one."""
    shown = data[start : start + limit]
    page: dict[str, Any] = {"data": shown, "_page": {"limit": limit, "count": len(shown)}}
    if start + limit < len(data):
        listing = "" if path is None else f"path={quote(path, safe='/')}&"
        page["_links"] = {"next": {"href": f"?{listing}start={start + limit}&limit={limit}"}}
    return page
