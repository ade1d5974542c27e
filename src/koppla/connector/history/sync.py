"""The Order History tab's actions for one connector home: start a sync, put it on the queue,
watch it. The CLI (`koppla connector history:...`) and the admin pages both go through here.

`HistorySync.start(from, to)` applies every rule (`request.plan_request`) and checks with the
platform that each dataset exists and that the credentials are accepted, then records the
request. `produce(request)` puts its chunks on the queue (one producer at a time per home, held
by a file lock; a stopped producer is resumed by the next call). `progress(id)` refreshes the
batch outcomes from the platform and returns the figures.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from koppla.bus.queue import WorkQueue, open_queue
from koppla.connector.history.batch_client import PlatformBatches, PlatformView
from koppla.connector.history.ledger import Ledger, SyncRequest
from koppla.connector.history.message import ChunkMessage
from koppla.connector.history.producer import produce
from koppla.connector.history.progress import Progress, progress, refresh
from koppla.connector.history.request import SyncPlan, plan_request
from koppla.connector.retry import Unauthorized
from koppla.connector.settings import ConnectorSettings
from koppla.connector.source import StoreSource, connect
from koppla.core import clock, ids
from koppla.core.errors import InvalidInput, NotFound


def ledger_path(settings: ConnectorSettings) -> Path:
    """Where a home's history ledger lives."""
    return settings.home / "connector" / "history.sqlite"


ABANDONED_QUIET_MS = 10 * 60 * 1000
"""A chunk delivered `history_max_attempts` times and untouched this long is given up."""


def queue_name(settings: ConnectorSettings) -> str:
    """The queue's name: `queue_name`, else `koppla-history-<this home's id>` (so two homes on
    one RabbitMQ never take each other's chunks)."""
    if settings.queue_name:
        return settings.queue_name
    ledger = Ledger(ledger_path(settings))
    try:
        return f"koppla-history-{ledger.home_id()}"
    finally:
        ledger.close()


async def open_history_queue(settings: ConnectorSettings, prefetch: int = 1) -> WorkQueue:
    """The history sync's queue: embedded under the home, or RabbitMQ (`queue_url`)."""
    return await open_queue(
        settings.queue_url.get_secret_value(),
        queue_name(settings),
        home=settings.home,
        prefetch=prefetch,
        max_attempts=settings.history_max_attempts,
    )


class HistorySync:
    """Start, produce and watch history syncs of one connector home."""

    def __init__(self, settings: ConnectorSettings, platform: PlatformView | None = None) -> None:
        self.settings = settings
        self.ledger = Ledger(ledger_path(settings))
        self.platform: PlatformView = platform or PlatformBatches(settings)

    def close(self) -> None:
        """Release the ledger and the HTTP client."""
        self.ledger.close()
        self.platform.close()

    def plan(
        self, start: date, end: date, website: str | None = None, today: date | None = None
    ) -> SyncPlan:
        """The checked plan of a sync; `InvalidInput` naming the field and the problem."""
        plan = plan_request(self.settings, start, end, today or clock.now().date(), website)
        for code, dataset in plan.datasets.items():
            try:
                exists = self.platform.dataset_exists(dataset)
            except Unauthorized as error:
                raise InvalidInput(
                    f"token: the platform refused the credentials ({error})", field="token"
                ) from None
            if not exists:
                raise InvalidInput(
                    f"dataset: {dataset!r} (website {code!r}) is not a dataset on the platform",
                    field="dataset",
                )
        return plan

    def start(
        self, start: date, end: date, website: str | None = None, today: date | None = None
    ) -> SyncRequest:
        """Check and record a new sync (its chunks are queued by `produce`)."""
        return self.record(self.plan(start, end, website, today))

    def record(self, plan: SyncPlan) -> SyncRequest:
        """Record a checked plan as a new sync."""
        return self.ledger.add_request(ids.new_hex_id(8), plan)

    async def produce(self, request: SyncRequest, queue: WorkQueue) -> bool:
        """Queue every chunk of `request` unless another process is doing it; True when done."""
        with _producer_lock(self.settings.home) as held:
            if not held:
                return False
            current = self.ledger.request(request.id)
            if current.produced:
                return True
            engine = connect(self.settings.dsn)
            try:
                await produce(
                    self.ledger,
                    StoreSource(engine, self.settings.custom_columns),
                    queue,
                    current,
                    self.settings.history_chunk_orders,
                )
            finally:
                engine.dispose()
        return True

    async def produce_unfinished(self, queue: WorkQueue) -> None:
        """Resume every request whose producer stopped before all chunks were queued."""
        for request in self.ledger.unfinished():
            if not request.produced:
                await self.produce(request, queue)

    def progress(self, request_id: str | None = None, *, refresh_first: bool = True) -> Progress:
        """The progress of `request_id` (default: the newest request); `NotFound` if none."""
        if request_id is None:
            newest = self.ledger.requests(limit=1)
            if not newest:
                raise NotFound("no history sync has been requested in this home")
            request_id = newest[0].id
        if refresh_first:
            refresh(self.ledger, self.platform, request_id)
            self.ledger.fail_abandoned(
                request_id, self.settings.history_max_attempts, ABANDONED_QUIET_MS
            )
        return progress(self.ledger, request_id)

    async def settle_dead_letters(self, queue: WorkQueue) -> int:
        """Mark failed the chunks whose messages the queue dead-lettered by itself (a consumer
        died on them `history_max_attempts` times); returns how many."""
        settled = 0
        for letter in await queue.dead_letters(limit=1000):
            try:
                message = ChunkMessage.decode(letter.body)
                chunk = self.ledger.chunk(message.request_id, message.no)
            except (InvalidInput, NotFound):
                continue
            if chunk.status == "queued":
                reason = f"dead-lettered after {letter.attempts} deliveries: {letter.reason}"
                self.ledger.mark_chunk_failed(chunk.request_id, chunk.no, reason)
                settled += 1
        return settled

    def refresh_unfinished(self) -> None:
        """Record the outcome of finished batches of every running request."""
        for request in self.ledger.unfinished():
            self.progress(request.id)


@contextmanager
def _producer_lock(home: Path) -> Iterator[bool]:
    """Hold the home's producer lock if free (yields False when another process has it)."""
    path = home / "connector" / "history-producer.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
