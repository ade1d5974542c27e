"""A dataset's Delta table: system columns, and tables from before a column existed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from koppla.core.layout import Layout
from koppla.platform.catalog.models import Dataset
from koppla.platform.datasets.tables import (
    SYSTEM_COLUMNS,
    add_missing_columns,
    dataset_arrow_schema,
    provision,
)
from koppla.xdm.arrow import arrow_schema, to_arrow
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import DATE_TIME, STRING, Object, Schema

SENT = "2026-12-04T17:56:45.187+01:00"
MOMENT = datetime(2026, 12, 4, 16, 56, 45, 187000, tzinfo=UTC)
SCHEMA = Schema(
    id="urn:test:events",
    title="events",
    xdm_class="urn:test",
    root=Object({"_id": STRING, "timestamp": DATE_TIME}),
)
DATASET = Dataset(id="ds-1", name="events", schema_id=SCHEMA.id, created_ms=0)


def _without_datetimes() -> pa.Schema:
    """The table schema as it was before `_datetimes` existed."""
    return pa.schema([f for f in dataset_arrow_schema(SCHEMA) if f.name != "_datetimes"])


def _rows(columns: pa.Schema, *rows: dict[str, Any]) -> pa.Table:
    """Rows with the system columns `columns` has, as the pipeline of that time wrote them."""
    table = to_arrow(SCHEMA, list(rows))
    for name, kind in SYSTEM_COLUMNS:
        if name in columns.names:
            values = pa.array([row.get(name) for row in rows], kind)
            table = table.append_column(pa.field(name, kind), values)
    return table


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        con.register("ds", DeltaTable(str(path)).to_pyarrow_dataset())
        return con.execute(sql).fetchall()


def test_the_sent_date_times_column_is_a_string_map() -> None:
    schema = dataset_arrow_schema(SCHEMA)
    assert schema.field("_datetimes").type == pa.map_(pa.string(), pa.string())
    assert schema.names == ["_id", "timestamp", "_batch_id", "_unknown", "_datetimes"]


def test_a_table_from_before_datetimes_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    path = layout.dataset(DATASET.id)
    path.mkdir(parents=True)
    DeltaTable.create(str(path), schema=_without_datetimes())
    old_row = _rows(_without_datetimes(), {"_id": "old", "timestamp": MOMENT})
    write_deltalake(str(path), old_row, mode="append")

    provision(layout, SchemaRegistry([SCHEMA]), DATASET)

    new_row = {"_id": "new", "timestamp": MOMENT, "_datetimes": {"timestamp": SENT}}
    write_deltalake(str(path), _rows(dataset_arrow_schema(SCHEMA), new_row), mode="append")
    rows = _query(path, "SELECT _id, timestamp, _datetimes['timestamp'] FROM ds ORDER BY _id")
    assert rows == [("new", MOMENT, SENT), ("old", MOMENT, None)]


def test_adding_missing_columns_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    DeltaTable.create(str(tmp_path), schema=_without_datetimes())
    table = DeltaTable(str(tmp_path))
    assert add_missing_columns(table, dataset_arrow_schema(SCHEMA)) == ["_datetimes"]
    version = table.version()
    assert add_missing_columns(table, dataset_arrow_schema(SCHEMA)) == []
    assert table.version() == version


def test_a_new_table_has_the_column_from_the_start(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    provision(layout, SchemaRegistry([SCHEMA]), DATASET)
    path = layout.dataset(DATASET.id)
    assert DeltaTable(str(path)).version() == 0
    assert _query(path, "SELECT count(_datetimes) FROM ds") == [(0,)]


def test_fields_added_inside_a_struct_are_added_to_an_old_table(tmp_path: Path) -> None:
    place_then = Object({"localTime": DATE_TIME})
    place_now = Object({"localTime": DATE_TIME, "ianaTimezone": STRING})
    then = Schema(SCHEMA.id, "t", "urn:test", Object({"_id": STRING, "placeContext": place_then}))
    now = Schema(SCHEMA.id, "t", "urn:test", Object({"_id": STRING, "placeContext": place_now}))
    path = tmp_path / "ds"
    old_rows = to_arrow(then, [{"_id": "a", "placeContext": {"localTime": MOMENT}}])
    write_deltalake(str(path), old_rows)

    added = add_missing_columns(DeltaTable(str(path)), arrow_schema(now))
    assert added == ["placeContext.ianaTimezone"]
    new_rows = to_arrow(now, [{"_id": "b", "placeContext": {"ianaTimezone": "Europe/Oslo"}}])
    write_deltalake(str(path), new_rows, mode="append")

    assert sorted(_query(path, "SELECT _id, placeContext.ianaTimezone FROM ds")) == [
        ("a", None),
        ("b", "Europe/Oslo"),
    ]
