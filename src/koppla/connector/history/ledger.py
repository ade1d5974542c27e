"""The history sync's durable record: requests, their chunks and each chunk's platform batches.

Lives at `<home>/connector/history.sqlite` (WAL; shared by the CLI, the connector and every
consumer process on the machine). It is what makes a sync exactly once and resumable:

- the producer adds each chunk (a range of order ids) and advances the request's cursor in one
  transaction, and marks a chunk published once the queue holds its message;
- a consumer records the batch id it created for a chunk and dataset before it uploads anything,
  so a redelivered message reuses that batch instead of sending the orders again;
- a chunk is `sent` once every batch of it was completed on the platform (the message is then
  acknowledged), and `done` (or `failed`) once the platform has processed them.

It holds counts and ids, never order data: a few hundred bytes per chunk of thousands of orders.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from koppla.connector.history.request import SyncPlan
from koppla.core import clock, codec, ids
from koppla.core.errors import NotFound
from koppla.core.sqlite import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_request (
  id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, start_day TEXT NOT NULL,
  end_day TEXT NOT NULL, datasets TEXT NOT NULL, status TEXT NOT NULL,
  produced_after INTEGER NOT NULL DEFAULT 0, produced INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER, started_ms INTEGER
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunk (
  request_id TEXT NOT NULL, no INTEGER NOT NULL, first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL, orders INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
  published INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  failed_orders INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0, error TEXT,
  updated_ms INTEGER NOT NULL, PRIMARY KEY (request_id, no)
);
CREATE INDEX IF NOT EXISTS chunk_status ON chunk (request_id, status);
CREATE TABLE IF NOT EXISTS chunk_batch (
  request_id TEXT NOT NULL, no INTEGER NOT NULL, dataset_id TEXT NOT NULL,
  batch_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'loading', rows INTEGER NOT NULL DEFAULT 0,
  written INTEGER, failed_rows INTEGER, PRIMARY KEY (request_id, no, dataset_id)
);
CREATE TABLE IF NOT EXISTS order_error (
  request_id TEXT NOT NULL, order_id INTEGER NOT NULL, field TEXT, message TEXT NOT NULL,
  PRIMARY KEY (request_id, order_id)
);
"""

RequestStatus = Literal["producing", "running", "done", "failed"]
ChunkStatus = Literal["queued", "sent", "done", "failed"]
BatchStatus = Literal["loading", "completed", "success", "failed"]
FINAL_CHUNK: tuple[ChunkStatus, ...] = ("done", "failed")


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """One history sync as recorded: its plan, status and how far the producer got."""

    id: str
    created_ms: int
    plan: SyncPlan
    status: RequestStatus
    produced_after: int
    produced: bool
    finished_ms: int | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A range of order ids of one request: the unit of a queue message and of batches."""

    request_id: str
    no: int
    first_id: int
    last_id: int
    orders: int
    status: ChunkStatus
    attempts: int


@dataclass(frozen=True, slots=True)
class ChunkBatch:
    """The platform batch carrying one chunk's events for one dataset."""

    request_id: str
    no: int
    dataset_id: str
    batch_id: str
    status: BatchStatus
    rows: int


@dataclass(frozen=True, slots=True)
class Counts:
    """A request's progress in numbers (see `progress.Progress` for the derived figures)."""

    chunks: int
    chunks_final: int
    orders_found: int
    orders_done: int
    orders_failed: int
    events: int
    batches: int
    batches_succeeded: int
    batches_failed: int
    rows_failed: int
    first_work_ms: int | None
    last_work_ms: int | None


class Ledger:
    """Read and change the history sync's record; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._file.close()

    def home_id(self) -> str:
        """This ledger's random id (made on first use): names the home's default queue."""
        with self._file.transaction() as db:
            db.execute(
                "INSERT INTO meta (name, value) VALUES ('home_id', ?) ON CONFLICT DO NOTHING",
                (ids.new_hex_id(6),),
            )
            row = db.execute("SELECT value FROM meta WHERE name='home_id'").fetchone()
        return str(row[0])

    # requests
    def add_request(self, request_id: str, plan: SyncPlan) -> SyncRequest:
        """Record a new request (status `producing`)."""
        now = clock.now_ms()
        with self._file.transaction() as db:
            db.execute(
                "INSERT INTO sync_request (id, created_ms, start_day, end_day, datasets, status) "
                "VALUES (?,?,?,?,?, 'producing')",
                (
                    request_id,
                    now,
                    plan.start.isoformat(),
                    plan.end.isoformat(),
                    codec.dumps(plan.datasets).decode(),
                ),
            )
        return self.request(request_id)

    def request(self, request_id: str) -> SyncRequest:
        """The request `request_id`; `NotFound` otherwise."""
        row = self._file.one(f"SELECT {_REQUEST} FROM sync_request WHERE id=?", (request_id,))
        if row is None:
            raise NotFound(f"no history sync with id {request_id!r}")
        return _request(row)

    def requests(self, limit: int = 20) -> list[SyncRequest]:
        """The newest requests first."""
        rows = self._file.all(
            f"SELECT {_REQUEST} FROM sync_request ORDER BY created_ms DESC, id LIMIT ?", (limit,)
        )
        return [_request(r) for r in rows]

    def unfinished(self) -> list[SyncRequest]:
        """Requests still producing or running, oldest first."""
        rows = self._file.all(
            f"SELECT {_REQUEST} FROM sync_request WHERE status IN ('producing', 'running') "
            "ORDER BY created_ms, id"
        )
        return [_request(r) for r in rows]

    def add_chunks(self, request_id: str, chunks: list[tuple[int, int, int]]) -> list[Chunk]:
        """Append chunks `(first_id, last_id, orders)` and advance the producer's cursor."""
        now = clock.now_ms()
        with self._file.transaction() as db:
            row = db.execute(
                "SELECT coalesce(max(no), 0) FROM chunk WHERE request_id=?", (request_id,)
            ).fetchone()
            start = int(row[0]) + 1
            db.executemany(
                "INSERT INTO chunk (request_id, no, first_id, last_id, orders, updated_ms) "
                "VALUES (?,?,?,?,?,?)",
                [
                    (request_id, start + i, first, last, count, now)
                    for i, (first, last, count) in enumerate(chunks)
                ],
            )
            if chunks:
                db.execute(
                    "UPDATE sync_request SET produced_after=? WHERE id=?",
                    (chunks[-1][1], request_id),
                )
        return [
            Chunk(request_id, start + i, first, last, count, "queued", 0)
            for i, (first, last, count) in enumerate(chunks)
        ]

    def mark_published(self, request_id: str, numbers: list[int]) -> None:
        """The queue holds these chunks' messages durably."""
        with self._file.transaction() as db:
            db.executemany(
                "UPDATE chunk SET published=1 WHERE request_id=? AND no=?",
                [(request_id, n) for n in numbers],
            )

    def unpublished(self, request_id: str) -> list[Chunk]:
        """Chunks added but not yet known to be on the queue (a producer stopped between)."""
        rows = self._file.all(
            f"SELECT {_CHUNK} FROM chunk WHERE request_id=? AND published=0 ORDER BY no",
            (request_id,),
        )
        return [_chunk(r) for r in rows]

    def mark_produced(self, request_id: str) -> None:
        """Every chunk of the request exists and is on the queue."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE sync_request SET produced=1, status='running' "
                "WHERE id=? AND status='producing'",
                (request_id,),
            )
            _settle_request(db, request_id)

    # chunks
    def chunk(self, request_id: str, no: int) -> Chunk:
        """One chunk; `NotFound` otherwise."""
        row = self._file.one(
            f"SELECT {_CHUNK} FROM chunk WHERE request_id=? AND no=?", (request_id, no)
        )
        if row is None:
            raise NotFound(f"no chunk {no} in history sync {request_id!r}")
        return _chunk(row)

    def begin_attempt(self, request_id: str, no: int) -> int:
        """Count one more attempt at a chunk; returns the attempt number."""
        now = clock.now_ms()
        with self._file.transaction() as db:
            db.execute(
                "UPDATE chunk SET attempts=attempts+1, updated_ms=? WHERE request_id=? AND no=?",
                (now, request_id, no),
            )
            db.execute(
                "UPDATE sync_request SET started_ms=coalesce(started_ms, ?) WHERE id=?",
                (now, request_id),
            )
            row = db.execute(
                "SELECT attempts FROM chunk WHERE request_id=? AND no=?", (request_id, no)
            ).fetchone()
        return int(row[0]) if row else 0

    def order_errors(self, request_id: str, errors: list[tuple[int, str | None, str]]) -> None:
        """Record orders whose rows could not be read (order id, field, message)."""
        with self._file.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO order_error VALUES (?,?,?,?)",
                [(request_id, oid, fld, msg) for oid, fld, msg in errors],
            )

    def failed_orders(self, request_id: str, limit: int = 100) -> list[tuple[int, str | None, str]]:
        """Orders that could not be read, with the field and the reason."""
        rows = self._file.all(
            "SELECT order_id, field, message FROM order_error WHERE request_id=? "
            "ORDER BY order_id LIMIT ?",
            (request_id, limit),
        )
        return [(int(r[0]), r[1], str(r[2])) for r in rows]

    def mark_sent(self, request_id: str, no: int, events: int, failed_orders: int) -> None:
        """Every batch of the chunk was completed on the platform."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE chunk SET status='sent', events=?, failed_orders=?, error=NULL, "
                "updated_ms=? WHERE request_id=? AND no=? AND status='queued'",
                (events, failed_orders, clock.now_ms(), request_id, no),
            )
            _settle_chunk(db, request_id, no)

    def mark_chunk_failed(self, request_id: str, no: int, reason: str) -> None:
        """Give up on a chunk (dead-lettered): its orders count as failed."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE chunk SET status='failed', error=?, updated_ms=? "
                "WHERE request_id=? AND no=? AND status IN ('queued', 'sent')",
                (reason[:2000], clock.now_ms(), request_id, no),
            )
            _settle_request(db, request_id)

    def fail_abandoned(self, request_id: str, max_attempts: int, quiet_ms: int) -> int:
        """Fail the chunks taken `max_attempts` times and untouched for `quiet_ms`: every
        consumer that took them died on them, and the queue has given them up."""
        cutoff = clock.now_ms() - quiet_ms
        with self._file.transaction() as db:
            cur = db.execute(
                "UPDATE chunk SET status='failed', error=?, updated_ms=? WHERE request_id=? "
                "AND status='queued' AND attempts >= ? AND updated_ms < ?",
                (
                    f"given up after {max_attempts} deliveries that never finished (the "
                    "consumers stopped while handling it)",
                    clock.now_ms(),
                    request_id,
                    max_attempts,
                    cutoff,
                ),
            )
            if cur.rowcount:
                _settle_request(db, request_id)
        return int(cur.rowcount)

    # batches
    def batches_of(self, request_id: str, no: int) -> dict[str, ChunkBatch]:
        """The batches already created for a chunk, by dataset id."""
        rows = self._file.all(
            f"SELECT {_BATCH} FROM chunk_batch WHERE request_id=? AND no=?", (request_id, no)
        )
        return {str(r[2]): _batch(r) for r in rows}

    def add_batch(self, request_id: str, no: int, dataset_id: str, batch_id: str) -> ChunkBatch:
        """Remember the batch created for a chunk's dataset, before anything is uploaded.

        The first batch recorded for a chunk's dataset wins (two consumers handling one chunk at
        once both end up filling it): returns the batch kept. A recorded batch the platform gave
        up on (`replace_batch`) is the only one ever replaced.
        """
        with self._file.transaction() as db:
            db.execute(
                "INSERT INTO chunk_batch (request_id, no, dataset_id, batch_id) VALUES (?,?,?,?) "
                "ON CONFLICT (request_id, no, dataset_id) DO NOTHING",
                (request_id, no, dataset_id, batch_id),
            )
            row = db.execute(
                f"SELECT {_BATCH} FROM chunk_batch WHERE request_id=? AND no=? AND dataset_id=?",
                (request_id, no, dataset_id),
            ).fetchone()
        return _batch(row)

    def forget_batch(self, batch: ChunkBatch) -> None:
        """Drop the record of a batch the platform aborted, so the chunk makes a new one."""
        with self._file.transaction() as db:
            db.execute(
                "DELETE FROM chunk_batch WHERE request_id=? AND no=? AND dataset_id=? "
                "AND batch_id=?",
                (batch.request_id, batch.no, batch.dataset_id, batch.batch_id),
            )

    def mark_batch_completed(self, request_id: str, no: int, dataset_id: str, rows: int) -> None:
        """The platform accepted COMPLETE for the batch: it is the platform's to process."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE chunk_batch SET status='completed', rows=? "
                "WHERE request_id=? AND no=? AND dataset_id=? AND status='loading'",
                (rows, request_id, no, dataset_id),
            )

    def pending_batches(self, request_id: str) -> list[ChunkBatch]:
        """Batches completed on the platform whose outcome is not known yet."""
        rows = self._file.all(
            f"SELECT {_BATCH} FROM chunk_batch WHERE request_id=? AND status='completed'",
            (request_id,),
        )
        return [_batch(r) for r in rows]

    def settle_batch(
        self, batch: ChunkBatch, status: BatchStatus, written: int, failed_rows: int
    ) -> None:
        """Record a batch's outcome; a chunk whose batches are all final becomes done/failed."""
        with self._file.transaction() as db:
            db.execute(
                "UPDATE chunk_batch SET status=?, written=?, failed_rows=? "
                "WHERE request_id=? AND no=? AND dataset_id=?",
                (status, written, failed_rows, batch.request_id, batch.no, batch.dataset_id),
            )
            _settle_chunk(db, batch.request_id, batch.no)

    def counts(self, request_id: str) -> Counts:
        """The request's progress in numbers."""
        c = self._file.one(
            "SELECT count(*), "
            "coalesce(sum(status IN ('done', 'failed')), 0), coalesce(sum(orders), 0), "
            "coalesce(sum(CASE WHEN status='done' THEN orders - failed_orders END), 0), "
            "coalesce(sum(CASE WHEN status='failed' THEN orders ELSE failed_orders END), 0), "
            "coalesce(sum(events), 0), (SELECT started_ms FROM sync_request WHERE id=?), "
            "max(CASE WHEN attempts > 0 THEN updated_ms END) FROM chunk WHERE request_id=?",
            (request_id, request_id),
        )
        b = self._file.one(
            "SELECT count(*), coalesce(sum(status='success'), 0), "
            "coalesce(sum(status='failed'), 0), coalesce(sum(failed_rows), 0) "
            "FROM chunk_batch WHERE request_id=?",
            (request_id,),
        )
        assert c is not None and b is not None
        return Counts(
            chunks=int(c[0]),
            chunks_final=int(c[1]),
            orders_found=int(c[2]),
            orders_done=int(c[3]),
            orders_failed=int(c[4]),
            events=int(c[5]),
            batches=int(b[0]),
            batches_succeeded=int(b[1]),
            batches_failed=int(b[2]),
            rows_failed=int(b[3]),
            first_work_ms=None if c[6] is None else int(c[6]),
            last_work_ms=None if c[7] is None else int(c[7]),
        )

    def chunks_by_status(self, request_id: str) -> dict[str, int]:
        """How many of the request's chunks are queued, sent, done and failed."""
        rows = self._file.all(
            "SELECT status, count(*) FROM chunk WHERE request_id=? GROUP BY status", (request_id,)
        )
        return {str(status): int(n) for status, n in rows}

    def chunk_errors(self, request_id: str, limit: int = 20) -> list[tuple[int, str]]:
        """Failed chunks with their reasons."""
        rows = self._file.all(
            "SELECT no, coalesce(error, '') FROM chunk WHERE request_id=? AND status='failed' "
            "ORDER BY no LIMIT ?",
            (request_id, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]


_REQUEST = "id, created_ms, start_day, end_day, datasets, status, produced_after, produced, "
_REQUEST += "finished_ms"
_CHUNK = "request_id, no, first_id, last_id, orders, status, attempts"
_BATCH = "request_id, no, dataset_id, batch_id, status, rows"


def _request(row: tuple[object, ...]) -> SyncRequest:
    plan = SyncPlan(
        date.fromisoformat(str(row[2])),
        date.fromisoformat(str(row[3])),
        {str(k): str(v) for k, v in codec.loads(str(row[4])).items()},
    )
    return SyncRequest(
        id=str(row[0]),
        created_ms=int(str(row[1])),
        plan=plan,
        status=str(row[5]),  # type: ignore[arg-type]
        produced_after=int(str(row[6])),
        produced=bool(row[7]),
        finished_ms=None if row[8] is None else int(str(row[8])),
    )


def _chunk(row: tuple[object, ...]) -> Chunk:
    return Chunk(
        str(row[0]),
        int(str(row[1])),
        int(str(row[2])),
        int(str(row[3])),
        int(str(row[4])),
        str(row[5]),  # type: ignore[arg-type]
        int(str(row[6])),
    )


def _batch(row: tuple[object, ...]) -> ChunkBatch:
    return ChunkBatch(
        str(row[0]),
        int(str(row[1])),
        str(row[2]),
        str(row[3]),
        str(row[4]),  # type: ignore[arg-type]
        int(str(row[5])),
    )


def _settle_chunk(db: sqlite3.Connection, request_id: str, no: int) -> None:
    """A `sent` chunk whose batches are all final becomes `done` (or `failed` if any failed)."""
    cur = db.execute(
        "SELECT count(*), coalesce(sum(status IN ('success', 'failed')), 0), "
        "coalesce(sum(status='failed'), 0) FROM chunk_batch WHERE request_id=? AND no=?",
        (request_id, no),
    ).fetchone()
    total, final, failed = (int(x) for x in cur)
    if total == final:
        status = "failed" if failed else "done"
        error = "the platform failed a batch of this chunk" if failed else None
        db.execute(
            "UPDATE chunk SET status=?, error=coalesce(?, error), updated_ms=? "
            "WHERE request_id=? AND no=? AND status='sent'",
            (status, error, clock.now_ms(), request_id, no),
        )
    _settle_request(db, request_id)


def _settle_request(db: sqlite3.Connection, request_id: str) -> None:
    """A produced request whose chunks are all final is `done` (`failed` if any chunk failed)."""
    row = db.execute(
        "SELECT produced, (SELECT count(*) FROM chunk WHERE request_id=r.id AND status NOT IN "
        "('done', 'failed')), (SELECT count(*) FROM chunk WHERE request_id=r.id AND "
        "status='failed') FROM sync_request r WHERE id=?",
        (request_id,),
    ).fetchone()
    if row is None or not row[0] or int(row[1]):
        return
    status = "failed" if int(row[2]) else "done"
    db.execute(
        "UPDATE sync_request SET status=?, finished_ms=? WHERE id=? AND status='running'",
        (status, clock.now_ms(), request_id),
    )
