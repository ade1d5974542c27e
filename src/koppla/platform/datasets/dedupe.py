"""The dedupe index: which event `_id`s a dataset already holds, so replays land once.

Its memory is bounded. Ids stored within the last `window_ms` are kept exactly (SQLite, with the
second each was added); older ones are moved, every `prune_every_ms` (an hour for a 7-day
window), into a Bloom filter kept in the same database, in the same transaction. An id that is
not in the window but that the filter may hold is confirmed with `lookup` (a search of the
dataset's own `_id` column), so a resync of five-year-old orders still adds nothing while an old
id costs about 3.6 bytes. The filter's false positives (about one in a million per segment) cost
a search of the dataset but never drop an event.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from koppla.core import clock
from koppla.platform.datasets.bloom import BloomFilter, Segment

_CHUNK = 500
DAY_MS = 86_400_000
PRUNE_LIMIT = 100_000
"""The most ids one prune moves into the filter (a second or so of work)."""

Lookup = Callable[[list[str]], set[str]]
"""The subset of some ids that the dataset itself holds (the final word on a Bloom "maybe")."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ids (k BLOB PRIMARY KEY, t INTEGER NOT NULL DEFAULT 0) "
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS bloom (n INTEGER PRIMARY KEY, capacity INTEGER NOT NULL, "
    "count INTEGER NOT NULL, hashes INTEGER NOT NULL, bits BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def id_key(event_id: str) -> bytes:
    """The key an event id is indexed under: a UUID's 16 bytes, any other id's UTF-8 bytes.

    The usual form (`8-4-4-4-12` hex digits) is read without `uuid.UUID`, which costs several
    times more; `bytes.fromhex` yields 16 bytes only when all 32 characters are hex digits, and
    then exactly the bytes `uuid.UUID` would give.
    """
    if len(event_id) == 36 and event_id[8] == event_id[13] == event_id[18] == event_id[23] == "-":
        try:
            packed = bytes.fromhex(event_id.replace("-", ""))
        except ValueError:
            packed = b""
        if len(packed) == 16:
            return packed
    try:
        return uuid.UUID(event_id).bytes
    except ValueError:
        return event_id.encode("utf-8", "surrogatepass")


def present(db: sqlite3.Connection, event_ids: Iterable[str]) -> tuple[set[str], dict[bytes, str]]:
    """Which of `event_ids` the `ids (k)` table of `db` holds (by `id_key`, so two spellings
    of one UUID are one id), and every id by its key; looked up a chunk of keys at a time."""
    by_key = {id_key(event_id): event_id for event_id in event_ids}
    keys = list(by_key)
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        part = keys[start : start + _CHUNK]
        marks = ",".join("?" * len(part))
        rows = db.execute(f"SELECT k FROM ids WHERE k IN ({marks})", part).fetchall()
        found.update(by_key[row[0]] for row in rows)
    return found, by_key


class IdIndex(Protocol):
    """What the pipeline and batch ingestion ask of a dataset's ids: this module's `DedupeIndex`
    (one writer), or the claims several workers share (`pipeline.shared.SharedDedupe`)."""

    claims: bool
    """True when writers claim ids before they store them (several writers): every commit must
    then claim (`taken`), not only look (`seen`)."""

    def taken(self, items: list[tuple[str, int]], *, owner: str, done: int) -> set[str]:
        """Of `items` (event id, spool position) headed for a commit, the ids to leave out."""
        ...

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of `event_ids` the dataset already holds."""
        ...

    def release(self, event_ids: list[str], *, owner: str) -> None:
        """Give back `owner`'s claims on `event_ids`: they were not stored after all."""
        ...

    def add(self, event_ids: Iterable[str]) -> None:
        """Record `event_ids` as stored."""
        ...

    def close(self) -> None:
        """Release what the index holds open."""
        ...


class DedupeIndex:
    """The event ids of one dataset: recent ones exactly, older ones in a Bloom filter."""

    claims = False
    """One writer (the embedded pipeline): ids are recorded once stored, never claimed."""

    def __init__(
        self,
        path: Path,
        *,
        lookup: Lookup,
        window_ms: int = 7 * DAY_MS,
        prune_every_ms: int | None = None,
        now: Callable[[], int] = clock.now_ms,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lookup, self._window_ms, self._now = lookup, window_ms, now
        self._prune_every_ms = prune_every_ms or max(60_000, window_ms // 168)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes effect on a new file
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(ids)")}
        if "t" not in columns:  # an index written before ids had times: all count as old
            self._db.execute("ALTER TABLE ids ADD COLUMN t INTEGER NOT NULL DEFAULT 0")
        self._bloom = BloomFilter(
            [
                Segment(capacity=c, count=n, hashes=h, bits=bytearray(b))
                for c, n, h, b in self._db.execute(
                    "SELECT capacity, count, hashes, bits FROM bloom ORDER BY n"
                )
            ]
        )
        row = self._db.execute("SELECT value FROM meta WHERE name = 'pruned_at'").fetchone()
        self._pruned_at = int(row[0]) if row else 0

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of `event_ids` already in the dataset."""
        found, by_key = present(self._db, event_ids)
        maybe = [e for k, e in by_key.items() if e not in found and k in self._bloom]
        if maybe:
            found |= self._lookup(maybe) & set(maybe)
        return found

    def taken(self, items: list[tuple[str, int]], *, owner: str, done: int) -> set[str]:
        """Of `items` (event id, spool position) headed for a commit, the ids to leave out.

        This index has one writer (the embedded pipeline), so that is every id the dataset
        already holds (`seen`); `owner` and `done` matter to a shared index, where workers claim
        ids (`koppla.platform.pipeline.shared.SharedDedupe`).
        """
        return self.seen(event_id for event_id, _ in items)

    def release(self, event_ids: list[str], *, owner: str) -> None:
        """Nothing to give back: this index records ids only once they are stored (`add`)."""

    def add(self, event_ids: Iterable[str]) -> None:
        """Add `event_ids` as stored now (ids already present are ignored); prune when due."""
        now = self._now()
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO ids VALUES (?, ?)",
                ((id_key(e), now // 1000) for e in event_ids),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if now - self._pruned_at >= self._prune_every_ms:
            self.prune()

    def prune(self, limit: int = PRUNE_LIMIT) -> int:
        """Move up to `limit` ids older than the window into the Bloom filter; returns how many.

        When `limit` ids moved, more may be left: the next `add` prunes again, so that no single
        call holds the pipeline up for long.
        """
        now = self._now()
        cutoff = (now - self._window_ms) // 1000  # ids carry the second they were added
        self._db.execute("BEGIN")
        try:
            keys = [
                row[0]
                for row in self._db.execute(
                    "SELECT k FROM ids WHERE t < ? LIMIT ?", (cutoff, limit)
                )
            ]
            first_changed = max(0, len(self._bloom.segments) - 1)
            self._bloom.add(keys)
            self._db.executemany(
                "INSERT OR REPLACE INTO bloom VALUES (?, ?, ?, ?, ?)",
                (
                    (n, s.capacity, s.count, s.hashes, bytes(s.bits))
                    for n, s in enumerate(self._bloom.segments)
                    if n >= first_changed and keys
                ),
            )
            self._db.executemany("DELETE FROM ids WHERE k = ?", ((k,) for k in keys))
            finished = len(keys) < limit
            if finished:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_at', ?)", (now,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if finished:
            self._pruned_at = now
        self._db.execute("PRAGMA incremental_vacuum")
        return len(keys)

    def recent(self) -> int:
        """How many ids the exact (windowed) part holds."""
        count: int = self._db.execute("SELECT count(*) FROM ids").fetchone()[0]
        return count

    def nbytes(self) -> int:
        """The bytes the index uses on disk, free pages not counted."""
        page_size, pages, free = (
            self._db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_size", "page_count", "freelist_count")
        )
        return int(page_size) * (int(pages) - int(free))

    def close(self) -> None:
        """Close the index."""
        self._db.close()
