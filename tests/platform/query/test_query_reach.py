"""Reach: the names a SELECT uses are checked on DuckDB's own parse of it, before it runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryRefused
from koppla.platform.query.reach import Reach


@pytest.fixture
def cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A plain in-memory DuckDB connection: reach only parses, it never runs the query."""
    with duckdb.connect(":memory:") as db:
        yield db


def test_system_views_are_found_in_the_database(cursor: duckdb.DuckDBPyConnection) -> None:
    reach = Reach.of(cursor)
    with pytest.raises(QueryRefused, match="pg_settings is not allowed: it is a system view"):
        reach.check(cursor, "SELECT * FROM pg_settings", datasets=["demo_events"])
    reach.check(cursor, "SELECT * FROM information_schema.columns", datasets=[])


def test_a_dataset_named_like_a_system_view_is_a_dataset(cursor: duckdb.DuckDBPyConnection) -> None:
    reach = Reach({"pg_tables"})
    reach.check(cursor, "SELECT * FROM PG_TABLES", datasets=["pg_tables"])
    with pytest.raises(QueryRefused, match="system view"):
        reach.check(cursor, "SELECT * FROM pg_tables", datasets=[])


def test_table_functions_nested_anywhere_are_found(cursor: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT list_transform([1], x -> (SELECT count(*) FROM GLOB('/*'))) FROM range(1)"
    with pytest.raises(QueryRefused, match=r"^glob\(\) is not allowed: file system access"):
        Reach(()).check(cursor, sql, datasets=[])


def test_what_cannot_be_checked_does_not_run(cursor: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryRefused, match="the query could not be checked"):
        Reach(()).check(cursor, "EXPLAIN SELECT 1", datasets=[])


def test_a_query_nested_too_deeply_to_check_is_refused_not_crashed(tmp_path: Path) -> None:
    sql = "SELECT 1 AS x"
    for _ in range(900):
        sql = f"SELECT x FROM ({sql})"
    with QueryEngine(lambda: {}, temp_directory=tmp_path) as engine:
        with pytest.raises(QueryRefused, match="nested too deeply"):
            engine.run(sql)
        nested = "SELECT 1 AS x"
        for _ in range(250):
            nested = f"SELECT x FROM ({nested})"
        assert engine.run(nested).rows == [(1,)]


def test_a_qualified_system_view_is_refused_even_beside_a_dataset_of_its_name(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    reach = Reach({"pg_settings"})
    reach.check(cursor, "SELECT * FROM pg_settings", datasets=["pg_settings"])
    with pytest.raises(QueryRefused, match="system view"):
        reach.check(cursor, "SELECT * FROM pg_catalog.pg_settings", datasets=["pg_settings"])


@pytest.mark.parametrize(
    "sql",
    [
        'SELECT * FROM "part-00000-c000".snappy.parquet',
        "SELECT * FROM test.csv",
        "SELECT * FROM server.json",
        "SELECT * FROM a.b.c",
    ],
)
def test_qualified_names_duckdb_would_take_for_files_are_refused(
    cursor: duckdb.DuckDBPyConnection, sql: str
) -> None:
    with pytest.raises(QueryRefused, match="is not a dataset name: file system access"):
        Reach(()).check(cursor, sql, datasets=["demo_events"])


def test_own_schemas_still_qualify_and_the_engines_views_stay_hidden(
    cursor: duckdb.DuckDBPyConnection,
) -> None:
    reach = Reach(())
    for sql in (
        "SELECT * FROM main.demo_events",
        "SELECT * FROM memory.main.demo_events",
        "SELECT * FROM information_schema.columns",
    ):
        reach.check(cursor, sql, datasets=["demo_events"])
    with pytest.raises(QueryRefused, match="engine's own views"):
        reach.check(cursor, "SELECT * FROM information_schema.views", datasets=["demo_events"])


def test_a_file_in_the_working_directory_is_not_read_through_a_dotted_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    with QueryEngine(lambda: {}, data_roots=[tmp_path]) as engine, pytest.raises(QueryRefused):
        engine.run("SELECT * FROM secret.csv")
