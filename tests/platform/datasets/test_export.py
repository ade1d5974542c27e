"""Reading a dataset's Delta table for export: filters, bounded batches, JSON lines, Parquet."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from koppla.core import codec
from koppla.core.errors import InvalidInput
from koppla.platform.datasets import export
from koppla.platform.datasets.tables import dataset_arrow_schema, rows_table, stored_row
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.types import Schema
from koppla.xdm.validation import validate

SCHEMA = commerce_experience_event()


def event(n: int, day: int) -> dict[str, Any]:
    return {
        "_id": f"e-{n}",
        "timestamp": f"2026-12-{day:02d}T10:00:00+01:00",
        "eventType": "web.webpagedetails.pageViews",
        "web": {"webPageDetails": {"name": f"page-{n}", "pageViews": {"value": 1.0}}},
        "custom": {"n": n},
    }


def write_table(path: Path, schema: Schema, batches: dict[str, list[dict[str, Any]]]) -> None:
    """A dataset table holding `batches` (batch id → documents), one commit per batch."""
    DeltaTable.create(str(path), schema=dataset_arrow_schema(schema))
    for batch_id, documents in batches.items():
        rows = [stored_row(validate(schema, d), batch_id) for d in documents]
        table, _, bad = rows_table(schema, rows)
        assert bad == [] and table is not None
        write_deltalake(str(path), table, mode="append")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "events"
    write_table(
        path,
        SCHEMA,
        {"b1": [event(n, 1 + n) for n in range(3)], "b2": [event(n, 1 + n) for n in range(3, 6)]},
    )
    return path


def ids(records: list[dict[str, Any]]) -> list[str]:
    return sorted(r["_id"] for r in records)


def test_every_event_comes_back_as_sent(table: Path) -> None:
    records = list(export.export_rows(table, SCHEMA))
    assert sorted(records, key=lambda r: r["_id"]) == [event(n, 1 + n) for n in range(6)]


def test_since_and_until_bound_the_timestamp(table: Path) -> None:
    since = datetime(2026, 12, 2, 9, tzinfo=UTC)  # e-1 is at 09:00 UTC on the 2nd: included
    until = datetime(2026, 12, 4, 10, tzinfo=timezone(timedelta(hours=1)))  # e-3: excluded
    records = list(export.export_rows(table, SCHEMA, since=since, until=until))
    assert ids(records) == ["e-1", "e-2"]


def test_a_time_without_offset_is_utc(table: Path) -> None:
    records = list(export.export_rows(table, SCHEMA, since=datetime(2026, 12, 6, 9)))
    assert ids(records) == ["e-5"]


def test_one_batch_alone(table: Path) -> None:
    assert ids(list(export.export_rows(table, SCHEMA, batch_id="b2"))) == ["e-3", "e-4", "e-5"]
    assert list(export.export_rows(table, SCHEMA, batch_id="nope")) == []


def test_rows_are_read_a_bounded_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "many"
    write_table(path, SCHEMA, {"b": [event(n, 1 + n % 28) for n in range(25)]})
    monkeypatch.setattr(export, "BATCH_ROWS", 10)
    sizes = [batch.num_rows for batch in export.scan(path)]
    assert sum(sizes) == 25 and max(sizes) <= 10


def test_limit_stops_early(table: Path) -> None:
    assert len(list(export.export_rows(table, SCHEMA, limit=4))) == 4


def test_no_table_means_no_rows(tmp_path: Path) -> None:
    assert list(export.export_rows(tmp_path / "absent", SCHEMA)) == []


def test_a_time_bound_on_a_dataset_without_timestamp_names_the_option(tmp_path: Path) -> None:
    profile = commerce_profile()
    path = tmp_path / "profiles"
    write_table(path, profile, {})
    with pytest.raises(InvalidInput, match="--since") as raised:
        list(export.export_rows(path, profile, since=datetime(2026, 1, 1, tzinfo=UTC)))
    assert raised.value.field == "since"


def test_json_lines_hold_one_object_a_line(table: Path) -> None:
    out = io.BytesIO()
    assert export.write_jsonl(export.export_rows(table, SCHEMA), out) == 6
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    assert b"".join(export.jsonl_chunks(export.export_rows(table, SCHEMA))) == out.getvalue()
    assert codec.loads(lines[0])["timestamp"].endswith("+01:00")


def test_parquet_holds_the_xdm_columns_as_stored(table: Path) -> None:
    target = export.parquet_schema(SCHEMA)
    out = io.BytesIO()
    count = export.write_parquet(export.export_batches(table, SCHEMA), target, out)
    assert count == 6
    read = pq.read_table(io.BytesIO(out.getvalue()))
    assert read.schema.names == [f.name for f in target]
    assert not {"_batch_id", "_unknown", "_datetimes"} & set(read.schema.names)
    rows = sorted(read.to_pylist(), key=lambda r: r["_id"])
    assert rows[0]["timestamp"] == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert rows[0]["web"]["webPageDetails"]["name"] == "page-0"
    streamed = b"".join(export.parquet_chunks(export.export_batches(table, SCHEMA), target))
    assert pq.read_table(io.BytesIO(streamed)).to_pylist() == read.to_pylist()


def test_an_empty_export_is_still_a_parquet_file(tmp_path: Path) -> None:
    target = export.parquet_schema(SCHEMA)
    data = b"".join(export.parquet_chunks(iter([]), target))
    assert pq.read_table(io.BytesIO(data)).num_rows == 0
