"""Consumer processes and loops of the history sync.

`run_worker(settings, stopped)` is one consumer: it opens the queue, the ledger, the shop
database and the platform client, and handles chunks until `stopped()`. `spawn_workers` starts
several in child processes (the work is CPU-bound: one process per core scales, threads do not);
each child stops on SIGTERM or when its parent is gone. `koppla connector history:work` runs one in
the foreground. Consumers share the ledger, a SQLite file of the connector home: they run on the
connector's machine (SQLite's WAL mode does not work on a network file system).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.history.chunk import ChunkWorker
from koppla.connector.history.consumer import consume
from koppla.connector.history.ledger import Ledger
from koppla.connector.history.sync import ledger_path, open_history_queue
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import StoreSource, connect
from koppla.core.lifecycle import child_stop_event

log = logging.getLogger("koppla.connector.history")


async def run_worker(settings: ConnectorSettings, stopped: Callable[[], bool]) -> int:
    """Consume history chunks until `stopped()`; returns how many chunks this worker sent."""
    queue = await open_history_queue(settings)
    ledger = Ledger(ledger_path(settings))
    engine = connect(settings.dsn)
    platform = PlatformBatches(settings)
    try:
        worker = ChunkWorker(
            settings, ledger, StoreSource(engine, settings.custom_columns), platform
        )
        return await consume(
            queue, worker, ledger, stopped=stopped, max_attempts=settings.history_max_attempts
        )
    finally:
        platform.close()
        engine.dispose()
        ledger.close()
        await queue.close()


def worker_main(settings: ConnectorSettings, parent_pid: int) -> None:
    """Entry point of a consumer child process."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s history-worker %(levelname)s %(message)s"
    )
    stop = child_stop_event(parent_pid, "history-worker")
    asyncio.run(run_worker(settings, stop.is_set))


def spawn_workers(settings: ConnectorSettings, count: int) -> list[BaseProcess]:
    """Start `count` consumer processes (spawned: nothing of this process is inherited)."""
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    for number in range(count):
        process = context.Process(
            target=worker_main,
            args=(settings, os.getpid()),
            name=f"koppla-history-worker-{number}",
            daemon=True,
        )
        process.start()
        processes.append(process)
    return processes


def stop_workers(processes: list[BaseProcess], timeout_s: float = 30.0) -> None:
    """Ask each worker to stop after its current chunk, then wait for it (killing stragglers)."""
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: the worker finishes the chunk in hand, then stops
    for process in processes:
        process.join(timeout_s)
        if process.is_alive():
            log.warning("history worker %s did not stop; killing it", process.name)
            process.kill()
            process.join(5)
