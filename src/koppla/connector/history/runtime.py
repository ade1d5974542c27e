"""The history sync inside the running connector (`koppla connector run`, `koppla up --demo`).

A sync requested without waiting (`history:sync --no-wait`, `POST /api/v1/connector/history`)
is carried out by the running connector: one consumer, whose upkeep every `REFRESH_EVERY_S`
queues the chunks of requests not yet (or not fully) produced, marks failed the chunks the queue
gave up on, and records the outcome of finished batches so each request reaches `done`.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.history.chunk import ChunkWorker
from koppla.connector.history.consumer import consume
from koppla.connector.history.sync import HistorySync, open_history_queue
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import StoreSource, connect

log = logging.getLogger("koppla.connector.history")

REFRESH_EVERY_S = 2.0
RESTART_AFTER_S = 5.0


def run_history(settings: ConnectorSettings, stop: threading.Event) -> None:
    """Carry out requested history syncs until `stop` is set (blocking; call it in a thread)."""
    while not stop.is_set():
        try:
            asyncio.run(_serve(settings, stop))
        except Exception as error:  # the live connector must outlive this loop (a queue down)
            log.warning("history sync loop: %s: %s; starting again", type(error).__name__, error)
            stop.wait(RESTART_AFTER_S)


async def _serve(settings: ConnectorSettings, stop: threading.Event) -> None:
    sync = HistorySync(settings)
    queue = await open_history_queue(settings)
    engine = connect(settings.dsn)
    platform = PlatformBatches(settings)

    async def upkeep() -> None:
        await sync.produce_unfinished(queue)
        await sync.settle_dead_letters(queue)
        await asyncio.to_thread(sync.refresh_unfinished)

    try:
        worker = ChunkWorker(
            settings, sync.ledger, StoreSource(engine, settings.custom_columns), platform
        )
        await consume(
            queue,
            worker,
            sync.ledger,
            stopped=stop.is_set,
            max_attempts=settings.history_max_attempts,
            tick=upkeep,
            tick_every_s=REFRESH_EVERY_S,
        )
    finally:
        platform.close()
        engine.dispose()
        await queue.close()
        sync.close()
