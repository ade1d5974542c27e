"""The orders feed (`sales_order_data_exporter_v2`): rows → snapshots → events → outbox.

`OrdersFeed.sync(order_ids)` reads the orders, builds their snapshots, keeps only those whose
hash changed, and queues the events of each one's life (`events.history`) not emitted for it
yet: so an order that passed a state between two looks (or before the first) still sends that
state's event, once. Per order the state keeps only the hash and the emitted event keys. Marks,
events and the cursor are committed in one state transaction. An order whose rows are
malformed is logged (naming the order and the field) and skipped; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from koppla.connector.events import EventContext, keyed_events
from koppla.connector.settings import ConnectorSettings
from koppla.connector.snapshot import MalformedOrder, build_snapshot, snapshot_digest
from koppla.connector.source import StoreSource
from koppla.connector.state import FeedCommit, OrderMark, State
from koppla.core.memory import cyclic_gc_paused

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
        return EventContext(
            site.website_code, site.environment_id, self._settings.redact, self._settings.tenant
        )

    def sync(
        self,
        order_ids: Sequence[int],
        cursors: dict[str, str] | None = None,
        *,
        resend: bool = False,
    ) -> SyncReport:
        """Bring the feed up to date for `order_ids`; `resend` queues each order's whole history.

        Runs with the cyclic garbage collector paused, process-wide (`koppla.core.memory`).
        """
        with cyclic_gc_paused():
            return self._sync(order_ids, cursors, resend=resend)

    def _sync(
        self, order_ids: Sequence[int], cursors: dict[str, str] | None, *, resend: bool
    ) -> SyncReport:
        rows = self._source.read(order_ids)
        known = self._state.orders(rows)
        change = FeedCommit(cursors=dict(cursors or {}))
        changed = 0
        contexts: dict[str, EventContext | None] = {}
        for oid, order_rows in rows.items():
            website = order_rows.scope.website_code
            if website not in contexts:
                contexts[website] = self._context(website)
            ctx = contexts[website]
            if ctx is None:
                continue
            old = known.get(oid)
            emitted = old.emitted if old is not None else frozenset()
            try:
                snap = build_snapshot(order_rows)
                digest = snapshot_digest(snap)
                if old is not None and old.digest == digest and not resend:
                    change.resolved.append(oid)
                    continue
                new = keyed_events(snap, ctx, () if resend else emitted)
            except MalformedOrder as error:
                log.error("orders feed: skipped %s", error)
                change.errors.append((oid, error.field, str(error)))
                continue
            except (TypeError, ValueError) as error:  # one order's data; the others go on
                log.error("orders feed: skipped order %s: unreadable row: %s", oid, error)
                change.errors.append((oid, None, f"order {oid}: unreadable row: {error}"))
                continue
            change.resolved.append(oid)
            changed += 1
            keys = emitted.union(key for key, _event in new)
            change.orders.append(OrderMark(oid, ctx.website_code, digest, keys))
            change.events += [(oid, ctx.website_code, event) for _key, event in new]
        added = self._state.commit(change, resend=resend)
        return SyncReport(len(rows), changed, added, len(change.errors))
