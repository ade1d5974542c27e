"""Export a dataset's events as they were sent: JSON lines, or Parquet in the schema's columns.

Rows are read from the dataset's Delta table in record batches (bounded memory, whatever the
table's size), filtered by `timestamp` and `_batch_id` as they are read, so files that cannot
hold a matching row are skipped. They come in storage order (the order the batches landed in),
not sorted. JSON lines hold each event as sent (`as_sent.sent_record`); Parquet holds the rows
as stored, in the schema's XDM columns only (see docs/export.md).

A table is a local path, or an object-store URI read with the deployment's storage options
(`TableLocation.storage_options()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.platform.datasets.as_sent import sent_record
from koppla.platform.datasets.location import arrow_filesystem
from koppla.xdm.arrow import arrow_schema
from koppla.xdm.types import Schema

Format = Literal["jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "parquet")

BATCH_ROWS = 1000
"""Rows read at a time: what one step of an export holds in memory."""
CHUNK_BYTES = 64 * 1024
"""About how many bytes of JSON lines a streamed answer sends at a time."""


def scan(
    table_path: str | Path,
    *,
    storage_options: Mapping[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_id: str | None = None,
    columns: list[str] | None = None,
    limit: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The table's rows in record batches: `since <= timestamp < until`, of batch `batch_id`.

    Nothing when there is no table at `table_path`; `InvalidInput` (field `since`/`until`) when
    a time bound is given for a table without a `timestamp` column (a dataset of profiles).
    At most `limit` rows when given. Data files are read through Arrow's own file system for
    the table (no Python on Arrow's I/O threads).
    """
    options = dict(storage_options) if storage_options else None
    if not DeltaTable.is_deltatable(str(table_path), storage_options=options):
        return
    table = DeltaTable(str(table_path), storage_options=options)
    dataset = table.to_pyarrow_dataset(filesystem=arrow_filesystem(table_path, options))
    condition = _condition(dataset.schema, since, until, batch_id)
    scanner = dataset.scanner(
        columns=columns,
        filter=condition,
        batch_size=BATCH_ROWS,
        batch_readahead=1,
        fragment_readahead=1,
    )
    left = limit
    for batch in scanner.to_batches():
        if left is not None:
            if left <= 0:
                return
            batch = batch.slice(0, left)
            left -= batch.num_rows
        if batch.num_rows:
            yield batch


def _condition(
    schema: pa.Schema, since: datetime | None, until: datetime | None, batch_id: str | None
) -> pc.Expression | None:
    """The row filter, pushed down to the Parquet files (their statistics prune them)."""
    parts: list[pc.Expression] = []
    for name, bound in (("since", since), ("until", until)):
        if bound is None:
            continue
        if "timestamp" not in schema.names:
            raise _no_timestamp(name)
        moment = pa.scalar(utc(bound), type=pa.timestamp("us", tz="UTC"))
        column = pc.field("timestamp")
        parts.append(column >= moment if name == "since" else column < moment)
    if batch_id is not None:
        parts.append(pc.field("_batch_id") == batch_id)
    if not parts:
        return None
    condition = parts[0]
    for part in parts[1:]:
        condition = condition & part
    return condition


def _no_timestamp(name: str) -> InvalidInput:
    return InvalidInput(
        f"--{name}: this dataset has no timestamp field (it holds profiles, not events)",
        field=name,
    )


def _check_bounds(schema: Schema, since: datetime | None, until: datetime | None) -> None:
    """`InvalidInput` when a time bound is given for a schema without `timestamp`."""
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and "timestamp" not in schema.root.fields:
            raise _no_timestamp(name)


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a moment without an offset is taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def export_rows(
    table_path: str | Path,
    schema: Schema,
    *,
    storage_options: Mapping[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_id: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of a dataset of `schema` as they were sent (see `scan` for the filters)."""
    _check_bounds(schema, since, until)
    found = scan(
        table_path,
        storage_options=storage_options,
        since=since,
        until=until,
        batch_id=batch_id,
        limit=limit,
    )
    for batch in found:
        for row in batch.to_pylist():
            yield sent_record(row, schema)


def export_batches(
    table_path: str | Path,
    schema: Schema,
    *,
    storage_options: Mapping[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_id: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows as stored, in the schema's XDM columns only (`parquet_schema`), batch by batch."""
    _check_bounds(schema, since, until)
    target = parquet_schema(schema)
    found = scan(
        table_path,
        storage_options=storage_options,
        since=since,
        until=until,
        batch_id=batch_id,
        columns=target.names,
    )
    for batch in found:
        yield pa.Table.from_batches([batch]).cast(target).to_batches()[0]


def parquet_schema(schema: Schema) -> pa.Schema:
    """The columns of a Parquet export: the dataset's XDM fields, without system columns."""
    return arrow_schema(schema)


def jsonl_chunks(records: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """`records` as JSON lines (one object a line), in chunks of about `CHUNK_BYTES`."""
    pending: list[bytes] = []
    size = 0
    for record in records:
        line = codec.dumps(record) + b"\n"
        pending.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def write_jsonl(records: Iterable[dict[str, Any]], out: BinaryIO) -> int:
    """Write `records` to `out` as JSON lines; how many were written."""
    count = 0
    for record in records:
        out.write(codec.dumps(record) + b"\n")
        count += 1
    return count


class _Chunks:
    """A write-only file that keeps what is written until it is taken (`take`)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: the written bytes wait for `take`."""

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        """What was written since the last `take`."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def parquet_chunks(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    """A Parquet file of `batches` (one row group each), in chunks as it is written."""
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema)
    try:
        for batch in batches:
            writer.write_batch(batch)
            chunk = sink.take()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.take()


def write_parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema, out: BinaryIO) -> int:
    """Write `batches` to `out` as one Parquet file of `schema`; how many rows were written."""
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            count += batch.num_rows
    return count
