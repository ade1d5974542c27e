"""psycopg 3 and SQLAlchemy against Koppla's PostgreSQL server: parameters, refusals of every
escape attempt, cancellation, a large streamed result, and logins that must fail."""

from __future__ import annotations

import threading

import psycopg
import pytest
import sqlalchemy as sa
from pg_server import EVENTS, Pg

PRODUCT_VIEWS = len(range(0, EVENTS, 3))


def test_psycopg_runs_a_parameterised_query(pg: Pg) -> None:
    sql = "SELECT count(*) FROM demo_events WHERE eventType = %s"
    with psycopg.connect(pg.dsn()) as conn:
        plain = conn.execute(sql, ["commerce.productViews"]).fetchone()
        for _ in range(3):  # the third execution uses the server-side prepared statement
            prepared = conn.execute(sql, ["commerce.productViews"], prepare=True).fetchone()
    assert plain == (PRODUCT_VIEWS,)
    assert prepared == (PRODUCT_VIEWS,)


def test_psycopg_reads_typed_values(pg: Pg) -> None:
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute(
            "SELECT _id, timestamp, _koppla, 1.50::DECIMAL(5,2), true, [1, 2] "
            "FROM demo_events ORDER BY timestamp DESC LIMIT %s",
            [1],
        ).fetchone()
    assert row is not None
    assert row[0] == "e-29"
    assert row[1].isoformat() == "2026-12-01T10:00:29.123000+00:00"
    assert row[2] == {"batchId": None, "unknown": None, "datetimes": None}
    assert str(row[3]) == "1.50"
    assert row[4] is True
    assert row[5] == [1, 2]


ESCAPES = [
    "INSERT INTO demo_events (_id) VALUES ('x')",
    "DELETE FROM demo_events",
    "DROP TABLE demo_events",
    "CREATE TABLE x AS SELECT * FROM demo_events",
    "COPY demo_events TO '/tmp/koppla-pgwire-copy'",
    "ATTACH '/tmp/koppla-pgwire.db'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET memory_limit='10GB'",
    "SELECT 1; DROP TABLE demo_events",
    "SELECT current_setting('temp_directory')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pg_class, read_csv('/etc/passwd')",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_every_escape_attempt_is_refused_and_the_data_is_unchanged(pg: Pg, sql: str) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(sql)
        assert refused.value.sqlstate in ("42501", "42601")
        count = conn.execute("SELECT count(*) FROM demo_events").fetchone()
    assert count == (EVENTS,)


def test_the_simple_query_protocol_refuses_too(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        result = conn.pgconn.exec_(b"SELECT 1; DROP TABLE demo_events")
        assert result.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"42601"
        result = conn.pgconn.exec_(b"DROP TABLE demo_events")
        assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"42501"
        assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)


def test_cancel_stops_a_long_query(pg: Pg) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        finished = threading.Event()

        def cancel_until_finished() -> None:
            while not finished.wait(0.5):  # a cancel before the query starts is lost, as in PG
                conn.cancel_safe()

        canceller = threading.Thread(target=cancel_until_finished)
        canceller.start()
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT count(*) FROM range(1000000000000) WHERE range % 7 = 1")
        finally:
            finished.set()
            canceller.join()
        assert conn.execute("SELECT count(*) FROM demo_events").fetchone() == (EVENTS,)


def test_a_large_result_streams_whole(pg: Pg) -> None:
    total = 300_000
    with psycopg.connect(pg.dsn(), autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT range AS n, 'row ' || range AS label FROM range(%s)", [total])
        seen = 0
        last = None
        while batch := cursor.fetchmany(50_000):
            seen += len(batch)
            last = batch[-1]
    assert seen == total
    assert last == (total - 1, f"row {total - 1}")


def test_a_transaction_reports_its_status(pg: Pg) -> None:
    with psycopg.connect(pg.dsn()) as conn:
        conn.execute("SELECT 1")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.rollback()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.parametrize("case", ["wrong", "expired", "revoked", "other org", "wrong user"])
def test_bad_credentials_are_refused_at_connect(pg: Pg, case: str) -> None:
    catalog = pg.services.catalog
    user = pg.org_id
    if case == "wrong":
        password = "kpl_not-a-token"
    elif case == "expired":
        password = catalog.add_token("old", org_id=pg.org_id, expires_s=-60)
    elif case == "revoked":
        password = catalog.add_token("gone", org_id=pg.org_id)
        catalog.remove_token(password)
    elif case == "other org":
        password = catalog.add_token("other", org_id="OTHER0000000000000000000@AdobeOrg")
    else:
        password, user = pg.token, "OTHER0000000000000000000@AdobeOrg"
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(pg.dsn(password=password, user=user))
    expected = "is not the organization" if case in ("other org", "wrong user") else "password"
    assert expected in str(refused.value)


def test_an_unknown_database_is_refused(pg: Pg) -> None:
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(pg.dsn(db="Not_A_Sandbox:all"))


def test_sqlalchemy_reads_and_reflects_a_table(pg: Pg) -> None:
    url = sa.URL.create(
        "postgresql+psycopg",
        username=pg.org_id,
        password=pg.token,
        host="127.0.0.1",
        port=pg.port,
        database="prod:all",
        query={"sslmode": "require"},
    )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT _id FROM demo_events WHERE eventType = :kind ORDER BY _id"),
                {"kind": "commerce.productViews"},
            ).fetchall()
            assert len(rows) == PRODUCT_VIEWS
            assert "demo_events" in sa.inspect(conn).get_table_names()
            table = sa.Table("demo_events", sa.MetaData(), autoload_with=conn)
            assert [c.name for c in table.columns][:3] == ["_id", "timestamp", "eventType"]
            count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            assert count == EVENTS
    finally:
        engine.dispose()
