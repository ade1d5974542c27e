"""Builders for small Delta tables shaped like XDM ExperienceEvents."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

IDENTITY = pa.struct([("id", pa.string()), ("primary", pa.bool_())])
EVENTS = pa.schema(
    [
        ("_id", pa.string()),
        ("eventType", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("commerce", pa.struct([("productViews", pa.struct([("value", pa.float64())]))])),
        ("identityMap", pa.map_(pa.string(), pa.list_(IDENTITY))),
    ]
)


def event(n: int, event_type: str = "commerce.productViews") -> dict[str, Any]:
    """Event number `n`: on day `n` of January 2026, with `n` product views."""
    return {
        "_id": f"e{n}",
        "eventType": event_type,
        "timestamp": datetime(2026, 1, n, 12, 0, tzinfo=UTC),
        "commerce": {"productViews": {"value": float(n)}},
        "identityMap": [("ECID", [{"id": f"ecid-{n}", "primary": True}])],
    }


def append_events(path: Path, events: list[dict[str, Any]]) -> None:
    """Commit `events` to the Delta table at `path` (creating it)."""
    write_deltalake(path, pa.Table.from_pylist(events, schema=EVENTS), mode="append")
