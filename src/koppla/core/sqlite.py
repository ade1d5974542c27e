"""One SQLite database file shared by threads: WAL, one transaction at a time, typed reads.

The catalog and the connector's state each keep one connection that the event loop and worker
threads share; a lock serializes transactions on it (other processes are kept apart by SQLite's
own file locking, with a busy timeout).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal


class SqliteFile:
    """A WAL-mode SQLite database with `fsync`ed commits, safe to share between threads."""

    dialect: Final[Literal["sqlite"]] = "sqlite"
    """Which SQL it speaks (`PgFile`'s is "postgresql"): stores pick their DDL by it."""

    def __init__(self, path: Path, schema: str, *, foreign_keys: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        if foreign_keys:
            self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(schema)

    def all(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction, committed on success, else rolled back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add_columns(self, columns: Iterable[tuple[str, str, str]]) -> None:
        """Add each `(table, column, definition)` the file lacks (it was made by an older
        Koppla); columns already there are left as they are."""
        for table, column, definition in columns:
            with self.transaction() as db:  # checked inside: another process may add it too
                have = {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
