"""Catalogue queries: routed only on real references, rewritten in linear time, run in bounds."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from koppla.platform.query.errors import QueryFailed, QueryTimeout
from koppla.platform.query.pgwire.catalog import (
    CatalogDatabase,
    CatalogQuery,
    CatalogTooLarge,
    is_catalog_query,
    rewrite,
)
from koppla.platform.query.pgwire.session import plan_of

ENDLESS = (
    "SELECT count(*) FROM range(100000000000000) t(x), pg_catalog.pg_namespace WHERE x % 7 = 3"
)


@pytest.fixture
def database() -> Iterator[CatalogDatabase]:
    db = CatalogDatabase([])
    yield db
    db.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM range(10) t(x) WHERE 'pg_x' IS NOT NULL AND x % 7 = 3",
        "SELECT 1 -- pg_class",
        "SELECT /* information_schema */ 1",
        "SELECT $$version()$$, E'pg_\\'x'",
    ],
)
def test_catalogue_words_in_strings_and_comments_do_not_route(sql: str) -> None:
    assert not is_catalog_query(sql)
    assert plan_of(sql).kind == "engine"


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM pg_catalog.pg_class", "SELECT 'é', version()", "select oid from pg_type"],
)
def test_real_catalogue_references_route(sql: str) -> None:
    assert is_catalog_query(sql)


def test_rewriting_leaves_string_constants_and_comments_alone() -> None:
    sql = (
        "SELECT 'pg_catalog.pg_class'::regclass, c.oid::pg_catalog.regclass, 'a''b version()' "
        "FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(x)$' "
        "COLLATE pg_catalog.default -- pg_class\n"
    )
    text = rewrite(sql)
    assert "pg_koppla_regclass('pg_catalog.pg_class')" in text
    assert "'a''b version()'" in text
    assert "c.relname ~ '^(x)$'" in text
    assert "COLLATE" not in text


HOSTILE = {
    "dotted words": ("SELECT 'x" + "a." * 500_000 + "' FROM pg_class", "catalog"),
    "dotted code": ("SELECT " + "a." * 500_000 + " FROM pg_class", "catalog"),
    "spaces": ("SELECT x" + " " * 1_000_000 + "FROM pg_class", "catalog"),
    "cast": ("SELECT CAST(x" + " " * 1_000_000 + ") FROM pg_class", "catalog"),
    "quotes": ("SELECT " + "''" * 500_000 + " FROM pg_class", "catalog"),
    "placeholders": ("SELECT " + "$1 " * 349_000, "engine"),
    "semicolons": (";" * 1_000_000, "empty"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_planning_and_rewriting_a_hostile_megabyte_finishes(name: str) -> None:
    """Quadratic patterns took hours on these; the test's timeout is the bound."""
    sql, kind = HOSTILE[name]
    assert plan_of(sql).kind == kind
    assert rewrite(sql).count("'") == sql.count("'")


def test_a_catalogue_query_stops_at_its_time_limit(database: CatalogDatabase) -> None:
    with pytest.raises(QueryTimeout, match="time limit"):
        database.run(ENDLESS, timeout_s=0.5)


def test_a_catalogue_query_stops_when_interrupted(database: CatalogDatabase) -> None:
    query = CatalogQuery(ENDLESS, None, timeout_s=600)
    timer = threading.Timer(0.2, query.interrupt)
    timer.start()
    with pytest.raises(QueryFailed, match="cancelled"):
        query.run(database)
    timer.join()


def test_an_interrupt_before_the_run_is_not_lost(database: CatalogDatabase) -> None:
    query = CatalogQuery(ENDLESS, None, timeout_s=600)
    query.interrupt()
    with pytest.raises(QueryFailed, match="cancelled"):
        query.run(database)


def test_a_catalogue_answer_past_its_row_cap_is_refused(database: CatalogDatabase) -> None:
    with pytest.raises(CatalogTooLarge, match="too large"):
        database.run("SELECT 1 FROM range(501), pg_catalog.pg_namespace LIMIT 501", max_rows=500)


def test_a_catalogue_answer_past_its_byte_cap_is_refused(database: CatalogDatabase) -> None:
    sql = "SELECT repeat('x', 10000) FROM range(200), pg_catalog.pg_namespace"
    with pytest.raises(CatalogTooLarge, match="too large"):
        database.run(sql, max_bytes=2**20)


def test_a_catalogue_answer_within_its_caps_is_whole(database: CatalogDatabase) -> None:
    columns, table = database.run("SELECT nspname FROM pg_catalog.pg_namespace ORDER BY 1")
    assert [c.name for c in columns] == ["nspname"]
    assert "public" in table.column(0).to_pylist()
