"""The guard admits one read-only SELECT and names what it refuses and why."""

from __future__ import annotations

import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.query.errors import QueryRefused
from koppla.platform.query.guard import check_sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "  select eventType from demo_events;  ",
        "WITH v AS (SELECT 1 AS a) SELECT a FROM v",
        "FROM demo_events",
        "VALUES (1), (2)",
        "DESCRIBE demo_events",
        "SUMMARIZE demo_events",
        "EXPLAIN SELECT 1",
        "EXPLAIN ANALYZE SELECT 1",
        "-- a comment\nSELECT 1",
    ],
)
def test_read_only_queries_pass(sql: str) -> None:
    assert check_sql(sql) == sql.strip()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("INSERT INTO demo_events VALUES (1)", "INSERT is not allowed: datasets are read-only"),
        ("UPDATE demo_events SET eventType = 'x'", "UPDATE is not allowed: datasets are read-only"),
        ("DELETE FROM demo_events", "DELETE is not allowed: datasets are read-only"),
        ("CREATE TABLE t (a INT)", "CREATE is not allowed: datasets are read-only"),
        ("CREATE MACRO m() AS 1", "CREATE is not allowed: datasets are read-only"),
        ("DROP TABLE demo_events", "DROP is not allowed: datasets are read-only"),
        ("COPY demo_events TO '/tmp/out.csv'", "COPY is not allowed: it writes files"),
        ("COPY (SELECT 1) TO '/tmp/out.parquet'", "COPY is not allowed: it writes files"),
        ("EXPORT DATABASE '/tmp/dump'", "EXPORT is not allowed: it writes files"),
        ("IMPORT DATABASE '/tmp/dump'", "IMPORT is not allowed: it reads files"),
        ("ATTACH '/tmp/other.db'", "ATTACH is not allowed: queries may read datasets only"),
        ("DETACH other", "DETACH is not allowed: queries may read datasets only"),
        ("INSTALL httpfs", "INSTALL is not allowed: extensions cannot be installed or loaded"),
        ("LOAD httpfs", "LOAD is not allowed: extensions cannot be installed or loaded"),
        ("SET enable_external_access = true", "SET is not allowed: settings are fixed"),
        ("RESET memory_limit", "RESET is not allowed: settings are fixed"),
        ("PRAGMA version", "PRAGMA is not allowed"),
        ("CALL pragma_version()", "CALL is not allowed: only SELECT queries are allowed"),
        ("CHECKPOINT", "CHECKPOINT is not allowed"),
        ("BEGIN TRANSACTION", "BEGIN is not allowed"),
        ("WITH v AS (SELECT 1) INSERT INTO t SELECT * FROM v", "INSERT is not allowed"),
        ("/* sneaky */ COPY (SELECT 1) TO 'x.csv'", "COPY is not allowed"),
        ("EXPLAIN DELETE FROM demo_events", "EXPLAIN is allowed only for a SELECT, not DELETE"),
    ],
)
def test_writes_and_side_effects_are_refused_with_the_reason(sql: str, message: str) -> None:
    with pytest.raises(QueryRefused, match=message):
        check_sql(sql)


def test_two_statements_are_refused() -> None:
    with pytest.raises(QueryRefused, match="multiple statements are not allowed: found 2"):
        check_sql("SELECT 1; DROP TABLE demo_events")


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_empty_sql_is_refused(sql: str) -> None:
    with pytest.raises(QueryRefused, match="empty query"):
        check_sql(sql)


def test_syntax_error_carries_the_parser_message() -> None:
    with pytest.raises(
        QueryRefused, match=r'could not be parsed: .*syntax error at or near "SELEC"'
    ):
        check_sql("SELEC 1")


def test_refusals_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        check_sql("DROP TABLE x")


def test_a_lone_surrogate_is_refused_naming_sql() -> None:
    """JSON's `"\\ud800"` decodes to text with no UTF-8 form, which DuckDB cannot parse."""
    with pytest.raises(QueryRefused, match="sql is not valid text: a lone UTF-16") as refused:
        check_sql("SELECT '\ud800'")
    assert refused.value.field == "sql"
