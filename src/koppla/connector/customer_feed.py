"""The customer feed: customer rows → snapshots → profile events and records → outbox.

`CustomersFeed.sync(customer_ids)` reads the customers, builds their snapshots and compares each
hash with the stored one: a customer seen for the first time queues its profile record and a
`userAccount.backofficeCreateProfile` event, a changed one its new record and an `...UpdateProfile`
event, and a known customer whose row is gone an `...DeleteProfile` event (no record: the
platform removes the customer's record data on that event). Snapshots, messages and cursors are
committed in one state transaction. Only customers of websites with `customer_profiles` on count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from koppla.connector.customers import (
    CustomerRows,
    CustomerSource,
    build_customer_snapshot,
)
from koppla.connector.events import EventContext
from koppla.connector.feed import SyncReport
from koppla.connector.profile_events import (
    CREATE_PROFILE,
    DELETE_PROFILE,
    UPDATE_PROFILE,
    profile_event,
    profile_record,
)
from koppla.connector.settings import ConnectorSettings
from koppla.connector.snapshot import snapshot_hash
from koppla.connector.state import CustomerMessage, CustomerSnapshot, FeedCommit, State
from koppla.core import clock

log = logging.getLogger("koppla.connector.customers")


class CustomersFeed:
    """Keeps the customer snapshots of the profile-enabled websites and queues their messages."""

    def __init__(self, settings: ConnectorSettings, source: CustomerSource, state: State) -> None:
        self._settings = settings
        self._source = source
        self._state = state

    def websites(self) -> list[str]:
        """Codes of the websites whose customer profiles are on."""
        return [w.website_code for w in self._settings.websites if w.customer_profiles]

    def _context(self, website_code: str) -> EventContext | None:
        site = self._settings.website(website_code)
        if site is None or not site.customer_profiles:
            return None
        return EventContext(site.website_code, site.environment_id, self._settings.redact)

    def sync(
        self,
        customer_ids: Sequence[int],
        cursors: dict[str, str] | None = None,
        *,
        resend: bool = False,
    ) -> SyncReport:
        """Bring the feed up to date for `customer_ids`; `resend` queues current messages again."""
        ids = list(dict.fromkeys(customer_ids))
        rows = self._source.read(ids)
        previous = self._state.customer_snapshots(ids)
        change = FeedCommit(cursors=dict(cursors or {}))
        changed = errors = 0
        for cid in ids:
            old = previous.get(cid)
            found = rows.get(cid)
            if found is None:
                changed += self._gone(change, cid, old)
                continue
            try:
                changed += self._seen(change, found, old, resend=resend)
            except (TypeError, ValueError) as error:
                log.error("customer feed: skipped customer %s: unreadable row: %s", cid, error)
                errors += 1
        added = self._state.commit(change, resend=resend)
        return SyncReport(len(rows), changed, added, errors)

    def _seen(
        self, change: FeedCommit, rows: CustomerRows, old: CustomerSnapshot | None, *, resend: bool
    ) -> int:
        ctx = self._context(rows.scope.website_code)
        if ctx is None:
            return 0
        snap = build_customer_snapshot(rows)
        digest = snapshot_hash(snap)
        if old is not None and old.digest == digest and old.website == ctx.website_code:
            if not resend:
                return 0
            snap, kind = old.doc, old.event_type  # name everything exactly as the first time
        else:
            kind = UPDATE_PROFILE if old is not None else CREATE_PROFILE
            change.customers[int(snap["customerId"])] = CustomerSnapshot(
                ctx.website_code, digest, snap, kind
            )
        cid, site = int(snap["customerId"]), ctx.website_code
        change.customer_messages += [
            CustomerMessage(cid, site, "profile_records", profile_record(snap, digest, ctx)),
            CustomerMessage(cid, site, "profile_events", profile_event(snap, digest, kind, ctx)),
        ]
        return 1

    def _gone(self, change: FeedCommit, cid: int, old: CustomerSnapshot | None) -> int:
        if old is None:
            return 0
        change.customers_gone.append(cid)
        ctx = self._context(old.website)
        if ctx is None:
            return 0
        when = clock.iso(clock.now())
        event = profile_event(old.doc, old.digest, DELETE_PROFILE, ctx, when)
        change.customer_messages.append(CustomerMessage(cid, old.website, "profile_events", event))
        return 1

    def sweep(self, cursors: dict[str, str] | None = None) -> SyncReport:
        """Notice deleted customers by comparing the known ids with the existing ones."""
        known = self._state.customer_ids()
        gone = sorted(set(known) - self._source.existing(known))
        return self.sync(gone, cursors)
