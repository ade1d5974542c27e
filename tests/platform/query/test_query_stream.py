"""Streamed results: every row in batches, parameters, cancellation, refusals and time limits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryFailed, QueryRefused, QueryTimeout


def test_a_large_result_comes_whole_in_batches(engine: QueryEngine) -> None:
    with engine.stream("SELECT range AS n FROM range(250000)") as rows:
        assert [c.name for c in rows.columns] == ["n"]
        sizes = [batch.num_rows for batch in rows.batches(100_000)]
    assert sum(sizes) == 250_000
    assert max(sizes) <= 100_000


def test_parameters_fill_placeholders(engine: QueryEngine) -> None:
    sql = "SELECT _id FROM demo_events WHERE eventType = $1 ORDER BY _id"
    with engine.stream(sql, params=["commerce.productViews"]) as rows:
        ids = [v for batch in rows.batches() for v in batch.column("_id").to_pylist()]
    assert ids == ["e2", "e3"]
    result = engine.run(sql, params=["web.webpagedetails.pageViews"])
    assert result.rows == [("e1",)]


def test_a_cancelled_stream_stops_with_a_message(engine: QueryEngine) -> None:
    with engine.stream("SELECT count(*) FROM range(10000000000000) t(x) WHERE x % 7 = 1") as rows:
        threading.Timer(0.5, rows.cancel).start()
        with pytest.raises(QueryFailed, match="cancelled"):
            list(rows.batches())
    assert engine.run("SELECT 1 AS one").rows == [(1,)]


def test_a_stream_past_its_time_limit_is_stopped(engine: QueryEngine) -> None:
    sql = "SELECT count(*) FROM range(10000000000000) t(x) WHERE x % 7 = 1"
    with engine.stream(sql, timeout_s=0.5) as rows, pytest.raises(QueryTimeout):
        list(rows.batches())


@pytest.mark.parametrize(
    "sql",
    [
        "COPY demo_events TO '/tmp/x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT 1; SELECT 2",
        "ATTACH '/tmp/x.db'",
    ],
)
def test_streams_refuse_what_run_refuses(engine: QueryEngine, sql: str, tmp_path: Path) -> None:
    with pytest.raises(QueryRefused), engine.stream(sql):
        pass


def test_a_stream_cancelled_before_reading_never_runs(engine: QueryEngine) -> None:
    sql = "SELECT count(*) FROM range(10000000000000) t(x) WHERE x % 7 = 1"
    with engine.stream(sql) as rows:
        rows.cancel()
        with pytest.raises(QueryFailed, match="cancelled"):
            list(rows.batches())
    rows.cancel()  # after the block: nothing to stop, and no error
