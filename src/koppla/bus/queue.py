"""The work queue seam: what a producer and a consumer of durable work messages can rely on.

Delivery is at least once: a message is handed out until a consumer acknowledges it, so a
consumer records its progress durably and skips work already done. A message is never lost:
`publish` returns only once the back-end holds it durably, and a delivery that is neither
acknowledged nor settled (the consumer died, the connection broke) is handed out again with a
higher `attempt`. Two back-ends implement it: `koppla.bus.embedded` (a SQLite file, one
machine) and `koppla.bus.rabbit` (RabbitMQ, any number of machines); `open_queue` opens the one
a URL names.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from koppla.core.errors import InvalidInput

MAX_BODY_BYTES = 1024 * 1024
"""The largest message body accepted; work messages are small (a chunk's ids), so a bigger one
is a bug upstream, refused at `publish` rather than stored."""

MAX_REASON_CHARS = 1000
"""Reasons given to `retry` / `dead_letter` are kept up to this many characters."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


@dataclass(frozen=True)
class QueueDepth:
    """How many messages a queue holds, by state."""

    ready: int
    """Waiting to be handed out (including retries waiting out their delay)."""
    in_flight: int
    """Handed out and not yet settled (see each back-end for the scope of this count)."""
    dead: int
    """In the dead-letter queue."""


@dataclass(frozen=True)
class DeadLetter:
    """A message given up on: its body, why, and after how many deliveries."""

    body: bytes
    reason: str
    attempts: int


class Delivery(Protocol):
    """One message handed to one consumer; settle it once with `ack`, `retry` or `dead_letter`.

    Settling a delivery a second time does nothing. A delivery that is never settled is handed
    out again (to this or another consumer) with `attempt` one higher.
    """

    @property
    def body(self) -> bytes:
        """The message as published."""
        ...

    @property
    def attempt(self) -> int:
        """1 on the first delivery; one more for each redelivery (retry, consumer death, and a
        broker restart where the back-end can tell)."""
        ...

    async def ack(self) -> None:
        """The work is done (and recorded durably): remove the message for good."""
        ...

    async def retry(self, reason: str) -> None:
        """Hand the message out again after a short delay, as attempt + 1; at `max_attempts`
        it goes to the dead-letter queue with `reason` instead."""
        ...

    async def dead_letter(self, reason: str) -> None:
        """Give up on the message now: move it to the dead-letter queue with `reason`."""
        ...


class WorkQueue(Protocol):
    """A named durable queue of work messages (bytes), shared by producers and consumers."""

    async def publish(self, bodies: Sequence[bytes]) -> None:
        """Add `bodies` to the queue; returns once the back-end holds every one durably."""
        ...

    async def get(self, timeout_s: float) -> Delivery | None:
        """The next message, or None when none came within `timeout_s` seconds."""
        ...

    async def depth(self) -> QueueDepth:
        """How many messages are ready, in flight and dead-lettered."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` dead letters, oldest first, without removing them."""
        ...

    async def purge(self) -> None:
        """Drop every ready and dead-lettered message (tests and admins)."""
        ...

    async def close(self) -> None:
        """Release this object's connections; its unsettled deliveries are handed out again."""
        ...


async def open_queue(
    url: str,
    name: str,
    *,
    home: Path,
    prefetch: int = 1,
    max_attempts: int = 5,
    retry_delay_s: float = 1.0,
) -> WorkQueue:
    """Open work queue `name` on the back-end `url` names.

    `url` "" or "embedded": a SQLite file `<home>/bus/<name>.sqlite` (one machine; `prefetch`
    does not apply). `amqp://...` or `amqps://...`: RabbitMQ, with `prefetch` unacknowledged
    messages per consumer. A delivery is handed out at most `max_attempts` times; `retry` puts
    a message back after about `retry_delay_s` seconds. Anything else is `InvalidInput`.
    """
    check_name(name)
    check_settings(prefetch, max_attempts, retry_delay_s)
    scheme = url.strip().split("://", 1)[0].lower() if "://" in url else url.strip().lower()
    if scheme in {"", "embedded"}:
        from koppla.bus.embedded import EmbeddedQueue

        path = home / "bus" / f"{name}.sqlite"
        return await asyncio.to_thread(
            EmbeddedQueue, path, max_attempts=max_attempts, retry_delay_s=retry_delay_s
        )
    if scheme in {"amqp", "amqps"}:
        from koppla.bus.rabbit import RabbitQueue

        return await RabbitQueue.open(
            url.strip(),
            name,
            prefetch=prefetch,
            max_attempts=max_attempts,
            retry_delay_s=retry_delay_s,
        )
    raise InvalidInput(
        f"queue url scheme {scheme!r} is not supported: use '', 'embedded', amqp:// or amqps://",
        field="queue_url",
    )


def check_name(name: str) -> str:
    """`name` when it is a valid queue name (letters, digits, `_`, `-`; 1-100 characters, no
    leading punctuation), else `InvalidInput` naming the field; it becomes a file name or a
    RabbitMQ queue name, so nothing else is allowed."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"queue name {name!r} must be 1-100 letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def check_bodies(bodies: Sequence[bytes]) -> list[bytes]:
    """`bodies` as a list when each is bytes of at most `MAX_BODY_BYTES`, else `InvalidInput`
    naming the first bad one (nothing of the batch is published then)."""
    checked: list[bytes] = []
    for index, body in enumerate(bodies):
        field = f"bodies[{index}]"
        if not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidInput(f"{field} must be bytes, not {type(body).__name__}", field=field)
        data = bytes(body)
        if len(data) > MAX_BODY_BYTES:
            raise InvalidInput(
                f"{field} is {len(data)} bytes, over the {MAX_BODY_BYTES}-byte limit", field=field
            )
        checked.append(data)
    return checked


def check_settings(prefetch: int, max_attempts: int, retry_delay_s: float) -> None:
    """Refuse consumer settings that cannot work, naming the field."""
    if prefetch < 1:
        raise InvalidInput(f"prefetch must be at least 1, not {prefetch}", field="prefetch")
    if max_attempts < 1:
        raise InvalidInput(
            f"max_attempts must be at least 1, not {max_attempts}", field="max_attempts"
        )
    if not 0 <= retry_delay_s <= 3600:
        raise InvalidInput(
            f"retry_delay_s must be 0-3600 seconds, not {retry_delay_s}", field="retry_delay_s"
        )


def clip_reason(reason: str) -> str:
    """`reason` cut to `MAX_REASON_CHARS` (an error text can be long; a reason stays readable)."""
    text = str(reason)
    if len(text) <= MAX_REASON_CHARS:
        return text
    return text[: MAX_REASON_CHARS - 1] + "…"


def gave_up_reason(attempts: int) -> str:
    """The reason given to a message delivered `attempts` times and never settled."""
    return (
        f"delivered {attempts} times and never acknowledged "
        "(its consumer died, lost its connection or let its lease expire)"
    )
