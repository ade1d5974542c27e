"""The history sync inside the running connector (`koppla connector run`, `koppla up --demo`).

A sync requested without waiting (`history:sync --no-wait`, the admin pages) is carried out by
the running connector: this loop resumes any producer that stopped, consumes chunks, and every
`REFRESH_EVERY_S` records the outcome of finished batches so the request reaches `done`.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.history.consumer import handle
from koppla.connector.history.ledger import Ledger
from koppla.connector.history.sync import HistorySync, open_history_queue
from koppla.connector.history.worker import ChunkWorker
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import StoreSource, connect
from koppla.core import clock
from koppla.core.errors import is_retryable

log = logging.getLogger("koppla.connector.history")

REFRESH_EVERY_S = 2.0


def run_history(settings: ConnectorSettings, stop: threading.Event) -> None:
    """Carry out requested history syncs until `stop` is set (blocking; call it in a thread)."""
    while not stop.is_set():
        try:
            asyncio.run(_serve(settings, stop))
        except Exception as error:  # the live connector must outlive this loop
            if not is_retryable(error):
                log.exception("history sync loop stopped")
            else:
                log.warning("history sync loop: %s; starting again", error)
            stop.wait(5.0)


async def _serve(settings: ConnectorSettings, stop: threading.Event) -> None:
    sync = HistorySync(settings)
    queue = await open_history_queue(settings)
    engine = connect(settings.dsn)
    ledger: Ledger = sync.ledger
    platform: PlatformBatches = sync.platform
    worker = ChunkWorker(settings, ledger, StoreSource(engine), platform)
    next_refresh = 0.0
    try:
        await sync.produce_unfinished(queue)
        while not stop.is_set():
            if clock.monotonic() >= next_refresh:
                await sync.settle_dead_letters(queue)
                await asyncio.to_thread(sync.refresh_unfinished)
                next_refresh = clock.monotonic() + REFRESH_EVERY_S
            delivery = await queue.get(1.0)
            if delivery is not None:
                await handle(delivery, worker, ledger, settings.history_max_attempts)
    finally:
        engine.dispose()
        await queue.close()
        sync.close()
