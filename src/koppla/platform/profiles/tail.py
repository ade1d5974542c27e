"""Reading what a dataset's Delta table gained since a version: the profile stage's input.

A Delta table's log holds one JSON file per commit (`_delta_log/<version>.json`, each written
once, atomically), naming the data files the commit added. `read_since(table, after)` reads the
commits after version `after`, in order, and the rows of the files they added with `dataChange`
(compaction rewrites move rows without adding any, and are skipped); each row comes with its
commit's time. Finding nothing new costs one look at the next commit file (a `stat` on a local
path, a HEAD request on an object store), so an idle stage polls cheaply.

A table is a local path or an object-store URI (`s3://bucket/prefix/<dataset>`, with the
deployment's storage options); its files are read through Arrow's own file system for it.

When a commit file needed is gone (log clean-up after a checkpoint) or a data file was vacuumed
away, `LogGone` says so, and the caller reads the whole current table instead (`read_all`); the
stage is idempotent, so rows read twice change nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable

from koppla.core import codec
from koppla.platform.datasets.location import arrow_filesystem

log = logging.getLogger(__name__)

Table = str | Path
"""A table's local path, or its URI on an object store."""
Options = Mapping[str, str] | None
"""The storage options to reach an object store (`TableLocation.storage_options()`)."""


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows of one table, each with its commit time (ms), and how far they reach.

    `cursor`: the version to remember once these rows are applied; None for a part of a whole
    read that is not the last (the version is reached only with the last part). `more`: commits
    wait after `cursor`.
    """

    cursor: int | None
    rows: list[tuple[dict[str, Any], int]]
    more: bool = False


class LogGone(Exception):
    """A commit or data file needed to read incrementally no longer exists."""


def latest_version(table: Table, storage_options: Options = None) -> int:
    """The newest version of the table at `table` (-1 when there is no table)."""
    options = dict(storage_options) if storage_options else None
    if not DeltaTable.is_deltatable(str(table), storage_options=options):
        return -1
    return int(DeltaTable(str(table), storage_options=options).version())


def read_since(
    table: Table, after: int, *, storage_options: Options = None, max_rows: int = 20_000
) -> Rows:
    """The rows added after version `after`, commit by commit, stopping past `max_rows`.

    Raises `LogGone` when the log or a data file needed is missing (read everything instead).
    """
    files = _files(table, storage_options)
    out: list[tuple[dict[str, Any], int]] = []
    version = after
    while len(out) < max_rows and _exists(files, _commit_file(version + 1)):
        version += 1
        out.extend(_commit_rows(files, version))
    if version == after and _checkpoint_version(files) > after:
        raise LogGone(f"the commits after version {after} were cleaned up")
    return Rows(version, out, more=_exists(files, _commit_file(version + 1)))


def _commit_file(version: int) -> str:
    return f"_delta_log/{version:020d}.json"


def _checkpoint_version(files: pafs.FileSystem) -> int:
    """The version of the table's last checkpoint (-1 when it has none)."""
    try:
        found = codec.loads(_read(files, "_delta_log/_last_checkpoint"))
    except (FileNotFoundError, codec.JSONDecodeError):
        return -1
    version = found.get("version") if isinstance(found, dict) else None
    return version if isinstance(version, int) else -1


def read_all(
    table: Table, *, storage_options: Options = None, batch_rows: int = 20_000
) -> Iterator[Rows]:
    """Every row of the table's current version, in batches; only the last one has a cursor.

    Nothing when there is no table at `table` yet.
    """
    options = dict(storage_options) if storage_options else None
    if not DeltaTable.is_deltatable(str(table), storage_options=options):
        return
    delta = DeltaTable(str(table), storage_options=options)
    files = _files(table, storage_options)
    version = int(delta.version())
    actions = pa.table(delta.get_add_actions(flatten=True)).to_pydict()
    added = list(zip(actions["path"], actions["modification_time"], strict=True))
    pending: list[tuple[dict[str, Any], int]] = []
    for n, (name, modified) in enumerate(added):
        stamp = modified if isinstance(modified, int) else int(modified.timestamp() * 1000)
        pending.extend((row, stamp) for row in _file_rows(files, str(name)))
        if len(pending) >= batch_rows and n < len(added) - 1:
            yield Rows(None, pending)
            pending = []
    yield Rows(version, pending)


def _commit_rows(files: pafs.FileSystem, version: int) -> list[tuple[dict[str, Any], int]]:
    log_file = _commit_file(version)
    try:
        text = _read(files, log_file)
    except FileNotFoundError as error:
        raise LogGone(f"{log_file} is gone") from error
    stamp = 0
    added: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        action = codec.loads(line)
        if "commitInfo" in action:
            stamp = int(action["commitInfo"].get("timestamp") or 0)
        add = action.get("add")
        if isinstance(add, dict) and add.get("dataChange", True):
            added.append(str(add["path"]))
    rows: list[tuple[dict[str, Any], int]] = []
    for name in added:
        rows.extend((row, stamp) for row in _file_rows(files, name))
    return rows


def _file_rows(files: pafs.FileSystem, name: str) -> list[dict[str, Any]]:
    file = unquote(name)
    try:
        with files.open_input_file(file) as opened:
            table = pq.read_table(opened)
    except FileNotFoundError as error:
        raise LogGone(f"{file} was removed") from error
    except OSError as error:  # an object store may say "not found" in its own words
        if _exists(files, file):
            raise
        raise LogGone(f"{file} was removed") from error
    rows: list[dict[str, Any]] = table.to_pylist(maps_as_pydicts="lossy")
    return rows


def _read(files: pafs.FileSystem, name: str) -> bytes:
    """The bytes of the file `name` under the table; `FileNotFoundError` when it is not there."""
    try:
        with files.open_input_stream(name) as stream:
            return bytes(stream.read())
    except FileNotFoundError:
        raise
    except OSError as error:  # an object store may say "not found" in its own words
        if _exists(files, name):
            raise
        raise FileNotFoundError(name) from error


def _exists(files: pafs.FileSystem, name: str) -> bool:
    info: pafs.FileInfo = files.get_file_info(name)
    return bool(info.type != pafs.FileType.NotFound)


def _files(table: Table, storage_options: Options) -> pafs.FileSystem:
    """Arrow's file system rooted at `table` (made once per table and options)."""
    options = tuple(sorted((storage_options or {}).items()))
    return _filesystem(str(table), options)


@functools.lru_cache(maxsize=256)
def _filesystem(table: str, options: tuple[tuple[str, str], ...]) -> pafs.FileSystem:
    found = arrow_filesystem(table, dict(options))
    if found is not None:
        return found
    filesystem, root = pafs.FileSystem.from_uri(table)
    return pafs.SubTreeFileSystem(root, filesystem)
