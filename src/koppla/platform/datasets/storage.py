"""Dataset storage in Delta Lake: exactly-once appends, and upkeep of small files.

Every append carries a Delta *app transaction* `(app_id, version)` in the same atomic commit as the
rows. The pipeline uses the spool position as the version, so after a crash it asks the table how
far it got (`committed_version`) and never writes the same records twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

from koppla.platform.datasets.tables import add_missing_columns

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group in compacted files: small enough that a time filter (or the
newest-rows shortcut of the query engine) skips all but a few groups by their statistics."""


class DeltaStore:
    """Appends to and maintains Delta tables, caching each open table."""

    def __init__(self, *, compact_every: int = 200) -> None:
        self._tables: dict[Path, DeltaTable] = {}
        self._commits_since_upkeep: dict[Path, int] = {}
        self._compact_every = compact_every

    def ensure(self, path: Path, schema: pa.Schema) -> None:
        """Create an empty table with `schema` at `path` unless one exists; add fields it lacks.

        A table written before a field joined `schema` gets it (nullable), so its old rows read
        it as null and appends of the current shape succeed.
        """
        if path in self._tables:
            return
        if not DeltaTable.is_deltatable(str(path)):
            path.mkdir(parents=True, exist_ok=True)
            DeltaTable.create(str(path), schema=schema, mode="ignore")
        table = DeltaTable(str(path))
        add_missing_columns(table, schema)
        self._tables[path] = table

    def committed_version(self, path: Path, app_id: str) -> int:
        """The last version `app_id` committed to the table, or -1."""
        version = self._tables[path].transaction_version(app_id)
        return -1 if version is None else int(version)

    def version(self, path: Path) -> int:
        """The newest version of the Delta table at `path` (-1 when there is none).

        Read from the names in its `_delta_log` folder, so it sees commits made since the
        table was opened, without loading the table.
        """
        newest = -1
        try:
            with os.scandir(path / "_delta_log") as entries:
                for entry in entries:
                    name = entry.name
                    if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
                        newest = max(newest, int(name[:20]))
        except FileNotFoundError:
            return -1
        return newest

    def existing_ids(self, path: Path, event_ids: list[str]) -> set[str]:
        """The subset of `event_ids` found in the table's `_id` column (reads that column only)."""
        if not event_ids:
            return set()
        dataset = self._tables[path].to_pyarrow_dataset()
        found = dataset.to_table(columns=["_id"], filter=pc.field("_id").isin(event_ids))
        return {str(value) for value in found.column("_id").to_pylist()}

    def append(
        self, path: Path, rows: pa.Table, *, app_id: str, version: int, metadata: dict[str, Any]
    ) -> None:
        """Append `rows` and record `(app_id, version)` in the same commit."""
        table = self._tables[path]
        write_deltalake(
            table,
            rows,
            mode="append",
            commit_properties=CommitProperties(
                app_transactions=[Transaction(app_id=app_id, version=version)],
                custom_metadata=metadata,
            ),
        )
        count = self._commits_since_upkeep.get(path, 0) + 1
        self._commits_since_upkeep[path] = count
        if count >= self._compact_every:
            self.upkeep(path)

    def upkeep(self, path: Path) -> None:
        """Compact small files, write a checkpoint and drop files no snapshot needs any more."""
        table = self._tables[path]
        metrics = table.optimize.compact(
            writer_properties=WriterProperties(max_row_group_size=ROW_GROUP_ROWS)
        )
        table.create_checkpoint()
        table.cleanup_metadata()
        removed = table.vacuum(retention_hours=1, enforce_retention_duration=False, dry_run=False)
        self._commits_since_upkeep[path] = 0
        log.info(
            "upkeep of %s: %s files compacted into %s, %d old files removed",
            path.name,
            metrics.get("numFilesRemoved"),
            metrics.get("numFilesAdded"),
            len(removed),
        )
