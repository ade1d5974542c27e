"""The RabbitMQ work queue (aio-pika): a durable quorum queue shared by any number of machines.

Topology, declared idempotently by every producer and consumer (same arguments each time):
- `<name>`: a quorum queue (replicated, every message fsync'd before it is confirmed), whose
  dead letters (a message an operator rejects) go through the default exchange to `<name>.dead`
  with at-least-once dead-lettering;
- `<name>.dead`: a quorum queue of dead letters; Koppla puts a message there itself, with the
  headers `x-koppla-reason` and `x-koppla-attempts`, then acknowledges the original.

Attempts: a quorum queue counts every return of a message (a `nack`, a consumer's channel or
connection closing, a broker restart) in the `x-delivery-count` header, so `attempt` is that
count + 1 with no republishing; a message seen with more than `max_attempts` deliveries (its
consumers kept dying) is dead-lettered by the next consumer that receives it. `retry` waits
`retry_delay_s` holding the message, then returns it (`nack` with requeue), which puts it at the
back of the queue.

Publishing uses publisher confirms: `publish` returns once the broker confirmed every message,
retrying what a broken connection or a broker `nack` left unconfirmed (a message may then be
stored twice, never zero times) until `publish_timeout_s` runs out, then raises
`TransientError`. Consuming uses `basic.consume` with `prefetch` (basic.qos) and manual acks; a
robust connection reconnects (every second) and restores the consumer after a broker restart.
An `ack` that fails because the channel died is logged and dropped: the broker hands the
message out again, and the consumer's idempotence absorbs the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)

from koppla.bus.queue import (
    DeadLetter,
    Delivery,
    QueueDepth,
    check_bodies,
    check_name,
    check_settings,
    clip_reason,
    gave_up_reason,
)
from koppla.core import clock
from koppla.core.errors import InvalidInput, TerminalError, TransientError

log = logging.getLogger("koppla.bus.rabbit")

CONFIRM_TIMEOUT_S = 30.0
"""How long one publish waits for the broker's confirm before it is tried again."""

PEEK_SETTLE_S = 2.0
"""How long `dead_letters` waits for the broker to count peeked dead letters as ready again."""

PUBLISH_CHUNK = 500
"""Messages in flight at once while a batch is published."""

REASON_HEADER = "x-koppla-reason"
ATTEMPTS_HEADER = "x-koppla-attempts"

_SETTLE_ERRORS = (aiormq.exceptions.AMQPError, RuntimeError, ConnectionError, TimeoutError)


def dead_name(name: str) -> str:
    """The dead-letter queue of queue `name`."""
    return f"{name}.dead"


def queue_arguments(name: str) -> dict[str, Any]:
    """The arguments `name` is declared with (a redeclaration must repeat them exactly)."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead_name(name),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


DEAD_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def where(url: str) -> str:
    """`host:port/vhost` of an AMQP URL, for messages (never the credentials); `InvalidInput`
    (field `queue_url`, without echoing the URL) when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    except ValueError:
        raise InvalidInput(
            "queue url is not a valid AMQP URL (check the host and port)", field="queue_url"
        ) from None
    if not parts.hostname:
        raise InvalidInput("queue url names no host", field="queue_url")
    return f"{parts.hostname}:{port}{parts.path or '/'}"


def delivery_attempt(message: AbstractIncomingMessage) -> int:
    """1 + the broker's count of earlier deliveries (`x-delivery-count` on a quorum queue; a
    classic queue only says whether the message was delivered before)."""
    count = (message.headers or {}).get("x-delivery-count")
    if isinstance(count, int) and not isinstance(count, bool):
        return count + 1
    return 2 if message.redelivered else 1


def to_dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    """A dead letter as Koppla filed it, or as RabbitMQ did (`x-first-death-reason`)."""
    headers = message.headers or {}
    reason = headers.get(REASON_HEADER)
    if reason is None:
        why = headers.get("x-first-death-reason", "unknown")
        reason = f"dead-lettered by RabbitMQ: {_text(why)}"
    attempts = headers.get(ATTEMPTS_HEADER, 0)
    return DeadLetter(
        body=message.body,
        reason=_text(reason),
        attempts=attempts if isinstance(attempts, int) else 0,
    )


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class RabbitDelivery:
    """A message received from RabbitMQ, unacknowledged until settled."""

    def __init__(self, queue: RabbitQueue, message: AbstractIncomingMessage, attempt: int) -> None:
        self._queue = queue
        self._message = message
        self._settled = False
        self.body = message.body
        self.attempt = attempt

    async def ack(self) -> None:
        """Acknowledge: the broker deletes the message."""
        if self._claim():
            await _settle(self._message.ack(), "ack")

    async def retry(self, reason: str) -> None:
        """After `retry_delay_s`, return the message to the queue (attempt + 1); at
        `max_attempts`, dead-letter it with `reason` instead."""
        if self.attempt >= self._queue.max_attempts:
            await self.dead_letter(reason)
            return
        if self._claim():
            await asyncio.sleep(self._queue.retry_delay_s)
            log.info("retrying message (attempt %d): %s", self.attempt, clip_reason(reason))
            await _settle(self._message.nack(requeue=True), "nack")

    async def dead_letter(self, reason: str) -> None:
        """Publish the message to `<name>.dead` with `reason` (confirmed), then ack it."""
        if self._claim():
            await self._queue._bury(self._message, clip_reason(reason), self.attempt)

    def _claim(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        self._queue._unsettled -= 1
        return True


async def _settle(action: Any, what: str) -> None:
    try:
        await action
    except _SETTLE_ERRORS as error:
        log.warning(
            "RabbitMQ %s not sent (%r); the broker will deliver the message again", what, error
        )


class RabbitQueue:
    """Work queue `name` on a RabbitMQ broker; open it with `RabbitQueue.open`.

    `in_flight` in `depth()` counts this object's unacknowledged messages (handed out or
    prefetched) only: AMQP does not report other consumers' unacked messages.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: AbstractRobustChannel,
        name: str,
        *,
        prefetch: int,
        max_attempts: int,
        retry_delay_s: float,
        publish_timeout_s: float,
    ) -> None:
        self.name = name
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self._connection = connection
        self._publisher = publisher
        self._prefetch = prefetch
        self._publish_timeout_s = publish_timeout_s
        self._queues: dict[str, AbstractRobustQueue] = {}
        self._consumer: AbstractRobustChannel | None = None
        self._received: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._unsettled = 0

    @classmethod
    async def open(
        cls,
        url: str,
        name: str,
        *,
        prefetch: int = 1,
        max_attempts: int = 5,
        retry_delay_s: float = 1.0,
        publish_timeout_s: float = 120.0,
    ) -> RabbitQueue:
        """Connect to the broker at `url` (robustly) and declare the queue and its dead-letter
        queue; `TransientError` when the broker cannot be reached, `TerminalError` when it
        refuses the credentials or the queue exists with other arguments."""
        check_name(name)
        check_settings(prefetch, max_attempts, retry_delay_s)
        place = where(url)
        options: dict[str, Any] = {"client_properties": {"connection_name": f"koppla {name}"}}
        if "reconnect_interval" not in parse_qs(urlsplit(url).query):
            options["reconnect_interval"] = 1.0
        try:
            connection = await aio_pika.connect_robust(url, **options)
        except aiormq.exceptions.ProbableAuthenticationError as error:
            raise TerminalError(f"RabbitMQ at {place} refused the login: {error}") from error
        except (aiormq.exceptions.AMQPError, OSError) as error:
            raise TransientError(f"cannot reach RabbitMQ at {place}: {error}") from error
        try:
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            queue = cls(
                connection,
                publisher,
                name,
                prefetch=prefetch,
                max_attempts=max_attempts,
                retry_delay_s=retry_delay_s,
                publish_timeout_s=publish_timeout_s,
            )
            await queue._declare()
        except BaseException:
            await connection.close()
            raise
        return queue

    async def publish(self, bodies: Sequence[bytes]) -> None:
        """Publish persistent messages; returns once the broker confirmed each one."""
        checked = check_bodies(bodies)
        for start in range(0, len(checked), PUBLISH_CHUNK):
            chunk = checked[start : start + PUBLISH_CHUNK]
            await self._publish_confirmed(self.name, [(body, None) for body in chunk])

    async def get(self, timeout_s: float) -> Delivery | None:
        """The next message (prefetched by this object's consumer), or None after `timeout_s`
        (also while the broker cannot be reached: the consumer starts once it can)."""
        deadline = clock.monotonic() + max(0.0, timeout_s)
        if not await self._start_consuming():
            await asyncio.sleep(max(0.0, deadline - clock.monotonic()))
            return None
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - clock.monotonic())):
                    message = await self._received.get()
            except TimeoutError:
                return None
            if not _channel_open(message):
                continue  # received before a reconnect: the broker delivers it again
            attempt = delivery_attempt(message)
            if attempt > self.max_attempts:
                await self._bury(message, gave_up_reason(attempt - 1), attempt - 1)
                continue
            self._unsettled += 1
            return RabbitDelivery(self, message, attempt)

    async def depth(self) -> QueueDepth:
        """Ready and dead-lettered counts from the broker; in flight: this object's own.
        `TransientError` while the broker cannot be reached."""
        return QueueDepth(
            ready=await self._count(self.name),
            in_flight=self._unsettled + self._received.qsize(),
            dead=await self._count(dead_name(self.name)),
        )

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Peek at up to `limit` dead letters: take them unacknowledged on a channel of their
        own, then close it so that the broker keeps them (in the same order); returns once the
        broker counts them as ready again (or after `PEEK_SETTLE_S`)."""
        before = await self._count(dead_name(self.name))
        channel = await self._connection.channel()
        letters: list[DeadLetter] = []
        try:
            queue = await channel.declare_queue(
                dead_name(self.name), durable=True, arguments=DEAD_ARGUMENTS, robust=False
            )
            while len(letters) < limit:
                message = await queue.get(no_ack=False, fail=False, timeout=CONFIRM_TIMEOUT_S)
                if message is None:
                    break
                letters.append(to_dead_letter(message))
        finally:
            await channel.close()
        deadline = clock.monotonic() + PEEK_SETTLE_S
        while letters and clock.monotonic() < deadline:
            if await self._count(dead_name(self.name)) >= before:
                break
            await asyncio.sleep(0.02)
        return letters

    async def purge(self) -> None:
        """Purge the queue (ready messages) and its dead letters."""
        for queue in self._queues.values():
            await queue.purge()

    async def close(self) -> None:
        """Close the connection; the broker hands this object's unacked messages out again."""
        if not self._connection.is_closed:
            await self._connection.close()

    async def _declare(self) -> None:
        for name, arguments in (
            (self.name, queue_arguments(self.name)),
            (dead_name(self.name), DEAD_ARGUMENTS),
        ):
            try:
                queue = await self._publisher.declare_queue(name, durable=True, arguments=arguments)
            except aiormq.exceptions.ChannelPreconditionFailed as error:
                raise TerminalError(
                    f"RabbitMQ queue {name!r} exists with other settings ({error}); "
                    "delete it or choose another queue name"
                ) from error
            self._queues[name] = queue

    async def _count(self, queue: str) -> int:
        """The broker's count of ready messages in `queue`."""
        try:
            channel = await self._publisher.get_underlay_channel()
            declared = await channel.queue_declare(queue, passive=True, timeout=CONFIRM_TIMEOUT_S)
        except _SETTLE_ERRORS as error:
            raise TransientError(f"RabbitMQ queue {queue!r}: cannot count: {error!r}") from error
        return int(declared.message_count or 0)

    async def _start_consuming(self) -> bool:
        """Start this object's consumer (once); False when the broker refused or is away."""
        if self._consumer is not None:
            return True
        channel = None
        try:
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.declare_queue(
                self.name, durable=True, arguments=queue_arguments(self.name)
            )
            await queue.consume(self._received.put)
        except _SETTLE_ERRORS as error:
            log.warning("cannot consume from RabbitMQ queue %r yet: %r", self.name, error)
            if channel is not None and not channel.is_closed:
                await _settle(channel.close(), "channel close")
            return False
        self._consumer = channel
        return True

    async def _bury(self, message: AbstractIncomingMessage, reason: str, attempts: int) -> None:
        headers = {REASON_HEADER: reason, ATTEMPTS_HEADER: attempts}
        await self._publish_confirmed(dead_name(self.name), [(message.body, headers)])
        log.warning("dead-lettered a message after %d attempt(s): %s", attempts, reason)
        await _settle(message.ack(), "ack")

    async def _publish_confirmed(
        self, routing_key: str, messages: list[tuple[bytes, dict[str, Any] | None]]
    ) -> None:
        """Publish until the broker confirmed every message, or fail after the timeout."""
        deadline = clock.monotonic() + self._publish_timeout_s
        pause = 0.2
        pending = messages
        while pending:
            results = await asyncio.gather(
                *(self._publish_one(routing_key, body, headers) for body, headers in pending),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            pending = [m for m, r in zip(pending, results, strict=True) if r is not None]
            if not errors:
                return
            await self._recover_from(errors[0], len(pending), len(messages), deadline)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _publish_one(
        self, routing_key: str, body: bytes, headers: dict[str, Any] | None
    ) -> None:
        message = aio_pika.Message(
            body, headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await self._publisher.default_exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=CONFIRM_TIMEOUT_S
        )

    async def _recover_from(
        self, error: BaseException, unconfirmed: int, total: int, deadline: float
    ) -> None:
        if isinstance(error, aiormq.exceptions.ChannelAccessRefused):
            raise TerminalError(f"RabbitMQ refused to publish to {self.name!r}: {error}") from error
        if clock.monotonic() >= deadline:
            raise TransientError(
                f"RabbitMQ did not confirm {unconfirmed} of {total} message(s) within "
                f"{self._publish_timeout_s:g} s; last error: {error!r}"
            ) from error
        log.warning(
            "RabbitMQ left %d message(s) unconfirmed, publishing again: %r", unconfirmed, error
        )
        if isinstance(error, aiormq.exceptions.PublishError):
            # Unroutable: the queue is gone (deleted by hand); declare it again.
            try:
                await self._declare()
            except _SETTLE_ERRORS as declare_error:
                log.warning("could not declare %r again: %r", self.name, declare_error)


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        message.channel  # noqa: B018  (raises once the delivery's channel is closed)
    except RuntimeError:
        return False
    return True
