"""Delta storage with concurrent writers: processes appending to one table at once, on a local
path and on S3-compatible object storage (moto's server), lose no commit and double none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from koppla.platform.datasets.storage import DeltaStore
from tests.platform.datasets.object_store import ObjectStore, moto_missing, moto_server
from tests.platform.datasets.writers import (
    GROWN,
    ROWS_PER_COMMIT,
    SCHEMA,
    Writer,
    app_id,
    row_ids,
    run_writers,
    stored_ids,
)
from tests.require import require

COMMITS = 50


@pytest.fixture(scope="module")
def object_store() -> Iterator[ObjectStore]:
    """moto's S3 server, started once for this module."""
    require(moto_missing())
    with moto_server() as store:
        yield store


def _prove_every_commit_once(table: str, options: dict[str, str] | None, writers: int) -> None:
    specs = [
        Writer(table, options, worker, COMMITS, grows=worker % 2 == 1, compact_every=20)
        for worker in range(writers)
    ]
    outcome = run_writers(specs)

    assert outcome.exit_codes == [0] * writers  # no error, no abort at interpreter exit
    expected = sorted(
        i for w in range(writers) for v in range(1, COMMITS + 1) for i in row_ids(w, v)
    )
    assert sorted(stored_ids(table, options)) == expected
    delta = DeltaTable(table, storage_options=options)
    assert [delta.transaction_version(app_id(w)) for w in range(writers)] == [COMMITS] * writers
    assert any(entry["operation"] == "OPTIMIZE" for entry in delta.history())  # upkeep raced
    notes = delta.to_pyarrow_table(columns=["_id", "note"]).to_pylist()
    grown = {row["_id"] for row in notes if row["note"] is not None}
    assert grown == {
        i
        for w in range(1, writers, 2)
        for v in range(COMMITS // 2 + 1, COMMITS + 1)
        for i in row_ids(w, v)
    }


@pytest.mark.parametrize("writers", [2, 4])
def test_processes_appending_to_one_local_table_store_every_commit_once(
    tmp_path: Path, writers: int
) -> None:
    _prove_every_commit_once(str(tmp_path / "events"), None, writers)


@pytest.mark.timeout(600)  # about 60 s alone; moto answers slowly on a busy machine
def test_processes_appending_to_one_table_on_object_storage_store_every_commit_once(
    object_store: ObjectStore,
) -> None:
    _prove_every_commit_once(object_store.uri("writers/events"), object_store.options(), 2)


def test_a_table_on_object_storage_is_created_grown_appended_and_kept_up(
    object_store: ObjectStore,
) -> None:
    table, options = object_store.uri("one/events"), object_store.options()
    store = DeltaStore(storage_options=options, retention_hours=0)
    assert store.version(table) == -1
    assert store.ensure(table, SCHEMA) == []
    assert store.version(table) == 0
    for version in range(1, 4):
        rows = pa.table({"_id": row_ids(0, version), "worker": [0] * ROWS_PER_COMMIT}, SCHEMA)
        store.append(table, rows, app_id=app_id(0), version=version, metadata={})
    assert store.ensure(table, GROWN) == ["note"]
    rows = pa.table({"_id": ["n"], "worker": [1], "note": ["grown"]}, GROWN)
    store.append(table, rows, app_id=app_id(1), version=1, metadata={})

    other = DeltaStore(storage_options=options)  # another process, opening the table now
    other.ensure(table, SCHEMA)
    assert other.committed_version(table, app_id(0)) == 3
    assert other.existing_ids(table, ["0-2-1", "n", "absent"]) == {"0-2-1", "n"}
    assert store.upkeep(table) is True
    assert len(DeltaTable(table, storage_options=options).file_uris()) == 1
    assert other.existing_ids(table, ["0-2-1"]) == {"0-2-1"}  # read again after the vacuum
    assert other.version(table) == store.version(table)
    assert sorted(stored_ids(table, options)) == sorted(
        ["n", *(i for v in range(1, 4) for i in row_ids(0, v))]
    )
