"""Delta storage: exactly-once appends when commits fail or lose to other writers, schema
growth by another process, and upkeep that never takes what a reader or writer still needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from koppla.core import clock
from koppla.platform.datasets import storage
from koppla.platform.datasets.storage import DeltaStore


def test_the_version_counts_every_commit_even_those_made_elsewhere(tmp_path: Path) -> None:
    store = DeltaStore()
    path = tmp_path / "events"
    assert store.version(path) == -1
    schema = pa.schema([pa.field("_id", pa.string())])
    store.ensure(path, schema)
    assert store.version(path) == 0
    store.append(path, pa.table({"_id": ["a"]}, schema=schema), app_id="me", version=1, metadata={})
    write_deltalake(str(path), pa.table({"_id": ["b"]}, schema=schema), mode="append")
    assert store.version(path) == 2
    assert store.committed_version(path, "me") == 1


def test_a_dataset_table_follows_a_new_schema_object_and_takes_older_rows(
    tmp_path: Path,
) -> None:
    from koppla.platform.datasets.tables import dataset_arrow_schema, rows_table, stored_row
    from koppla.xdm.event_types import validate_event
    from koppla.xdm.experience_event import commerce_experience_event
    from tests.platform.pipeline.tenant_schemas import with_order_attributes

    store = DeltaStore()
    path = tmp_path / "orders"
    old = commerce_experience_event()
    assert store.ensure_dataset(path, old) == []
    assert store.ensure_dataset(path, old) == []
    grown = with_order_attributes(old, {"giftWrap": "boolean"})
    assert store.ensure_dataset(path, grown) == ["commerce.order._kopplademo"]
    assert store.ensure_dataset(path, grown) == []
    assert pa.schema(DeltaTable(str(path)).schema().to_arrow()).equals(dataset_arrow_schema(grown))

    sent = {"_id": "a", "eventType": "web.webpagedetails.pageViews"}
    row = stored_row(validate_event(old, {**sent, "timestamp": "2026-12-01T10:00:00Z"}), "b")
    older, _, _ = rows_table(old, [row])  # made under the schema before it grew
    assert older is not None
    store.append(path, older, app_id="me", version=1, metadata={})
    stored = DeltaTable(str(path)).to_pyarrow_table(columns=["_id", "commerce"]).to_pylist()
    assert stored == [{"_id": "a", "commerce": None}]


SCHEMA = pa.schema([pa.field("_id", pa.string())])


def _rows(*ids: str) -> pa.Table:
    return pa.table({"_id": list(ids)}, schema=SCHEMA)


def _ids(path: Path) -> list[str]:
    return sorted(DeltaTable(str(path)).to_pyarrow_table().column("_id").to_pylist())


def test_a_commit_reported_failed_that_landed_is_not_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events"
    store = DeltaStore()
    store.ensure(path, SCHEMA)

    def lands_then_fails(*args: Any, **kwargs: Any) -> None:
        write_deltalake(*args, **kwargs)
        raise CommitFailedError("the reply was lost")

    monkeypatch.setattr(storage, "write_deltalake", lands_then_fails)
    store.append(path, _rows("a"), app_id="w", version=1, metadata={})

    assert _ids(path) == ["a"]
    assert store.committed_version(path, "w") == 1


def test_a_commit_that_lost_to_other_writers_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events"
    store = DeltaStore()
    store.ensure(path, SCHEMA)
    losses = iter([True, True])

    def loses_twice(*args: Any, **kwargs: Any) -> None:
        if next(losses, False):
            write_deltalake(str(path), _rows("other"), mode="append")  # the winner
            raise CommitFailedError("Failed to commit transaction: 15")
        write_deltalake(*args, **kwargs)

    monkeypatch.setattr(storage, "write_deltalake", loses_twice)
    store.append(path, _rows("a"), app_id="w", version=1, metadata={})

    assert _ids(path) == ["a", "other", "other"]
    assert store.committed_version(path, "w") == 1


def test_a_commit_that_keeps_losing_raises_after_its_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events"
    store = DeltaStore()
    store.ensure(path, SCHEMA)

    def always_loses(*args: Any, **kwargs: Any) -> None:
        raise CommitFailedError("Failed to commit transaction: 15")

    monkeypatch.setattr(storage, "write_deltalake", always_loses)
    monkeypatch.setattr(storage.time, "sleep", lambda seconds: None)
    with pytest.raises(CommitFailedError):
        store.append(path, _rows("a"), app_id="w", version=1, metadata={})
    assert store.committed_version(path, "w") == -1


def test_rows_append_after_another_process_grew_the_table(tmp_path: Path) -> None:
    path = tmp_path / "events"
    mine, theirs = DeltaStore(), DeltaStore()
    mine.ensure(path, SCHEMA)
    grown = SCHEMA.append(pa.field("note", pa.string()))
    assert theirs.ensure(path, grown) == ["note"]
    assert mine.ensure(path, grown) == []  # they added it first

    older = DeltaStore()
    older.ensure(path, SCHEMA)  # opened before, appends its old shape after the growth
    theirs.append(
        path,
        pa.table({"_id": ["b"], "note": ["n"]}, schema=grown),
        app_id="t",
        version=1,
        metadata={},
    )
    older.append(path, _rows("a"), app_id="o", version=1, metadata={})

    stored = DeltaTable(str(path)).to_pyarrow_table().sort_by("_id").to_pylist()
    assert stored == [{"_id": "a", "note": None}, {"_id": "b", "note": "n"}]


def test_the_version_and_committed_versions_include_commits_by_other_processes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events"
    mine, theirs = DeltaStore(), DeltaStore()
    mine.ensure(path, SCHEMA)
    theirs.ensure(path, SCHEMA)
    theirs.append(path, _rows("a"), app_id="stream-0", version=7, metadata={})

    assert mine.committed_version(path, "stream-0") == 7  # a worker taking over stream-0
    assert mine.existing_ids(path, ["a", "b"]) == {"a"}
    assert mine.version(path) == 1


def _small_files(path: Path, count: int) -> DeltaStore:
    store = DeltaStore(compact_every=1_000)
    store.ensure(path, SCHEMA)
    for n in range(count):
        store.append(path, _rows(str(n)), app_id="w", version=n + 1, metadata={})
    return store


def test_upkeep_runs_every_compact_every_versions_where_allowed(tmp_path: Path) -> None:
    allowed, refused = tmp_path / "allowed", tmp_path / "refused"
    asked: list[str] = []

    def may_upkeep(table: str) -> bool:
        asked.append(table)
        return table == str(allowed)

    store = DeltaStore(compact_every=5, may_upkeep=may_upkeep)
    for path in (allowed, refused):
        store.ensure(path, SCHEMA)
        for n in range(6):
            store.append(path, _rows(str(n)), app_id="w", version=n + 1, metadata={})

    assert asked == [str(allowed), str(refused)]
    assert len(DeltaTable(str(allowed)).file_uris()) == 2  # 5 compacted into 1, then 1 more
    assert len(DeltaTable(str(refused)).file_uris()) == 6
    assert _ids(allowed) == _ids(refused) == [str(n) for n in range(6)]


def test_upkeep_waits_while_another_process_holds_the_claim(tmp_path: Path) -> None:
    path = tmp_path / "events"
    store = _small_files(path, 4)
    held = Transaction(app_id=storage.UPKEEP_APP_ID, version=2 * clock.now_ms() + 1)
    write_deltalake(
        str(path),
        SCHEMA.empty_table(),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[held]),
    )

    assert store.upkeep(path) is False
    assert len(DeltaTable(str(path)).file_uris()) == 4

    stale = Transaction(app_id=storage.UPKEEP_APP_ID, version=2 * 1_000 + 1)  # its owner died
    write_deltalake(
        str(path),
        SCHEMA.empty_table(),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[stale]),
    )
    assert store.upkeep(path) is True
    assert len(DeltaTable(str(path)).file_uris()) == 1
    assert store.upkeep(path) is True  # it released its claim


def test_vacuum_keeps_what_a_reader_still_reads_for_the_retention_time(tmp_path: Path) -> None:
    path = tmp_path / "events"
    store = _small_files(path, 3)
    reader = DeltaTable(str(path))  # a query on another machine, holding its snapshot

    assert store.upkeep(path) is True
    assert sorted(reader.to_pyarrow_table().column("_id").to_pylist()) == ["0", "1", "2"]

    eager = DeltaStore(retention_hours=0)
    eager.ensure(path, SCHEMA)
    assert eager.upkeep(path) is True
    with pytest.raises(OSError):  # with no retention, the replaced files are gone
        reader.to_pyarrow_table()


def test_vacuum_leaves_the_files_of_a_commit_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "events"
    store = DeltaStore(retention_hours=0)
    store.ensure(path, SCHEMA)
    in_flight = path / "part-00000-in-flight-c000.snappy.parquet"
    pq.write_table(_rows("written, not committed yet"), in_flight)

    assert store.upkeep(path) is True
    assert in_flight.exists()


def test_a_worker_whose_partition_was_taken_over_does_not_store_its_rows_twice(
    tmp_path: Path,
) -> None:
    """Two workers read the same partition from the same place (a lease handed over while
    the old holder still ran): the second commit of the partition's app id is refused and
    nothing is doubled, whichever read further."""
    path = tmp_path / "events"
    old, new = DeltaStore(), DeltaStore()
    old.ensure(path, SCHEMA)
    new.ensure(path, SCHEMA)
    assert old.committed_version(path, "p0") == new.committed_version(path, "p0") == -1
    new.append(path, _rows("a"), app_id="p0", version=10, metadata={}, expected=-1)
    with pytest.raises(storage.Superseded):
        old.append(path, _rows("a", "b"), app_id="p0", version=20, metadata={}, expected=-1)
    assert _ids(path) == ["a"]
    assert old.committed_version(path, "p0") == 10  # it chooses its rows again from here
