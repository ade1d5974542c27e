"""One connection to a RabbitMQ stream node: declare streams, publish with confirms, subscribe
from an offset with credit flow control.

A thin layer over the protocol client of `rstream` (its `Client`: framing, authentication,
heartbeats), not over its `Producer`/`Consumer`: those hide a lost connection behind their own
retries, while the spool must tell its caller at once that a write is not durable. A link
reports its loss once, through `on_lost`, and is then dead for good; its owner opens a new one.

Everything here runs on one asyncio event loop: the one the link was opened on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from rstream import exceptions, schema
from rstream.client import Client
from rstream.constants import OffsetType
from rstream.utils import OnClosedErrorInfo

from koppla.platform.spool.stream_address import StreamAddress

log = logging.getLogger(__name__)

FRAME_MAX = 8 * 1024 * 1024
"""The largest frame asked for; the broker's `stream.frame_max` (1 MiB by default) caps it."""

HEARTBEAT_S = 20
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
PUBLISH_OVERHEAD = 13
"""Bytes of a Publish frame around its messages (size, key, version, publisher id, count)."""
MESSAGE_OVERHEAD = 12
"""Bytes around each message's payload in a Publish frame (publishing id, size)."""

_DELIVERIES = 0
"""rstream queues Deliver frames per handler name; one handler (this number) takes them all."""
_LEADER_UNKNOWN = 0xFFFF

ChunkHandler = Callable[[int, list[bytes]], bool]
"""Called with a delivered chunk's first offset and its payloads; True grants a new credit."""
ConfirmHandler = Callable[[int, Sequence[int]], None]
"""Called with a publisher id and the publishing ids the broker confirmed."""
RefusalHandler = Callable[[int, list[tuple[int, int]]], None]
"""Called with a publisher id and (publishing id, response code) pairs the broker refused."""
LostHandler = Callable[[str], None]
"""Called once, with the reason, when the connection is gone."""


class StreamLink:
    """An open connection to one stream node. Use `StreamLink.open`."""

    def __init__(self, client: Client, on_lost: LostHandler) -> None:
        self._client = client
        self._on_lost = on_lost
        self._lost: str | None = None
        self._chunk_handlers: dict[int, ChunkHandler] = {}
        self._windows: dict[int, int] = {}
        """Per subscription: the credit it started with (chunks on their way at most)."""
        self._granted: dict[int, int] = {}
        """Per subscription: credits earned back but not sent yet."""
        self._next_subscription = 0
        self.on_confirm: ConfirmHandler | None = None
        self.on_refusal: RefusalHandler | None = None

    @classmethod
    async def open(
        cls,
        address: StreamAddress,
        *,
        name: str,
        on_lost: LostHandler,
        node: tuple[str, int] | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> StreamLink:
        """Connect and authenticate to `node` (default: the URL's host) within `timeout_s`."""
        host, port = node or (address.host, address.port)
        client = Client(
            host,
            port,
            frame_max=FRAME_MAX,
            heartbeat=HEARTBEAT_S,
            connection_name=name,
        )
        link = cls(client, on_lost)
        try:
            await asyncio.wait_for(link._handshake(address), timeout_s)
        except BaseException:
            await link.close()
            raise
        return link

    async def _handshake(self, address: StreamAddress) -> None:
        client = self._client
        client._connection_closed_handler = self._closed  # rstream takes it only via its pool
        await client.start()
        client.remove_handler(schema.Close, "_on_close")  # it raises inside the listener
        client.add_handler(schema.Close, self._server_close, name="koppla")
        await client.authenticate(address.vhost, address.username, address.password)
        client.add_stream("koppla")  # rstream reports a lost connection only if it has streams
        client.add_handler(schema.PublishConfirm, self._confirmed, name="koppla")
        client.add_handler(schema.PublishError, self._refused, name="koppla")
        client.add_handler(schema.MetadataUpdate, self._metadata_update, name="koppla")
        client.add_handler(schema.Deliver, self._delivered, name=str(_DELIVERIES))
        await client.run_queue_listener_task(_DELIVERIES, self._delivered)

    @property
    def alive(self) -> bool:
        """False once the connection is lost or closed, or its reader has stopped (rstream's
        listener ends on a frame it cannot decode while the socket stays open: such a link
        would deliver nothing more, so it counts as lost and is opened again)."""
        listener = self._client._tasks.get("listener")
        if listener is not None and listener.done():
            return False
        return self._lost is None and self._client.is_connection_alive()

    @property
    def frame_max(self) -> int:
        """The frame size agreed with the broker."""
        return self._client.frame_max

    @property
    def node(self) -> tuple[str, int]:
        """The host and port the broker advertises for itself (how stream leaders are named)."""
        properties = self._client.server_properties or {}
        host = properties.get("advertised_host", self._client.host)
        return host, int(properties.get("advertised_port", self._client.port))

    def _lose(self, reason: str) -> None:
        if self._lost is not None:
            return
        self._lost = reason
        self._on_lost(reason)

    def _closed(self, info: OnClosedErrorInfo) -> None:
        self._lose(f"connection lost ({info.reason})")

    def _server_close(self, frame: schema.Close) -> None:
        self._lose(f"the broker closed the connection: {frame.reason}")

    def _metadata_update(self, frame: schema.MetadataUpdate) -> None:
        # A stream was deleted or its leader moved: its publishers and subscriptions are gone.
        self._lose(f"stream {frame.metadata_info.stream} changed (deleted or moved)")

    def _confirmed(self, frame: schema.PublishConfirm) -> None:
        if self.on_confirm is not None:
            self.on_confirm(frame.publisher_id, frame.publishing_ids)

    def _refused(self, frame: schema.PublishError) -> None:
        if self.on_refusal is not None:
            errors = [(error.publishing_id, error.response_code) for error in frame.errors]
            self.on_refusal(frame.publisher_id, errors)

    async def _delivered(self, frame: schema.Deliver) -> None:
        handler = self._chunk_handlers.get(frame.subscription_id)
        if handler is None:  # a subscription that has just ended
            return
        if not handler(frame.chunk_first_offset, frame.get_messages()):
            return
        number = frame.subscription_id
        granted = self._granted.pop(number, 0) + 1  # returned in bulk: a write per half window
        if granted * 2 >= self._windows.get(number, 1):
            await self.credit(number, granted)
        else:
            self._granted[number] = granted

    def _check(self) -> None:
        """Raise `ConnectionError` once the connection is gone (and report it, once)."""
        if self._lost is None and not self._client.is_connection_alive():
            self._lose("the connection failed")
        if self._lost is not None:
            raise ConnectionError(self._lost)

    async def _request(self, frame: schema.Frame, response: type[Any]) -> Any:
        self._check()
        return await asyncio.wait_for(
            self._client.sync_request(frame, resp_schema=response), REQUEST_TIMEOUT_S
        )

    def _correlation(self) -> int:
        return self._client._corr_id_seq.next()

    async def declare(self, names: Sequence[str], arguments: dict[str, int | str]) -> None:
        """Create the streams `names` that do not exist yet; existing ones are used as they are
        (the broker refuses a declaration whose arguments differ: that is logged)."""
        properties = [schema.Property(key, str(value)) for key, value in arguments.items()]
        for name in names:
            frame = schema.Create(self._correlation(), stream=name, arguments=properties)
            try:
                await self._request(frame, schema.CreateResponse)
            except exceptions.StreamAlreadyExists:
                pass
            except exceptions.PreconditionFailed:
                log.warning(
                    "stream %s exists with other arguments than %s; used as it is", name, arguments
                )

    async def delete(self, name: str) -> None:
        """Delete stream `name` and all it holds; a missing stream is fine."""
        with suppress(exceptions.StreamDoesNotExist):
            await self._request(
                schema.Delete(self._correlation(), stream=name), schema.DeleteResponse
            )

    async def leaders(self, names: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The node (advertised host, port) that leads each stream: where it is written."""
        frame = schema.Metadata(self._correlation(), streams=list(names))
        reply: schema.MetadataResponse = await self._request(frame, schema.MetadataResponse)
        brokers = {broker.reference: (broker.host, broker.port) for broker in reply.brokers}
        found: dict[str, tuple[str, int]] = {}
        for item in reply.metadata:
            if item.leader_ref == _LEADER_UNKNOWN or item.leader_ref not in brokers:
                raise ConnectionError(f"stream {item.name} has no leader at the moment")
            found[item.name] = brokers[item.leader_ref]
        return found

    async def add_publisher(self, stream: str, publisher_id: int) -> None:
        """Declare publisher `publisher_id` (0-255) writing to `stream` on this connection."""
        frame = schema.DeclarePublisher(
            self._correlation(), publisher_id=publisher_id, reference="", stream=stream
        )
        await self._request(frame, schema.DeclarePublisherResponse)

    async def publish(self, publisher_id: int, messages: list[tuple[int, bytes]]) -> None:
        """Write one Publish frame of (publishing id, payload) messages; `ConnectionError` when
        the connection cannot take it. Confirms arrive later through `on_confirm`."""
        self._check()
        frame = schema.Publish(
            publisher_id=publisher_id,
            messages=[schema.Message(number, None, payload) for number, payload in messages],
        )
        await self._client.send_publish_frame(frame)
        self._check()  # rstream swallows a socket error while writing

    async def subscribe(
        self, stream: str, offset: int | None, credit: int, on_chunk: ChunkHandler
    ) -> int:
        """Deliver `stream`'s chunks from the one holding `offset` (None: the last chunk) to
        `on_chunk`, `credit` chunks ahead (a chunk `on_chunk` accepts with True is credited
        back, in bulk every `credit / 2` chunks); returns the subscription id."""
        subscription = self._free_subscription()
        if offset is None:
            spec = schema.OffsetSpec.from_params(OffsetType.LAST, None)
        else:
            spec = schema.OffsetSpec.from_params(OffsetType.OFFSET, offset)
        self._chunk_handlers[subscription] = on_chunk
        self._windows[subscription] = credit
        self._granted.pop(subscription, None)
        frame = schema.Subscribe(
            self._correlation(),
            subscription_id=subscription,
            stream=stream,
            offset_spec=spec,
            credit=credit,
            properties=[],
        )
        try:
            await self._request(frame, schema.SubscribeResponse)
        except BaseException:
            self._chunk_handlers.pop(subscription, None)
            raise
        return subscription

    def _free_subscription(self) -> int:
        for _ in range(256):
            candidate = self._next_subscription
            self._next_subscription = (candidate + 1) % 256
            if candidate not in self._chunk_handlers:
                return candidate
        raise RuntimeError("all 256 subscriptions of the connection are in use")

    async def unsubscribe(self, subscription: int) -> None:
        """End a subscription; chunks still on their way are dropped."""
        self._chunk_handlers.pop(subscription, None)
        self._windows.pop(subscription, None)
        self._granted.pop(subscription, None)
        if self.alive:
            with suppress(exceptions.SubscriptionIDDoesNotExist):
                frame = schema.Unsubscribe(self._correlation(), subscription_id=subscription)
                await self._request(frame, schema.UnsubscribeResponse)

    async def credit(self, subscription: int, chunks: int) -> None:
        """Let the broker send `chunks` more chunks to `subscription`."""
        if self.alive and subscription in self._chunk_handlers:
            await self._client.send_frame(schema.Credit(subscription, chunks))

    async def close(self) -> None:
        """Close the connection (no `on_lost` for a close asked for). A live connection says
        goodbye to the broker (bounded by `CLOSE_TIMEOUT_S`); a lost one is just dropped."""
        graceful = self.alive
        self._lost = self._lost or "closed"
        self._chunk_handlers.clear()
        if not graceful:
            self._client._is_not_closed = False  # rstream would try its goodbye on a dead socket
            self._abort()
        try:
            await asyncio.wait_for(self._client.close(), CLOSE_TIMEOUT_S)
        except Exception as error:  # closing a broken connection: nothing more to do
            log.debug("closing a stream connection: %s", error)
        self._abort()

    def abort(self) -> None:
        """Drop the connection at once, without a goodbye (for a close that cannot wait)."""
        self._lost = self._lost or "closed"
        self._chunk_handlers.clear()
        self._client._is_not_closed = False
        for task in self._client._tasks.values():
            task.cancel()
        self._abort()

    def _abort(self) -> None:
        """Drop the socket at once (rstream leaves a broken connection's socket open, and its
        graceful close waits for a peer that may never read)."""
        connection = self._client._conn
        writer = connection._writer if connection is not None else None
        if writer is not None and not writer.transport.is_closing():
            writer.transport.abort()
