"""The producer: a request's date range split into chunks of orders, each a queue message.

Pages through the matching order ids (keyset on `entity_id`, `chunk_orders` at a time); each
page becomes a chunk. Chunks are recorded (with the cursor) before their messages are published,
and marked published once the queue holds them, so a producer stopped at any point resumes where
it was: chunks recorded but not known to be published are published again (a duplicate message
is harmless: the consumer skips a chunk already sent).
"""

from __future__ import annotations

import logging

from koppla.bus.queue import WorkQueue
from koppla.connector.history.chunk import order_ids_in
from koppla.connector.history.ledger import Chunk, Ledger, SyncRequest
from koppla.connector.history.message import ChunkMessage
from koppla.connector.source import StoreSource

log = logging.getLogger("koppla.connector.history")

CHUNKS_PER_PUBLISH = 20
"""Chunks recorded in one ledger transaction and published together."""


async def produce(
    ledger: Ledger, source: StoreSource, queue: WorkQueue, request: SyncRequest, chunk_orders: int
) -> int:
    """Put every chunk of `request` on the queue; returns how many chunks it added."""
    await _publish(ledger, queue, request.id, ledger.unpublished(request.id))
    after = request.produced_after
    added = 0
    last = 2**63 - 1
    while True:
        pages: list[tuple[int, int, int]] = []
        for _ in range(CHUNKS_PER_PUBLISH):
            ids = order_ids_in(source, request, after + 1, last, limit=chunk_orders)
            if not ids:
                break
            pages.append((ids[0], ids[-1], len(ids)))
            after = ids[-1]
        if not pages:
            break
        chunks = ledger.add_chunks(request.id, pages)
        await _publish(ledger, queue, request.id, chunks)
        added += len(chunks)
    ledger.mark_produced(request.id)
    log.info("history sync %s: %d chunk(s) queued", request.id, added)
    return added


async def _publish(ledger: Ledger, queue: WorkQueue, request_id: str, chunks: list[Chunk]) -> None:
    if not chunks:
        return
    messages = [ChunkMessage(c.request_id, c.no, c.first_id, c.last_id) for c in chunks]
    await queue.publish([m.encode() for m in messages])
    ledger.mark_published(request_id, [c.no for c in chunks])
