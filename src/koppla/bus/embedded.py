"""The embedded work queue: a SQLite file (WAL) that threads and processes on one machine share.

Guarantees:
- `publish` returns after its transaction committed with `synchronous=FULL`: SQLite has fsync'd
  the write-ahead log, so the messages survive a crash or power loss. WAL pages move into the
  main file at SQLite's automatic checkpoints (every ~1000 pages), which fsync the main file
  before the log is reused; durability never waits on a checkpoint.
- `get` leases one message to the caller inside an immediate (write-locking) transaction, so two
  consumers, in any threads or processes, never hold the same message at once. A lease names
  the delivery (a random token), the queue object that took it and the holder process (pid and
  start time) and runs out after `lease_s`.
- A lease is released, and its message handed out again as the next attempt, when the holder
  process is gone (checked about every second, so a consumer killed with SIGKILL frees its
  message within a second or two), when the lease runs out, or when the holder closes its queue.
- A message delivered `max_attempts` times without being settled goes to the dead letters the
  next time it would be handed out.

One machine only: the liveness check reads the local process table, so every process using the
file must share it (not across hosts, network file systems or pid namespaces).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from koppla.bus.liveness import holder_alive, process_start
from koppla.bus.queue import (
    DeadLetter,
    Delivery,
    QueueDepth,
    check_bodies,
    check_settings,
    clip_reason,
    gave_up_reason,
)
from koppla.core import clock, ids
from koppla.core.errors import InvalidInput, TransientError
from koppla.core.sqlite import SqliteFile

POLL_S = 0.05
"""How often an empty queue is looked at again while `get` waits."""

RECLAIM_EVERY_S = 1.0
"""How often a queue object looks for leases whose holder died or whose time ran out."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    ready_at INTEGER NOT NULL,
    reason TEXT,
    lease TEXT,
    holder TEXT,
    holder_pid INTEGER,
    holder_start TEXT,
    lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS message_ready ON message (id) WHERE lease IS NULL;
CREATE INDEX IF NOT EXISTS message_leased ON message (holder_pid, holder_start)
    WHERE lease IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    dead_at INTEGER NOT NULL
);
"""

_RELEASE = (
    "UPDATE message SET lease = NULL, holder = NULL, holder_pid = NULL, holder_start = NULL,"
    " lease_until = NULL"
)
_NEXT = (
    "SELECT id, body, deliveries FROM message WHERE lease IS NULL AND ready_at <= ?"
    " ORDER BY id LIMIT 1"
)


_T = TypeVar("_T")
_Action = Callable[["_Leased", str | None], None]


@dataclass(frozen=True)
class _Leased:
    id: int
    lease: str
    body: bytes
    attempt: int


class EmbeddedDelivery:
    """A message leased from an `EmbeddedQueue`; settling it after its lease was taken back
    (expired, or its holder judged dead) does nothing, as the message went to someone else."""

    def __init__(self, queue: EmbeddedQueue, leased: _Leased) -> None:
        self._queue = queue
        self._leased = leased
        self._settled = False
        self.body = leased.body
        self.attempt = leased.attempt

    async def ack(self) -> None:
        """Delete the message: its work is done."""
        await self._settle(self._queue._ack, None)

    async def retry(self, reason: str) -> None:
        """Back on the queue after the retry delay, or to the dead letters at `max_attempts`."""
        await self._settle(self._queue._retry, clip_reason(reason))

    async def dead_letter(self, reason: str) -> None:
        """Move the message to the dead letters with `reason`."""
        await self._settle(self._queue._bury_leased, clip_reason(reason))

    async def _settle(self, action: _Action, reason: str | None) -> None:
        if self._settled:
            return
        await _in_thread(action, self._leased, reason)
        self._settled = True


class EmbeddedQueue:
    """A durable work queue in one SQLite file; open one object per process (or share one
    between threads and tasks of a process). `prefetch` does not apply: each `get` leases one."""

    def __init__(
        self,
        path: Path,
        *,
        max_attempts: int = 5,
        retry_delay_s: float = 1.0,
        lease_s: float = 300.0,
    ) -> None:
        check_settings(1, max_attempts, retry_delay_s)
        if not lease_s > 0:
            raise InvalidInput(f"lease_s must be above 0, not {lease_s}", field="lease_s")
        self._file = SqliteFile(path, _SCHEMA)
        self._max_attempts = max_attempts
        self._retry_delay_ms = round(retry_delay_s * 1000)
        self._lease_ms = round(lease_s * 1000)
        self._holder = ids.new_hex_id(8)
        self._pid = os.getpid()
        self._start = process_start(self._pid) or ""
        self._next_reclaim = 0.0
        self._closed = False

    async def publish(self, bodies: Sequence[bytes]) -> None:
        """Append `bodies` in one transaction; returns once it is committed and fsync'd."""
        checked = check_bodies(bodies)
        if checked:
            await _in_thread(self._insert, checked)

    async def get(self, timeout_s: float) -> Delivery | None:
        """Lease the oldest ready message, waiting up to `timeout_s` for one to be ready."""
        deadline = clock.monotonic() + max(0.0, timeout_s)
        while True:
            leased = await _in_thread(self._take)
            if leased is not None:
                return EmbeddedDelivery(self, leased)
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(POLL_S, remaining))

    async def depth(self) -> QueueDepth:
        """Counts over the whole file (every process), after releasing dead holders' leases."""
        return await _in_thread(self._depth)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest `limit` dead letters."""
        rows = await _in_thread(
            self._file.all,
            "SELECT body, reason, attempts FROM dead_letter ORDER BY id LIMIT ?",
            (max(0, limit),),
        )
        return [
            DeadLetter(bytes(body), str(reason), int(attempts)) for body, reason, attempts in rows
        ]

    async def purge(self) -> None:
        """Delete every ready message and every dead letter (leased ones stay with holders)."""
        await _in_thread(self._purge)

    async def close(self) -> None:
        """Hand this object's unsettled deliveries back to the queue and close the file."""
        if self._closed:
            return
        self._closed = True
        await _in_thread(self._close)

    # The blocking side: each method is one short transaction, run in a worker thread.

    def _insert(self, bodies: list[bytes]) -> None:
        now = clock.now_ms()
        with self._file.transaction() as db:
            db.executemany(
                "INSERT INTO message (body, ready_at) VALUES (?, ?)", [(b, now) for b in bodies]
            )

    def _take(self) -> _Leased | None:
        now = clock.now_ms()
        if clock.monotonic() >= self._next_reclaim:
            self._reclaim(now)
        if self._file.one("SELECT 1 FROM message WHERE lease IS NULL AND ready_at <= ?", (now,)):
            with self._file.transaction() as db:
                return self._lease_next(db, now)
        return None

    def _lease_next(self, db: sqlite3.Connection, now: int) -> _Leased | None:
        while (row := db.execute(_NEXT, (now,)).fetchone()) is not None:
            row_id, body, deliveries = int(row[0]), bytes(row[1]), int(row[2])
            if deliveries >= self._max_attempts:
                _bury(db, row_id, None, gave_up_reason(deliveries), now)
                continue
            lease = ids.new_hex_id(12)
            db.execute(
                "UPDATE message SET deliveries = deliveries + 1, lease = ?, holder = ?,"
                " holder_pid = ?, holder_start = ?, lease_until = ? WHERE id = ?",
                (lease, self._holder, self._pid, self._start, now + self._lease_ms, row_id),
            )
            return _Leased(row_id, lease, body, deliveries + 1)
        return None

    def _reclaim(self, now: int) -> None:
        self._next_reclaim = clock.monotonic() + RECLAIM_EVERY_S
        holders = self._file.all(
            "SELECT DISTINCT holder_pid, holder_start FROM message WHERE lease IS NOT NULL"
        )
        gone = [(pid, start) for pid, start in holders if not holder_alive(int(pid), str(start))]
        expired = self._file.one(
            "SELECT 1 FROM message WHERE lease IS NOT NULL AND lease_until < ?", (now,)
        )
        if not gone and expired is None:
            return
        with self._file.transaction() as db:
            db.execute(f"{_RELEASE} WHERE lease IS NOT NULL AND lease_until < ?", (now,))
            db.executemany(
                f"{_RELEASE} WHERE lease IS NOT NULL AND holder_pid = ? AND holder_start = ?", gone
            )

    def _ack(self, leased: _Leased, _reason: str | None) -> None:
        with self._file.transaction() as db:
            db.execute("DELETE FROM message WHERE id = ? AND lease = ?", (leased.id, leased.lease))

    def _retry(self, leased: _Leased, reason: str | None) -> None:
        if leased.attempt >= self._max_attempts:
            self._bury_leased(leased, reason)
            return
        ready_at = clock.now_ms() + self._retry_delay_ms
        with self._file.transaction() as db:
            db.execute(
                f"{_RELEASE}, ready_at = ?, reason = ? WHERE id = ? AND lease = ?",
                (ready_at, reason, leased.id, leased.lease),
            )

    def _bury_leased(self, leased: _Leased, reason: str | None) -> None:
        with self._file.transaction() as db:
            _bury(db, leased.id, leased.lease, reason or "dead-lettered", clock.now_ms())

    def _depth(self) -> QueueDepth:
        self._reclaim(clock.now_ms())
        row = self._file.one(
            "SELECT COUNT(*) - COUNT(lease), COUNT(lease), (SELECT COUNT(*) FROM dead_letter)"
            " FROM message"
        )
        ready, in_flight, dead = row if row is not None else (0, 0, 0)
        return QueueDepth(ready=int(ready), in_flight=int(in_flight), dead=int(dead))

    def _purge(self) -> None:
        with self._file.transaction() as db:
            db.execute("DELETE FROM message WHERE lease IS NULL")
            db.execute("DELETE FROM dead_letter")

    def _close(self) -> None:
        with self._file.transaction() as db:
            db.execute(f"{_RELEASE} WHERE holder = ?", (self._holder,))
        self._file.close()


async def _in_thread(call: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking SQLite call in a worker thread; a locked, full or unreadable file is a
    `TransientError` (the caller may try again), other errors pass through."""
    try:
        return await asyncio.to_thread(call, *args)
    except sqlite3.OperationalError as error:
        raise TransientError(f"embedded queue: {error}") from error


def _bury(db: sqlite3.Connection, row_id: int, lease: str | None, reason: str, now: int) -> None:
    """Move message `row_id` (when `lease` still holds it, if given) to the dead letters."""
    rows = db.execute(
        "DELETE FROM message WHERE id = ? AND (? IS NULL OR lease = ?) RETURNING body, deliveries",
        (row_id, lease, lease),
    ).fetchall()
    db.executemany(
        "INSERT INTO dead_letter (body, reason, attempts, dead_at) VALUES (?, ?, ?, ?)",
        [(body, reason, deliveries, now) for body, deliveries in rows],
    )
