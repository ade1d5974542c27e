"""Current snapshots of Delta tables: one cached `DeltaTable` per path, brought up to date cheaply.

A table is a local path or an object-store URI (`s3://bucket/prefix/<dataset>`, opened with
the engine's storage options).

`update_incremental()` reads only the commits added since the last call (well under a
millisecond when nothing changed), and the Arrow dataset is rebuilt only when the version moved,
because building it costs about 0.2 ms per data file.

Data files are read through Arrow's native file system for the table's URI, never through
deltalake's Python file handler: Arrow's I/O threads must not call back into Python, or a scan
cut short (`LIMIT 1`) can still be running Python code while the interpreter shuts down, which
crashed `koppla query` at exit.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from koppla.core.errors import TransientError
from koppla.platform.datasets.location import arrow_filesystem
from koppla.platform.query.newest import TIME, FileSpan, file_spans


@dataclass(frozen=True)
class Snapshot:
    """One version of a Delta table, ready to scan."""

    version: int
    dataset: ds.Dataset
    row_count: int | None
    files: list[FileSpan] | None = None
    """Each data file's `timestamp` range and rows (None without time statistics)."""
    table: str = ""
    """The Delta table's path (or URI)."""
    paths: tuple[str, ...] = ()
    """The snapshot's data files (absolute paths; URIs on an object store)."""


class DeltaSnapshots:
    """Caches Delta tables by path; safe to share between threads.

    `storage_options` open every table (an object store's endpoint, region and keys).
    """

    def __init__(self, storage_options: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._options = dict(storage_options) if storage_options else None
        self._tables: dict[str, DeltaTable] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._filesystems: dict[str, pafs.FileSystem] = {}

    def latest(self, path: str) -> Snapshot | None:
        """The newest committed version at `path`, or None when no Delta table is there yet.

        Raises `TransientError` when the table exists but its log cannot be read right now.
        """
        with self._lock:
            try:
                return self._refresh(path)
            except TableNotFoundError:
                return None
            except (DeltaError, OSError) as exc:
                raise TransientError(f"dataset at {path} could not be read: {exc}") from exc

    def _refresh(self, path: str) -> Snapshot:
        table = self._tables.get(path)
        if table is None:
            table = self._tables[path] = DeltaTable(path, storage_options=self._options)
        else:
            table.update_incremental()
        cached = self._snapshots.get(path)
        if cached is not None and cached.version == table.version():
            return cached
        dataset = table.to_pyarrow_dataset(filesystem=self._filesystem(path, table))
        snapshot = Snapshot(
            table.version(),
            dataset,
            _row_count(table),
            _file_spans(table),
            path,
            tuple(_local_path(uri) for uri in table.file_uris()),
        )
        self._snapshots[path] = snapshot
        return snapshot

    def _filesystem(self, path: str, table: DeltaTable) -> pafs.FileSystem:
        """Arrow's own file system rooted at the table, so no Python runs on Arrow's I/O
        threads: made once per table (an object store's client included)."""
        found = self._filesystems.get(path)
        if found is None:
            found = arrow_filesystem(path, self._options) or _native_filesystem(table)
            self._filesystems[path] = found
        return found


def _native_filesystem(table: DeltaTable) -> pafs.FileSystem:
    """Arrow's file system for the table's URI, rooted at the table (a scheme
    `arrow_filesystem` does not map from storage options)."""
    filesystem, root = pafs.FileSystem.from_uri(table.table_uri)
    return pafs.SubTreeFileSystem(root, filesystem)


def _local_path(uri: str) -> str:
    """A data file's path from its URI: percent-escapes undone, `file://` dropped."""
    path = unquote(uri)
    return path.removeprefix("file://")


def _file_spans(table: DeltaTable) -> list[FileSpan] | None:
    if TIME not in table.schema().to_arrow().names:
        return None
    try:
        return file_spans(pa.table(table.get_add_actions(flatten=True)))
    except (DeltaError, pa.ArrowException, KeyError, TypeError):
        return None


def _row_count(table: DeltaTable) -> int | None:
    try:
        return int(table.count())
    except DeltaError:
        return None
