"""A finished query's rows on disk: one Arrow IPC file per job, read a page at a time.

Rows are written as the engine streams them, in record batches of exactly `BATCH_ROWS` rows (the
last may be shorter), to `<id>.arrow.tmp`; the file is fsynced and renamed into place only when
the query succeeded, so a file under its final name is always complete. A page reads only the
batches it overlaps (the file is memory-mapped), so paging never loads a whole result, and turns
into Python values only the rows that fit its byte budget (`budget`): a page of wide rows holds
fewer rows than asked, and a row wider than the budget alone is refused (`RowTooLarge`).

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

from koppla.platform.query.jobs.budget import fitting_rows, rows_within
from koppla.platform.query.result import json_value

BATCH_ROWS = 1_000
"""Rows per record batch in a result file; a page of at most 1000 rows spans two batches."""
_SUFFIX = ".arrow"
_TEMP = ".arrow.tmp"


class RowTooLarge(Exception):
    """The first row a page asked for alone takes more than the page's byte budget."""

    def __init__(self, row: int) -> None:
        super().__init__(f"row {row} alone is larger than the page's byte budget")
        self.row = row


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
        self.bytes = 0
        """The Arrow bytes of the rows written so far (`RecordBatch.nbytes`)."""
        self.file_bytes = 0
        """The size of the committed file (0 before `commit`)."""

    def write(self, batch: pa.RecordBatch) -> None:
        """Add rows; they are written in batches of `BATCH_ROWS`."""
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
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
            self.file_bytes = os.fstat(written.fileno()).st_size
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

    def page(self, job_id: str, start: int, limit: int, max_bytes: int) -> list[list[Any]]:
        """Rows `start` to `start + limit` as JSON values, in order: fewer at the end, and
        fewer when more would take over `max_bytes`. `RowTooLarge` when row `start` alone
        does; `FileNotFoundError` when the file is gone."""
        with pa.memory_map(str(self.path(job_id))) as source:
            reader = pa.ipc.open_file(source)
            first = start // BATCH_ROWS
            last = min((start + limit - 1) // BATCH_ROWS, reader.num_record_batches - 1)
            if first > last:
                return []
            batches = [reader.get_batch(i) for i in range(first, last + 1)]
            table = pa.Table.from_batches(batches, schema=reader.schema)
            table = table.slice(start - first * BATCH_ROWS, limit)
            if not table.num_rows:
                return []
            table = table.slice(0, fitting_rows(table, max_bytes))
            rows = [[json_value(value) for value in row] for row in self._values(table)]
        del rows[rows_within(rows, max_bytes) :]
        if not rows:
            raise RowTooLarge(start)
        return rows

    def delete(self, job_id: str) -> None:
        """Delete `job_id`'s rows, if any, written or half-written."""
        self.delete_kept(job_id)
        self.path(job_id).with_suffix(_TEMP).unlink(missing_ok=True)

    def delete_kept(self, job_id: str) -> None:
        """Delete `job_id`'s committed rows, if any, leaving a file still being written alone
        (its worker deletes that when it finds the job no longer wants it)."""
        self.path(job_id).unlink(missing_ok=True)

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
