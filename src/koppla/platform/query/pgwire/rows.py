"""Where a portal's rows come from: a small answer held whole, or a query streaming from the engine.

`EngineRows` runs `QueryEngine.stream` off the event loop: each batch is read and encoded as
DataRow messages in a worker thread, one slice (at most `SLICE_BYTES` of Arrow data) ahead of
the one being written, so memory holds about one batch and two slices whatever the result's size
and the event loop never waits on DuckDB. `CatalogRows` runs a catalogue query the same way,
whole but capped (`catalog.CatalogQuery`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from typing import Any, Protocol

import pyarrow as pa

from koppla.platform.query.errors import QueryFailed
from koppla.platform.query.pgwire.types import encode_batch
from koppla.platform.query.result import Column, TableInfo

BATCH_ROWS = 2048
"""Rows read from the engine at a time: one DuckDB vector, so a wide result holds no more
than DuckDB itself does; slices then bound what is encoded and sent at once."""
SLICE_BYTES = 4 * 2**20
"""Most Arrow bytes encoded and sent as one chunk (a wide batch is sliced)."""
CHUNK_BYTES = 2**20
"""About how many DataRow bytes a held answer hands out per chunk."""


class RowStreamLike(Protocol):
    """What the engine's `RowStream` offers."""

    columns: tuple[Column, ...]

    def batches(self, rows: int = ...) -> Iterator[pa.RecordBatch]:
        """The rows, a batch at a time."""
        ...

    def cancel(self) -> None:
        """Stop the query from any thread."""
        ...


class QueryEngineLike(Protocol):
    """The part of `QueryEngine` the PostgreSQL server uses."""

    def stream(
        self,
        sql: str,
        *,
        scope: tuple[str, str] | None = None,
        params: Sequence[object] | None = None,
        timeout_s: float | None = None,
    ) -> AbstractContextManager[Any]:
        """Run one SELECT whose rows are read while the block lasts."""
        ...

    def tables_info(self, scope: tuple[str, str] | None = None) -> list[TableInfo]:
        """The datasets the scope may query, with their columns."""
        ...


class Rows(Protocol):
    """A portal's result: columns known up front, then DataRow messages a chunk at a time."""

    columns: tuple[Column, ...]
    tag: str | None
    """The CommandComplete tag when it is not `SELECT <rows>` (a command's `SET`, `BEGIN`)."""
    holds_slot: bool
    """True while open the rows hold one of the engine's query slots."""

    @property
    def done(self) -> bool:
        """True once the last chunk was handed out."""
        ...

    async def next_chunk(self) -> list[bytes] | None:
        """The next DataRow messages; None after the last."""
        ...

    def cancel(self) -> None:
        """Stop producing rows (from any thread)."""
        ...

    async def close(self) -> None:
        """Release what the rows hold (engine slot, cursor)."""
        ...


class StaticRows:
    """Rows already at hand: a session command's answer, or a catalogue query's."""

    holds_slot = False

    def __init__(
        self, columns: tuple[Column, ...], rows: list[bytes], tag: str | None = None
    ) -> None:
        self.columns = columns
        self.tag = tag
        self._rows = rows
        self._at = 0

    @property
    def done(self) -> bool:
        """True once the rows were handed out."""
        return self._at >= len(self._rows)

    async def next_chunk(self) -> list[bytes] | None:
        """The next rows, about `CHUNK_BYTES` at a time, then None."""
        if self.done:
            self._rows = []
            return None
        end, size = self._at, 0
        while end < len(self._rows) and (size < CHUNK_BYTES or end == self._at):
            size += len(self._rows[end])
            end += 1
        chunk, self._at = self._rows[self._at : end], end
        return chunk

    def cancel(self) -> None:
        """Nothing runs: nothing to stop."""

    async def close(self) -> None:
        """Drop the rows."""
        self._rows, self._at = [], 0


def table_rows(columns: tuple[Column, ...], table: pa.Table) -> StaticRows:
    """A small Arrow table's rows, encoded."""
    return StaticRows(columns, encode_batch(table))


class Interruptible(Protocol):
    """A query run whole in a worker thread that any thread may stop (`CatalogQuery`)."""

    def interrupt(self) -> None:
        """Stop the query (before, while or after it runs)."""
        ...


class CatalogRows:
    """A catalogue query: run whole in a worker thread by `open`, stoppable by `cancel`."""

    holds_slot = False

    def __init__(
        self,
        executor: Executor,
        query: Interruptible,
        run: Callable[[], tuple[tuple[Column, ...], pa.Table]],
    ) -> None:
        self.columns: tuple[Column, ...] = ()
        self.tag: str | None = None
        self._executor = executor
        self._query = query
        self._run = run
        self._running: asyncio.Future[StaticRows] | None = None
        self._rows: StaticRows | None = None

    async def open(self) -> None:
        """Run the query and encode its rows (in a worker thread); raises what the query does."""
        loop = asyncio.get_running_loop()
        self._running = asyncio.ensure_future(loop.run_in_executor(self._executor, self._answer))
        self._rows = await asyncio.shield(self._running)
        self.columns = self._rows.columns

    def _answer(self) -> StaticRows:
        columns, table = self._run()
        return table_rows(columns, table)

    @property
    def done(self) -> bool:
        """True once the rows were handed out."""
        return self._rows is None or self._rows.done

    async def next_chunk(self) -> list[bytes] | None:
        """The next rows; None after the last."""
        return None if self._rows is None else await self._rows.next_chunk()

    def cancel(self) -> None:
        """Stop the query; `open` then raises the cancel error."""
        self._query.interrupt()

    async def close(self) -> None:
        """Stop the query if still running, wait for its thread, drop the rows."""
        self._query.interrupt()
        if self._running is not None:
            with contextlib.suppress(BaseException):
                await self._running
        self._rows = None


class EngineRows:
    """A streamed engine query; create with `open`, always `close`."""

    holds_slot = True

    def __init__(
        self, executor: Executor, start: Callable[[], AbstractContextManager[Any]]
    ) -> None:
        self.columns: tuple[Column, ...] = ()
        self.tag: str | None = None
        self._executor = executor
        self._start = start
        self._context: AbstractContextManager[Any] | None = None
        self._stream: RowStreamLike | None = None
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._ahead: asyncio.Future[list[bytes] | None] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._cancelled = False
        self._done = False

    async def open(self) -> None:
        """Start the query (in a worker thread) and learn its columns."""
        loop = asyncio.get_running_loop()
        self._opening = asyncio.ensure_future(loop.run_in_executor(self._executor, self._open))
        await asyncio.shield(self._opening)
        if self._cancelled and self._stream is not None:
            self._stream.cancel()

    def _open(self) -> None:
        context = self._start()
        stream = context.__enter__()
        self._context, self._stream = context, stream
        self.columns = tuple(stream.columns)
        self._batches = sliced(stream.batches(BATCH_ROWS), SLICE_BYTES)

    @property
    def done(self) -> bool:
        """True once the last batch was read."""
        return self._done

    async def next_chunk(self) -> list[bytes] | None:
        """The next batch's DataRows (the one after is read meanwhile); None at the end."""
        if self._done:
            return None
        ahead = self._ahead or self._fetch()
        self._ahead = None
        chunk = await ahead
        if chunk is None:
            self._done = True
        else:
            self._ahead = self._fetch()
        return chunk

    def _fetch(self) -> asyncio.Future[list[bytes] | None]:
        loop = asyncio.get_running_loop()
        return asyncio.ensure_future(loop.run_in_executor(self._executor, self._read))

    def _read(self) -> list[bytes] | None:
        if self._batches is None:
            return None
        if self._cancelled:  # an interrupt before DuckDB starts executing would be lost
            raise QueryFailed("query was cancelled")
        for batch in self._batches:
            if batch.num_rows:
                return encode_batch(batch)
        return None

    def cancel(self) -> None:
        """Stop the query; the reading thread then raises the engine's cancel error."""
        self._cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    async def close(self) -> None:
        """Stop the query if still running and leave the engine's block (frees its slot)."""
        self._cancelled = True
        if self._opening is not None:
            with contextlib.suppress(BaseException):
                await self._opening
        if self._stream is not None and not self._done:
            self._stream.cancel()
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                await self._ahead
            self._ahead = None
        context, self._context = self._context, None
        if context is not None:
            with contextlib.suppress(Exception):
                await self._in_thread(lambda: context.__exit__(None, None, None))

    async def _in_thread(self, work: Callable[[], object]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, work)


def sliced(batches: Iterator[pa.RecordBatch], max_bytes: int) -> Iterator[pa.RecordBatch]:
    """`batches` cut so that a slice holds about `max_bytes` at most (one row at least)."""
    for batch in batches:
        size = batch.nbytes
        if size <= max_bytes or batch.num_rows <= 1:
            yield batch
            continue
        rows = max(1, batch.num_rows * max_bytes // size)
        for offset in range(0, batch.num_rows, rows):
            yield batch.slice(offset, rows)
