"""The sandbox: user SQL reads datasets and nothing else, not even DuckDB's own temp directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from file_probes import SECRET, SETTING_PROBES, file_probes, plant_files

from koppla.core.errors import InvalidInput
from koppla.platform.query.engine import QueryEngine
from koppla.platform.query.errors import QueryFailed


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """The engine's spill directory, as `Layout(home).query_tmp` names it."""
    return tmp_path / "home" / "query-tmp"


@pytest.fixture
def sandboxed(
    events_path: Path, temp_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QueryEngine]:
    """An engine that may spill to `temp_dir`; secrets planted there and in `<cwd>/.tmp`."""
    monkeypatch.chdir(tmp_path)
    tables = {"demo_events": str(events_path)}
    with QueryEngine(
        lambda: tables,
        timeout_s=10,
        memory_limit="64MB",
        temp_directory=temp_dir,
        temp_limit="16MB",
    ) as engine:
        plant_files(temp_dir)
        plant_files(tmp_path / ".tmp")
        yield engine


def test_the_temp_directory_is_private(sandboxed: QueryEngine, temp_dir: Path) -> None:
    assert temp_dir.stat().st_mode & 0o777 == 0o700


def _probes() -> list[str]:
    return [
        *file_probes("{temp}"),
        *file_probes("{cwd_tmp}"),
        *file_probes(".tmp"),
        *SETTING_PROBES,
    ]


@pytest.mark.parametrize("probe", _probes())
def test_every_file_and_setting_is_out_of_reach(
    sandboxed: QueryEngine, temp_dir: Path, tmp_path: Path, probe: str
) -> None:
    sql = probe.format(temp=temp_dir, cwd_tmp=tmp_path / ".tmp")
    with pytest.raises(InvalidInput) as caught:
        sandboxed.run(sql)
    message = str(caught.value)
    assert SECRET not in message
    assert "not allowed" in message or "not a dataset name" in message
    if str(temp_dir) not in sql:
        assert str(temp_dir) not in message
    assert not (temp_dir / "out.csv").exists()


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT count(*) FROM range(5)", [(5,)]),
        ("SELECT * FROM generate_series(1, 2)", [(1,), (2,)]),
        ("SELECT * FROM unnest([3, 4])", [(3,), (4,)]),
        ("SELECT key FROM json_each('{\"a\": 1}')", [("a",)]),
        ("WITH n AS (SELECT 1 AS x) SELECT x FROM n", [(1,)]),
        ("SELECT eventType FROM demo_events WHERE _id = 'e1'", [("web.webpagedetails.pageViews",)]),
        ("SELECT parse_filename('/a/b.csv')", [("b.csv",)]),
        ("SELECT table_name FROM information_schema.tables", [("demo_events",)]),
    ],
)
def test_generators_and_pure_functions_still_work(
    sandboxed: QueryEngine, sql: str, rows: list[tuple[object, ...]]
) -> None:
    assert sandboxed.run(sql).rows == rows


def test_refusals_name_the_function_and_the_reason(sandboxed: QueryEngine) -> None:
    with pytest.raises(InvalidInput) as caught:
        sandboxed.run("SELECT * FROM read_csv('/etc/passwd')")
    assert str(caught.value) == (
        "read_csv() is not allowed: file system access is disabled; queries may read datasets only"
    )
    with pytest.raises(InvalidInput, match=r"current_setting\(\) is not allowed: server settings"):
        sandboxed.run("SELECT upper(current_setting('temp_directory'))")


_BIG_SORT = (
    "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS a, md5(a) AS b "
    "FROM range(6000000) t(i) ORDER BY a)"
)


def test_spilling_is_capped(sandboxed: QueryEngine, temp_dir: Path) -> None:
    with pytest.raises(QueryFailed) as caught:
        sandboxed.run(_BIG_SORT)
    message = str(caught.value)
    assert message.startswith(
        "query needs more than the engine allows (memory 64MB, spill to disk up to 16MB)"
    )
    assert "failed to offload" in message
    spilled = sum(f.stat().st_size for f in temp_dir.iterdir() if f.is_file())
    assert spilled <= 16_000_000 + 100_000  # what is left is at most the cap (plus planted files)
    assert sandboxed.run("SELECT 1").rows == [(1,)]


def test_without_a_temp_limit_nothing_spills(events_path: Path, temp_dir: Path) -> None:
    engine = QueryEngine(
        dict, memory_limit="64MB", temp_directory=temp_dir, temp_limit="0", timeout_s=10
    )
    with engine, pytest.raises(QueryFailed, match=r"\(memory 64MB, no spilling to disk\)"):
        engine.run(_BIG_SORT)
    assert not temp_dir.exists()
