"""Dataset storage in Delta Lake: exactly-once appends, and upkeep of small files.

Every append carries a Delta *app transaction* `(app_id, version)` in the same atomic commit as the
rows. The pipeline uses the spool position as the version, so after a crash it asks the table how
far it got (`committed_version`) and never writes the same records twice.

A dataset's table follows its schema: when the registry hands out a new `Schema` object for it
(the schema grew, or the dataset moved onto another schema), `ensure_dataset` adds the fields
the table lacks before the next append. Only the process that appends (the pipeline) changes a
table's columns. Rows of an older shape are brought to the table's shape on append.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake

from koppla.platform.datasets.conform import conform_table
from koppla.platform.datasets.tables import add_missing_columns, dataset_arrow_schema
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group in compacted files: small enough that a time filter (or the
newest-rows shortcut of the query engine) skips all but a few groups by their statistics."""


class DeltaStore:
    """Appends to and maintains Delta tables, caching each open table."""

    def __init__(self, *, compact_every: int = 200) -> None:
        self._tables: dict[Path, DeltaTable] = {}
        self._wanted: dict[Path, pa.Schema] = {}
        """The Arrow schema each table was last ensured with."""
        self._shapes: dict[Path, pa.Schema] = {}
        """Each table's own Arrow schema, as of its last `ensure`."""
        self._schemas: dict[Path, Schema] = {}
        """The XDM schema object each dataset's table was last ensured with."""
        self._commits_since_upkeep: dict[Path, int] = {}
        self._compact_every = compact_every

    def ensure(self, path: Path, schema: pa.Schema) -> list[str]:
        """Create an empty table with `schema` at `path` unless one exists; add fields it lacks.

        A table written before a field joined `schema` gets it (nullable), so its old rows read
        it as null and appends of the current shape succeed. The table is checked again only
        when `schema` differs from the one it was last ensured with. Returns the paths of the
        fields added (empty for a new table).
        """
        known = self._wanted.get(path)
        if known is not None and (known is schema or known.equals(schema)):
            return []
        table = self._tables.get(path)
        if table is None:
            if not DeltaTable.is_deltatable(str(path)):
                path.mkdir(parents=True, exist_ok=True)
                DeltaTable.create(str(path), schema=schema, mode="ignore")
            table = DeltaTable(str(path))
        else:  # another process (`provision`) may have added the fields already
            table.update_incremental()
        added = add_missing_columns(table, schema)
        self._tables[path] = table
        self._wanted[path] = schema
        self._shapes[path] = pa.schema(table.schema().to_arrow())
        return added

    def ensure_dataset(self, path: Path, schema: Schema) -> list[str]:
        """`ensure` the dataset table at `path` has the columns of `schema` (an XDM schema).

        Costs a dictionary lookup while `schema` is the object the table was last ensured
        with; a new object (the registry's answer after the schema changed) is checked
        against the table and its new fields added. Returns the paths of the fields added.
        """
        if self._schemas.get(path) is schema:
            return []
        added = self.ensure(path, dataset_arrow_schema(schema))
        self._schemas[path] = schema
        return added

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
        """Append `rows` and record `(app_id, version)` in the same commit.

        Rows of another shape than the table's (made under an older version of its schema)
        are conformed to it first: fields they lack are null.
        """
        table = self._tables[path]
        write_deltalake(
            table,
            conform_table(rows, self._shapes[path]),
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
