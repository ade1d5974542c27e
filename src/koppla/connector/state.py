"""The connector's own state: cursors, what was sent per order, and the outbox, in one SQLite file.

Lives at `<home>/connector/state.sqlite`, never in the shop database. A feed step writes each
changed order's mark (its snapshot hash, as 20 bytes, and the keys of the events already emitted
for it: `events.pack_keys`), the events it implies and the advanced cursor in ONE transaction
(`FeedCommit`), so a crash either keeps all of it or none. The snapshot itself is not kept: the
next look rebuilds it from the shop. The sender drains the outbox in `seq` order per datastream.

The outbox carries three kinds of messages (`target`): order events (`events`), customer profile
events (`profile_events`) and customer profile records (`profile_records`); customer messages
name their customer (`customer_id`; their `order_id` is 0). A delivered message leaves the
outbox in the transaction that counts it (`outbox_sent`, per target, for `status`); a refused
one stays, body and reason, for inspection.

Opening a state file written by an older connector migrates it: outbox columns it lacks are
added, delivered messages are counted and dropped, and the `snapshot` table (the whole snapshot
of every order) becomes `order_feed` marks, a batch per transaction, so a migration killed at
any point resumes where it stopped. One VACUUM then gives the space back and turns on
incremental vacuum: the file shrinks again once a large backlog is delivered (a VACUUM that fails,
for want of disk space or because the file is busy, is logged and tried again at the next open).
Closed orders migrated that way keep no hash (`unhashed_orders`): the runner looks at them once
more, so a ShipmentCompleted the older connector missed is still sent. Readers open the file with
`maintain=False` and change nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from koppla.connector.events import STATE_CLOSED, legacy_keys, pack_keys, unpack_keys
from koppla.core import clock, codec
from koppla.core.sqlite import SqliteFile

log = logging.getLogger("koppla.connector.state")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_feed (
  order_id INTEGER PRIMARY KEY, website TEXT NOT NULL, hash BLOB NOT NULL, emitted TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, order_id INTEGER NOT NULL,
  website TEXT NOT NULL, event_type TEXT NOT NULL, body BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
  created_ms INTEGER NOT NULL, sent_ms INTEGER, target TEXT NOT NULL DEFAULT 'events',
  customer_id INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_status ON outbox (status, seq);
CREATE TABLE IF NOT EXISTS outbox_sent (
  target TEXT PRIMARY KEY, sent INTEGER NOT NULL, last_ms INTEGER
);
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

MIGRATE_BATCH = 2000
"""Old `snapshot` rows turned into `order_feed` marks per transaction when a state is opened."""

GIVE_BACK_PAGES = 256
"""Free pages (1 MB at SQLite's default page size) past which the state file is shrunk."""

WAL_LIMIT_BYTES = 4 * 1024 * 1024
"""The size the write-ahead log is cut back to after a checkpoint."""

Target = Literal["events", "profile_events", "profile_records"]
"""Where an outbox message goes: the event dataset (orders, customers) or the profile dataset."""

INCREMENTAL = 2
"""`PRAGMA auto_vacuum` value of incremental vacuum (free pages can be given back)."""

RECORD_TYPE = "profileRecord"
"""The `event_type` the outbox lists a profile record under (records have no eventType)."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One message waiting in (or sent from) the outbox: an event, or a profile record.

    `raw` is the body as stored (JSON); `body` parses it (each time it is read).
    """

    seq: int
    event_id: str
    order_id: int
    website: str
    event_type: str
    raw: bytes
    target: Target = "events"
    customer_id: int | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The message body (the XDM event or profile record)."""
        parsed: dict[str, Any] = codec.loads(self.raw)
        return parsed


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


@dataclass(frozen=True, slots=True)
class OrderMark:
    """What the state keeps per order: its website, snapshot digest and emitted event keys."""

    order_id: int
    website: str
    digest: bytes
    emitted: frozenset[str]


@dataclass(slots=True)
class FeedCommit:
    """What one feed step changes: order marks, events, cursors; applied atomically."""

    orders: list[OrderMark] = field(default_factory=list)
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

    def __init__(self, path: Path, *, maintain: bool = True) -> None:
        """Open (or create) the state file; `maintain` migrates an older connector's file and
        gives free space back. Readers such as `koppla connector status` pass
        `maintain=False`: they change nothing the running connector may be changing."""
        self._file = SqliteFile(path, _SCHEMA)
        self._tx = self._file.transaction
        self._file.all(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._file.add_columns(_MIGRATIONS)
        if maintain:
            self._migrate()

    def close(self) -> None:
        """Close the database."""
        self._file.close()

    def _migrate(self) -> None:
        """Bring a state file of an older connector to this shape (resumable; see the module).

        Safe while another process opens the same file: each batch checks for the old table and
        reads its rows inside its own write transaction.
        """
        self._count_sent(None)
        if self._has_snapshots():
            while self._migrate_batch():
                pass
            with self._tx() as db:
                db.execute("DROP TABLE IF EXISTS snapshot")
        if int((self._file.one("PRAGMA auto_vacuum") or (0,))[0]) != INCREMENTAL:
            # one rewrite gives back what the old snapshots took and lets the file shrink later
            self._file.all("PRAGMA auto_vacuum=INCREMENTAL")
            try:
                self._file.all("VACUUM")  # outside any transaction: the connection autocommits
            except sqlite3.OperationalError as error:  # no room for the copy, or busy
                log.warning("state file not compacted (tried again at the next start): %s", error)
        self._give_back()

    def _has_snapshots(self, db: sqlite3.Connection | None = None) -> bool:
        """Whether the old `snapshot` table is still there."""
        query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='snapshot'"
        found = db.execute(query).fetchone() if db is not None else self._file.one(query)
        return found is not None

    def _give_back(self) -> None:
        """Shrink the file when many pages are free (delivered messages leave free pages)."""
        free = int((self._file.one("PRAGMA freelist_count") or (0,))[0])
        if free < GIVE_BACK_PAGES:
            return
        with self._tx() as db:
            # the pragma frees one page per step, and sqlite3 steps a statement without result
            # columns once (fetchall() does not step it on): one step per free page
            for _ in range(free):
                db.execute("PRAGMA incremental_vacuum(1)")

    def _migrate_batch(self) -> int:
        """Turn the next old snapshots into marks and drop them, in one transaction."""
        with self._tx() as db:
            if not self._has_snapshots(db):  # another process finished the migration
                return 0
            rows = db.execute(
                "SELECT order_id, website, hash, doc FROM snapshot ORDER BY order_id LIMIT ?",
                (MIGRATE_BATCH,),
            ).fetchall()
            marks = []
            for oid, website, digest, doc in rows:
                seen = codec.loads(doc)
                keys = legacy_keys(seen)
                # a closed order's ShipmentCompleted may have been lost: no hash, so the order
                # is looked at again (`unhashed_orders`; the platform drops a duplicate)
                old = b"" if seen.get("state") == STATE_CLOSED else bytes.fromhex(str(digest))
                marks.append((int(oid), str(website), old, pack_keys(keys)))
            db.executemany(
                "INSERT OR IGNORE INTO order_feed (order_id, website, hash, emitted) "
                "VALUES (?,?,?,?)",
                marks,
            )
            db.executemany("DELETE FROM snapshot WHERE order_id=?", [(m[0],) for m in marks])
        return len(rows)

    def unhashed_orders(self) -> list[int]:
        """Orders whose mark has no snapshot hash: migrated from an older connector's state
        and to be looked at again (their feed sync derives what they may have missed)."""
        rows = self._file.all("SELECT order_id FROM order_feed WHERE hash = x'' ORDER BY 1")
        return [int(r[0]) for r in rows]

    def cursor(self, name: str) -> str | None:
        """A cursor's value, or None before the first commit."""
        row = self._file.one("SELECT value FROM cursor WHERE name=?", (name,))
        return None if row is None else str(row[0])

    def orders(self, order_ids: Iterable[int]) -> dict[int, OrderMark]:
        """The stored mark of each of `order_ids` that has one."""
        ids = list(order_ids)
        found: dict[int, OrderMark] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            query = (
                "SELECT order_id, website, hash, emitted FROM order_feed "
                f"WHERE order_id IN ({marks})"
            )
            for oid, website, digest, emitted in self._file.all(query, chunk):
                found[oid] = OrderMark(oid, website, bytes(digest), unpack_keys(emitted))
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
        with self._tx() as db:
            db.executemany(
                "INSERT INTO order_feed (order_id, website, hash, emitted) VALUES (?,?,?,?) "
                "ON CONFLICT(order_id) DO UPDATE SET website=excluded.website, "
                "hash=excluded.hash, emitted=excluded.emitted",
                [(m.order_id, m.website, m.digest, pack_keys(m.emitted)) for m in change.orders],
            )
            conflict = (
                "DO UPDATE SET status='pending', body=excluded.body, attempts=0, error=NULL"
                if resend
                else "DO NOTHING"
            )
            dumps = codec.dumps
            cur = db.executemany(
                "INSERT INTO outbox (event_id, order_id, website, event_type, body, created_ms)"
                f" VALUES (?,?,?,?,?,?) ON CONFLICT(event_id) {conflict}",
                [
                    (event["_id"], oid, website, event["eventType"], dumps(event), now)
                    for oid, website, event in change.events
                ],
            )
            added = max(cur.rowcount, 0)
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
            if change.resolved and db.execute("SELECT 1 FROM order_error LIMIT 1").fetchone():
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
        cur = db.executemany(
            "INSERT INTO outbox (event_id, order_id, website, event_type, body, created_ms, "
            f"target, customer_id) VALUES (?,0,?,?,?,?,?,?) ON CONFLICT(event_id) {conflict}",
            [
                (
                    msg.body["_id"],
                    msg.website,
                    msg.body.get("eventType", RECORD_TYPE),
                    codec.dumps(msg.body),
                    now,
                    msg.target,
                    msg.customer_id,
                )
                for msg in change.customer_messages
            ],
        )
        return max(int(cur.rowcount), 0)

    def pending(self, limit: int, after: int = 0) -> list[OutboxEvent]:
        """The oldest pending messages after outbox position `after`, in outbox order."""
        rows = self._file.all(
            "SELECT seq, event_id, order_id, website, event_type, body, target, customer_id "
            "FROM outbox WHERE status='pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [OutboxEvent(r[0], r[1], r[2], r[3], r[4], _raw(r[5]), r[6], r[7]) for r in rows]

    def customer_counts(self) -> dict[str, int]:
        """Customers known, and customer messages by status, for `status`."""
        known = self._file.one("SELECT count(*) FROM customer_snapshot")
        rows = self._file.all(
            "SELECT status, count(*) FROM outbox WHERE target != 'events' GROUP BY status"
        )
        counts = {f"messages{str(status).capitalize()}": int(n) for status, n in rows}
        sent = self._file.one("SELECT sum(sent) FROM outbox_sent WHERE target != 'events'")
        if sent and sent[0]:
            counts["messagesSent"] = counts.get("messagesSent", 0) + int(sent[0])
        return {"known": int(known[0]) if known else 0, **counts}

    def mark_sent(self, seqs: Iterable[int]) -> None:
        """Record that the platform durably accepted these messages: count them, drop them."""
        now = clock.now_ms()
        ids = list(seqs)
        with self._tx() as db:
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                where = f"seq IN ({','.join('?' * len(chunk))})"
                counts = db.execute(
                    f"SELECT target, count(*) FROM outbox WHERE {where} GROUP BY target", chunk
                ).fetchall()
                db.execute(f"DELETE FROM outbox WHERE {where}", chunk)
                _add_sent(db, [(target, n, now) for target, n in counts])
        self._give_back()

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
        """Count and drop messages an older connector kept as sent (delivered before
        `before_ms`); return how many. Delivered messages no longer stay in the outbox."""
        return self._count_sent(before_ms)

    def _count_sent(self, before_ms: int | None) -> int:
        """Fold outbox rows of status `sent` (an older connector's) into the counters."""
        until = "" if before_ms is None else " AND sent_ms < ?"
        args: tuple[object, ...] = () if before_ms is None else (before_ms,)
        with self._tx() as db:
            counts = db.execute(
                "SELECT target, count(*), max(sent_ms) FROM outbox "
                f"WHERE status='sent'{until} GROUP BY target",
                args,
            ).fetchall()
            if counts:
                db.execute(f"DELETE FROM outbox WHERE status='sent'{until}", args)
                _add_sent(db, counts)
        return sum(int(n) for _target, n, _last in counts)

    def backlog(self) -> Backlog:
        """Counts by status and delivery times, for `status` (`sent`: every delivery counted)."""
        counts = dict(self._file.all("SELECT status, count(*) FROM outbox GROUP BY status"))
        oldest_row = self._file.one("SELECT min(created_ms) FROM outbox WHERE status='pending'")
        sent_row = self._file.one("SELECT sum(sent), max(last_ms) FROM outbox_sent")
        oldest = oldest_row[0] if oldest_row else None
        sent, last = (sent_row[0] or 0, sent_row[1]) if sent_row else (0, None)
        return Backlog(
            counts.get("pending", 0),
            counts.get("sent", 0) + int(sent),
            counts.get("failed", 0),
            oldest,
            last,
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


def _add_sent(db: sqlite3.Connection, counts: Iterable[tuple[str, int, int | None]]) -> None:
    """Add delivered messages to the per-target counters."""
    db.executemany(
        "INSERT INTO outbox_sent (target, sent, last_ms) VALUES (?,?,?) ON CONFLICT(target) "
        "DO UPDATE SET sent=sent+excluded.sent, last_ms=max(coalesce(last_ms, 0), "
        "coalesce(excluded.last_ms, 0))",
        list(counts),
    )


def _raw(body: bytes | str) -> bytes:
    """A stored body as bytes (rows an older connector wrote may hold text)."""
    return body.encode() if isinstance(body, str) else bytes(body)
