"""A query's rows as a stream of Arrow record batches, for results too large to hold at once.

PostgreSQL clients, query jobs and exports read results this way: DuckDB produces the rows a
batch at a time as the reader asks for them, so memory stays bounded whatever the result's
size. The stream can be cancelled from any thread; the reader then raises `QueryFailed`, or
`QueryTimeout` when the engine's timer cancelled it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa

from koppla.platform.query.errors import QueryFailed, QueryTimeout
from koppla.platform.query.result import Column

DEFAULT_BATCH_ROWS = 10_000


class RowStream:
    """The rows of one running query; read them once with `batches`."""

    def __init__(
        self,
        relation: duckdb.DuckDBPyRelation,
        cursor: duckdb.DuckDBPyConnection,
        timeout_s: float,
        failed: Callable[[duckdb.Error], Exception],
        *,
        expired: threading.Event | None = None,
    ) -> None:
        self.columns = tuple(
            Column(name, str(kind))
            for name, kind in zip(relation.columns, relation.types, strict=True)
        )
        self._relation = relation
        self._cursor = cursor
        self._timeout_s = timeout_s
        self._failed = failed
        self._cancelled = threading.Event()
        self._expired = expired if expired is not None else threading.Event()
        self._reader: pa.RecordBatchReader | None = None

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the batches (runs the query, if it has not started yet)."""
        return self._start(DEFAULT_BATCH_ROWS).schema

    def batches(self, rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The result, `rows` rows per batch at most (the first call chooses the batch size)."""
        reader = self._start(rows)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, OSError, pa.ArrowException) as exc:
                raise self._stopped(exc) from exc
            yield batch

    def cancel(self) -> None:
        """Stop the query; safe from any thread, before it starts, and after it ended."""
        self._cancelled.set()
        self._interrupt()

    def expire(self) -> None:
        """Stop the query because it ran past its time limit (the engine's timer calls this)."""
        self._expired.set()
        self._interrupt()

    def _interrupt(self) -> None:
        # after the stream's block the cursor is closed: nothing runs, nothing to stop
        with contextlib.suppress(duckdb.Error):
            self._cursor.interrupt()

    def _start(self, rows: int) -> pa.RecordBatchReader:
        if self._reader is None:
            if self._cancelled.is_set() or self._expired.is_set():  # before DuckDB started it
                raise self._stopped(QueryFailed("stopped before it started"))
            try:
                self._reader = self._relation.to_arrow_reader(max(1, rows))
            except (duckdb.Error, OSError) as exc:
                raise self._stopped(exc) from exc
        return self._reader

    def _stopped(self, exc: Exception) -> Exception:
        if self._expired.is_set():
            return QueryTimeout(
                f"query stopped: it ran longer than the {self._timeout_s:g} s time limit "
                "(query_stream_timeout_s)"
            )
        if self._cancelled.is_set():
            return QueryFailed("query was cancelled")
        if isinstance(exc, duckdb.Error):
            return self._failed(exc)
        return QueryFailed(f"query failed while its rows were read: {exc}")
