"""Backpressure: a spool sink that refuses new records while the pipeline is too far behind.

The backlog (bytes accepted but not yet stored, every stream together) is measured at most every
`check_every_s`, off the hot path's way: an append costs a clock read while the last measure is
fresh. Past `limit_bytes` an append raises `SpoolFull` before anything is written, so the caller
answers 503 with `Retry-After` and nothing is acknowledged that was not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from koppla.core import clock
from koppla.platform.spool.ports import SpoolSink
from koppla.platform.spool.position import Position
from koppla.platform.spool.writer import SpoolFull

CHECK_EVERY_S = 0.5


class BoundedSink:
    """`sink`, refusing appends while `measure()` (bytes waiting) is over `limit_bytes`."""

    def __init__(
        self,
        sink: SpoolSink,
        measure: Callable[[], int],
        limit_bytes: int,
        *,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self._sink = sink
        self._measure = measure
        self._limit = limit_bytes
        self._check_every_s = check_every_s
        self._checked_at = float("-inf")
        self._waiting = 0

    @property
    def waiting_bytes(self) -> int:
        """The backlog as last measured."""
        return self._waiting

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        """Queue `payload` on the sink; `SpoolFull` while the backlog is over the limit."""
        if self._limit > 0:
            now = clock.monotonic()
            if now - self._checked_at >= self._check_every_s:
                self._checked_at = now
                self._waiting = self._measure()
            if self._waiting >= self._limit:
                raise SpoolFull(
                    f"the pipeline is {self._waiting} bytes behind (spool_max_backlog_bytes is "
                    f"{self._limit}); try again shortly"
                )
        return self._sink.append(payload)

    def close(self) -> None:
        """Close the sink."""
        self._sink.close()

    async def start(self) -> None:
        """Connect the sink now if it connects (a shared log): an unreachable broker shows at
        start-up, and the first request does not wait for the connection."""
        starting = getattr(self._sink, "start", None)
        if starting is not None:
            await starting()

    async def aclose(self) -> None:
        """Close the sink, letting appends in flight finish (a shared log's confirms)."""
        closing = getattr(self._sink, "aclose", None)
        if closing is not None:
            await closing()
        else:
            self._sink.close()
