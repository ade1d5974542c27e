"""`koppla connector history:sync | history:status | history:work`: the Order History tab.

`history:sync --from --to` checks the request (the same rules as the admin pages), queues its
chunks, starts `history_workers` consumer processes and shows a progress bar until every batch is
processed (`--no-wait` leaves the work to the running connector or to `history:work`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from koppla.connector.history.processes import run_worker, spawn_workers, stop_workers
from koppla.connector.history.progress import Progress as SyncProgress
from koppla.connector.history.request import parse_day
from koppla.connector.history.sync import HistorySync, open_history_queue
from koppla.connector.settings import ConnectorSettings
from koppla.core import codec
from koppla.core.errors import KopplaError, is_retryable

log = logging.getLogger("koppla.connector.history")
console = Console()
err = Console(stderr=True)

POLL_S = 0.5


def sync(
    settings: ConnectorSettings,
    start: str,
    end: str,
    website: str | None,
    *,
    wait: bool,
    workers: int | None,
    as_json: bool,
) -> int:
    """`history:sync`: returns the exit code (0 done, 1 finished with failures, 2 refused)."""
    history = HistorySync(settings)
    try:
        try:
            plan_start, plan_end = parse_day(start, "from"), parse_day(end, "to")
            plan = history.plan(plan_start, plan_end, website)
            asyncio.run(_reach_queue(settings))  # refuse before anything is recorded
            request = history.record(plan)
        except KopplaError as error:
            err.print(f"[red]error:[/] {error}")
            return 2
        err.print(
            f"history sync {request.id}: orders created {request.plan.start} to "
            f"{request.plan.end} → "
            + ", ".join(f"{w} → {d}" for w, d in request.plan.datasets.items())
        )
        count = workers or settings.history_workers
        processes = spawn_workers(settings, count) if wait else []
        try:
            asyncio.run(_produce(history, request.id, settings))
            if not wait:
                console.print(request.id)
                return 0
            try:
                final = _watch(history, request.id, Keeper(settings, processes, count * 3))
            except WorkersGone as error:
                err.print(f"[red]error:[/] {error}")
                return 1
        finally:
            stop_workers(processes)
        _report(final, as_json)
        return 0 if final.request.status == "done" else 1
    finally:
        history.close()


async def _reach_queue(settings: ConnectorSettings) -> None:
    """Open and close the queue: raises (a `KopplaError`) when it cannot be reached."""
    queue = await open_history_queue(settings)
    await queue.close()


class Keeper:
    """Keeps the consumer processes of a waiting `history:sync` running: one that exited is
    started again, up to `restarts` times in all, after which the wait gives up."""

    def __init__(
        self, settings: ConnectorSettings, processes: list[BaseProcess], restarts: int
    ) -> None:
        self._settings = settings
        self.processes = processes
        self._left = restarts

    def check(self) -> None:
        """Restart exited consumers; `WorkersGone` once the restarts are used up."""
        for index, process in enumerate(self.processes):
            if process.is_alive():
                continue
            if self._left <= 0:
                raise WorkersGone(
                    "the history consumers keep exiting (see their log above); the sync is "
                    "recorded: `koppla connector history:work` or `run` carries it on"
                )
            self._left -= 1
            log.warning(
                "history consumer %s exited (%s); starting another", process.name, process.exitcode
            )
            self.processes[index] = spawn_workers(self._settings, 1)[0]


class WorkersGone(KopplaError):
    """Every restart of the consumer processes was used up."""


async def _produce(history: HistorySync, request_id: str, settings: ConnectorSettings) -> None:
    queue = await open_history_queue(settings)
    try:
        await history.produce(history.ledger.request(request_id), queue)
    finally:
        await queue.close()


def _watch(history: HistorySync, request_id: str, keeper: Keeper) -> SyncProgress:
    """Show a progress bar until the request is done or failed; the last figures."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} orders/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with bar:
        task = bar.add_task("orders", total=None, rate="-")

        def show(current: SyncProgress) -> None:
            counts = current.counts
            bar.update(
                task,
                total=counts.orders_found or None,
                completed=counts.orders_done + counts.orders_failed,
                rate="-" if current.rate is None else f"{current.rate:,.0f}",
            )

        def show_and_keep(current: SyncProgress) -> None:
            show(current)
            keeper.check()

        return asyncio.run(wait_until_finished(history, request_id, show_and_keep))


async def wait_until_finished(
    history: HistorySync, request_id: str, show: Callable[[SyncProgress], None] | None = None
) -> SyncProgress:
    """Poll the request's progress (recording batch outcomes and chunks the queue gave up on)
    until it is done or failed; the last figures."""
    queue = await open_history_queue(history.settings)
    try:
        while True:
            try:
                await history.settle_dead_letters(queue)
                current = await asyncio.to_thread(history.progress, request_id)
            except Exception as error:  # the queue or the platform away for a moment
                if not is_retryable(error):
                    raise
                log.warning("history sync %s: %s; still waiting", request_id, error)
                await asyncio.sleep(POLL_S * 4)
                continue
            if show is not None:
                show(current)
            if current.request.status in ("done", "failed"):
                return current
            await asyncio.sleep(POLL_S)
    finally:
        await queue.close()


def _report(current: SyncProgress, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(codec.dumps_pretty(current.as_json()) + "\n")
        return
    shown = current.as_json()
    orders, batches = shown["orders"], shown["batches"]
    console.print(
        f"history sync {shown['id']}: {shown['status']}; orders found {orders['found']}, done "
        f"{orders['done']}, failed {orders['failed']}; events {shown['events']}; batches "
        f"{batches['created']} created, {batches['succeeded']} succeeded, {batches['failed']} "
        f"failed ({batches['rowsFailed']} rows refused); {shown['ordersPerSecond']} orders/s"
    )


def status(settings: ConnectorSettings, request_id: str | None, as_json: bool) -> int:
    """`history:status`: the figures of one request (default: the newest)."""
    history = HistorySync(settings)
    try:
        try:
            current = history.progress(request_id)
        except KopplaError as error:
            err.print(f"[red]error:[/] {error}")
            return 2
        failed_orders = history.ledger.failed_orders(current.request.id, limit=20)
        failed_chunks = history.ledger.chunk_errors(current.request.id)
    finally:
        history.close()
    if as_json:
        body = current.as_json()
        body["failedOrders"] = [
            {"orderId": oid, "field": fld, "message": msg} for oid, fld, msg in failed_orders
        ]
        body["failedChunks"] = [{"chunk": no, "error": msg} for no, msg in failed_chunks]
        sys.stdout.write(codec.dumps_pretty(body) + "\n")
        return 0
    _report(current, False)
    for oid, _, msg in failed_orders:
        console.print(f"  order {oid}: {msg}")
    for no, msg in failed_chunks:
        console.print(f"  chunk {no}: {msg}")
    return 0


def work(settings: ConnectorSettings, stop: threading.Event) -> int:
    """`history:work`: consume history chunks in the foreground until `stop` is set."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run_worker(settings, stop.is_set))
