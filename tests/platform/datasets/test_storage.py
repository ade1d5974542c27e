"""Delta storage: the table's version as its log names it, commits by others included."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

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
