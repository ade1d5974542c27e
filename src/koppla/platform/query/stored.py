"""Where a query reads a dataset's stored rows from: DuckDB's own Parquet reader, or Arrow.

A dataset under one of the engine's data roots is read by DuckDB's Parquet reader, over the
exact data files of the Delta snapshot (`read_parquet([...], union_by_name = true)`): it is
several times faster than scanning the table through Arrow, skips row groups by their
statistics, and fetches the other columns of a `LIMIT` query only for the rows kept. The
sandbox lets DuckDB read those roots only, and user SQL can still name no file (`reach`).
Files written before a field joined the schema lack it: the view selects every field of the
table's schema, as null where no file has it. Tables elsewhere (and filtered ones, such as
the quarantine) are scanned through Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from koppla.platform.query.newest import TIME
from koppla.platform.query.snapshots import Snapshot


@dataclass(frozen=True)
class StoredRows:
    """One dataset's stored rows for one query: how to (re)define them under a name."""

    snapshot: Snapshot
    only: pc.Expression | None
    native: bool
    present: frozenset[str]
    """The columns some data file has (read natively only)."""
    uniform: bool = True
    """Every data file has the same columns and types (no union by name needed)."""

    def define(
        self,
        cursor: duckdb.DuckDBPyConnection,
        name: str,
        bound: Any | None = None,
        descending: bool = True,
    ) -> None:
        """Make `name` on `cursor` the stored rows, only those at or past `bound` in time when
        given (at or after it when `descending`, else at or before)."""
        if not self.native:
            cursor.register(name, self._arrow(bound, descending))
            return
        where = ""
        if bound is not None:
            where = f" WHERE {_quoted(TIME)} {'>=' if descending else '<='} {_moment(bound)}"
        files = ", ".join(_text(path) for path in self.snapshot.paths)
        union = "" if self.uniform else ", union_by_name = true"
        cursor.execute(
            f"CREATE OR REPLACE TEMP VIEW {_quoted(name)} AS SELECT {self._columns(cursor)} "
            f"FROM read_parquet([{files}]{union}){where}"
        )

    def _arrow(self, bound: Any | None, descending: bool) -> ds.Dataset:
        dataset = self.snapshot.dataset
        if self.only is not None:
            dataset = dataset.filter(self.only)
        if bound is None:
            return dataset
        value = pa.scalar(bound, type=dataset.schema.field(TIME).type)
        return dataset.filter(pc.field(TIME) >= value if descending else pc.field(TIME) <= value)

    def _columns(self, cursor: duckdb.DuckDBPyConnection) -> str:
        schema = self.snapshot.dataset.schema
        items = []
        for field in schema:
            if field.name in self.present:
                items.append(_quoted(field.name))
            else:
                kind = cursor.from_arrow(pa.schema([field]).empty_table()).types[0]
                items.append(f"CAST(NULL AS {kind}) AS {_quoted(field.name)}")
        return ", ".join(items)


def stored_rows(
    cursor: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    only: pc.Expression | None,
    roots: tuple[Path, ...],
    known: dict[str, tuple[tuple[str, str], ...]],
) -> StoredRows:
    """How to read `snapshot`: natively when it has files, all under `roots`, and no row
    filter. `known` caches each data file's columns and types by path (files never change)."""
    native = bool(snapshot.paths) and only is None and all(_under(p, roots) for p in snapshot.paths)
    if not native:
        return StoredRows(snapshot, only, False, frozenset())
    shapes = set()
    for path in snapshot.paths:
        shape = known.get(path)
        if shape is None:
            rows = cursor.execute(f"DESCRIBE SELECT * FROM read_parquet({_text(path)})").fetchall()
            shape = known[path] = tuple((str(row[0]), str(row[1])) for row in rows)
        shapes.add(shape)
    present = frozenset(column for shape in shapes for column, _ in shape)
    return StoredRows(snapshot, only, True, present, uniform=len(shapes) == 1)


def _under(path: str, roots: tuple[Path, ...]) -> bool:
    return any(Path(path).is_relative_to(root) for root in roots)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _moment(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ {_text(value.isoformat())}"
    return _text(str(value))
