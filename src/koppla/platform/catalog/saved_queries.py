"""Saved queries and query history, per person of an organization, in the catalog's file.

Each person (a signed-in user, or an API token by its name) of an organization keeps their own
named queries and the history of what they ran; nobody of another organization, or another
person, sees them. The tables live in the catalog's SQLite file beside the catalog's own.
Saving under a name already used replaces that query's SQL. The history keeps the newest
`HISTORY_KEPT` runs per person.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from koppla.core import clock, ids
from koppla.core.errors import InvalidInput
from koppla.core.sqlite import SqliteFile
from koppla.core.text import check_unicode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS saved_queries (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL,
  sql TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
  UNIQUE (org_id, owner, name));
CREATE TABLE IF NOT EXISTS query_history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, org_id TEXT NOT NULL, owner TEXT NOT NULL,
  sql TEXT NOT NULL, ok INTEGER NOT NULL, rows INTEGER NOT NULL, elapsed_ms REAL NOT NULL,
  error TEXT NOT NULL DEFAULT '', at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS query_history_by_owner ON query_history(org_id, owner, seq);
"""

MAX_NAME_CHARS = 100
MAX_SQL_CHARS = 100_000
MAX_ERROR_CHARS = 2_000
MAX_SAVED = 500
"""Most saved queries one person keeps."""
HISTORY_KEPT = 200
"""Runs kept in one person's history; older ones are dropped as new ones arrive."""


@dataclass(frozen=True, slots=True)
class SavedQuery:
    """A named query of one person."""

    id: str
    name: str
    sql: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One run of a query: its SQL, whether it worked, rows returned, time taken, the error."""

    id: int
    sql: str
    ok: bool
    rows: int
    elapsed_ms: float
    error: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose queries: a person (user email or token name) in an organization."""

    org_id: str
    name: str


class SavedQueries:
    """Saved queries and query history; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, _SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self._file.close()

    def save(self, owner: Owner, name: str, sql: str, *, now_ms: int | None = None) -> SavedQuery:
        """Save `sql` as `name` (replacing the SQL of `owner`'s query of that name).

        Raises `InvalidInput` naming `name` or `sql` when one is empty or too long, or when
        `owner` already keeps `MAX_SAVED` queries.
        """
        name, sql = _checked_name(name), _checked_sql(sql)
        at = clock.now_ms() if now_ms is None else now_ms
        with self._file.transaction() as db:
            row = db.execute(
                "SELECT id, created_ms FROM saved_queries WHERE org_id=? AND owner=? AND name=?",
                (owner.org_id, owner.name, name),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE saved_queries SET sql=?, updated_ms=? WHERE id=?", (sql, at, row[0])
                )
                return SavedQuery(str(row[0]), name, sql, int(row[1]), at)
            (count,) = db.execute(
                "SELECT count(*) FROM saved_queries WHERE org_id=? AND owner=?",
                (owner.org_id, owner.name),
            ).fetchone()
            if count >= MAX_SAVED:
                message = f"at most {MAX_SAVED} saved queries; delete one first"
                raise InvalidInput(message, field="name")
            query_id = ids.new_hex_id(8)
            db.execute(
                "INSERT INTO saved_queries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (query_id, owner.org_id, owner.name, name, sql, at, at),
            )
        return SavedQuery(query_id, name, sql, at, at)

    def saved(self, owner: Owner) -> list[SavedQuery]:
        """`owner`'s saved queries, by name."""
        rows = self._file.all(
            "SELECT id, name, sql, created_ms, updated_ms FROM saved_queries "
            "WHERE org_id=? AND owner=? ORDER BY name COLLATE NOCASE, name",
            (owner.org_id, owner.name),
        )
        return [SavedQuery(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]

    def delete(self, owner: Owner, query_id: str) -> bool:
        """Delete `owner`'s saved query `query_id`; False when `owner` has no such query."""
        with self._file.transaction() as db:
            gone = db.execute(
                "DELETE FROM saved_queries WHERE id=? AND org_id=? AND owner=?",
                (query_id, owner.org_id, owner.name),
            )
            return gone.rowcount > 0

    def record(
        self,
        owner: Owner,
        sql: str,
        *,
        rows: int,
        elapsed_ms: float,
        error: str = "",
        now_ms: int | None = None,
    ) -> HistoryEntry:
        """Add one run to `owner`'s history (failed when `error` is given), keeping the newest
        `HISTORY_KEPT`; SQL and error text longer than this store keeps are cut, and what is
        no valid Unicode (a lone surrogate) is kept as `?`."""
        at = clock.now_ms() if now_ms is None else now_ms
        sql, error = _storable(sql[:MAX_SQL_CHARS]), _storable(error[:MAX_ERROR_CHARS])
        ok = not error
        with self._file.transaction() as db:
            added = db.execute(
                "INSERT INTO query_history (org_id, owner, sql, ok, rows, elapsed_ms, error, at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (owner.org_id, owner.name, sql, int(ok), rows, elapsed_ms, error, at),
            )
            seq = int(added.lastrowid or 0)
            db.execute(
                "DELETE FROM query_history WHERE org_id=? AND owner=? AND seq <= ("
                " SELECT seq FROM query_history WHERE org_id=? AND owner=?"
                " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (owner.org_id, owner.name, owner.org_id, owner.name, HISTORY_KEPT),
            )
        return HistoryEntry(seq, sql, ok, rows, elapsed_ms, error, at)

    def history(self, owner: Owner, *, limit: int = 50) -> list[HistoryEntry]:
        """`owner`'s newest `limit` runs, newest first."""
        rows = self._file.all(
            "SELECT seq, sql, ok, rows, elapsed_ms, error, at_ms FROM query_history "
            "WHERE org_id=? AND owner=? ORDER BY seq DESC LIMIT ?",
            (owner.org_id, owner.name, limit),
        )
        return [
            HistoryEntry(int(r[0]), str(r[1]), bool(r[2]), int(r[3]), float(r[4]), str(r[5]), r[6])
            for r in rows
        ]


def _checked_name(name: str) -> str:
    name = name.strip()
    check_unicode(name, "name")
    if not name:
        raise InvalidInput("name is required", field="name")
    if len(name) > MAX_NAME_CHARS:
        message = f"name must be at most {MAX_NAME_CHARS} characters, got {len(name)}"
        raise InvalidInput(message, field="name")
    return name


def _checked_sql(sql: str) -> str:
    check_unicode(sql, "sql")
    if not sql.strip():
        raise InvalidInput("sql is required", field="sql")
    if len(sql) > MAX_SQL_CHARS:
        message = f"sql must be at most {MAX_SQL_CHARS} characters, got {len(sql)}"
        raise InvalidInput(message, field="sql")
    return sql


def _storable(text: str) -> str:
    """`text` with anything that has no UTF-8 form (lone surrogates) replaced by `?`."""
    return text.encode("utf-8", "replace").decode("utf-8")
