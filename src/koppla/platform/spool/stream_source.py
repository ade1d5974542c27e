"""A pipeline worker's spool on RabbitMQ Streams: the partitions it holds, read from offsets.

`StreamSource` is a `SpoolSource` for a plain (non-async) worker thread. The async client runs
on a loop of its own (`LoopThread`). Each partition the worker reads gets a subscription from
the offset asked for; what the broker delivers is buffered (`PartitionBuffer`) and `read`
returns it in order. A read from another offset than the buffer's (a replay after a crash, a
partition just taken over) subscribes again from there. Partitions the worker no longer holds
(`owned()`) are unsubscribed. Nothing is acknowledged to the broker: the pipeline's own
cursors, committed with its Delta app transactions, say where to resume, and retention frees
the space, so `release` does nothing.

A record at stream offset `o` is `Record(payload, Position(0, o + 1))`: `end.pack()` is the
offset to read from next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rstream.exceptions import ServerError

from koppla.core import clock
from koppla.platform.spool.position import Position
from koppla.platform.spool.reader import ReadResult, Record
from koppla.platform.spool.stream_address import (
    DEFAULT_PREFIX,
    STREAM_ARGUMENTS,
    StreamAddress,
    resolve_partitions,
)
from koppla.platform.spool.stream_buffer import PartitionBuffer
from koppla.platform.spool.stream_link import CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_S, StreamLink
from koppla.platform.spool.stream_loop import LoopThread
from koppla.platform.spool.stream_tail import last_offsets
from koppla.platform.spool.writer import SpoolClosed

log = logging.getLogger(__name__)

READ_MAX_BYTES = 16 * 1024 * 1024
BUFFER_BYTES = 32 * 1024 * 1024
"""Past this much buffered per partition, no more chunks are asked for until reads catch up."""
CREDIT = 32
"""Chunks a subscription may have on their way at once (credited back 16 at a time)."""
FIRST_WAIT_S = 0.2
"""How long a read waits for the first chunk of a new subscription."""
POLL_WAIT_S = 0.05
"""How long a read waits for records when none are buffered (a worker polling an idle
partition sleeps here rather than spinning against the client's thread)."""
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
_CALL_TIMEOUT_S = CONNECT_TIMEOUT_S + 2 * REQUEST_TIMEOUT_S


@dataclass
class _Subscription:
    """One partition's subscription and what it delivered."""

    stream: str
    buffer: PartitionBuffer
    link: StreamLink
    fresh_until: float
    number: int | None = None
    owed: int = 0
    """Credits held back while the buffer was full."""
    ended: bool = field(default=False)

    @property
    def live(self) -> bool:
        return not self.ended and self.link.alive


class StreamSource:
    """Reads the partitions this worker holds from a RabbitMQ stream spool."""

    def __init__(
        self,
        url: str,
        partitions: int | Sequence[str],
        owned: Callable[[], list[str]],
        *,
        prefix: str = DEFAULT_PREFIX,
        max_bytes: int = READ_MAX_BYTES,
        first_wait_s: float = FIRST_WAIT_S,
        poll_wait_s: float = POLL_WAIT_S,
    ) -> None:
        self._address = StreamAddress.parse(url)
        self._names = resolve_partitions(partitions, prefix)
        self._owned = owned
        self._max_bytes = max_bytes
        self._first_wait_s = first_wait_s
        self._poll_wait_s = poll_wait_s
        self._loop = LoopThread("koppla-stream-source")
        self._cond = threading.Condition()
        self._subscriptions: dict[str, _Subscription] = {}
        self._link: StreamLink | None = None
        self._retry_at = float("-inf")
        self._retry_s = RETRY_FIRST_S
        self._closed = False

    @property
    def partitions(self) -> list[str]:
        """Every partition's stream name, held or not."""
        return list(self._names)

    def streams(self) -> list[str]:
        """The partitions this worker holds now (`owned()`); the others are unsubscribed."""
        owned = self._owned()
        with self._cond:
            gone = [
                self._subscriptions.pop(name)
                for name in list(self._subscriptions)
                if name not in owned
            ]
        for subscription in gone:
            self._end(subscription)
        return owned

    def read(self, stream: str, after: Position) -> ReadResult:
        """Records of `stream` from offset `after.pack()` on, in order, about `max_bytes` at
        most. With nothing buffered it waits up to `poll_wait_s` (`first_wait_s` for a new
        subscription's first chunk) and then returns none. Empty while the broker cannot be
        reached."""
        if self._closed:
            return ReadResult([], after)
        offset = after.pack()
        with self._cond:
            current = self._subscriptions.get(stream)
            usable = current is not None and current.live and current.buffer.covers(offset)
        if not usable:
            try:
                current = self._loop.run(self._subscribe(stream, offset), _CALL_TIMEOUT_S)
            except (SpoolClosed, ServerError, ConnectionError, OSError, TimeoutError) as error:
                log.warning("stream spool: %s not readable now: %r", stream, error)
                return ReadResult([], after)
        assert current is not None
        with self._cond:
            until = max(current.fresh_until, clock.monotonic() + self._poll_wait_s)
            while not current.buffer.has_from(offset) and current.live:
                remaining = until - clock.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken = current.buffer.take(offset, self._max_bytes)
            owed = current.owed if current.buffer.size < BUFFER_BYTES else 0
            current.owed -= owed
        if owed and current.number is not None:
            self._loop.submit(current.link.credit(current.number, owed))
        records = [Record(payload, Position(0, at + 1)) for at, payload in taken]
        return ReadResult(records, records[-1].end if records else after)

    def release(self, stream: str, before: Position) -> None:
        """Nothing to do: the stream's retention frees the space."""

    def tail(self, stream: str) -> int | None:
        """The offset `stream`'s next record will get (0: empty); None when the broker cannot
        be reached."""
        if self._closed:
            return None
        try:
            return self._loop.run(self._tail(stream), _CALL_TIMEOUT_S)
        except (SpoolClosed, ServerError, ConnectionError, OSError, TimeoutError):
            return None

    async def _tail(self, stream: str) -> int:
        link = await self._connected()
        return (await last_offsets(link, [stream]))[stream]

    async def _connected(self) -> StreamLink:
        """The live connection, opened (and the partitions declared) if need be."""
        if self._link is not None:
            if self._link.alive:
                return self._link
            dead, self._link = self._link, None
            await dead.close()
        if self._closed:
            raise SpoolClosed("the stream spool source is closed")
        if clock.monotonic() < self._retry_at:
            raise SpoolClosed("the stream spool is unavailable (retrying soon)")
        link: StreamLink | None = None
        try:
            link = await StreamLink.open(self._address, name="koppla-pipeline", on_lost=self._lost)
            await link.declare(self._names, STREAM_ARGUMENTS)
        except Exception as error:
            if link is not None:
                await link.close()
            self._retry_at = clock.monotonic() + self._retry_s
            self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
            where = f"{self._address.host}:{self._address.port}"
            log.warning("stream spool: cannot reach %s: %r", where, error)
            raise SpoolClosed(f"cannot reach the stream spool at {where}: {error!r}") from error
        self._link = link
        self._retry_s = RETRY_FIRST_S
        return link

    def _lost(self, reason: str) -> None:
        log.warning("stream spool: %s; reading resumes on a new connection", reason)
        with self._cond:
            self._cond.notify_all()  # a waiting read gives up on the dead subscription

    async def _subscribe(self, stream: str, offset: int) -> _Subscription:
        link = await self._connected()
        if offset > 0:
            tail = (await last_offsets(link, [stream]))[stream]
            if tail < offset:
                log.error(
                    "stream spool: reading %s from %d, past its end (%d): was the stream "
                    "deleted and created again? Its records are skipped up to %d",
                    stream,
                    offset,
                    tail,
                    offset,
                )
        with self._cond:
            previous = self._subscriptions.pop(stream, None)
        if previous is not None:
            previous.ended = True
            if previous.number is not None and previous.link is link:
                await link.unsubscribe(previous.number)
        fresh = clock.monotonic() + self._first_wait_s
        subscription = _Subscription(stream, PartitionBuffer(offset), link, fresh)

        def on_chunk(first: int, payloads: list[bytes]) -> bool:
            return self._delivered(subscription, first, payloads)

        subscription.number = await link.subscribe(stream, offset, CREDIT, on_chunk)
        with self._cond:
            self._subscriptions[stream] = subscription
        return subscription

    def _delivered(self, subscription: _Subscription, first: int, payloads: list[bytes]) -> bool:
        """A chunk arrived (on the loop's thread); True when a new chunk may be sent."""
        with self._cond:
            if subscription.ended:
                return False
            missing = subscription.buffer.accept(first, payloads)
            grant = subscription.buffer.size < BUFFER_BYTES
            if not grant:
                subscription.owed += 1
            self._cond.notify_all()
        if missing:
            log.error(  # acknowledged records lost: retention (7 days) outran the pipeline
                "stream spool: %s offsets %d-%d are no longer in the stream (retention); "
                "reading on from %d",
                subscription.stream,
                first - missing,
                first - 1,
                first,
            )
        return grant

    def _end(self, subscription: _Subscription) -> None:
        with self._cond:
            subscription.ended = True
        if subscription.number is not None and subscription.link.alive:
            self._loop.submit(subscription.link.unsubscribe(subscription.number))

    def close(self) -> None:
        """Unsubscribe, close the connection and stop the background loop."""
        self._closed = True
        with self._cond:
            subscriptions = list(self._subscriptions.values())
            self._subscriptions.clear()
            for subscription in subscriptions:
                subscription.ended = True
            self._cond.notify_all()
        link, self._link = self._link, None
        if link is not None:
            try:
                self._loop.run(link.close(), _CALL_TIMEOUT_S)
            except Exception as error:  # closing: nothing more to do
                log.debug("stream spool: closing the connection: %s", error)
        self._loop.stop()
