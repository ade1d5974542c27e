"""The engine runs read-only SQL over live Delta tables in a sandbox, with a time limit and cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from query_events import EVENTS, append_events, event

from koppla.core.errors import InvalidInput, TerminalError, TransientError
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryFailed, QueryRefused, QueryTimeout
from koppla.platform.query.result import Column


def test_nested_xdm_fields_are_reachable_with_dots(engine: QueryEngine) -> None:
    result = engine.run(
        "SELECT eventType, commerce.productViews.value FROM demo_events ORDER BY timestamp DESC"
    )
    assert result.columns == (Column("eventType", "VARCHAR"), Column("value", "DOUBLE"))
    assert result.rows == [
        ("commerce.productViews", 3.0),
        ("commerce.productViews", 2.0),
        ("web.webpagedetails.pageViews", 1.0),
    ]
    assert result.truncated is False
    assert result.elapsed_ms > 0


def test_identity_map_and_timestamps_come_back_typed(engine: QueryEngine) -> None:
    result = engine.run(
        "SELECT timestamp, identityMap, identityMap['ECID'][1].id AS ecid "
        "FROM demo_events WHERE _id = 'e2'"
    )
    assert [c.type for c in result.columns] == [
        "TIMESTAMP WITH TIME ZONE",
        'MAP(VARCHAR, STRUCT(id VARCHAR, "primary" BOOLEAN)[])',
        "VARCHAR",
    ]
    moment, identity_map, ecid = result.rows[0]
    assert moment == datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert identity_map == {"ECID": [{"id": "ecid-2", "primary": True}]}
    assert ecid == "ecid-2"


def test_row_cap_truncates(engine: QueryEngine) -> None:
    result = engine.run("SELECT * FROM range(1000)", max_rows=10)
    assert [r[0] for r in result.rows] == list(range(10))
    assert result.truncated is True


def test_exactly_the_cap_is_not_truncated(engine: QueryEngine) -> None:
    result = engine.run("SELECT _id FROM demo_events", max_rows=3)
    assert len(result.rows) == 3
    assert result.truncated is False


def test_engine_default_cap_applies(events_path: Path) -> None:
    with QueryEngine(dict, timeout_s=5, max_rows=5) as engine:
        result = engine.run("SELECT * FROM range(100000000000)")
    assert len(result.rows) == 5
    assert result.truncated is True


def test_cap_must_be_positive(engine: QueryEngine) -> None:
    with pytest.raises(InvalidInput, match="max_rows must be at least 1"):
        engine.run("SELECT 1", max_rows=0)


def test_new_commits_are_visible_to_the_next_query(engine: QueryEngine, events_path: Path) -> None:
    assert engine.run("SELECT count(*) FROM demo_events").rows == [(3,)]
    append_events(events_path, [event(4), event(5)])
    assert engine.run("SELECT count(*) FROM demo_events").rows == [(5,)]
    assert engine.run("SELECT max(_id) FROM demo_events").rows == [("e5",)]


def test_a_table_written_after_the_engine_started_appears(
    engine: QueryEngine, tmp_path: Path
) -> None:
    append_events(tmp_path / "later", [event(9)])
    assert engine.run("SELECT _id FROM later_events").rows == [("e9",)]


def test_tables_can_be_added_between_queries(events_path: Path) -> None:
    tables: dict[str, str] = {}
    with QueryEngine(lambda: tables, timeout_s=5, max_rows=10) as engine:
        with pytest.raises(QueryFailed, match="unknown table demo_events"):
            engine.run("SELECT * FROM demo_events")
        tables["demo_events"] = str(events_path)
        assert engine.run("SELECT count(*) FROM demo_events").rows == [(3,)]


def test_unknown_table_lists_available_tables(engine: QueryEngine) -> None:
    with pytest.raises(QueryFailed) as caught:
        engine.run("SELECT * FROM demo_event")
    message = str(caught.value)
    assert "unknown table demo_event; available tables: demo_events" in message
    assert "no data written yet: later_events" in message


def test_empty_but_typed_table_is_queryable(engine: QueryEngine, tmp_path: Path) -> None:
    DeltaTable.create(tmp_path / "later", schema=EVENTS)
    result = engine.run("SELECT eventType, commerce.productViews.value FROM later_events")
    assert result.rows == []
    assert result.columns == (Column("eventType", "VARCHAR"), Column("value", "DOUBLE"))


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO demo_events SELECT * FROM demo_events", "datasets are read-only"),
        ("UPDATE demo_events SET eventType = 'x'", "datasets are read-only"),
        ("DELETE FROM demo_events", "datasets are read-only"),
        ("CREATE TABLE copy AS SELECT * FROM demo_events", "datasets are read-only"),
        ("DROP VIEW demo_events", "datasets are read-only"),
        ("COPY demo_events TO '/tmp/koppla-leak.csv'", "it writes files"),
        ("ATTACH '/tmp/koppla-other.db' AS other", "queries may read datasets only"),
        ("INSTALL httpfs", "extensions cannot be installed or loaded"),
        ("LOAD httpfs", "extensions cannot be installed or loaded"),
        ("SET enable_external_access = true", "settings are fixed by the server"),
        ("PRAGMA enable_profiling", "settings are fixed by the server"),
        ("SELECT 1; SELECT 2", "multiple statements are not allowed"),
    ],
)
def test_engine_refuses_before_running(engine: QueryEngine, sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused, match=reason):
        engine.run(sql)
    assert engine.run("SELECT count(*) FROM demo_events").rows == [(3,)]


def test_a_path_is_not_a_table_name(engine: QueryEngine) -> None:
    with pytest.raises(QueryRefused, match="'/etc/passwd' is not a dataset name"):
        engine.run("SELECT * FROM '/etc/passwd'")


def test_python_variables_are_not_scannable(engine: QueryEngine) -> None:
    secret = pa.table({"token": ["do-not-leak"]})
    assert secret.num_rows == 1
    with pytest.raises(QueryFailed, match="unknown table secret"):
        engine.run("SELECT * FROM secret")


def test_long_query_is_interrupted(events_path: Path) -> None:
    with QueryEngine(dict, timeout_s=0.3, max_rows=10) as engine:
        with pytest.raises(QueryTimeout, match=r"longer than the 0\.3 s time limit \(query_time"):
            engine.run("SELECT count(*) FROM range(100000000000)")
        assert engine.run("SELECT 42").rows == [(42,)]


def test_timeouts_are_terminal() -> None:
    assert issubclass(QueryTimeout, TerminalError)


def test_duckdb_errors_carry_duckdbs_message(engine: QueryEngine) -> None:
    with pytest.raises(QueryFailed, match='Referenced column "nope" not found'):
        engine.run("SELECT nope FROM demo_events")


def test_tables_info_describes_existing_tables(engine: QueryEngine) -> None:
    (info,) = engine.tables_info()
    assert info.name == "demo_events"
    assert info.row_count == 3
    assert info.version == 1
    assert dict((c.name, c.type) for c in info.columns) == {
        "_id": "VARCHAR",
        "eventType": "VARCHAR",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "commerce": 'STRUCT(productViews STRUCT("value" DOUBLE))',
        "identityMap": 'MAP(VARCHAR, STRUCT(id VARCHAR, "primary" BOOLEAN)[])',
    }


def test_queries_run_side_by_side_while_one_times_out(events_path: Path) -> None:
    tables = {"demo_events": str(events_path)}
    with QueryEngine(lambda: tables, timeout_s=1.0, max_rows=10) as engine:

        def one(n: int) -> object:
            if n == 0:
                try:
                    engine.run("SELECT count(*) FROM range(100000000000)")
                except QueryTimeout as exc:
                    return exc
            return engine.run(f"SELECT count(*) + {n} FROM demo_events").rows

        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(one, range(6)))
    assert isinstance(outcomes[0], QueryTimeout)
    assert outcomes[1:] == [[(3 + n,)] for n in range(1, 6)]


def test_table_names_are_case_insensitive(engine: QueryEngine) -> None:
    assert engine.run("SELECT count(*) FROM DEMO_EVENTS").rows == [(3,)]


def test_show_tables_lists_every_written_table(engine: QueryEngine) -> None:
    assert engine.run("SHOW TABLES").rows == [("demo_events",)]


def test_only_the_tables_a_query_names_are_read(events_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "_delta_log").mkdir(parents=True)
    (broken / "_delta_log" / "00000000000000000000.json").write_text("not json")
    tables = {"demo_events": str(events_path), "broken": str(broken)}
    with QueryEngine(lambda: tables, timeout_s=5, max_rows=10) as engine:
        assert engine.run("SELECT count(*) FROM demo_events").rows == [(3,)]
        with pytest.raises(TransientError, match=r"dataset at .*broken could not be read"):
            engine.run("SELECT count(*) FROM broken")


def test_a_live_table_is_read_only_by_the_queries_that_name_it() -> None:
    from koppla.platform.query.live import LiveTable

    loads: list[str] = []
    schema = pa.schema([("profile_id", pa.string())])

    def load() -> pa.Table:
        loads.append("profiles")
        return pa.table({"profile_id": ["p1", "p2"]}, schema=schema)

    live = {"profiles": LiveTable(schema, load)}
    with QueryEngine(dict, timeout_s=5, max_rows=5, live=lambda: live) as engine:
        assert engine.run("SELECT 1 AS one").rows == [(1,)]
        assert loads == []
        assert engine.run("SELECT count(*) FROM profiles").rows == [(2,)]
        assert loads == ["profiles"]
        assert [t.name for t in engine.tables_info()] == ["profiles"]
