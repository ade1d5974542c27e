"""Datasets under the engine's data roots are read by DuckDB's Parquet reader, as Arrow would."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from koppla.platform.datasets.tables import add_missing_columns
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryRefused

OLD = pa.schema(
    [
        ("_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("web", pa.struct([("name", pa.string())])),
        ("_batch_id", pa.string()),
    ]
)
NEW = pa.schema(
    [
        ("_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("web", pa.struct([("name", pa.string()), ("url", pa.string())])),
        ("_batch_id", pa.string()),
        ("_unknown", pa.string()),
    ]
)
AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A table written before and after fields joined its schema (top-level and nested)."""
    path = tmp_path / "datasets" / "events"
    old = {"_id": "old", "timestamp": AT, "web": {"name": "home"}, "_batch_id": "b1"}
    write_deltalake(path, pa.Table.from_pylist([old], schema=OLD), mode="append")
    add_missing_columns(DeltaTable(path), NEW)
    new = {
        "_id": "new",
        "timestamp": AT,
        "web": {"name": "cart", "url": "https://shop/cart"},
        "_batch_id": "b2",
        "_unknown": '{"x":1}',
    }
    write_deltalake(path, pa.Table.from_pylist([new], schema=NEW), mode="append")
    return path


def _answers(engine: QueryEngine) -> list[tuple[object, ...]]:
    sql = "SELECT _id, web.name, web.url, _koppla.batchId, _koppla.unknown FROM events ORDER BY 1"
    return engine.run(sql).rows


def test_native_and_arrow_reads_agree_across_schema_changes(table: Path) -> None:
    tables = {"events": str(table)}
    with QueryEngine(lambda: tables, data_roots=[table.parent]) as native:
        natively = _answers(native)
        star = native.run("SELECT * FROM events WHERE _id = 'old'")
    with QueryEngine(lambda: tables) as arrow:
        assert natively == _answers(arrow)
    assert natively == [
        ("new", "cart", "https://shop/cart", "b2", '{"x":1}'),
        ("old", "home", None, "b1", None),
    ]
    assert [c.name for c in star.columns] == ["_id", "timestamp", "web", "_koppla"]


def test_user_sql_still_cannot_read_the_files(table: Path) -> None:
    (data_file,) = [p for p in table.iterdir() if p.suffix == ".parquet"][:1]
    with QueryEngine(lambda: {"events": str(table)}, data_roots=[table.parent]) as engine:
        for sql in (f"SELECT * FROM read_parquet('{data_file}')", f"SELECT * FROM '{data_file}'"):
            with pytest.raises(QueryRefused):
                engine.run(sql)


def test_a_nested_field_no_file_has_yet_reads_as_null(table: Path) -> None:
    later = pa.schema(
        [
            field
            if field.name != "web"
            else pa.field(
                "web",
                pa.struct([("name", pa.string()), ("url", pa.string()), ("ref", pa.string())]),
            )
            for field in NEW
        ]
    )
    add_missing_columns(DeltaTable(table), later)
    with QueryEngine(lambda: {"events": str(table)}, data_roots=[table.parent]) as engine:
        rows = engine.run("SELECT _id, web.ref, web.url FROM events ORDER BY 1").rows
        star = engine.run("SELECT web FROM events WHERE _id = 'new'").rows
    assert rows == [("new", None, "https://shop/cart"), ("old", None, None)]
    assert star == [({"name": "cart", "url": "https://shop/cart", "ref": None},)]
