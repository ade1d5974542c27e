"""AEP streaming ingestion: `POST /collection/{connectionId}` and `/collection/batch/{id}`.

The connection id is a Koppla datastream id. Messages are checked for shape, spooled durably and
acknowledged; XDM validation happens in the pipeline (failures land in the quarantine), or at
once for a single message sent with `?syncValidation=true`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from koppla.core import clock, codec, envelope, ids
from koppla.core.envelope import EdgeRecord
from koppla.core.errors import InvalidInput, NotFound
from koppla.core.nesting import json_deeper_than
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Datastream
from koppla.platform.spool.ports import SpoolSink
from koppla.platform.spool.writer import SpoolClosed, SpoolFull
from koppla.web.auth import Caller, Svc
from koppla.web.services import Services
from koppla.xdm.event_types import validate_event

router = APIRouter(tags=["streaming ingestion"])


def _check_message(message: Any, where: str, stream: Datastream, svc: Services) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise HTTPException(400, detail=f"{where} must be an object with header and body")
    header, body = message.get("header"), message.get("body")
    if not isinstance(header, dict):
        raise HTTPException(400, detail=f"{where}.header is required")
    if not isinstance(header.get("datasetId"), str) or not header["datasetId"]:
        raise HTTPException(400, detail=f"{where}.header.datasetId is required")
    org = header.get("imsOrgId")
    if org is not None and org != stream.org_id:
        raise HTTPException(
            403, detail=f"{where}.header.imsOrgId {org!r} is not the connection's organization"
        )
    if not isinstance(body, dict) or not isinstance(body.get("xdmEntity"), dict):
        raise HTTPException(400, detail=f"{where}.body.xdmEntity must be an object")
    try:
        svc.catalog.dataset(header["datasetId"], stream.org_id, stream.sandbox)
    except NotFound as error:
        raise HTTPException(
            400,
            detail=f"{where}.header.datasetId: no dataset {header['datasetId']!r} in the "
            "connection's organization and sandbox",
        ) from error
    return message


async def _accept(
    request: Request, svc: Svc, connection_id: str, messages: list[dict[str, Any]]
) -> tuple[int, str]:
    """Spool the messages; returns the time of receipt and a transaction id prefix."""
    received = clock.now_ms()
    record = EdgeRecord(
        received_ms=received,
        datastream_id=connection_id,
        org_id="",
        ecid="",
        request_id=ids.new_uuid(),
        origin="",
        kind="streaming",
        body=codec.dumps({"messages": messages}),
    )
    spool: SpoolSink = request.app.state.spool
    try:
        await spool.append(envelope.encode(record))
    except SpoolClosed as error:  # closed, failed, or full (backpressure)
        retry = {"Retry-After": str(error.retry_after_s)}
        detail = str(error) if isinstance(error, SpoolFull) else "cannot be stored right now"
        raise HTTPException(503, detail=detail, headers=retry) from error
    except InvalidInput as error:  # larger than a message of the shared log may be
        raise HTTPException(413, detail="the request is larger than can be stored") from error
    return received, record.request_id


async def _body(request: Request, max_depth: int) -> Any:
    raw = await request.body()  # at most `max_body_streaming_bytes`: web/limits.py cuts it off
    try:
        body = codec.loads(raw)
    except codec.JSONDecodeError as error:
        raise HTTPException(400, detail=f"the body is not valid JSON: {error}") from error
    if json_deeper_than(raw, max_depth):
        raise HTTPException(
            400,
            detail=f"the body nests deeper than {max_depth} levels of objects and arrays "
            "(edge_max_depth)",
        )
    return body


def _connection(svc: Svc, connection_id: str, caller: Principal) -> Datastream:
    try:
        return svc.catalog.datastream(connection_id, caller.org_id, caller.sandbox)
    except NotFound as error:
        raise HTTPException(404, detail=f"no streaming connection {connection_id!r}") from error


@router.post("/collection/batch/{connection_id}", status_code=207)
async def collect_batch(
    connection_id: str, request: Request, svc: Svc, caller: Caller
) -> JSONResponse:
    """Take up to 1 MB and `edge_max_events` messages; 207 with one transaction id per message."""
    stream = _connection(svc, connection_id, caller)
    body = await _body(request, svc.settings.edge_max_depth)
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise HTTPException(400, detail="the body must hold a non-empty 'messages' array")
    most = svc.settings.edge_max_events
    if len(messages) > most:
        raise HTTPException(
            413,
            detail=f"the batch holds {len(messages)} messages; at most {most} are allowed per "
            "request (edge_max_events)",
        )
    checked = [_check_message(m, f"messages[{i}]", stream, svc) for i, m in enumerate(messages)]
    received, xaction = await _accept(request, svc, connection_id, checked)
    return JSONResponse(
        status_code=207,
        content={
            "inletId": connection_id,
            "batchId": xaction,
            "receivedTimeMs": received,
            "responses": [{"xactionId": f"{xaction}:{i}"} for i in range(len(checked))],
        },
    )


@router.post("/collection/{connection_id}")
async def collect_one(
    connection_id: str, request: Request, svc: Svc, caller: Caller, syncValidation: bool = False
) -> dict[str, Any]:
    """Take one message; with `syncValidation=true`, invalid XDM is refused with every issue."""
    stream = _connection(svc, connection_id, caller)
    body = await _body(request, svc.settings.edge_max_depth)
    message = _check_message(body, "message", stream, svc)
    if syncValidation:
        dataset = svc.catalog.dataset(message["header"]["datasetId"], stream.org_id, stream.sandbox)
        entity = dict(message["body"]["xdmEntity"])
        entity.setdefault("_id", "sync-validation")
        issues = validate_event(svc.registry.get(dataset.schema_id), entity).issues
        if issues:
            raise HTTPException(
                400,
                detail={
                    "message": "the record does not conform to the dataset's schema",
                    "issues": [
                        {"path": i.path, "code": i.code, "message": i.message} for i in issues
                    ],
                },
            )
    received, xaction = await _accept(request, svc, connection_id, [message])
    return {"inletId": connection_id, "xactionId": f"{xaction}:0", "receivedTimeMs": received}
