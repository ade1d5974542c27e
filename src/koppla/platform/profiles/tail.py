"""Reading what a dataset's Delta table gained since a version: the profile stage's input.

A Delta table's log holds one JSON file per commit (`_delta_log/<version>.json`, each written
once, atomically), naming the data files the commit added. `read_since(path, after)` reads the
commits after version `after`, in order, and the rows of the files they added with `dataChange`
(compaction rewrites move rows without adding any, and are skipped); each row comes with its
commit's time. Finding nothing new costs one `stat` of the next commit file, so an idle stage
polls cheaply.

When a commit file needed is gone (log clean-up after a checkpoint) or a data file was vacuumed
away, `LogGone` says so, and the caller reads the whole current table instead (`read_all`); the
stage is idempotent, so rows read twice change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from koppla.core import codec

log = logging.getLogger(__name__)


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


def latest_version(path: Path) -> int:
    """The newest version of the table at `path` (-1 when there is no table)."""
    if not DeltaTable.is_deltatable(str(path)):
        return -1
    return int(DeltaTable(str(path)).version())


def read_since(path: Path, after: int, *, max_rows: int = 20_000) -> Rows:
    """The rows added after version `after`, commit by commit, stopping past `max_rows`.

    Raises `LogGone` when the log or a data file needed is missing (read everything instead).
    """
    out: list[tuple[dict[str, Any], int]] = []
    version = after
    while len(out) < max_rows and _commit_file(path, version + 1).exists():
        version += 1
        out.extend(_commit_rows(path, version))
    if version == after and _checkpoint_version(path) > after:
        raise LogGone(f"the commits after version {after} were cleaned up")
    return Rows(version, out, more=_commit_file(path, version + 1).exists())


def _commit_file(path: Path, version: int) -> Path:
    return path / "_delta_log" / f"{version:020d}.json"


def _checkpoint_version(path: Path) -> int:
    """The version of the table's last checkpoint (-1 when it has none)."""
    try:
        found = codec.loads((path / "_delta_log" / "_last_checkpoint").read_bytes())
    except (FileNotFoundError, codec.JSONDecodeError):
        return -1
    version = found.get("version") if isinstance(found, dict) else None
    return version if isinstance(version, int) else -1


def read_all(path: Path, *, batch_rows: int = 20_000) -> Iterator[Rows]:
    """Every row of the table's current version, in batches; only the last one has a cursor."""
    table = DeltaTable(str(path))
    version = int(table.version())
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    files = list(zip(actions["path"], actions["modification_time"], strict=True))
    pending: list[tuple[dict[str, Any], int]] = []
    for n, (name, modified) in enumerate(files):
        stamp = modified if isinstance(modified, int) else int(modified.timestamp() * 1000)
        pending.extend((row, stamp) for row in _file_rows(path, str(name)))
        if len(pending) >= batch_rows and n < len(files) - 1:
            yield Rows(None, pending)
            pending = []
    yield Rows(version, pending)


def _commit_rows(path: Path, version: int) -> list[tuple[dict[str, Any], int]]:
    log_file = _commit_file(path, version)
    try:
        text = log_file.read_bytes()
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
        rows.extend((row, stamp) for row in _file_rows(path, name))
    return rows


def _file_rows(path: Path, name: str) -> list[dict[str, Any]]:
    file = path / unquote(name)
    try:
        table = pq.read_table(file)
    except FileNotFoundError as error:
        raise LogGone(f"{file} was removed") from error
    rows: list[dict[str, Any]] = table.to_pylist(maps_as_pydicts="lossy")
    return rows
