"""Datasets show their XDM fields as sent, and Koppla's system fields inside `_koppla`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from koppla.platform.query.engine import QueryEngine

STORED = pa.schema(
    [
        ("_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("_batch_id", pa.string()),
        ("_unknown", pa.string()),
        ("_datetimes", pa.map_(pa.string(), pa.string())),
    ]
)


def _engine(tmp_path: Path) -> QueryEngine:
    path = tmp_path / "events"
    row = {
        "_id": "e1",
        "timestamp": datetime(2026, 12, 1, 9, tzinfo=UTC),
        "_batch_id": "b-1",
        "_unknown": '{"extra":1}',
        "_datetimes": [("timestamp", "2026-12-01T10:00:00+01:00")],
    }
    write_deltalake(path, pa.Table.from_pylist([row], schema=STORED), mode="append")
    return QueryEngine(lambda: {"events": str(path)}, timeout_s=10)


def test_select_star_shows_the_xdm_fields_then_koppla(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        result = engine.run("SELECT * FROM events")
    assert [c.name for c in result.columns] == ["_id", "timestamp", "_koppla"]
    koppla = result.rows[0][2]
    assert koppla["batchId"] == "b-1"
    assert koppla["unknown"] == '{"extra":1}'
    assert koppla["datetimes"] == {"timestamp": "2026-12-01T10:00:00+01:00"}


def test_system_fields_are_reachable_by_path_and_listed(tmp_path: Path) -> None:
    with _engine(tmp_path) as engine:
        sql = "SELECT _koppla.batchId, _koppla.datetimes['timestamp'] FROM events"
        assert engine.run(sql).rows == [("b-1", "2026-12-01T10:00:00+01:00")]
        (info,) = engine.tables_info()
    assert [c.name for c in info.columns] == ["_id", "timestamp", "_koppla"]
    assert info.columns[2].type.startswith("STRUCT(batchId VARCHAR")
