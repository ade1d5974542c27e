"""Fetching a query's rows within a row cap and a byte cap.

DuckDB's `memory_limit` covers what the engine holds, not the Python values a result becomes:
`SELECT repeat('x', 5000000) FROM range(200)` is one gigabyte of Python strings (and more as
JSON) however low the limit. So rows are fetched a few at a time and their values' sizes added
up; past `max_bytes` the query fails, naming the setting, before the next rows are fetched. A
chunk never holds more rows than the largest row so far says fit in what is left.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from koppla.platform.query.errors import QueryFailed

MAX_CHUNK_ROWS = 256
"""Most rows fetched at once (fewer while rows are large)."""


class RowSource(Protocol):
    """What a DuckDB cursor offers for reading a result a few rows at a time."""

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        """Up to `size` more rows; an empty list at the end."""
        ...


def value_bytes(value: Any) -> int:
    """About how much memory a Python value of a result takes, its items included."""
    size = sys.getsizeof(value)
    if isinstance(value, list | tuple):
        return size + sum(value_bytes(item) for item in value)
    if isinstance(value, dict):
        return size + sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    return size


def fetch_rows(source: RowSource, max_rows: int, max_bytes: int) -> list[tuple[Any, ...]]:
    """Up to `max_rows + 1` rows (one more tells the caller the result was truncated);
    `QueryFailed` naming `query_max_result_bytes` once they take more than `max_bytes`."""
    rows: list[tuple[Any, ...]] = []
    used = largest = 0
    chunk = 1
    while len(rows) <= max_rows:
        wanted = min(chunk, max_rows + 1 - len(rows))
        fetched = source.fetchmany(wanted)
        for row in fetched:
            size = value_bytes(row)
            used += size
            largest = max(largest, size)
        if used > max_bytes:
            raise QueryFailed(too_large(max_bytes, len(rows) + len(fetched)))
        rows.extend(fetched)
        if len(fetched) < wanted:
            break
        chunk = max(1, min(MAX_CHUNK_ROWS, chunk * 2, (max_bytes - used) // max(largest, 1)))
    return rows


def too_large(max_bytes: int, rows: int) -> str:
    """Why a result was refused: it passed the byte cap within its first `rows` rows."""
    return (
        f"the result is larger than query_max_result_bytes ({_readable(max_bytes)}) within "
        f"its first {rows} rows: select fewer or narrower columns, fewer rows (LIMIT), or "
        "aggregate; an operator can raise query_max_result_bytes"
    )


def _readable(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"
