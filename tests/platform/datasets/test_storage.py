"""Delta storage: the table's version as its log names it, commits by others included."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

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
