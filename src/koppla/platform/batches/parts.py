"""Staged parts: the valid new rows of each slice, as Parquet files in the dataset's shape.

A part is written durably (`durable.write_durably`: temporary file, `fsync`, rename, `fsync` of
the folder) before the progress that counts it is recorded, so a part the journal names is always
whole; a replay of the slice writes the same name again. The commit phase reads consecutive parts
back and appends them to the dataset's Delta table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from koppla.platform.batches.durable import write_durably
from koppla.platform.datasets.conform import conform_table

PARTS = "parts"


def part_path(batch_directory: Path, number: int) -> Path:
    """The file of staged part `number`."""
    return batch_directory / PARTS / f"part-{number:06d}.parquet"


def write(batch_directory: Path, number: int, table: pa.Table) -> None:
    """Write staged part `number` durably (replacing a part of that number)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_durably(part_path(batch_directory, number), sink.getvalue().to_pybytes())


def read(batch_directory: Path, numbers: Sequence[int]) -> pa.Table:
    """Staged parts `numbers`, in order, as one table.

    Parts staged before the dataset's schema grew lack its new fields; read together with
    later parts, they read those fields as null.
    """
    tables = [pq.read_table(part_path(batch_directory, n)) for n in numbers]
    if len(tables) == 1:
        return tables[0]
    shapes = [table.schema for table in tables]
    if any(not shape.equals(shapes[0]) for shape in shapes[1:]):
        unified = pa.unify_schemas(shapes)
        tables = [conform_table(table, unified) for table in tables]
    return pa.concat_tables(tables)


def ids(batch_directory: Path, numbers: Sequence[int]) -> list[str]:
    """The `_id`s of staged parts `numbers`."""
    found: list[str] = []
    for n in numbers:
        column = pq.read_table(part_path(batch_directory, n), columns=["_id"]).column("_id")
        found.extend(str(value) for value in column.to_pylist())
    return found
