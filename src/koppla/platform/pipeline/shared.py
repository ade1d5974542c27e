"""The pipeline's state shared by its workers, in PostgreSQL: cursors, partition leases, id claims.

With a shared log (`spool_url`), several pipeline workers on several machines drain the log's
partitions. Three things keep them from losing or doubling an event:

- **Leases.** A worker reads a partition only while it holds the partition's PostgreSQL advisory
  lock, on a connection of its own. The lock goes when the worker's connection goes (a `kill -9`,
  a lost machine), so a survivor takes the partition over within a lease refresh. Workers take a
  fair share: each holds at most `ceil(partitions / live workers)`, live meaning a heartbeat row
  younger than `LIVE_MS`. One more lock, `maintenance`, picks the one worker that moves ingestion
  batches on and compacts tables.
- **Cursors.** Where each partition's reading resumes, saved after every commit, so whoever takes
  the partition over next starts there. A replay from an older cursor is harmless: every Delta
  commit carries the partition's app transaction, and the table says how far it got.
- **Claims.** The same event can arrive on two partitions (an SDK retry answered by another edge).
  Before a worker stores an event it claims the event's `_id` in the dataset, with its app
  transaction id (`owner`) and the record's position: the first claim wins, and another worker
  then leaves the event out. A claim whose owner crashed before its commit stays the owner's: the
  owner's partition is replayed by whoever takes it over, and the replay finds its own claims
  (same owner, a position past what the table holds) and stores them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import zlib
from collections.abc import Iterable
from typing import Any

import psycopg

from koppla.core import clock
from koppla.core.pgfile import conninfo
from koppla.core.redact import redact
from koppla.platform.datasets.dedupe import id_key
from koppla.platform.spool.position import START, Position

log = logging.getLogger(__name__)

LIVE_MS = 5_000
"""A worker whose heartbeat is older than this no longer counts toward the fair share."""

REFRESH_S = 1.0
"""How often a worker beats, checks its lease connection and rebalances."""

_LOCK_SPACE = 0x4B50  # "KP": the advisory lock that serializes creating the tables
# A lease is the two-key advisory lock (hashtext('koppla-lease:' || schema), crc32(partition)):
# deployments in different schemas of one database never hold each other's partitions.
_MAINTENANCE = "maintenance"

_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_cursors (
  stream TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS pipeline_workers (
  worker TEXT PRIMARY KEY, beat_ms BIGINT NOT NULL, streams TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS dedupe_claims (
  dataset_id TEXT NOT NULL, k BYTEA NOT NULL, owner TEXT NOT NULL, position BIGINT NOT NULL,
  claimed_ms BIGINT NOT NULL, PRIMARY KEY (dataset_id, k));
"""


def pg_conninfo(url: str) -> str:
    """A psycopg connection string from a `catalog_url` (as the catalog reads it: an
    SQLAlchemy-style `+driver` suffix is dropped); a malformed URL raises `ValueError` without
    quoting it (it holds a password)."""
    try:
        return conninfo(url)
    except Exception as error:
        raise ValueError(f"catalog_url is not a PostgreSQL URL: {redact(str(error))}") from None


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to the shared database, with Koppla's pipeline tables made."""
    conn = psycopg.connect(pg_conninfo(url), autocommit=True, connect_timeout=10)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_SPACE,))
        conn.execute(_DDL)
    return conn


def _lock_key(name: str) -> int:
    """The second advisory-lock key of a partition (or of `maintenance`), as a signed int4."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class SharedCursors:
    """Per-partition read positions in `pipeline_cursors` (the local `Cursors`' interface)."""

    def __init__(self, conn: psycopg.Connection[tuple[Any, ...]], lock: threading.Lock) -> None:
        self._conn, self._lock = conn, lock
        self._known: dict[str, Position] = {}

    def get(self, stream: str) -> Position:
        """Where reading `stream` resumes (read from the database: another worker may have
        moved it since this one last held the partition)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT position FROM pipeline_cursors WHERE stream = %s", (stream,)
            ).fetchone()
        position = START if row is None else Position.unpack(int(row[0]))
        self._known[stream] = position
        return position

    def set(self, stream: str, position: Position) -> None:
        """Move `stream`'s cursor to `position` (never backwards: a worker that lost the
        partition a moment ago cannot undo the new holder's progress)."""
        if self._known.get(stream) == position:
            return
        with self._lock:
            self._conn.execute(
                "INSERT INTO pipeline_cursors VALUES (%s, %s, %s) ON CONFLICT (stream) DO UPDATE "
                "SET position = greatest(pipeline_cursors.position, excluded.position), "
                "updated_ms = excluded.updated_ms",
                (stream, position.pack(), clock.now_ms()),
            )
        self._known[stream] = position

    def all(self) -> dict[str, Position]:
        """Every partition's cursor."""
        with self._lock:
            rows = self._conn.execute("SELECT stream, position FROM pipeline_cursors").fetchall()
        return {str(stream): Position.unpack(int(packed)) for stream, packed in rows}


class Leases:
    """The partitions this worker may read, held as advisory locks on a connection of its own."""

    def __init__(
        self, url: str, worker: str, partitions: list[str], *, live_ms: int = LIVE_MS
    ) -> None:
        self._url, self._worker, self._partitions = url, worker, partitions
        self._live_ms = live_ms
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._held: set[str] = set()
        self._refreshed_at = float("-inf")

    def held(self) -> list[str]:
        """The partitions held as of the last refresh, in order."""
        return [p for p in self._partitions if p in self._held]

    def confirm(self, partition: str) -> bool:
        """Right before a commit: True while `partition` is still held, its lease connection
        answering (a lost connection has already freed the lock for another worker)."""
        if partition not in self._held or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as error:
            log.warning("pipeline leases lost before a commit (%s)", error)
            self._drop()
            return False
        return True

    @property
    def maintenance(self) -> bool:
        """True while this worker is the one that moves batches on and compacts tables."""
        return _MAINTENANCE in self._held

    def refresh(self, *, force: bool = False) -> list[str]:
        """Beat, and take or give back partitions toward a fair share (at most every
        `REFRESH_S`). A lost lease connection drops every lease at once; the next refresh
        reconnects and takes partitions again. Returns the partitions held."""
        now = clock.monotonic()
        if not force and now - self._refreshed_at < REFRESH_S:
            return self.held()
        self._refreshed_at = now
        try:
            self._rebalance()
        except psycopg.Error as error:
            log.warning("pipeline leases lost (%s); reconnecting", error)
            self._drop()
        return self.held()

    def _rebalance(self) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            self._held.clear()
            conn = self._conn = connect(self._url)
        now = clock.now_ms()
        held_names = ",".join(self.held())
        conn.execute(
            "INSERT INTO pipeline_workers VALUES (%s, %s, %s) ON CONFLICT (worker) DO UPDATE "
            "SET beat_ms = excluded.beat_ms, streams = excluded.streams",
            (self._worker, now, held_names),
        )
        conn.execute("DELETE FROM pipeline_workers WHERE beat_ms < %s", (now - 60 * self._live_ms,))
        row = conn.execute(
            "SELECT count(*) FROM pipeline_workers WHERE beat_ms >= %s", (now - self._live_ms,)
        ).fetchone()
        live = max(1, int(row[0]) if row else 1)
        share = math.ceil(len(self._partitions) / live)
        held = self.held()
        for name in held[share:]:  # give back what is over the share, newest taken last
            conn.execute(
                "SELECT pg_advisory_unlock(hashtext('koppla-lease:' || current_schema()), %s)",
                (_lock_key(name),),
            )
            self._held.discard(name)
            log.info("worker %s gave partition %s back", self._worker, name)
        start = zlib.crc32(self._worker.encode()) % max(1, len(self._partitions))
        order = self._partitions[start:] + self._partitions[:start]
        for name in order:
            if len(self.held()) >= share:
                break
            if name not in self._held and self._try(conn, name):
                self._held.add(name)
                log.info("worker %s took partition %s", self._worker, name)
        if _MAINTENANCE not in self._held and self._try(conn, _MAINTENANCE):
            self._held.add(_MAINTENANCE)
        if ",".join(self.held()) != held_names:  # what `status` shows: what is held now
            conn.execute(
                "UPDATE pipeline_workers SET streams = %s WHERE worker = %s",
                (",".join(self.held()), self._worker),
            )

    @staticmethod
    def _try(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext('koppla-lease:' || current_schema()), %s)",
            (_lock_key(name),),
        ).fetchone()
        return bool(row and row[0])

    def _drop(self) -> None:
        self._held.clear()
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Give every lease back (closing the connection releases its locks)."""
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute(
                    "DELETE FROM pipeline_workers WHERE worker = %s", (self._worker,)
                )
        self._drop()


class SharedDedupe:
    """One dataset's event ids as claims in `dedupe_claims` (a `DedupeIndex`'s interface).

    Claims are kept exactly, without a time window: 16 bytes of key per event, indexed.
    """

    claims = True
    """Several writers: each claims the ids it is about to store."""

    def __init__(
        self, conn: psycopg.Connection[tuple[Any, ...]], lock: threading.Lock, dataset_id: str
    ) -> None:
        self._conn, self._lock, self._dataset = conn, lock, dataset_id

    def taken(self, items: list[tuple[str, int]], *, owner: str, done: int) -> set[str]:
        """Claim the ids of `items` (event id, position) for `owner`; returns those to leave out.

        An id is left out when another owner claimed it first, or when `owner` claimed it at a
        position its commits already hold (at or below `done`: stored before). An id `owner`
        claimed past `done` is its own uncommitted claim (a replay after a crash): kept.
        """
        if not items:
            return set()
        by_key: dict[bytes, str] = {}
        keys: list[bytes] = []
        positions: list[int] = []
        for event_id, position in items:
            key = id_key(event_id)
            if key not in by_key:
                by_key[key] = event_id
                keys.append(key)
                positions.append(position)
        now = clock.now_ms()
        with self._lock:
            won = self._conn.execute(
                "INSERT INTO dedupe_claims (dataset_id, k, owner, position, claimed_ms) "
                "SELECT %s, k, %s, p, %s FROM unnest(%s::bytea[], %s::bigint[]) AS c(k, p) "
                "ON CONFLICT (dataset_id, k) DO NOTHING RETURNING k",
                (self._dataset, owner, now, keys, positions),
            ).fetchall()
            mine = {bytes(row[0]) for row in won}
            rest = [k for k in keys if k not in mine]
            earlier = (
                self._conn.execute(
                    "SELECT k, owner, position FROM dedupe_claims "
                    "WHERE dataset_id = %s AND k = ANY(%s)",
                    (self._dataset, rest),
                ).fetchall()
                if rest
                else []
            )
        taken: set[str] = set()
        for key, claimer, position in earlier:
            if claimer != owner or int(position) <= done:
                taken.add(by_key[bytes(key)])
        return taken

    def release(self, event_ids: list[str], *, owner: str) -> None:
        """Give back `owner`'s claims on `event_ids` (records that could not be stored after
        all: they went to the quarantine, and a corrected resend must not count as seen)."""
        keys = list({id_key(e) for e in event_ids})
        if not keys:
            return
        with self._lock:
            self._conn.execute(
                "DELETE FROM dedupe_claims WHERE dataset_id = %s AND owner = %s AND k = ANY(%s)",
                (self._dataset, owner, keys),
            )

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of `event_ids` claimed in the dataset."""
        by_key = {id_key(e): e for e in event_ids}
        if not by_key:
            return set()
        with self._lock:
            rows = self._conn.execute(
                "SELECT k FROM dedupe_claims WHERE dataset_id = %s AND k = ANY(%s)",
                (self._dataset, list(by_key)),
            ).fetchall()
        return {by_key[bytes(row[0])] for row in rows}

    def add(self, event_ids: Iterable[str]) -> None:
        """Record `event_ids` as stored (batch ingestion's commits; an id claimed already keeps
        its claim)."""
        keys = list({id_key(e) for e in event_ids})
        if not keys:
            return
        with self._lock:
            self._conn.execute(
                "INSERT INTO dedupe_claims (dataset_id, k, owner, position, claimed_ms) "
                "SELECT %s, k, '', 0, %s FROM unnest(%s::bytea[]) AS c(k) "
                "ON CONFLICT (dataset_id, k) DO NOTHING",
                (self._dataset, clock.now_ms(), keys),
            )

    def close(self) -> None:
        """Nothing to close: the connection is the shared state's."""


class SharedState:
    """A worker's view of the shared state: its leases, the cursors and the dedupe claims."""

    def __init__(self, url: str, worker: str, partitions: list[str]) -> None:
        self._conn = connect(url)
        self._lock = threading.Lock()
        self.cursors = SharedCursors(self._conn, self._lock)
        self.leases = Leases(url, worker, partitions)

    def dedupe(self, dataset_id: str) -> SharedDedupe:
        """The claims of one dataset."""
        return SharedDedupe(self._conn, self._lock, dataset_id)

    def close(self) -> None:
        """Give the leases back and close the connections."""
        self.leases.close()
        self._conn.close()


def worker_states(url: str, now_ms: int) -> list[dict[str, Any]]:
    """Every pipeline worker that beat in the last minutes: name, partitions held, heartbeat
    age, and whether it counts as live (for `status`)."""
    with psycopg.connect(pg_conninfo(url), autocommit=True, connect_timeout=5) as conn:
        try:
            rows = conn.execute(
                "SELECT worker, beat_ms, streams FROM pipeline_workers ORDER BY worker"
            ).fetchall()
        except psycopg.errors.UndefinedTable:  # no worker has started yet
            return []
    return [
        {
            "worker": str(worker),
            "partitions": [p for p in str(streams).split(",") if p],
            "heartbeatAgeS": round(max(0, now_ms - int(beat)) / 1000, 1),
            "live": now_ms - int(beat) <= LIVE_MS,
        }
        for worker, beat, streams in rows
    ]
