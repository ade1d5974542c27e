"""A finished query's rows on disk: one Arrow IPC file per job, read a page at a time.

Rows are written as the engine streams them, in record batches of exactly `BATCH_ROWS` rows (the
last may be shorter), to `<id>.arrow.tmp`; the file is fsynced and renamed into place only when
the query succeeded, so a file under its final name is always complete. A page reads only the
batches it overlaps (the file is memory-mapped), so paging never loads a whole result.

Arrow IPC rather than Parquet: Parquet cannot hold some types a SELECT yields (INTERVAL, UNION)
nor two columns of one name (`SELECT 1 AS a, 2 AS a`); Arrow IPC holds whatever the engine sends.
Values are turned back into DuckDB's Python values (through DuckDB's own Arrow reader), so a page
has the same JSON values as `POST /api/v1/query` (`json_value`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Self

import duckdb
import pyarrow as pa

from koppla.platform.query.result import json_value

BATCH_ROWS = 1_000
"""Rows per record batch in a result file; a page of at most 1000 rows spans two batches."""
_SUFFIX = ".arrow"
_TEMP = ".arrow.tmp"


class ResultWriter:
    """Writes one job's rows; `commit` makes them visible, `abort` (or no commit) drops them."""

    def __init__(self, final: Path, schema: pa.Schema) -> None:
        self._final = final
        self._temp = final.with_suffix(_TEMP)
        self._schema = schema
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        self._writer = pa.ipc.new_file(str(self._temp), schema, options=options)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Add rows; they are written in batches of `BATCH_ROWS`."""
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        while self._pending_rows >= BATCH_ROWS:
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            self._emit(table.slice(0, BATCH_ROWS))
            rest = table.slice(BATCH_ROWS)
            self._pending = rest.to_batches()
            self._pending_rows = rest.num_rows

    def commit(self) -> None:
        """Write what is pending, close, fsync and rename the file into place."""
        if self._pending_rows:
            self._emit(pa.Table.from_batches(self._pending, schema=self._schema))
        self._pending, self._pending_rows = [], 0
        self._writer.close()
        with open(self._temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(self._temp, self._final)
        _fsync_dir(self._final.parent)

    def abort(self) -> None:
        """Drop the rows written so far."""
        try:
            self._writer.close()
        finally:
            self._temp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._temp.exists():
            self.abort()

    def _emit(self, table: pa.Table) -> None:
        combined = table.combine_chunks()
        for batch in combined.to_batches(max_chunksize=BATCH_ROWS) or [
            pa.RecordBatch.from_pylist([], schema=self._schema)
        ]:
            self._writer.write_batch(batch)


class ResultFiles:
    """The result files of every job, in one private directory."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        self._dir = directory
        self._convert = duckdb.connect()  # only ever reads Arrow tables written here
        self._lock = threading.Lock()

    def writer(self, job_id: str, schema: pa.Schema) -> ResultWriter:
        """A writer for `job_id`'s rows."""
        return ResultWriter(self.path(job_id), schema)

    def path(self, job_id: str) -> Path:
        """Where `job_id`'s rows are kept."""
        return self._dir / f"{job_id}{_SUFFIX}"

    def page(self, job_id: str, start: int, limit: int) -> list[list[Any]]:
        """Rows `start` to `start + limit` (fewer at the end) as JSON values, in order."""
        with pa.memory_map(str(self.path(job_id))) as source:
            reader = pa.ipc.open_file(source)
            first = start // BATCH_ROWS
            last = min((start + limit - 1) // BATCH_ROWS, reader.num_record_batches - 1)
            if first > last:
                return []
            batches = [reader.get_batch(i) for i in range(first, last + 1)]
            table = pa.Table.from_batches(batches, schema=reader.schema)
            table = table.slice(start - first * BATCH_ROWS, limit)
            return [[json_value(value) for value in row] for row in self._values(table)]

    def delete(self, job_id: str) -> None:
        """Delete `job_id`'s rows, if any."""
        self.path(job_id).unlink(missing_ok=True)
        self.path(job_id).with_suffix(_TEMP).unlink(missing_ok=True)

    def sweep(self) -> None:
        """Delete files left half-written by a process that stopped mid-query."""
        for stale in self._dir.glob(f"*{_TEMP}"):
            stale.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the converter."""
        with self._lock:
            self._convert.close()

    def _values(self, table: pa.Table) -> list[tuple[Any, ...]]:
        """DuckDB's Python values of `table`'s rows (Arrow's own when DuckDB cannot read it)."""
        renamed = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
        try:
            with self._lock:
                cursor = self._convert.cursor()
            try:
                rows: list[tuple[Any, ...]] = cursor.from_arrow(renamed).fetchall()
            finally:
                cursor.close()
        except duckdb.Error:
            columns = [column.to_pylist() for column in table.columns]
            rows = list(zip(*columns, strict=True))
        return rows


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
