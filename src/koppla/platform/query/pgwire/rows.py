"""Where a portal's rows come from: a small answer held whole, or a query streaming from the engine.

`EngineRows` runs `QueryEngine.stream` off the event loop: each batch is read and encoded as
DataRow messages in a worker thread, one batch ahead of the one being written, so memory holds at
most two batches whatever the result's size and the event loop never waits on DuckDB.
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

BATCH_ROWS = 8192


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
    """Rows already at hand: a session command's or a catalogue query's answer."""

    def __init__(
        self, columns: tuple[Column, ...], rows: list[bytes], tag: str | None = None
    ) -> None:
        self.columns = columns
        self.tag = tag
        self._rows: list[bytes] | None = rows

    @property
    def done(self) -> bool:
        """True once the rows were handed out."""
        return self._rows is None

    async def next_chunk(self) -> list[bytes] | None:
        """All rows at once, then None."""
        rows, self._rows = self._rows, None
        return rows

    def cancel(self) -> None:
        """Nothing runs: nothing to stop."""

    async def close(self) -> None:
        """Nothing held."""


def table_rows(columns: tuple[Column, ...], table: pa.Table) -> StaticRows:
    """A small Arrow table's rows, encoded."""
    return StaticRows(columns, encode_batch(table))


class EngineRows:
    """A streamed engine query; create with `open`, always `close`."""

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
        self._batches = iter(stream.batches(BATCH_ROWS))

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
