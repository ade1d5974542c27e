"""The connector's own state: cursors, feed snapshots and the outbox, in one SQLite file.

Lives at `<home>/connector/state.sqlite`, never in the shop database. A feed step writes the new
snapshots, the events they imply and the advanced cursor in ONE transaction (`FeedCommit`), so a
crash either keeps all of it or none. The sender drains the outbox in `seq` order.

The outbox carries three kinds of messages (`target`): order events (`events`), customer profile
events (`profile_events`) and customer profile records (`profile_records`); customer messages
name their customer (`customer_id`; their `order_id` is 0). A state file made before customers
were tracked gains these columns when opened (its rows are order events).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from koppla.core import clock, codec
from koppla.core.sqlite import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
  order_id INTEGER PRIMARY KEY, website TEXT NOT NULL, hash TEXT NOT NULL, doc BLOB NOT NULL,
  synced_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, order_id INTEGER NOT NULL,
  website TEXT NOT NULL, event_type TEXT NOT NULL, body BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
  created_ms INTEGER NOT NULL, sent_ms INTEGER, target TEXT NOT NULL DEFAULT 'events',
  customer_id INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, seq);
CREATE TABLE IF NOT EXISTS customer_snapshot (
  customer_id INTEGER PRIMARY KEY, website TEXT NOT NULL, hash TEXT NOT NULL, doc BLOB NOT NULL,
  event_type TEXT NOT NULL, synced_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS order_error (
  order_id INTEGER PRIMARY KEY, field TEXT, message TEXT NOT NULL, seen_ms INTEGER NOT NULL
);
"""


_MIGRATIONS = (
    ("outbox", "target", "TEXT NOT NULL DEFAULT 'events'"),
    ("outbox", "customer_id", "INTEGER"),
)

Target = Literal["events", "profile_events", "profile_records"]
"""Where an outbox message goes: the event dataset (orders, customers) or the profile dataset."""

RECORD_TYPE = "profileRecord"
"""The `event_type` the outbox lists a profile record under (records have no eventType)."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One message waiting in (or sent from) the outbox: an event, or a profile record."""

    seq: int
    event_id: str
    order_id: int
    website: str
    event_type: str
    body: dict[str, Any]
    target: Target = "events"
    customer_id: int | None = None


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A customer profile event or record for the outbox."""

    customer_id: int
    website: str
    target: Target
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    """What the connector last sent about a customer: its snapshot, hash and last event type."""

    website: str
    digest: str
    doc: dict[str, Any]
    event_type: str


@dataclass(slots=True)
class FeedCommit:
    """What one feed step changes: snapshots, events, cursors; applied atomically."""

    snapshots: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    customers: dict[int, CustomerSnapshot] = field(default_factory=dict)
    customers_gone: list[int] = field(default_factory=list)
    customer_messages: list[CustomerMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox by status, and delivery times (ms since epoch)."""

    pending: int
    sent: int
    failed: int
    oldest_pending_ms: int | None
    last_sent_ms: int | None


class State:
    """The state database (one connection, guarded by a lock; safe across threads)."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA)
        self._tx = self._file.transaction
        self._file.add_columns(_MIGRATIONS)

    def close(self) -> None:
        """Close the database."""
        self._file.close()

    def cursor(self, name: str) -> str | None:
        """A cursor's value, or None before the first commit."""
        row = self._file.one("SELECT value FROM cursor WHERE name=?", (name,))
        return None if row is None else str(row[0])

    def snapshots(self, order_ids: Iterable[int]) -> dict[int, tuple[str, dict[str, Any]]]:
        """The stored (hash, snapshot) of each of `order_ids` that has one."""
        ids = list(order_ids)
        found: dict[int, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT order_id, hash, doc FROM snapshot WHERE order_id IN ({marks})"
            for oid, digest, doc in self._file.all(query, chunk):
                found[int(oid)] = (str(digest), codec.loads(doc))
        return found

    def customer_snapshots(self, customer_ids: Iterable[int]) -> dict[int, CustomerSnapshot]:
        """The stored snapshot of each of `customer_ids` that has one."""
        ids = list(customer_ids)
        found: dict[int, CustomerSnapshot] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                "SELECT customer_id, website, hash, doc, event_type FROM customer_snapshot "
                f"WHERE customer_id IN ({marks})"
            )
            for cid, website, digest, doc, kind in self._file.all(query, chunk):
                doc_value = codec.loads(doc)
                found[int(cid)] = CustomerSnapshot(str(website), str(digest), doc_value, str(kind))
        return found

    def customer_ids(self) -> dict[int, str]:
        """Every customer the connector has a snapshot of, with its website."""
        rows = self._file.all("SELECT customer_id, website FROM customer_snapshot")
        return {int(r[0]): str(r[1]) for r in rows}

    def commit(self, change: FeedCommit, *, resend: bool = False) -> int:
        """Apply one feed step atomically; return how many events entered the outbox.

        With `resend`, events already in the outbox are queued again (a resync).
        """
        now = clock.now_ms()
        added = 0
        with self._tx() as db:
            db.executemany(
                "INSERT INTO snapshot (order_id, website, hash, doc, synced_ms) VALUES (?,?,?,?,?) "
                "ON CONFLICT(order_id) DO UPDATE SET website=excluded.website, "
                "hash=excluded.hash, doc=excluded.doc, synced_ms=excluded.synced_ms",
                [
                    (oid, web, digest, codec.dumps(doc), now)
                    for oid, web, digest, doc in change.snapshots
                ],
            )
            conflict = (
                "DO UPDATE SET status='pending', body=excluded.body, attempts=0, error=NULL"
                if resend
                else "DO NOTHING"
            )
            for oid, website, event in change.events:
                cur = db.execute(
                    "INSERT INTO outbox (event_id, order_id, website, event_type, body, created_ms)"
                    f" VALUES (?,?,?,?,?,?) ON CONFLICT(event_id) {conflict}",
                    (event["_id"], oid, website, event["eventType"], codec.dumps(event), now),
                )
                added += cur.rowcount
            added += self._commit_customers(db, change, conflict, now)
            db.executemany(
                "INSERT INTO cursor (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                list(change.cursors.items()),
            )
            db.executemany(
                "INSERT OR REPLACE INTO order_error (order_id, field, message, seen_ms) "
                "VALUES (?,?,?,?)",
                [(oid, fld, msg, now) for oid, fld, msg in change.errors],
            )
            db.executemany(
                "DELETE FROM order_error WHERE order_id=?", [(oid,) for oid in change.resolved]
            )
        return added

    @staticmethod
    def _commit_customers(db: Any, change: FeedCommit, conflict: str, now: int) -> int:
        db.executemany(
            "INSERT INTO customer_snapshot (customer_id, website, hash, doc, event_type, "
            "synced_ms) VALUES (?,?,?,?,?,?) ON CONFLICT(customer_id) DO UPDATE SET "
            "website=excluded.website, hash=excluded.hash, doc=excluded.doc, "
            "event_type=excluded.event_type, synced_ms=excluded.synced_ms",
            [
                (cid, snap.website, snap.digest, codec.dumps(snap.doc), snap.event_type, now)
                for cid, snap in change.customers.items()
            ],
        )
        db.executemany(
            "DELETE FROM customer_snapshot WHERE customer_id=?",
            [(cid,) for cid in change.customers_gone],
        )
        added = 0
        for msg in change.customer_messages:
            kind = msg.body.get("eventType", RECORD_TYPE)
            cur = db.execute(
                "INSERT INTO outbox (event_id, order_id, website, event_type, body, created_ms, "
                f"target, customer_id) VALUES (?,0,?,?,?,?,?,?) ON CONFLICT(event_id) {conflict}",
                (
                    msg.body["_id"],
                    msg.website,
                    kind,
                    codec.dumps(msg.body),
                    now,
                    msg.target,
                    msg.customer_id,
                ),
            )
            added += cur.rowcount
        return added

    def pending(self, limit: int) -> list[OutboxEvent]:
        """The oldest pending messages, in outbox order."""
        rows = self._file.all(
            "SELECT seq, event_id, order_id, website, event_type, body, target, customer_id "
            "FROM outbox WHERE status='pending' ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            OutboxEvent(r[0], r[1], r[2], r[3], r[4], codec.loads(r[5]), r[6], r[7]) for r in rows
        ]

    def customer_counts(self) -> dict[str, int]:
        """Customers known, and customer messages by status, for `status`."""
        known = self._file.one("SELECT count(*) FROM customer_snapshot")
        rows = self._file.all(
            "SELECT status, count(*) FROM outbox WHERE target != 'events' GROUP BY status"
        )
        counts = {f"messages{str(status).capitalize()}": int(n) for status, n in rows}
        return {"known": int(known[0]) if known else 0, **counts}

    def mark_sent(self, seqs: Iterable[int]) -> None:
        """Record that the platform durably accepted these events."""
        now = clock.now_ms()
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET status='sent', sent_ms=?, attempts=attempts+1 WHERE seq=?",
                [(now, s) for s in seqs],
            )

    def mark_failed(self, seqs: Iterable[int], reason: str) -> None:
        """Give up on these events (the platform refused them for good), keeping the reason."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET status='failed', error=?, attempts=attempts+1 WHERE seq=?",
                [(reason, s) for s in seqs],
            )

    def note_attempt(self, seqs: Iterable[int], reason: str) -> None:
        """Record a failed, retryable attempt (the events stay pending)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET error=?, attempts=attempts+1 WHERE seq=?",
                [(reason, s) for s in seqs],
            )

    def prune_sent(self, before_ms: int) -> int:
        """Forget events delivered before `before_ms`; return how many were removed."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM outbox WHERE status='sent' AND sent_ms < ?", (before_ms,))
        return cur.rowcount

    def backlog(self) -> Backlog:
        """Counts by status and delivery times, for `status`."""
        counts = dict(self._file.all("SELECT status, count(*) FROM outbox GROUP BY status"))
        oldest_row = self._file.one("SELECT min(created_ms) FROM outbox WHERE status='pending'")
        last_row = self._file.one("SELECT max(sent_ms) FROM outbox")
        oldest = oldest_row[0] if oldest_row else None
        last = last_row[0] if last_row else None
        return Backlog(
            counts.get("pending", 0), counts.get("sent", 0), counts.get("failed", 0), oldest, last
        )

    def order_errors(self) -> list[tuple[int, str | None, str]]:
        """Orders the feed could not read, with the field and the message."""
        rows = self._file.all("SELECT order_id, field, message FROM order_error ORDER BY order_id")
        return [(int(r[0]), r[1], str(r[2])) for r in rows]

    def failed(self) -> list[tuple[str, str, str]]:
        """Events the platform refused for good: (event id, event type, reason)."""
        rows = self._file.all(
            "SELECT event_id, event_type, error FROM outbox WHERE status='failed' ORDER BY seq"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
