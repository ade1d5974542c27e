"""`ORDER BY timestamp DESC LIMIT n` reads only the newest files, and answers as a full scan."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from koppla.platform.query import newest
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryTimeout

SCHEMA = pa.schema(
    [
        ("_id", pa.string()),
        ("eventType", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("commerce", pa.struct([("timestamp", pa.int64())])),
        ("_batch_id", pa.string()),
        ("_unknown", pa.string()),
        ("_datetimes", pa.map_(pa.string(), pa.string())),
    ]
)
START = datetime(2026, 1, 1, tzinfo=UTC)
TYPES = ("page", "view", "add", "purchase")


def _rows(commit: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for n in range(40):
        # mostly in time order, some late arrivals from any earlier time, some without a time
        late = rng.random() < 0.1
        minute = rng.randrange(commit * 40 + n + 1) if late else commit * 40 + n
        moment = None if rng.random() < 0.03 else START + timedelta(minutes=minute)
        rows.append(
            {
                "_id": f"e-{commit}-{n}",
                "eventType": TYPES[rng.randrange(len(TYPES))],
                "timestamp": moment,
                "commerce": {"timestamp": rng.randrange(10**6)},
                "_batch_id": f"b-{commit}",
                "_unknown": None,
                "_datetimes": None,
            }
        )
    return rows


@pytest.fixture
def rows_and_engine(tmp_path: Path) -> Iterator[tuple[list[dict[str, Any]], QueryEngine]]:
    rng = random.Random(7)
    path = tmp_path / "events"
    every: list[dict[str, Any]] = []
    for commit in range(25):
        rows = _rows(commit, rng)
        every.extend(rows)
        write_deltalake(path, pa.Table.from_pylist(rows, schema=SCHEMA), mode="append")
    with QueryEngine(lambda: {"events": str(path)}, timeout_s=30, max_rows=10_000) as engine:
        yield every, engine


QUERIES = [
    "SELECT _id FROM events ORDER BY timestamp DESC, _id LIMIT 7",
    "SELECT * FROM events ORDER BY timestamp DESC LIMIT 100",
    "SELECT _id, timestamp FROM events ORDER BY timestamp LIMIT 30 OFFSET 12",
    "SELECT _id FROM events WHERE eventType = 'purchase' ORDER BY timestamp DESC LIMIT 25",
    "SELECT _id FROM events WHERE _id LIKE 'e-0-%' ORDER BY timestamp DESC LIMIT 5",
    "SELECT _id FROM events e WHERE e.eventType <> 'page' ORDER BY e.timestamp DESC LIMIT 9",
    "SELECT _id FROM events ORDER BY timestamp DESC LIMIT 5000",
    "SELECT _id, eventType AS timestamp FROM events ORDER BY timestamp DESC, _id LIMIT 4",
    "SELECT _id FROM events ORDER BY commerce.timestamp DESC LIMIT 4",
    "SELECT _id FROM events ORDER BY timestamp DESC NULLS FIRST, _id LIMIT 6",
    "SELECT _id FROM events WHERE timestamp = (SELECT max(timestamp) FROM events) "
    "ORDER BY timestamp DESC, _id LIMIT 3",
]


def _expected(rows: list[dict[str, Any]], sql: str) -> list[tuple[Any, ...]]:
    """The answer over all rows, computed by DuckDB on a plain in-memory table."""
    db = duckdb.connect()
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    db.register("stored", table)
    db.execute(
        "CREATE VIEW events AS SELECT * EXCLUDE (_batch_id, _unknown, _datetimes), "
        "struct_pack(batchId := _batch_id, unknown := _unknown, datetimes := _datetimes) "
        "AS _koppla FROM stored"
    )
    return db.execute(sql).fetchall()


@pytest.mark.parametrize("sql", QUERIES)
def test_answers_equal_a_full_scan(
    rows_and_engine: tuple[list[dict[str, Any]], QueryEngine], sql: str
) -> None:
    rows, engine = rows_and_engine
    got = engine.run(sql).rows
    expected = _expected(rows, sql)
    if ", _id" in sql:  # ties broken: one right answer
        assert got == expected
    else:  # rows of the same time may come in any order: compare the times
        assert len(got) == len(expected)
        assert _times(rows, got) == _times(rows, expected)


def _times(rows: list[dict[str, Any]], answer: list[tuple[Any, ...]]) -> list[Any]:
    by_id = {row["_id"]: row["timestamp"] for row in rows}
    return [by_id[row[0]] for row in answer]


def test_the_newest_rows_query_reads_only_the_newest_files(
    rows_and_engine: tuple[list[dict[str, Any]], QueryEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, engine = rows_and_engine
    bounds: list[Any] = []
    real = newest.time_threshold

    def spy(*args: Any) -> Any:
        bounds.append(real(*args))
        return bounds[-1]

    monkeypatch.setattr(newest, "time_threshold", spy)
    engine.run("SELECT * FROM events ORDER BY timestamp DESC LIMIT 10")
    assert len(bounds) == 1 and bounds[0] is not None
    assert bounds[0] > START + timedelta(minutes=900)  # well inside the last of 25 commits


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT eventType, count(*) FROM events GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        "SELECT DISTINCT eventType, timestamp FROM events ORDER BY timestamp DESC LIMIT 3",
        "WITH events AS (SELECT 1 AS timestamp) SELECT * FROM events ORDER BY timestamp LIMIT 1",
        "SELECT a._id FROM events a JOIN events b USING (_id) ORDER BY a.timestamp DESC LIMIT 3",
        "SELECT _id, row_number() OVER () FROM events ORDER BY timestamp DESC LIMIT 3",
        "SELECT _id FROM events ORDER BY timestamp DESC",
        "SELECT _id FROM events ORDER BY 1 DESC LIMIT 3",
        "SELECT * REPLACE (now() AS timestamp) FROM events ORDER BY timestamp DESC LIMIT 1",
        "SELECT timestamp FROM events AS t(timestamp) ORDER BY timestamp DESC LIMIT 1",
        "SELECT _id FROM events WHERE random() < 0.5 ORDER BY timestamp DESC LIMIT 3",
    ],
)
def test_other_query_shapes_are_not_taken_for_newest_rows(sql: str) -> None:
    db = duckdb.connect()
    db.execute("CREATE TABLE events (_id VARCHAR, eventType VARCHAR, timestamp TIMESTAMPTZ)")
    query = newest.newest_query(db, sql, ["events"])
    assert query is None or not newest.plain_plan(db, sql, None)


def test_a_slow_filter_stops_at_the_time_limit_while_the_newest_rows_are_sought(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    path = tmp_path / "events"
    for commit in range(6):
        rows = pa.Table.from_pylist(_rows(commit, rng), schema=SCHEMA)
        write_deltalake(path, rows, mode="append")
    slow = "list_sum(range(2000000 + CAST(hash(_id) % 7 AS BIGINT))) < 0"  # never true, costly
    sql = f"SELECT _id FROM events WHERE {slow} ORDER BY timestamp DESC LIMIT 5"
    with QueryEngine(lambda: {"events": str(path)}, timeout_s=0.5, threads=1) as engine:
        with pytest.raises(QueryTimeout, match="query_timeout_s"):
            engine.run(sql)
        with pytest.raises(QueryTimeout), engine.stream(sql, timeout_s=0.5) as rows:
            list(rows.batches())
