"""The quarantine: records that failed validation, kept with every problem found, queryable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

TABLE_NAME = "quarantine"

ISSUE = pa.struct([("path", pa.string()), ("code", pa.string()), ("message", pa.string())])

SCHEMA = pa.schema(
    [
        ("dataset_id", pa.string()),
        ("batch_id", pa.string()),
        ("datastream_id", pa.string()),
        ("request_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("errors", pa.list_(ISSUE)),
        ("record", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One rejected record: where it came from, what was wrong, and the record as sent."""

    dataset_id: str
    batch_id: str
    datastream_id: str
    request_id: str
    event_id: str
    event_type: str | None
    received_at: datetime
    errors: tuple[tuple[str, str, str], ...]
    record: str


def to_arrow(records: Sequence[QuarantinedRecord]) -> pa.Table:
    """The rows of `records` in the quarantine table's schema.

    Text that is not valid Unicode (a lone surrogate, say) is stored with replacement characters
    rather than refused: the quarantine is where records that cannot be stored go, so it must
    take any record.
    """
    rows = [_row(r) for r in records]
    try:
        return pa.Table.from_pylist(rows, schema=SCHEMA)
    except (pa.ArrowException, UnicodeError):
        return pa.Table.from_pylist([_storable(row) for row in rows], schema=SCHEMA)


def _row(r: QuarantinedRecord) -> dict[str, Any]:
    return {
        "dataset_id": r.dataset_id,
        "batch_id": r.batch_id,
        "datastream_id": r.datastream_id,
        "request_id": r.request_id,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "received_at": r.received_at,
        "errors": [{"path": p, "code": c, "message": m} for p, c, m in r.errors],
        "record": r.record,
    }


def _storable(value: Any) -> Any:
    """`value` with every string made valid UTF-8 (unencodable characters replaced)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value
