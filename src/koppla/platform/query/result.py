"""The shape of a query's answer, and its JSON twin."""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Column:
    """One result column: its name and DuckDB's type text (`VARCHAR`, `STRUCT(...)`)."""

    name: str
    type: str


@dataclass(frozen=True)
class QueryResult:
    """The rows of one query, capped; `truncated` says more rows existed than were kept."""

    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed_ms: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: `columns`, `rows`, `rowCount`, `truncated`, `elapsedMs`.

        Timestamps become RFC 3339 text (naive ones are taken as UTC), decimals floats, bytes
        base64, structs and maps objects, lists arrays, NaN and infinities `null`.
        """
        return {
            "columns": [{"name": c.name, "type": c.type} for c in self.columns],
            "rows": [[json_value(v) for v in row] for row in self.rows],
            "rowCount": len(self.rows),
            "truncated": self.truncated,
            "elapsedMs": round(self.elapsed_ms, 3),
        }


@dataclass(frozen=True)
class TableInfo:
    """A queryable dataset for a schema browser; `row_count` is from Delta file statistics."""

    name: str
    columns: tuple[Column, ...]
    row_count: int | None
    version: int | None
    """The Delta version read; None for a live table (read fresh for each query)."""


def json_value(value: Any) -> Any:
    """One DuckDB Python value as plain JSON data: str, int, float, bool, None, list or dict."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_json_key(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _rfc3339(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def _json_key(key: Any) -> str:
    value = json_value(key)
    return value if isinstance(value, str) else str(value)


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
