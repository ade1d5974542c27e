"""The shape every Koppla store's database has, SQLite file or PostgreSQL, and how to open one.

A store (the catalog, the schema registry) is written once against `Database`: `all` and `one`
read, `transaction()` writes, one writer at a time. Its SQL uses `?` placeholders on both;
what SQLite and PostgreSQL spell differently (DDL, `INDEXED BY`, `rowid`) the store picks by the
database's `dialect`. `open_db` opens a SQLite file under the home, or PostgreSQL when a URL is
given (psycopg is imported only then).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """The result of one statement: its rows (fetched or iterated) and the rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a transaction hands its body: statements with `?` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, args: Iterable[Sequence[Any]], /) -> Cursor: ...


class Database(Protocol):
    """A store's database, shared by threads (`SqliteFile`, `PgFile`)."""

    @property
    def dialect(self) -> Dialect: ...

    def all(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        ...

    def one(self, sql: str, args: tuple[object, ...] | list[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """One writer at a time: committed on success, rolled back on an exception."""
        ...

    def add_columns(self, columns: Iterable[tuple[str, str, str]]) -> None:
        """Add each `(table, column, definition)` the database lacks."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


def is_postgres_url(url: str) -> bool:
    """True for a PostgreSQL URL (`postgresql://`, `postgres://`, `postgresql+psycopg://`)."""
    scheme = url.partition("://")[0].lower()
    return scheme in {"postgresql", "postgres"} or scheme.startswith("postgresql+")


def open_db(
    path: Path,
    sqlite_schema: str,
    *,
    url: str = "",
    pg_schema: str = "",
    name: str = "",
    foreign_keys: bool = False,
) -> Database:
    """The database at PostgreSQL `url` (made with `pg_schema`; `name` keeps one store's
    writers apart from another's in the same database), else the SQLite file `path`
    (made with `sqlite_schema`)."""
    if url:
        if not is_postgres_url(url):
            raise ValueError(f"not a PostgreSQL URL: {url.partition('://')[0]}://…")
        from koppla.core.pgfile import PgFile

        return PgFile(url, pg_schema, name=name or path.stem)
    from koppla.core.sqlite import SqliteFile

    return SqliteFile(path, sqlite_schema, foreign_keys=foreign_keys)


def integrity_errors() -> tuple[type[Exception], ...]:
    """The exceptions a broken constraint (unique, foreign key) raises, on either back-end:
    for `except integrity_errors():`, which calls this only once an exception is raised."""
    from psycopg.errors import IntegrityError

    return (sqlite3.IntegrityError, IntegrityError)
