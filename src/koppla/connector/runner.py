"""The scheduled loop: changes → orders and customer feeds → outbox → delivery.

Every `poll_interval_s`. Customers are synced only while a website has `customer_profiles` on:
the first step (and the first after such a website is added) backfills every customer of those
websites, later steps follow the customer changelog (or poll), and in `poll` mode a cheap id
scan at most every `SWEEP_EVERY_S` notices deleted customers.

`run_connector(home, stop)` is what `koppla connector run` and `koppla up --demo` call; it
returns when `stop` is set. `Connector` holds the object graph for commands and tests.

Settings: with `settings_from_platform` on (the default) and credentials (a token or a service
account), every loop step first asks the platform whether the admin settings changed
(`RemoteSettings`, a conditional GET); a change is applied before the step runs, so a saved
datastream or dataset is used within one poll. The initial sync of the orders waits until a
website is configured.
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
    CUSTOMER_LOG,
    CUSTOMER_POLLED,
    ChangeTracker,
    PollChanges,
    TriggerChanges,
    triggers_installed,
)
from koppla.connector.customer_feed import CustomersFeed
from koppla.connector.customers import CustomerSource
from koppla.connector.delivery import Sender, SendResult
from koppla.connector.feed import OrdersFeed, SyncReport
from koppla.connector.remote_settings import RemoteSettings
from koppla.connector.settings import (
    ConnectorSettings,
    has_credentials,
    load_settings,
    reload_settings,
)
from koppla.connector.source import StoreSource, connect
from koppla.connector.state import State
from koppla.core import clock
from koppla.core.errors import InvalidInput

log = logging.getLogger("koppla.connector")

INITIAL_SYNC = "initial_sync_done"
LAST_CHANGE_MS = "last_change_ms"
ORDER_POLL_CURSOR = "poll_timestamp"
CUSTOMER_SYNC = "customer_sync_websites"
"""Cursor: the websites (comma-separated codes) whose customers were backfilled."""
CUSTOMER_CHANGELOG_CURSOR = "customer_changelog_version"
CUSTOMER_POLL_CURSOR = "customer_poll_timestamp"
LAST_CUSTOMER_CHANGE_MS = "last_customer_change_ms"
SWEEP_EVERY_S = 60.0
"""Poll mode: how often the known customer ids are compared with the existing ones."""
NO_SYNC = SyncReport(0, 0, 0, 0)
KEEP_SENT_MS = 7 * 24 * 3600 * 1000
"""Delivered messages an older connector kept in the outbox are counted and dropped after this
long (a delivered message no longer stays: `State.mark_sent`)."""
PRUNE_EVERY_S = 3600.0
MIGRATED_CHUNK = 2000
"""Orders migrated without a hash synced per feed step (`Connector._sync_migrated`)."""

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one loop step did; `more` means changes are left to read at once."""

    sync: SyncReport
    delivery: SendResult
    more: bool = False
    customers: SyncReport = NO_SYNC


class Connector:
    """The connector's parts for one home: source, state, feed, tracker and sender."""

    def __init__(
        self,
        settings: ConnectorSettings,
        client: httpx.Client | None = None,
        remote: RemoteSettings | None = None,
    ) -> None:
        self.settings = settings
        self.remote = remote
        self._client = client
        self.engine = connect(settings.dsn)
        self.source = StoreSource(self.engine, settings.custom_columns)
        self.state = State(settings.state_path)
        self.feed = OrdersFeed(settings, self.source, self.state)
        self.sender = Sender(settings, self.state, client)
        self.tracker: ChangeTracker = (
            TriggerChanges(self.engine)
            if settings.change_tracking == "triggers"
            else PollChanges(self.engine, cursor_name=ORDER_POLL_CURSOR)
        )
        self.customer_source = CustomerSource(self.engine, self.source)
        self.customers = CustomersFeed(settings, self.customer_source, self.state)
        self.customer_tracker: ChangeTracker = (
            TriggerChanges(self.engine, log=CUSTOMER_LOG, cursor_name=CUSTOMER_CHANGELOG_CURSOR)
            if settings.change_tracking == "triggers"
            else PollChanges(self.engine, CUSTOMER_POLLED, CUSTOMER_POLL_CURSOR)
        )
        self.sweep_every_s = SWEEP_EVERY_S
        self._next_sweep = 0.0
        self._customer_log: bool | None = None
        self._migrated_synced = False

    def close(self) -> None:
        """Release connections and files."""
        self.sender.close()
        if self.remote is not None:
            self.remote.close()
        self.state.close()
        self.engine.dispose()

    def refresh_settings(self) -> bool:
        """Apply the platform's admin settings when they changed; True when they did.

        Settings that break a rule (or clash with `connector.toml`) are logged and left
        unapplied: the connector goes on with the ones it has.
        """
        if self.remote is None:
            return False
        try:
            if not self.remote.refresh():
                return False
        except OSError as error:  # the cache could not be written: try again next poll
            log.warning("the connector settings cache cannot be written: %s", error)
            return False
        try:
            fresh = reload_settings(self.settings)
        except InvalidInput as error:
            log.error("the platform's connector settings are not applied: %s", error)
            return False
        if fresh.admin == self.settings.admin:
            return False
        self.apply(fresh)
        log.info(
            "connector settings applied: websites %s",
            ", ".join(f"{w.website_code} → {w.datastream_id}" for w in fresh.websites) or "none",
        )
        return True

    def apply(self, settings: ConnectorSettings) -> None:
        """Use `settings` from the next step on (its admin part: organization and websites;
        the shop database, change tracking and platform address stay as they were)."""
        self.settings = settings
        self.source.use_custom_columns(settings.custom_columns)
        self.feed = OrdersFeed(settings, self.source, self.state)
        self.customers = CustomersFeed(settings, self.customer_source, self.state)
        backoff = self.sender.backoff
        if self._client is None:
            self.sender.close()
        self.sender = Sender(settings, self.state, self._client)
        self.sender.backoff = backoff

    def check(self) -> None:
        """Refuse to run without what the chosen change tracking needs."""
        if self.settings.change_tracking == "triggers" and not triggers_installed(self.engine):
            raise InvalidInput(
                "change_tracking: triggers are not installed in the shop database; run "
                '`koppla connector install-triggers` or set change_tracking = "poll"',
                field="change_tracking",
            )
        triggers = self.settings.change_tracking == "triggers"
        if triggers and self.customers.websites() and not self._has_customer_log():
            raise InvalidInput(
                "change_tracking: the customer changelog triggers are not installed in the shop "
                "database; run `koppla connector install-triggers` again (it adds them) or set "
                'change_tracking = "poll"',
                field="change_tracking",
            )

    def _has_customer_log(self) -> bool:
        """Whether the customer changelog exists (triggers mode; looked up once)."""
        if self.settings.change_tracking != "triggers":
            return False
        if self._customer_log is None:
            self._customer_log = triggers_installed(self.engine, CUSTOMER_LOG)
        return self._customer_log

    def reindex(self, progress: Progress | None = None, *, resend: bool = False) -> SyncReport:
        """Rebuild the feed for every order of the configured websites (events only for changes).

        Without any website there is nothing to read: the initial sync is then left to do (not
        marked done), so the orders are read once a website is configured.
        """
        if not self.settings.websites:
            return NO_SYNC
        start_cursor: dict[str, str] = {}
        if isinstance(self.tracker, PollChanges):
            start_cursor[ORDER_POLL_CURSOR] = self.tracker.now().isoformat()
        total = NO_SYNC
        for ids in self.source.order_ids(self.feed.websites()):
            total = _add(total, self.feed.sync(ids, resend=resend))
            if progress is not None:
                progress(len(ids))
        done = {INITIAL_SYNC: "1", **start_cursor}
        if self.state.cursor(ORDER_POLL_CURSOR) is not None:
            done.pop(ORDER_POLL_CURSOR, None)
        self.feed.sync([], done)
        return total

    def reindex_customers(
        self,
        progress: Progress | None = None,
        *,
        resend: bool = False,
        websites: list[str] | None = None,
    ) -> SyncReport:
        """Sync every customer of the profile-enabled websites (or of `websites`), and notice
        customers deleted meanwhile; messages only for changes unless `resend`."""
        enabled = self.customers.websites()
        cursors: dict[str, str] = {}
        tracker = self.customer_tracker
        if isinstance(tracker, PollChanges) and self.state.cursor(CUSTOMER_POLL_CURSOR) is None:
            cursors[CUSTOMER_POLL_CURSOR] = tracker.now().isoformat()
        total = NO_SYNC
        for ids in self.customer_source.customer_ids(enabled if websites is None else websites):
            total = _add(total, self.customers.sync(ids, resend=resend))
            if progress is not None:
                progress(len(ids))
        cursors[CUSTOMER_SYNC] = ",".join(sorted(enabled))
        return _add(total, self.customers.sweep(cursors))

    def _customer_step(self) -> tuple[SyncReport, bool]:
        """Customers: backfill new profile websites, else follow the changes."""
        enabled = self.customers.websites()
        stored = self.state.cursor(CUSTOMER_SYNC) or ""
        done = {code for code in stored.split(",") if code}
        cursors: dict[str, str] = {}
        if done - set(enabled):  # a website turned off: turning it on again means a backfill
            cursors[CUSTOMER_SYNC] = ",".join(sorted(done & set(enabled)))
        if not enabled:
            if self._has_customer_log():  # keep the changelog from growing while unused
                self.customer_tracker.ack(self.customer_tracker.fetch(None))
            return (self.customers.sync([], cursors) if cursors else NO_SYNC), False
        missing = [code for code in enabled if code not in done]
        if missing:
            log.info("backfill of the customers of %s", ", ".join(missing))
            return self.reindex_customers(websites=missing), False
        return self._follow_customers(cursors)

    def _follow_customers(self, cursors: dict[str, str]) -> tuple[SyncReport, bool]:
        """Sync the customers changed since the cursor; in poll mode, sweep for deletions."""
        tracker = self.customer_tracker
        changes = tracker.fetch(self.state.cursor(tracker.cursor_name))
        cursors[tracker.cursor_name] = changes.cursor
        if changes.order_ids:
            cursors[LAST_CUSTOMER_CHANGE_MS] = str(clock.now_ms())
        report = self.customers.sync(changes.order_ids, cursors)
        tracker.ack(changes)
        if isinstance(tracker, PollChanges) and clock.monotonic() >= self._next_sweep:
            self._next_sweep = clock.monotonic() + self.sweep_every_s
            report = _add(report, self.customers.sweep())
        return report, changes.more

    def _sync_migrated(self) -> SyncReport:
        """Sync the orders an older connector's state left without a hash, so the events they
        may have missed (a closed order's ShipmentCompleted) are derived without a reindex."""
        ids = self.state.unhashed_orders()
        total = NO_SYNC
        for start in range(0, len(ids), MIGRATED_CHUNK):
            total = _add(total, self.feed.sync(ids[start : start + MIGRATED_CHUNK]))
        return total

    def step(self) -> StepReport:
        """One scheduled run: catch up on changes, then deliver what waits."""
        more = False
        if self.state.cursor(INITIAL_SYNC) is None and not self.settings.websites:
            sync = NO_SYNC  # nothing to sync yet: the initial sync waits for a website
        elif self.state.cursor(INITIAL_SYNC) is None:
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
        if not self._migrated_synced:  # once per process: see `State.unhashed_orders`
            self._migrated_synced = True
            sync = _add(sync, self._sync_migrated())
        customers, more_customers = self._customer_step()
        delivery = self.sender.drain()
        if sync.events or customers.events or delivery.sent or delivery.failed:
            log.info(
                "%d orders and %d customers changed, %d messages queued, %d sent, %d refused",
                sync.changed,
                customers.changed,
                sync.events + customers.events,
                delivery.sent,
                delivery.failed,
            )
        return StepReport(sync, delivery, more or more_customers, customers)

    def loop(self, stop: threading.Event) -> None:
        """Run `step` every `poll_interval_s` until `stop` is set; survive a shop DB outage."""
        interval = self.settings.poll_interval_s
        next_prune = next_refresh = 0.0
        while not stop.is_set():
            began = clock.monotonic()
            if began >= next_refresh:  # at most once a poll, also while catching up
                self.refresh_settings()
                next_refresh = began + interval
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


def _add(a: SyncReport, b: SyncReport) -> SyncReport:
    return SyncReport(*(x + y for x, y in zip(_fields(a), _fields(b), strict=True)))


def run_connector(
    home: Path, stop: threading.Event, settings: ConnectorSettings | None = None
) -> None:
    """Run the connector of `home` until `stop` is set (blocking; call it in a thread)."""
    settings = settings or load_settings(home)
    connector = Connector(settings, remote=follow_platform(settings))
    try:
        connector.refresh_settings()
        connector.check()
        history = start_history(connector.settings, stop)
        connector.loop(stop)
        history.join(timeout=30)
    finally:
        connector.close()


def follow_platform(settings: ConnectorSettings) -> RemoteSettings | None:
    """The platform's settings to follow, when `settings_from_platform` is on and the
    connector has credentials to ask with (a token, or a service account)."""
    if not settings.settings_from_platform or not has_credentials(settings):
        return None
    return RemoteSettings(settings)


def start_history(settings: ConnectorSettings, stop: threading.Event) -> threading.Thread:
    """Carry out requested history syncs beside the loop (a thread, until `stop` is set)."""
    from koppla.connector.history.runtime import run_history

    thread = threading.Thread(
        target=run_history, args=(settings, stop), name="koppla-history", daemon=True
    )
    thread.start()
    return thread
