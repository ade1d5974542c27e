"""Opening a store's database: a SQLite file by default, PostgreSQL given its URL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from koppla.core.database import integrity_errors, is_postgres_url, open_db
from tests.postgres import fresh_schema

DDL = "CREATE TABLE IF NOT EXISTS t (a BIGINT PRIMARY KEY);"


@pytest.fixture
def url() -> Iterator[str]:
    yield from fresh_schema()


def test_open_db_picks_the_back_end_by_url(tmp_path: Path, url: str) -> None:
    local = open_db(tmp_path / "x.sqlite", DDL)
    shared = open_db(tmp_path / "unused.sqlite", "", url=url, pg_schema=DDL)
    try:
        assert (local.dialect, shared.dialect) == ("sqlite", "postgresql")
        for db in (local, shared):
            with db.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (?)", (1,))
            with pytest.raises(integrity_errors()), db.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (?)", (1,))
            assert db.all("SELECT a FROM t") == [(1,)]
    finally:
        local.close()
        shared.close()
    assert not (tmp_path / "unused.sqlite").exists()


def test_only_postgresql_urls_are_taken(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        open_db(tmp_path / "y.sqlite", "", url="mysql://x@h/db")
    assert is_postgres_url("postgresql+psycopg://u@h/db") and is_postgres_url("postgres://h")
    assert not is_postgres_url("sqlite:///x.sqlite")
    assert sqlite3.IntegrityError in integrity_errors()
