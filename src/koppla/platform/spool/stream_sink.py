"""The edge's spool on RabbitMQ Streams: an append is acknowledged once the broker confirms it.

`StreamSink` is a `SpoolSink`. Appends made on the HTTP server's event loop queue up while the
previous frames are on the wire; one pump task sends whatever has queued together (group
commit, like the local spool's fdatasync), and each append's future resolves when the broker's
publisher confirm for its message arrives. Nothing waits for a confirm before sending more.

The partitions take turns frame by frame: the appends sent together go as one frame of up to
`GROUP_MAX` messages to the next partition (a burst is cut into several), so one socket write
carries a group, and over many groups the partitions (and the pipeline workers reading them)
get equal shares.

What a confirm means: the stream leader has written the message and, in a cluster, a quorum of
its replicas has too. RabbitMQ does not fsync streams: on a single node a confirmed message
survives the broker's crash, not the machine's power loss; replication is the durability.

Failures never leave a caller waiting: a lost connection, a refused message or no confirm
within `confirm_timeout_s` fail the future with `SpoolClosed` (the edge answers 503 with
`Retry-After`). After a failed connection attempt, appends are refused at once until the
retry delay (0.5 s, doubling to 5 s) has passed; the next append then tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

from rstream.exceptions import ServerError

from koppla.core import clock
from koppla.core.errors import InvalidInput
from koppla.platform.spool.position import Position
from koppla.platform.spool.stream_address import (
    DEFAULT_PREFIX,
    STREAM_ARGUMENTS,
    StreamAddress,
    resolve_partitions,
)
from koppla.platform.spool.stream_link import (
    CONNECT_TIMEOUT_S,
    MESSAGE_OVERHEAD,
    PUBLISH_OVERHEAD,
    StreamLink,
)
from koppla.platform.spool.writer import SpoolClosed

log = logging.getLogger(__name__)

CONFIRMED = Position(0, 0)
"""What an append resolves with: a confirm does not tell the message's offset."""

DEFAULT_FRAME_MAX = 1024 * 1024
"""The broker's default `stream.frame_max`: the payload limit until a connection tells."""

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
WATCH_EVERY_S = 0.5
GROUP_MAX = 128
"""Most messages in one Publish frame: a burst is spread over the partitions in groups."""

_Waiter = tuple[asyncio.Future[Position], float]
"""An append waiting for its confirm, and the monotonic time it gives up."""


class PayloadTooLarge(InvalidInput):
    """The payload does not fit the broker's largest frame (`stream.frame_max`)."""


class _Session:
    """The connections of one connected period: the publisher of partition `i` is publisher id
    `i` on the link to that partition's leader."""

    def __init__(self, partitions: int) -> None:
        self.links: dict[tuple[str, int], StreamLink] = {}
        self.route: list[StreamLink] = []
        self.next_id = [1] * partitions
        self.inflight: list[dict[int, _Waiter]] = [{} for _ in range(partitions)]
        self.lost: str | None = None

    @property
    def alive(self) -> bool:
        return self.lost is None and all(link.alive for link in self.links.values())

    @property
    def frame_max(self) -> int:
        return min(link.frame_max for link in self.links.values())

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    def abort(self) -> None:
        for link in self.links.values():
            link.abort()


class StreamSink:
    """Appends to the partitions of a RabbitMQ stream spool, acknowledged on confirm.

    Built from the `spool_url` and the number of partitions; connects on `start()` or on the
    first `append`, on the loop it is called from, and stays on that loop.
    """

    def __init__(
        self,
        url: str,
        partitions: int | Sequence[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        confirm_timeout_s: float = 10.0,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._address = StreamAddress.parse(url)
        self._names = resolve_partitions(partitions, prefix)
        self._confirm_timeout_s = confirm_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[bytes, asyncio.Future[Position]]] = []
        self._wake: asyncio.Event | None = None
        self._session: _Session | None = None
        self._connecting = False
        self._retry_at = float("-inf")
        self._retry_s = RETRY_FIRST_S
        self._down_reason = ""
        self._next_partition = 0
        self._max_payload = DEFAULT_FRAME_MAX - PUBLISH_OVERHEAD - MESSAGE_OVERHEAD
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._dying: set[_Session] = set()
        """Dropped sessions whose connections are still being closed."""
        self._connect_lock: asyncio.Lock | None = None
        self._finished = False
        self._pump_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def streams(self) -> list[str]:
        """The partitions' stream names."""
        return list(self._names)

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._session is not None and self._session.alive

    def _bind(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._wake = asyncio.Event()
            self._connect_lock = asyncio.Lock()
            self._pump_task = loop.create_task(self._pump(), name="stream-spool-pump")
            self._watch_task = loop.create_task(self._watch(), name="stream-spool-watch")
        elif self._loop is not loop:
            raise RuntimeError("a StreamSink is used from one event loop only")
        assert self._wake is not None
        return self._wake

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Connect now (declaring the partitions if missing); `SpoolClosed` if that fails."""
        self._bind()
        if self._closed:
            raise SpoolClosed("the stream spool is closed")
        await self._connected()

    def append(self, payload: bytes) -> asyncio.Future[Position]:
        """Queue `payload`; the future resolves once the broker confirmed it, or fails with
        `SpoolClosed`. Raises `SpoolClosed` at once while the broker is known to be away, and
        `PayloadTooLarge` for a payload over the broker's frame size."""
        wake = self._bind()
        if self._closed:
            raise SpoolClosed("the stream spool is closed")
        if len(payload) > self._max_payload:
            raise PayloadTooLarge(
                f"a {len(payload)}-byte record does not fit the stream broker's frames "
                f"(at most {self._max_payload} bytes; raise stream.frame_max on the broker)"
            )
        if self._session is None and not self._connecting and clock.monotonic() < self._retry_at:
            raise SpoolClosed(f"the stream spool is unavailable: {self._down_reason}")
        assert self._loop is not None
        future: asyncio.Future[Position] = self._loop.create_future()
        self._pending.append((payload, future))
        wake.set()
        return future

    async def _pump(self) -> None:
        assert self._wake is not None
        while True:
            if not self._pending:
                if self._closed:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            try:
                session = await self._connected()
            except SpoolClosed as error:
                self._refuse_pending(error)
                continue
            batch, self._pending = self._pending, []
            await self._send(session, batch)

    async def _connected(self) -> _Session:
        """The live session, connecting first if there is none (one attempt at a time)."""
        assert self._connect_lock is not None
        async with self._connect_lock:
            session = self._session
            if session is not None and not session.alive:
                self._drop(session, "the connection to the broker failed")
            elif session is not None:
                return session
            return await self._connect()

    async def _connect(self) -> _Session:
        self._connecting = True
        session = _Session(len(self._names))
        try:
            await asyncio.wait_for(self._open(session), self._connect_timeout_s * 2)
        except Exception as error:
            await session.close()
            self._retry_at = clock.monotonic() + self._retry_s
            self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
            self._down_reason = f"cannot reach {self._where()}: {error!r}"
            log.warning("stream spool: %s", self._down_reason)
            raise SpoolClosed(f"the stream spool is unavailable: {self._down_reason}") from error
        finally:
            self._connecting = False
        self._session = session
        self._retry_s = RETRY_FIRST_S
        self._max_payload = session.frame_max - PUBLISH_OVERHEAD - MESSAGE_OVERHEAD
        log.info("stream spool: connected to %s (%d partitions)", self._where(), len(self._names))
        return session

    def _where(self) -> str:
        return f"{self._address.host}:{self._address.port}"

    async def _open(self, session: _Session) -> None:
        def lost(reason: str) -> None:
            self._drop(session, reason)

        locator = await StreamLink.open(
            self._address, name="koppla-edge", on_lost=lost, timeout_s=self._connect_timeout_s
        )
        session.links[locator.node] = locator
        await locator.declare(self._names, STREAM_ARGUMENTS)
        leaders = await locator.leaders(self._names)
        for index, name in enumerate(self._names):
            node = leaders[name]
            link = session.links.get(node)
            if link is None:
                link = await StreamLink.open(
                    self._address,
                    name="koppla-edge",
                    on_lost=lost,
                    node=node,
                    timeout_s=self._connect_timeout_s,
                )
                session.links[node] = link
            link.on_confirm = partial(self._confirmed, session)
            link.on_refusal = partial(self._refused, session)
            await link.add_publisher(name, index)
            session.route.append(link)

    async def _send(
        self, session: _Session, batch: list[tuple[bytes, asyncio.Future[Position]]]
    ) -> None:
        """Send `batch` as Publish frames of up to `GROUP_MAX` messages, each frame to the next
        partition in turn; every append is registered for its confirm before the first write."""
        deadline = clock.monotonic() + self._confirm_timeout_s
        limit = session.frame_max - PUBLISH_OVERHEAD
        count = len(self._names)
        frames: list[tuple[int, list[tuple[int, bytes]]]] = []
        index = self._next_partition
        frame: list[tuple[int, bytes]] = []
        size = 0
        for payload, future in batch:
            if future.done():  # the caller gave up (a cancelled request)
                continue
            cost = MESSAGE_OVERHEAD + len(payload)
            if frame and (len(frame) >= GROUP_MAX or size + cost > limit):
                frames.append((index, frame))
                index = (index + 1) % count
                frame, size = [], 0
            number = session.next_id[index]
            session.next_id[index] = number + 1
            session.inflight[index][number] = (future, deadline)
            frame.append((number, payload))
            size += cost
        if frame:
            frames.append((index, frame))
            index = (index + 1) % count
        self._next_partition = index
        try:
            for partition, messages in frames:
                await session.route[partition].publish(partition, messages)
        except (ConnectionError, OSError) as error:
            self._drop(session, f"writing to the broker failed: {error}")

    def _confirmed(self, session: _Session, publisher: int, numbers: Sequence[int]) -> None:
        waiting = session.inflight[publisher]
        for number in numbers:
            entry = waiting.pop(number, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(CONFIRMED)

    def _refused(self, session: _Session, publisher: int, errors: list[tuple[int, int]]) -> None:
        waiting = session.inflight[publisher]
        for number, code in errors:
            entry = waiting.pop(number, None)
            if entry is not None and not entry[0].done():
                name = ServerError.from_code(code).__name__
                entry[0].set_exception(
                    SpoolClosed(f"the broker refused the write: {name} (code {code})")
                )

    def _drop(self, session: _Session, reason: str) -> None:
        """The session is unusable: fail whatever waits on it and close it in the background."""
        if session.lost is not None:
            return
        session.lost = reason
        if self._session is session:
            self._session = None
            if not self._closed:
                log.warning("stream spool: %s", reason)
        failure = SpoolClosed(f"the stream spool lost its broker: {reason}")
        for waiting in session.inflight:
            for future, _ in waiting.values():
                if not future.done():
                    future.set_exception(failure)
            waiting.clear()
        if self._loop is not None and not self._loop.is_closed():
            self._dying.add(session)
            self._keep(self._loop.create_task(self._bury(session)))

    async def _bury(self, session: _Session) -> None:
        try:
            await session.close()
        finally:
            self._dying.discard(session)

    def _refuse_pending(self, error: SpoolClosed) -> None:
        batch, self._pending = self._pending, []
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def _watch(self) -> None:
        """Fail appends whose confirm is overdue, and drop the session that owes them."""
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            session = self._session
            if session is None:
                continue
            now = clock.monotonic()
            for waiting in session.inflight:
                oldest = next(iter(waiting.values()), None)
                if oldest is not None and oldest[1] < now:
                    self._drop(session, f"no confirm within {self._confirm_timeout_s:g} s")
                    break

    async def aclose(self) -> None:
        """Stop taking appends, send what is queued, wait (up to the confirm timeout) for the
        confirms still owed, and close the connections."""
        self._closed = True
        if self._loop is None or self._finished:
            return
        try:
            await self._finish()
        except BaseException:  # cancelled (the loop is ending): drop the sockets at least
            self._shut()
            raise

    async def _finish(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._pump_task is not None:
            await asyncio.gather(self._pump_task, return_exceptions=True)
        session = self._session
        if session is not None:
            owed = [future for waiting in session.inflight for future, _ in waiting.values()]
            if owed:
                await asyncio.wait(owed, timeout=self._confirm_timeout_s)
            self._drop(session, "the sink is closed")
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        others = [task for task in self._tasks if task is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)
        self._finished = True

    def _shut(self) -> None:
        """Close at once: fail what waits, drop the connections, stop the tasks."""
        self._closed = True
        self._refuse_pending(SpoolClosed("the stream spool is closed"))
        session, self._session = self._session, None
        if session is not None:
            self._drop(session, "the sink is closed")
        for dying in list(self._dying):
            dying.abort()
        self._dying.clear()
        self._finished = True
        for task in (self._pump_task, self._watch_task, *self._tasks):
            if task is not None and task is not asyncio.current_task():
                task.cancel()

    def close(self) -> None:
        """Stop taking appends. With nothing in flight the connections are dropped at once;
        else the flush and the close finish on the sink's loop in the background, if it runs
        long enough (await `aclose()` instead to wait for them)."""
        loop = self._loop
        if self._closed or loop is None or loop.is_closed():
            self._closed = True
            return
        self._closed = True
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            owed = self._session is not None and any(self._session.inflight)
            if self._pending or owed:  # finish them in the background, if the loop lets it
                self._keep(loop.create_task(self.aclose()))
            else:
                self._shut()
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), loop)
        else:
            loop.run_until_complete(self.aclose())
