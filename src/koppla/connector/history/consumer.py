"""A consumer of history chunks: queue message → `ChunkWorker.handle` → ack.

The message is acknowledged only after the chunk's batches were completed on the platform (the
platform then holds the events durably). Trouble worth a retry (the platform or the shop database
unavailable, an unforeseen error, a chunk this machine's ledger does not know yet) puts the
message back; after `max_attempts` deliveries — counted by the queue and by the ledger, so a
consumer killed again and again by a poison chunk counts too — the chunk is marked failed and the
message goes to the dead-letter queue with the reason. A refusal that no retry can fix (an
unknown dataset, refused credentials) fails the chunk at once. Nothing a message or the queue
does stops the loop: a failure to settle a delivery leaves it to be handed out again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from koppla.bus.queue import Delivery, WorkQueue
from koppla.connector.history.chunk import ChunkWorker
from koppla.connector.history.ledger import Ledger
from koppla.connector.history.message import ChunkMessage
from koppla.core import clock
from koppla.core.errors import InvalidInput, NotFound, TerminalError

log = logging.getLogger("koppla.connector.history")

Tick = Callable[[], Awaitable[None]]


async def consume(
    queue: WorkQueue,
    worker: ChunkWorker,
    ledger: Ledger,
    *,
    stopped: Callable[[], bool],
    max_attempts: int,
    wait_s: float = 1.0,
    tick: Tick | None = None,
    tick_every_s: float = 2.0,
) -> int:
    """Handle messages until `stopped()` says so; returns how many chunks were sent.

    `tick`, when given, runs about every `tick_every_s` seconds between messages (upkeep such
    as recording batch outcomes); its failures are logged, never raised.
    """
    sent = 0
    next_tick = 0.0
    while not stopped():
        if tick is not None and clock.monotonic() >= next_tick:
            next_tick = clock.monotonic() + tick_every_s
            try:
                await tick()
            except Exception:  # upkeep must never stop consumption
                log.exception("history upkeep failed; trying again later")
        try:
            delivery = await queue.get(wait_s)
            if delivery is not None and await handle(delivery, worker, ledger, max_attempts):
                sent += 1
        except Exception as error:  # the queue or the ledger away: the delivery comes back
            log.warning("history queue: %s: %s; retrying", type(error).__name__, error)
            await asyncio.sleep(wait_s)
    return sent


async def handle(
    delivery: Delivery, worker: ChunkWorker, ledger: Ledger, max_attempts: int
) -> bool:
    """Process one delivery to its end (ack, retry or dead letter); True when a chunk was sent."""
    try:
        message = ChunkMessage.decode(delivery.body)
    except InvalidInput as error:
        log.error("history queue: dead-lettered an unreadable message: %s", error)
        await delivery.dead_letter(str(error))
        return False
    try:
        result = await asyncio.to_thread(worker.handle, message)
    except Exception as error:  # every failure ends in a retry or a dead letter
        reason = f"{type(error).__name__}: {error}"
        attempts = max(delivery.attempt, _ledger_attempts(ledger, message))
        terminal = isinstance(error, TerminalError) and not isinstance(error, NotFound)
        if terminal or attempts >= max_attempts:
            log.error(
                "history chunk %s/%d failed after %d attempt(s): %s",
                message.request_id,
                message.no,
                attempts,
                reason,
            )
            if not isinstance(error, NotFound):
                ledger.mark_chunk_failed(message.request_id, message.no, reason)
            await delivery.dead_letter(reason)
            return False
        log.warning(
            "history chunk %s/%d: attempt %d failed, retrying: %s",
            message.request_id,
            message.no,
            attempts,
            reason,
        )
        await delivery.retry(reason)
        return False
    await delivery.ack()
    return not result.skipped


def _ledger_attempts(ledger: Ledger, message: ChunkMessage) -> int:
    try:
        return ledger.chunk(message.request_id, message.no).attempts
    except NotFound:
        return 0
