"""A query result's JSON twin is plain JSON data that the codec can write."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from koppla.core import codec
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.result import Column, QueryResult, json_value


def test_to_json_shape(engine: QueryEngine) -> None:
    result = engine.run(
        "SELECT _id, timestamp, commerce, identityMap FROM demo_events ORDER BY _id", max_rows=2
    )
    body = result.to_json()
    assert body["columns"][0] == {"name": "_id", "type": "VARCHAR"}
    assert body["rows"][0] == [
        "e1",
        "2026-01-01T12:00:00Z",
        {"productViews": {"value": 1.0}},
        {"ECID": [{"id": "ecid-1", "primary": True}]},
    ]
    assert body["rowCount"] == 2
    assert body["truncated"] is True
    assert body["elapsedMs"] == round(result.elapsed_ms, 3)
    assert codec.loads(codec.dumps(body)) == body


def test_duckdb_scalars_become_json(engine: QueryEngine) -> None:
    result = engine.run(
        "SELECT 1.25::DECIMAL(10, 2), '\\x01\\x02'::BLOB, DATE '2026-01-02', "
        "TIMESTAMP '2026-01-02 03:04:05.123456', INTERVAL 90 SECOND, "
        "'00000000-0000-0000-0000-000000000001'::UUID, 'nan'::DOUBLE, MAP {1: 'a'}, [1, NULL]"
    )
    assert result.to_json()["rows"] == [
        [
            1.25,
            "AQI=",
            "2026-01-02",
            "2026-01-02T03:04:05.123456Z",
            90.0,
            "00000000-0000-0000-0000-000000000001",
            None,
            {"1": "a"},
            [1, None],
        ]
    ]


def test_json_value_normalises_time_zones() -> None:
    moment = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert json_value(moment) == "2026-01-01T12:00:00Z"
    assert json_value(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00Z"
    assert json_value(date(2026, 1, 1)) == "2026-01-01"
    assert json_value(Decimal("2.5")) == 2.5
    assert json_value(uuid.UUID(int=0)) == "00000000-0000-0000-0000-000000000000"
    assert json_value(float("inf")) is None


def test_empty_result_to_json() -> None:
    result = QueryResult((Column("a", "INTEGER"),), [], False, 0.5)
    assert result.to_json() == {
        "columns": [{"name": "a", "type": "INTEGER"}],
        "rows": [],
        "rowCount": 0,
        "truncated": False,
        "elapsedMs": 0.5,
    }
