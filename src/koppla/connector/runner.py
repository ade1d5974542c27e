"""The scheduled loop: changes → orders feed → outbox → delivery, every `poll_interval_s`.

`run_connector(home, stop)` is what `koppla connector run` and `koppla up --demo` call; it
returns when `stop` is set. `Connector` holds the object graph for commands and tests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.exc import SQLAlchemyError

from koppla.connector.changelog import (
    ChangeTracker,
    PollChanges,
    TriggerChanges,
    triggers_installed,
)
from koppla.connector.delivery import Sender, SendResult
from koppla.connector.feed import OrdersFeed, SyncReport
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import StoreSource, connect
from koppla.connector.state import State
from koppla.core import clock
from koppla.core.errors import InvalidInput

log = logging.getLogger("koppla.connector")

INITIAL_SYNC = "initial_sync_done"
LAST_CHANGE_MS = "last_change_ms"
KEEP_SENT_MS = 7 * 24 * 3600 * 1000
"""How long delivered events stay in the outbox (for `status` and investigations)."""
PRUNE_EVERY_S = 3600.0

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one loop step did; `more` means changes are left to read at once."""

    sync: SyncReport
    delivery: SendResult
    more: bool = False


class Connector:
    """The connector's parts for one home: source, state, feed, tracker and sender."""

    def __init__(self, settings: ConnectorSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.engine = connect(settings.dsn)
        self.source = StoreSource(self.engine)
        self.state = State(settings.state_path)
        self.feed = OrdersFeed(settings, self.source, self.state)
        self.sender = Sender(settings, self.state, client)
        self.tracker: ChangeTracker = (
            TriggerChanges(self.engine)
            if settings.change_tracking == "triggers"
            else PollChanges(self.engine)
        )

    def close(self) -> None:
        """Release connections and files."""
        self.sender.close()
        self.state.close()
        self.engine.dispose()

    def check(self) -> None:
        """Refuse to run without what the chosen change tracking needs."""
        if self.settings.change_tracking == "triggers" and not triggers_installed(self.engine):
            raise InvalidInput(
                "change_tracking: triggers are not installed in the shop database; run "
                '`koppla connector install-triggers` or set change_tracking = "poll"',
                field="change_tracking",
            )

    def reindex(self, progress: Progress | None = None, *, resend: bool = False) -> SyncReport:
        """Rebuild the feed for every order of the configured websites (events only for changes)."""
        start_cursor: dict[str, str] = {}
        if isinstance(self.tracker, PollChanges):
            start_cursor[PollChanges.cursor_name] = self.tracker.now().isoformat()
        total = SyncReport(0, 0, 0, 0)
        for ids in self.source.order_ids(self.feed.websites()):
            report = self.feed.sync(ids, resend=resend)
            total = SyncReport(
                *(a + b for a, b in zip(_fields(total), _fields(report), strict=True))
            )
            if progress is not None:
                progress(len(ids))
        done = {INITIAL_SYNC: "1", **start_cursor}
        if self.state.cursor(PollChanges.cursor_name) is not None:
            done.pop(PollChanges.cursor_name, None)
        self.feed.sync([], done)
        return total

    def step(self) -> StepReport:
        """One scheduled run: catch up on changes, then deliver what waits."""
        more = False
        if self.state.cursor(INITIAL_SYNC) is None:
            log.info("initial sync of the orders feed")
            sync = self.reindex()
        else:
            changes = self.tracker.fetch(self.state.cursor(self.tracker.cursor_name))
            cursors = {self.tracker.cursor_name: changes.cursor}
            if changes.order_ids:
                cursors[LAST_CHANGE_MS] = str(clock.now_ms())
            sync = self.feed.sync(changes.order_ids, cursors)
            self.tracker.ack(changes)
            more = changes.more
        delivery = self.sender.drain()
        if sync.events or delivery.sent or delivery.failed:
            log.info(
                "%d orders changed, %d events queued, %d sent, %d refused",
                sync.changed,
                sync.events,
                delivery.sent,
                delivery.failed,
            )
        return StepReport(sync, delivery, more)

    def loop(self, stop: threading.Event) -> None:
        """Run `step` every `poll_interval_s` until `stop` is set; survive a shop DB outage."""
        interval = self.settings.poll_interval_s
        next_prune = 0.0
        while not stop.is_set():
            began = clock.monotonic()
            if began >= next_prune:
                self.state.prune_sent(clock.now_ms() - KEEP_SENT_MS)
                next_prune = began + PRUNE_EVERY_S
            try:
                if self.step().more:
                    continue
            except SQLAlchemyError as error:
                log.warning("shop database unavailable, retrying: %s", error)
            elapsed = clock.monotonic() - began
            stop.wait(max(0.0, interval - elapsed))


def _fields(report: SyncReport) -> tuple[int, int, int, int]:
    return report.read, report.changed, report.events, report.errors


def run_connector(
    home: Path, stop: threading.Event, settings: ConnectorSettings | None = None
) -> None:
    """Run the connector of `home` until `stop` is set (blocking; call it in a thread)."""
    connector = Connector(settings or load_settings(home))
    try:
        connector.check()
        connector.loop(stop)
    finally:
        connector.close()
