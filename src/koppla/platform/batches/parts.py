"""Staged parts: the valid new rows of each slice, as Parquet files in the dataset's shape.

A part is written to a temporary file, `fsync`ed and renamed into place before the progress that
counts it is recorded, so a part the journal names is always whole; a replay of the slice writes
the same name again. The commit phase reads consecutive parts back and appends them to the
dataset's Delta table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from koppla.platform.datasets.tables import SYSTEM_COLUMNS
from koppla.xdm.arrow import to_arrow
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

PARTS = "parts"


def to_table(
    schema: Schema, rows: Sequence[dict[str, Any]]
) -> tuple[pa.Table | None, list[int], list[tuple[int, str]]]:
    """The Arrow table of validated `rows` (with system columns), the indexes of the rows in
    it, and `(index, reason)` of each row that cannot be converted.

    Validation should make every row convertible; if one still is not, the rows are converted
    one at a time to find it, so one bad row never stops the others.
    """
    if not rows:
        return None, [], []
    try:
        return _table(schema, rows), list(range(len(rows))), []
    except Exception:  # found row by row below
        log.exception("a slice could not be converted to Arrow; isolating the bad rows")
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    for index, row in enumerate(rows):
        try:
            _table(schema, [row])
        except Exception as error:  # any failure here is this row's alone
            bad.append((index, f"{type(error).__name__}: {error}"))
        else:
            good.append(index)
    table = _table(schema, [rows[i] for i in good]) if good else None
    return table, good, bad


def _table(schema: Schema, rows: Sequence[dict[str, Any]]) -> pa.Table:
    table = to_arrow(schema, rows)
    for name, kind in SYSTEM_COLUMNS:
        table = table.append_column(pa.field(name, kind), pa.array([r[name] for r in rows], kind))
    return table


def part_path(batch_directory: Path, number: int) -> Path:
    """The file of staged part `number`."""
    return batch_directory / PARTS / f"part-{number:06d}.parquet"


def write(batch_directory: Path, number: int, table: pa.Table) -> None:
    """Write staged part `number` durably (replacing a part of that number)."""
    path = part_path(batch_directory, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    pq.write_table(table, temporary, compression="zstd")
    fd = os.open(temporary, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read(batch_directory: Path, numbers: Sequence[int]) -> pa.Table:
    """Staged parts `numbers`, in order, as one table."""
    tables = [pq.read_table(part_path(batch_directory, n)) for n in numbers]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def ids(batch_directory: Path, numbers: Sequence[int]) -> list[str]:
    """The `_id`s of staged parts `numbers`."""
    found: list[str] = []
    for n in numbers:
        column = pq.read_table(part_path(batch_directory, n), columns=["_id"]).column("_id")
        found.extend(str(value) for value in column.to_pylist())
    return found
