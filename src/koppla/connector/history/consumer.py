"""A consumer of history chunks: queue message → `ChunkWorker.handle` → ack.

The message is acknowledged only after the chunk's batches were completed on the platform (the
platform then holds the events durably). Trouble worth a retry (the platform or the shop database
unavailable, an unforeseen error) puts the message back; after `max_attempts` deliveries — counted
by the queue and by the ledger, so a consumer killed again and again by a poison chunk counts too —
the chunk is marked failed and the message goes to the dead-letter queue with the reason. A
refusal that no retry can fix (an unknown dataset, refused credentials) fails the chunk at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from koppla.bus.queue import Delivery, WorkQueue
from koppla.connector.history.ledger import Ledger
from koppla.connector.history.worker import ChunkMessage, ChunkWorker
from koppla.core.errors import InvalidInput, NotFound, TerminalError, is_retryable

log = logging.getLogger("koppla.connector.history")


async def consume(
    queue: WorkQueue,
    worker: ChunkWorker,
    ledger: Ledger,
    *,
    stopped: Callable[[], bool],
    max_attempts: int,
    wait_s: float = 1.0,
) -> int:
    """Handle messages until `stopped()` says so; returns how many chunks were sent."""
    sent = 0
    while not stopped():
        try:
            delivery = await queue.get(wait_s)
        except Exception as error:  # the broker away for a moment: wait for it
            if not is_retryable(error):
                raise
            log.warning("history queue unavailable, retrying: %s", error)
            await asyncio.sleep(wait_s)
            continue
        if delivery is None:
            continue
        if await handle(delivery, worker, ledger, max_attempts):
            sent += 1
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
    except NotFound as error:  # the request or chunk is not in this machine's ledger
        log.error("history chunk %s/%d: %s", message.request_id, message.no, error)
        await delivery.dead_letter(str(error))
        return False
    except Exception as error:  # every failure ends in a retry or a dead letter
        reason = f"{type(error).__name__}: {error}"
        attempts = max(delivery.attempt, _ledger_attempts(ledger, message))
        if isinstance(error, TerminalError) or attempts >= max_attempts:
            log.error(
                "history chunk %s/%d failed after %d attempt(s): %s",
                message.request_id,
                message.no,
                attempts,
                reason,
            )
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
