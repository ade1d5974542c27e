"""PgFile on the real PostgreSQL: SQLite's placeholders, one writer at a time, reconnecting,
schema creation by several processes at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from koppla.core.database import integrity_errors
from koppla.core.pgfile import PgFile, conninfo, pg_sql
from tests.postgres import admin, fresh_schema, terminate

DDL = """
CREATE TABLE IF NOT EXISTS items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS notes (item TEXT NOT NULL);
"""


@pytest.fixture
def url() -> Iterator[str]:
    yield from fresh_schema()


@pytest.fixture
def db(url: str) -> Iterator[PgFile]:
    opened = PgFile(url, DDL, name="test")
    yield opened
    opened.close()


def test_placeholders_become_psycopgs_outside_literals_and_comments() -> None:
    assert pg_sql("SELECT ? FROM t WHERE a = '?' AND b LIKE '50%' -- why?\n AND c = ?") == (
        "SELECT %s FROM t WHERE a = '?' AND b LIKE '50%%' -- why?\n AND c = %s"
    )
    assert pg_sql("SELECT \"odd?name\", 'it''s ?' /* ? */ FROM t") == (
        "SELECT \"odd?name\", 'it''s ?' /* ? */ FROM t"
    )
    for unsupported in ("SELECT E'\\'?'", "SELECT $$?$$", "SELECT $1", "SELECT 'open ?"):
        with pytest.raises(ValueError, match="unsupported SQL"):
            pg_sql(unsupported)


def test_statements_with_question_marks_and_percents_in_literals_run(db: PgFile) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ("why?",))
        tx.executemany("INSERT INTO notes VALUES (?)", [("a",), ("b",)])
    assert db.one("SELECT name, '?%' FROM items WHERE name LIKE '%?'") == ("why?", "?%")
    assert db.all("SELECT item FROM notes WHERE item <> ? ORDER BY item", ("z",)) == [
        ("a",),
        ("b",),
    ]
    assert db.dialect == "postgresql"


def test_a_failed_transaction_stores_nothing_and_constraints_raise_the_common_error(
    db: PgFile,
) -> None:
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ("one",))
    with pytest.raises(integrity_errors()), db.transaction() as tx:
        tx.execute("INSERT INTO notes VALUES (?)", ("kept only with the item",))
        tx.execute("INSERT INTO items (name) VALUES (?)", ("one",))
    assert db.all("SELECT item FROM notes") == []
    with pytest.raises(RuntimeError, match="rolled back"), db.transaction() as tx:
        tx.execute("INSERT INTO notes VALUES (?)", ("x",))
        raise RuntimeError("rolled back")
    assert db.all("SELECT item FROM notes") == []


def test_it_connects_again_after_its_connection_was_ended(db: PgFile, url: str) -> None:
    assert db.one("SELECT 1") == (1,)
    assert terminate(url) == 1
    assert db.one("SELECT 2") == (2,)  # a read is retried once on a new connection
    assert terminate(url) == 1
    with db.transaction() as tx:  # so is a transaction that has not run anything yet
        tx.execute("INSERT INTO notes VALUES (?)", ("after",))
    with pytest.raises(psycopg.OperationalError), db.transaction() as tx:
        tx.execute("INSERT INTO notes VALUES (?)", ("lost",))
        terminate(url)  # the connection breaks while the transaction is under way
        tx.execute("INSERT INTO notes VALUES (?)", ("lost too",))
    assert db.all("SELECT item FROM notes") == [("after",)]


def test_writers_take_turns_across_connections(url: str) -> None:
    first, second = PgFile(url, DDL, name="test"), PgFile(url, DDL, name="test")
    seen: list[int] = []

    def count_inside_a_transaction() -> None:
        with second.transaction() as tx:
            seen.append(int(tx.execute("SELECT count(*) FROM notes").fetchone()[0]))

    try:
        with first.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (?)", ("first",))
            other = threading.Thread(target=count_inside_a_transaction)
            other.start()
            _wait_for_a_session_waiting_on_a_lock(url)
        other.join(timeout=30)
        assert seen == [1]  # it waited for the first writer, then saw its row
    finally:
        first.close()
        second.close()


def test_processes_starting_at_once_make_the_schema_once(url: str) -> None:
    """Several processes opening a new database at the same moment: each `CREATE ... IF NOT
    EXISTS` runs under the writers' lock, so none fails on the others' half-made tables."""
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    opened: list[PgFile] = []

    def open_it() -> None:
        try:
            start.wait()
            opened.append(PgFile(url, DDL, name="test"))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in opened:
        each.close()
    assert errors == []
    assert len(opened) == 6


def test_added_columns_are_64_bit_and_added_once(db: PgFile) -> None:
    db.add_columns([("notes", "made_ms", "INTEGER NOT NULL DEFAULT 0")])
    db.add_columns([("notes", "made_ms", "INTEGER NOT NULL DEFAULT 0"), ("notes", "x", "TEXT")])
    rows = db.all(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'notes' ORDER BY column_name"
    )
    assert rows == [("item", "text"), ("made_ms", "bigint"), ("x", "text")]
    with db.transaction() as tx:
        tx.execute("INSERT INTO notes (item, made_ms) VALUES (?, ?)", ("big", 2**40))
    assert db.one("SELECT made_ms FROM notes") == (2**40,)


def test_a_closed_file_refuses_calls(db: PgFile) -> None:
    db.close()
    with pytest.raises(psycopg.InterfaceError):
        db.one("SELECT 1")


def _wait_for_a_session_waiting_on_a_lock(url: str) -> None:
    """Return once a session of `url` waits for an advisory lock (within 30 s)."""
    name = conninfo_to_dict(conninfo(url))["application_name"]
    deadline = time.monotonic() + 30
    with admin() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = %s",
                (name,),
            ).fetchone()
            if row is not None and int(str(row[0])) > 0:
                return
            time.sleep(0.01)
    raise AssertionError("no session came to wait for the writers' lock")


def test_urls_become_connection_strings_with_defaults_the_url_may_override() -> None:
    assert "dbname=db" in conninfo("postgresql+psycopg://u@h/db")
    assert "connect_timeout=10" in conninfo("postgresql://u@h/db")
    assert "connect_timeout=3" in conninfo("postgresql://u@h/db?connect_timeout=3")
