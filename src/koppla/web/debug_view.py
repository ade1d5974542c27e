"""What the live debugger shows for one request: each event, its identity and its validation."""

from __future__ import annotations

from typing import Any

from koppla.core import clock
from koppla.platform.catalog.models import Dataset
from koppla.platform.edge.debug import Tapped
from koppla.platform.pipeline.incoming import Unreadable, unpack
from koppla.xdm.event_types import validate_event
from koppla.xdm.types import Schema


def describe(item: Tapped, dataset: Dataset | None, schema: Schema | None) -> list[dict[str, Any]]:
    """One JSON-ready entry per event of a tapped request, validated as the pipeline will."""
    record = item.record
    try:
        events = unpack(record)
    except Unreadable as error:
        return [{"requestId": record.request_id, "outcome": f"unreadable: {error}"}]
    shown: list[dict[str, Any]] = []
    for event in events:
        issues = [] if schema is None else validate_event(schema, event.xdm).issues
        shown.append(
            {
                "receivedAt": clock.iso(event.received_at),
                "requestId": record.request_id,
                "datastreamId": record.datastream_id,
                "dataset": dataset.name if dataset else None,
                "outcome": item.outcome,
                "eventType": event.xdm.get("eventType"),
                "id": event.event_id,
                "ecid": record.ecid or None,
                "valid": not issues,
                "issues": [{"path": i.path, "code": i.code, "message": i.message} for i in issues],
                "xdm": event.xdm,
            }
        )
    return shown
