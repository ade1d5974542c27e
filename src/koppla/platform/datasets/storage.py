"""Dataset storage in Delta Lake: exactly-once appends from concurrent writers, and upkeep.

Every append carries a Delta *app transaction* `(app_id, version)` in the same atomic commit as the
rows. The pipeline uses the spool position as the version, so after a crash it asks the table how
far it got (`committed_version`) and never writes the same records twice.

A dataset's table follows its schema: when the registry hands out a new `Schema` object for it
(the schema grew, or the dataset moved onto another schema), `ensure_dataset` adds the fields
the table lacks before the next append. Rows of an older shape are brought to the table's shape
on append.

Several processes, on several machines, may append to one table at once, in a local or NFS
directory or on S3-compatible object storage (a `TableLocation` URI with its storage options).
A Delta commit is a put-if-absent of the next log file, so two writers never both win a
version: delta-rs retries the loser against the new version, and past its retries (a
`CommitFailedError`) `append` does, after asking the table whether the commit landed after all
(its app transaction), so nothing is written twice. Blind appends commute and only ever wait; a
schema grown by another writer makes the next try conform its rows to the grown shape.

Upkeep (compaction, checkpoint, vacuum) runs every `compact_every` versions of a table in the
process `may_upkeep` allows (the deployment's lease, so one process does it at a time; two at
once are safe too, one of them just gives up). It never fails an append. Vacuum removes only
files that compaction replaced more than `retention_hours` ago, never files a writer has not
committed yet, so readers on any machine are safe while they hold a snapshot for less than that.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError

from koppla.core import clock
from koppla.core.errors import TransientError
from koppla.platform.datasets.conform import conform_table
from koppla.platform.datasets.location import arrow_filesystem, local_path
from koppla.platform.datasets.tables import add_missing_columns, dataset_arrow_schema
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 65_536
"""Rows per Parquet row group in compacted files: small enough that a time filter (or the
newest-rows shortcut of the query engine) skips all but a few groups by their statistics."""

COMMIT_ATTEMPTS = 8
"""Tries of one append whose commit keeps losing to other writers (each try is itself up to
delta-rs's own 15 retries against newer versions), with random backoff between them."""

UPKEEP_APP_ID = "koppla-upkeep"
"""The app transaction that claims a table's upkeep, committed (empty) before and after it.

delta-rs 1.6.6 lets two concurrent compactions of the same files both commit (the second is
rebased past the first: its rows are then in the table twice), so compactions must never
overlap. Two commits carrying the same app id do conflict, so of two processes claiming at
once one fails; one that reads the table after a claim sees it held. The version encodes the
claim: `2 * ms + 1` held since `ms`, `2 * ms` released at `ms`."""

UPKEEP_CLAIM_S = 1800
"""A held claim older than this is taken to be left by a process that died during upkeep."""

Table = str | Path
"""A table's local path, or its URI (`s3://bucket/prefix/<dataset>`)."""


def _always(table: str) -> bool:
    return True


class Superseded(TransientError):
    """Another writer committed for the same app id in between (a partition taken over while
    its old reader still ran): the rows must be chosen again from what the table holds now."""


class DeltaStore:
    """Appends to and maintains Delta tables, caching each open table.

    `storage_options` are passed to every table opened (an object store's endpoint, region and
    keys: `TableLocation.storage_options()`); `may_upkeep(table)` says whether this process may
    do a table's upkeep now; `retention_hours` is how long vacuum keeps files compaction
    replaced (keep it above the longest any reader holds a snapshot).
    """

    def __init__(
        self,
        *,
        compact_every: int = 200,
        storage_options: Mapping[str, str] | None = None,
        retention_hours: int = 1,
        may_upkeep: Callable[[str], bool] = _always,
    ) -> None:
        self._options = dict(storage_options) if storage_options else None
        self._tables: dict[str, DeltaTable] = {}
        self._wanted: dict[str, pa.Schema] = {}
        """The Arrow schema each table was last ensured with."""
        self._shapes: dict[str, pa.Schema] = {}
        """Each table's own Arrow schema, as of its last `ensure` (or grown since)."""
        self._schemas: dict[str, Schema] = {}
        """The XDM schema object each dataset's table was last ensured with."""
        self._filesystems: dict[str, pafs.FileSystem | None] = {}
        self._upkept_at: dict[str, int] = {}
        """Each table's version at its last upkeep here (or when this process opened it)."""
        self._compact_every = compact_every
        self._retention_hours = retention_hours
        self._may_upkeep = may_upkeep

    def ensure(self, table: Table, schema: pa.Schema) -> list[str]:
        """Create an empty table with `schema` at `table` unless one exists; add fields it lacks.

        A table written before a field joined `schema` gets it (nullable), so its old rows read
        it as null and appends of the current shape succeed. The table is checked again only
        when `schema` differs from the one it was last ensured with. Safe while other processes
        create, grow or append to the same table. Returns the paths of the fields added (empty
        for a new table, or when another process added them first).
        """
        key = str(table)
        known = self._wanted.get(key)
        if known is not None and (known is schema or known.equals(schema)):
            return []
        delta = self._tables.get(key)
        if delta is None:
            delta = self._create(key, schema)
        else:  # another process (`provision`, another worker) may have added the fields already
            delta.update_incremental()
        added = add_missing_columns(delta, schema)
        self._tables[key] = delta
        self._wanted[key] = schema
        self._shapes[key] = _shape(delta)
        self._upkept_at.setdefault(key, delta.version())
        return added

    def ensure_dataset(self, table: Table, schema: Schema) -> list[str]:
        """`ensure` the dataset table at `table` has the columns of `schema` (an XDM schema).

        Costs a dictionary lookup while `schema` is the object the table was last ensured
        with; a new object (the registry's answer after the schema changed) is checked
        against the table and its new fields added. Returns the paths of the fields added.
        """
        key = str(table)
        if self._schemas.get(key) is schema:
            return []
        added = self.ensure(key, dataset_arrow_schema(schema))
        self._schemas[key] = schema
        return added

    def committed_version(self, table: Table, app_id: str) -> int:
        """The last version `app_id` committed to the table, or -1.

        Read from the table as it is now, commits by other processes included (a worker that
        takes over a stream another worker wrote sees how far that one got).
        """
        delta = self._tables[str(table)]
        delta.update_incremental()
        return _app_version(delta, app_id)

    def version(self, table: Table) -> int:
        """The newest version of the Delta table at `table` (-1 when there is none).

        Sees commits made since the table was opened: for a local path, read from the names in
        its `_delta_log` folder without loading the table; on an object store, by reading the
        commits added since it was last read.
        """
        key = str(table)
        path = local_path(table)
        if path is not None:
            return _logged_version(path)
        delta = self._tables.get(key)
        if delta is None:
            if not DeltaTable.is_deltatable(key, storage_options=self._options):
                return -1
            delta = self._tables[key] = self._open(key)
        else:
            delta.update_incremental()
        return int(delta.version())

    def existing_ids(self, table: Table, event_ids: list[str]) -> set[str]:
        """The subset of `event_ids` found in the table's `_id` column (reads that column only),
        rows committed by other processes included."""
        if not event_ids:
            return set()
        key = str(table)
        delta = self._tables[key]
        delta.update_incremental()
        dataset = delta.to_pyarrow_dataset(filesystem=self._filesystem(key))
        found = dataset.to_table(columns=["_id"], filter=pc.field("_id").isin(event_ids))
        return {str(value) for value in found.column("_id").to_pylist()}

    def append(
        self,
        table: Table,
        rows: pa.Table,
        *,
        app_id: str,
        version: int,
        metadata: dict[str, Any],
        expected: int | None = None,
    ) -> None:
        """Append `rows` and record `(app_id, version)` in the same commit, exactly once.

        Rows of another shape than the table's (made under an older version of its schema)
        are conformed to it first: fields they lack are null. A commit that loses to other
        writers is tried again (`COMMIT_ATTEMPTS`) unless the table shows it landed after all;
        past the tries its `CommitFailedError` is raised (`committed_version` tells whether to
        write again). `version` must grow with each commit of `app_id`.

        `expected` is the version of `app_id` the rows were chosen against (what the table held
        then). When a lost commit finds another commit of `app_id` in between (another worker
        took the partition over and stored part of it), `Superseded` is raised instead of
        trying again, so the rows are chosen anew rather than stored twice.
        """
        key = str(table)
        properties = CommitProperties(
            app_transactions=[Transaction(app_id=app_id, version=version)],
            custom_metadata=metadata,
        )
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            delta = self._tables[key]
            try:
                shaped = conform_table(rows, self._shapes[key])
                write_deltalake(delta, shaped, mode="append", commit_properties=properties)
                break
            except (CommitFailedError, SchemaMismatchError) as error:
                if self._landed(key, error, attempt, app_id, (expected, version)):
                    break
        self._after_commit(key)

    def upkeep(self, table: Table) -> bool:
        """Compact small files, write a checkpoint and drop files no snapshot needs any more.

        Runs only under this table's upkeep claim (see `UPKEEP_APP_ID`), so two processes
        never compact the same files. Returns False when it did not run or stopped early
        (another process holds the claim, or a storage error got in the way; the next upkeep
        tries again). Vacuum removes only files compaction replaced more than
        `retention_hours` ago.
        """
        key = str(table)
        delta = self._tables[key]
        try:
            delta.update_incremental()
            if not _claim_upkeep(delta):
                log.info("upkeep of %s skipped: another process is doing it", key)
                return False
            try:
                metrics = delta.optimize.compact(
                    writer_properties=WriterProperties(max_row_group_size=ROW_GROUP_ROWS)
                )
                delta.create_checkpoint()
                delta.cleanup_metadata()
                removed = delta.vacuum(
                    retention_hours=self._retention_hours,
                    enforce_retention_duration=False,
                    dry_run=False,
                    full=False,  # only files compaction replaced: never an uncommitted one
                )
            finally:
                _release_upkeep(delta)
        except (DeltaError, OSError) as error:
            log.warning("upkeep of %s stopped; trying again later: %s", key, error)
            return False
        finally:
            self._upkept_at[key] = delta.version()
        log.info(
            "upkeep of %s: %s files compacted into %s, %d old files removed",
            key.rstrip("/").rsplit("/", 1)[-1],
            metrics.get("numFilesRemoved"),
            metrics.get("numFilesAdded"),
            len(removed),
        )
        return True

    def _open(self, key: str) -> DeltaTable:
        return DeltaTable(key, storage_options=self._options)

    def _create(self, key: str, schema: pa.Schema) -> DeltaTable:
        """The table at `key`, created with `schema` first unless it exists (also when another
        process creates it at the same moment)."""
        if not DeltaTable.is_deltatable(key, storage_options=self._options):
            path = local_path(key)
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)
            try:
                DeltaTable.create(key, schema=schema, mode="ignore", storage_options=self._options)
            except DeltaError:
                if not DeltaTable.is_deltatable(key, storage_options=self._options):
                    raise
                log.info("%s was created by another process first", key)
        return self._open(key)

    def _landed(
        self,
        key: str,
        error: DeltaError,
        attempt: int,
        app_id: str,
        versions: tuple[int | None, int],
    ) -> bool:
        """After a failed commit: True when it landed after all; False when it may be tried
        again (after a random pause); `error` raised when out of tries or no try can help,
        `Superseded` when another commit of `app_id` came in between (`versions`: the one
        expected before the commit, and the commit's)."""
        expected, version = versions
        delta = self._tables[key]
        delta.update_incremental()
        found = _app_version(delta, app_id)
        if found >= version:
            log.info("commit %s@%d to %s had landed despite: %s", app_id, version, key, error)
            return True
        if expected is not None and found != expected:
            raise Superseded(
                f"{app_id} committed version {found} to {key} while this commit expected "
                f"{expected}: another process stored part of these rows"
            )
        shape = _shape(delta)
        grew = not shape.equals(self._shapes[key])
        self._shapes[key] = shape
        if attempt >= COMMIT_ATTEMPTS or (isinstance(error, SchemaMismatchError) and not grew):
            raise error
        log.info("commit %s@%d to %s failed (%s); trying again", app_id, version, key, error)
        time.sleep(random.uniform(0, min(2.0, 0.02 * 2**attempt)))
        return False

    def _after_commit(self, key: str) -> None:
        """Run upkeep when the table gained `compact_every` versions since the last, if allowed."""
        newest = self._tables[key].version()
        if newest - self._upkept_at.setdefault(key, newest) < self._compact_every:
            return
        self._upkept_at[key] = newest
        if self._may_upkeep(key):
            self.upkeep(key)

    def _filesystem(self, key: str) -> pafs.FileSystem | None:
        if key not in self._filesystems:
            self._filesystems[key] = arrow_filesystem(key, self._options)
        return self._filesystems[key]


def _claim_upkeep(delta: DeltaTable) -> bool:
    """Claim `delta`'s upkeep for this process: False when another process holds it."""
    held = _app_version(delta, UPKEEP_APP_ID)
    if held >= 0 and held % 2 == 1 and clock.now_ms() - held // 2 < UPKEEP_CLAIM_S * 1000:
        return False
    try:
        _mark_upkeep(delta, held=True)
    except CommitFailedError:  # another process claimed it at the same moment
        return False
    return True


def _release_upkeep(delta: DeltaTable) -> None:
    """Release `delta`'s upkeep claim, trying again when another commit (a schema change)
    gets in the way; raises after the last try (the claim then expires)."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            _mark_upkeep(delta, held=False)
            return
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS:
                raise
            delta.update_incremental()


def _mark_upkeep(delta: DeltaTable, *, held: bool) -> None:
    """Commit the upkeep claim, held or released, in an otherwise empty commit."""
    version = 2 * clock.now_ms() + (1 if held else 0)
    write_deltalake(
        delta,
        _shape(delta).empty_table(),
        mode="append",
        commit_properties=CommitProperties(
            app_transactions=[Transaction(app_id=UPKEEP_APP_ID, version=version)]
        ),
    )


def _app_version(delta: DeltaTable, app_id: str) -> int:
    version = delta.transaction_version(app_id)
    return -1 if version is None else int(version)


def _shape(delta: DeltaTable) -> pa.Schema:
    return pa.schema(delta.schema().to_arrow())


def _logged_version(path: Path) -> int:
    """The newest commit named in `path/_delta_log` (-1 when there is none)."""
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
