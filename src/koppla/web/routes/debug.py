"""The live event debugger: `GET /api/v1/datastreams/{id}/debug` streams server-sent events.

Each SSE `data:` line is one event the edge received for the datastream, with what became of it
and its validation result, as the pipeline will judge it. Also `GET .../stats`: counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from koppla.core import codec
from koppla.platform.catalog.access import Principal
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge.app import EdgeApp
from koppla.platform.edge.debug import Watcher
from koppla.web.auth import Caller, Svc
from koppla.web.debug_view import describe
from koppla.web.services import Services

router = APIRouter(prefix="/api/v1", tags=["debugger"])

HEARTBEAT_S = 15.0


def _datastream(svc: Services, datastream_id: str, caller: Principal) -> Datastream:
    """The caller's datastream (a datastream of another organization is not found)."""
    return svc.catalog.datastream(datastream_id, caller.org_id, caller.sandbox)


async def _stream(
    request: Request, svc: Services, stream: Datastream, watcher: Watcher
) -> AsyncIterator[bytes]:
    edge: EdgeApp = request.app.state.edge
    dataset = svc.catalog.dataset(stream.event_dataset_id)
    schema = svc.registry.get(dataset.schema_id)
    try:
        yield b": watching datastream " + stream.id.encode() + b"\n\n"
        while not await request.is_disconnected():
            try:
                item = await asyncio.wait_for(watcher.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            for entry in describe(item, dataset, schema):
                if watcher.lost:
                    entry["lostBefore"], watcher.lost = watcher.lost, 0
                yield b"data: " + codec.dumps(entry) + b"\n\n"
    finally:
        edge.hub.unwatch(watcher)


@router.get("/datastreams/{datastream_id}/debug")
async def debug_stream(
    datastream_id: str, request: Request, svc: Svc, caller: Caller
) -> StreamingResponse:
    """Stream what the edge receives for a datastream, each event with its validation result."""
    stream = _datastream(svc, datastream_id, caller)
    edge: EdgeApp = request.app.state.edge
    watcher = edge.hub.watch(stream.id)
    return StreamingResponse(
        _stream(request, svc, stream, watcher),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.get("/datastreams/{datastream_id}/stats")
def datastream_stats(datastream_id: str, svc: Svc, caller: Caller) -> dict[str, Any]:
    """Counters of a datastream, e.g. `droppedByConsent`."""
    stream = _datastream(svc, datastream_id, caller)
    return {"datastreamId": stream.id, "counters": svc.catalog.counters(stream.id)}
