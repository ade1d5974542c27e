"""One PostgreSQL database shared by threads, in the shape of `SqliteFile`: the back-end of the
catalog and the schema registry when several processes on several machines share them.

Like `SqliteFile`, a `PgFile` keeps one connection that the event loop and worker threads share
under a lock, and runs one writer at a time: every transaction first takes a transaction-level
advisory lock named after the store (and the schema it lives in), so checks made inside a
transaction see exactly what is stored until it commits, and numbers handed out inside one
(sequences) become visible in the order they were handed out. Outside transactions the
connection autocommits.

Statements use SQLite's `?` placeholders; they become psycopg's `%s` (a `?` inside a quoted
literal or a comment is left alone, and `%` is escaped). After the server restarted or the
connection broke, the next call connects again: a read (`all`, `one`) or a transaction that has
not yet run anything is retried once on the new connection; a transaction that was under way
when the connection broke fails with `psycopg.OperationalError`. As PostgreSQL does, a statement
that fails inside a transaction aborts it: the transaction can only be rolled back.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final, Literal, TypeVar

import psycopg
from psycopg import conninfo as pg_conninfo

from koppla.core.database import Connection, Cursor

T = TypeVar("T")
_Conn = psycopg.Connection[tuple[Any, ...]]

LOCK_TIMEOUT_MS = 30_000
"""How long a writer waits for another's transaction (SQLite's busy timeout is the same)."""
CONNECT_TIMEOUT_S = 10
"""How long connecting may take, unless the URL says otherwise."""

_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(coalesce(current_schema(), '')))"

_TOKEN = re.compile(
    r"""(?P<escape>(?<!\w)[eE]')
    |(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")
    |(?P<comment>--[^\n]*|/\*.*?\*/)
    |(?P<mark>\?)
    |(?P<dollar>\$)
    |(?P<open>['"]|/\*)""",
    re.S | re.X,
)


class PgFile:
    """A PostgreSQL database (a URL, optionally with `?options=-csearch_path%3DSCHEMA`), safe
    to share between threads; `name` keeps one store's writers apart from another's."""

    dialect: Final[Literal["postgresql"]] = "postgresql"

    def __init__(self, url: str, schema: str, *, name: str) -> None:
        self._conninfo = conninfo(url)
        self._name = f"koppla:{name}"
        self._lock = threading.RLock()
        self._conn: _Conn | None = None
        self._in_transaction = False
        self._closed = False
        if schema.strip():  # under the writers' lock: processes starting together wait in turn
            try:
                with self._begun() as db:
                    db.execute(schema)
            except BaseException:
                self.close()
                raise

    def all(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query (run again once when the connection broke under it)."""
        return self._read(sql, args, lambda cursor: cursor.fetchall())

    def one(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None (run again once when the connection broke)."""
        row: tuple[Any, ...] | None = self._read(sql, args, lambda cursor: cursor.fetchone())
        return row

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction holding the store's writer lock, committed on success, else rolled
        back."""
        with self._begun() as db:
            yield _Statements(db)

    def add_columns(self, columns: Iterable[tuple[str, str, str]]) -> None:
        """Add each `(table, column, definition)` the schema lacks, all in one transaction;
        SQLite's `INTEGER` in a definition becomes `BIGINT` (SQLite's integers are 64-bit)."""
        wanted = list(columns)
        if not wanted:
            return
        with self.transaction() as db:
            have = {
                (str(table), str(column))
                for table, column in db.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema()"
                )
            }
            for table, column, definition in wanted:
                if (table, column) not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {_bigint(definition)}")

    def close(self) -> None:
        """Close the connection; later calls fail."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self, sql: str, args: Sequence[object], fetch: Callable[[Cursor], T]) -> T:
        statement = pg_sql(sql)
        with self._lock:
            retry = not self._in_transaction
            while True:
                conn = self._connected()
                try:
                    return fetch(conn.execute(statement, tuple(args)))
                except psycopg.OperationalError:
                    if not (retry and conn.broken):
                        raise
                    retry = False

    @contextmanager
    def _begun(self) -> Iterator[_Conn]:
        with self._lock:
            if self._in_transaction:
                raise RuntimeError("a transaction is already under way on this connection")
            conn = self._begin()
            self._in_transaction = True
            try:
                try:
                    yield conn
                except BaseException:
                    _roll_back(conn)
                    raise
                conn.execute("COMMIT")
            finally:
                self._in_transaction = False

    def _begin(self) -> _Conn:
        """BEGIN and the writers' lock; retried once on a new connection when the old one
        turns out broken (nothing has run yet)."""
        retry = True
        while True:
            conn = self._connected()
            try:
                conn.execute("BEGIN")
                conn.execute(_LOCK, (self._name,))
                return conn
            except psycopg.OperationalError:
                if not (retry and conn.broken):
                    _roll_back(conn)
                    raise
                retry = False

    def _connected(self) -> _Conn:
        if self._closed:
            raise psycopg.InterfaceError("the database was closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            conn = psycopg.connect(self._conninfo, autocommit=True)
            try:
                conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn


class _Statements:
    """The connection as a transaction's body sees it: `?` placeholders."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> Cursor:
        return self._conn.execute(pg_sql(sql), tuple(args))

    def executemany(self, sql: str, args: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(pg_sql(sql), [tuple(row) for row in args])
        return cursor


def conninfo(url: str) -> str:
    """The libpq connection string of a PostgreSQL URL (SQLAlchemy's `postgresql+psycopg://`
    too), with a connect timeout and an application name unless the URL sets them."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower().startswith("postgresql+"):
        url = f"postgresql://{rest}"
    params = pg_conninfo.conninfo_to_dict(url)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params.setdefault("application_name", "koppla")
    return pg_conninfo.make_conninfo("", **params)


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """`sql` with each `?` placeholder as `%s` and each `%` as `%%` (psycopg's format).

    `?` in a quoted literal, a quoted name or a comment stays; escape strings (`E'…'`), dollar
    quotes and `$n` parameters are refused (`ValueError`): no Koppla statement needs them.
    """

    def token(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "mark":
            return "%s"
        if kind in {"quoted", "comment"}:
            return match.group()
        raise ValueError(f"unsupported SQL for PostgreSQL ({kind} at {match.start()}): {sql!r}")

    return _TOKEN.sub(token, sql.replace("%", "%%"))


def _roll_back(conn: _Conn) -> None:
    if conn.broken or conn.closed:
        return  # the server ended the transaction with the connection
    # When it breaks just now the server rolls back, and the original error matters more.
    with suppress(psycopg.OperationalError):
        conn.execute("ROLLBACK")


def _bigint(definition: str) -> str:
    return re.sub(r"\bINTEGER\b", "BIGINT", definition, flags=re.IGNORECASE)
