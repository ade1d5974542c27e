"""The orders feed (`sales_order_data_exporter_v2`): rows → snapshots → events → outbox.

`OrdersFeed.sync(order_ids)` reads the orders, builds their snapshots, keeps only those whose
hash changed, derives the back-office events from the difference with the stored snapshot and
commits snapshots, events and the cursor in one state transaction. An order whose rows are
malformed is logged (naming the order and the field) and skipped; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from koppla.connector.events import EventContext, derive_events, history
from koppla.connector.settings import ConnectorSettings
from koppla.connector.snapshot import MalformedOrder, build_snapshot, snapshot_hash
from koppla.connector.source import StoreSource
from koppla.connector.state import FeedCommit, State

log = logging.getLogger("koppla.connector.feed")


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one feed step did."""

    read: int
    changed: int
    events: int
    errors: int


class OrdersFeed:
    """Builds the feed for the configured websites and queues their events."""

    def __init__(self, settings: ConnectorSettings, source: StoreSource, state: State) -> None:
        self._settings = settings
        self._source = source
        self._state = state

    def websites(self) -> list[str]:
        """Codes of the websites whose back-office events are on."""
        return [w.website_code for w in self._settings.websites if w.back_office_events]

    def _context(self, website_code: str) -> EventContext | None:
        site = self._settings.website(website_code)
        if site is None or not site.back_office_events:
            return None
        return EventContext(site.website_code, site.environment_id, self._settings.redact)

    def sync(
        self,
        order_ids: Sequence[int],
        cursors: dict[str, str] | None = None,
        *,
        resend: bool = False,
    ) -> SyncReport:
        """Bring the feed up to date for `order_ids`; `resend` queues each order's whole history."""
        rows = self._source.read(order_ids)
        previous = self._state.snapshots(rows)
        change = FeedCommit(cursors=dict(cursors or {}))
        changed = 0
        for oid, order_rows in rows.items():
            ctx = self._context(order_rows.scope.website_code)
            if ctx is None:
                continue
            try:
                snap = build_snapshot(order_rows)
            except MalformedOrder as error:
                log.error("orders feed: skipped %s", error)
                change.errors.append((oid, error.field, str(error)))
                continue
            except (TypeError, ValueError) as error:
                log.error("orders feed: skipped order %s: unreadable row: %s", oid, error)
                change.errors.append((oid, None, f"order {oid}: unreadable row: {error}"))
                continue
            change.resolved.append(oid)
            digest = snapshot_hash(snap)
            old = previous.get(oid)
            if resend:
                events = history(snap, ctx)
            elif old is not None and old[0] == digest:
                continue
            else:
                events = derive_events(old[1] if old else None, snap, ctx)
            changed += 1
            change.snapshots.append((oid, ctx.website_code, digest, snap))
            change.events += [(oid, ctx.website_code, event) for event in events]
        added = self._state.commit(change, resend=resend)
        return SyncReport(len(rows), changed, added, len(change.errors))
