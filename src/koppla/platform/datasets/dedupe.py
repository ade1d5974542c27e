"""The dedupe index: which event `_id`s a dataset already holds, so replays land once."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 500


def _key(event_id: str) -> bytes:
    try:
        return uuid.UUID(event_id).bytes
    except ValueError:
        return event_id.encode()


class DedupeIndex:
    """A set of event ids on disk (SQLite), one per dataset."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS ids (k BLOB PRIMARY KEY) WITHOUT ROWID")

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """The subset of `event_ids` already in the index."""
        by_key = {_key(event_id): event_id for event_id in event_ids}
        keys = list(by_key)
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            part = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT k FROM ids WHERE k IN ({marks})", part).fetchall()
            found.update(by_key[row[0]] for row in rows)
        return found

    def add(self, event_ids: Iterable[str]) -> None:
        """Add `event_ids` (ids already present are ignored)."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR IGNORE INTO ids VALUES (?)", ((_key(e),) for e in event_ids)
        )
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the index."""
        self._db.close()
