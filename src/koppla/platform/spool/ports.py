"""The spool's seams: what the edge writes to and what the pipeline reads from.

The embedded default is a directory of fsync'd segment files (`LocalSpoolSource`, `SpoolWriter`).
A scale-out deployment swaps in a message-log back-end (a RabbitMQ stream, say) with the same
shapes: named streams of records, each with an ordered integer position, so the pipeline's
exactly-once commits (Delta app transactions keyed by stream and position) work unchanged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from koppla.platform.spool.position import Position
from koppla.platform.spool.reader import ReadResult, SpoolReader, list_streams


class SpoolSink(Protocol):
    """Where the edge appends accepted requests; the future resolves once durable."""

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        """Queue `payload`; resolves with its position when it is durable."""
        ...

    def close(self) -> None:
        """Flush and release."""
        ...


class SpoolSource(Protocol):
    """Where the pipeline reads accepted requests from, stream by stream."""

    def streams(self) -> list[str]:
        """The names of the streams to drain."""
        ...

    def read(self, stream: str, after: Position) -> ReadResult:
        """Records of `stream` after `after`, in order."""
        ...

    def release(self, stream: str, before: Position) -> None:
        """Records before `before` are stored for good; their space may be freed."""
        ...

    def close(self) -> None:
        """Release connections and buffers."""
        ...


class LocalSpoolSource:
    """The embedded spool directory as a `SpoolSource`."""

    def __init__(self, spool_dir: Path) -> None:
        self._dir = spool_dir
        self._readers: dict[str, SpoolReader] = {}

    def _reader(self, stream: str) -> SpoolReader:
        reader = self._readers.get(stream)
        if reader is None:
            reader = self._readers[stream] = SpoolReader(self._dir, stream)
        return reader

    def streams(self) -> list[str]:
        """Every stream directory under the spool."""
        return list_streams(self._dir)

    def read(self, stream: str, after: Position) -> ReadResult:
        """Records of `stream` after `after`."""
        return self._reader(stream).read(after)

    def release(self, stream: str, before: Position) -> None:
        """Delete finished segments before `before`."""
        self._reader(stream).release(before)

    def close(self) -> None:
        """Nothing to release: each read opens and closes its segment file."""
