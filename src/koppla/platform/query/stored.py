"""Where a query reads a dataset's stored rows from: DuckDB's own Parquet reader, or Arrow.

A dataset under one of the engine's data roots is read by DuckDB's Parquet reader, over the
exact data files of the Delta snapshot (`read_parquet([...], union_by_name = true)`): it is
several times faster than scanning the table through Arrow, skips row groups by their
statistics, and fetches the other columns of a `LIMIT` query only for the rows kept. The
sandbox lets DuckDB read those roots only, and user SQL can still name no file (`reach`).
Tables on an object store are never read by DuckDB (it has no network access): Arrow reads them.
Files written before a field joined the schema lack it: the view selects every field of the
table's schema, as null where no file has it. Tables elsewhere (and filtered ones, such as
the quarantine) are scanned through Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from koppla.core.errors import TransientError
from koppla.platform.query.newest import TIME
from koppla.platform.query.snapshots import Snapshot

_GLOB = frozenset("*?[{")
Shape = tuple[tuple[str, str], ...]
"""A data file's columns: (name, DuckDB type) in order."""


@dataclass(frozen=True)
class StoredRows:
    """One dataset's stored rows for one query: how to (re)define them under a name."""

    snapshot: Snapshot
    only: pc.Expression | None
    native: bool
    present: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Each column some data file has, with the types the files give it (read natively)."""
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
        """Every field of the table's schema, in its order and type: as the files have it,
        cast where files differ (a struct field added later reads as null), null where no
        file has it."""
        schema = self.snapshot.dataset.schema
        kinds = [str(kind) for kind in cursor.from_arrow(schema.empty_table()).types]
        items = []
        for column, kind in zip(schema.names, kinds, strict=True):
            have = self.present.get(column)
            if not have:
                items.append(f"CAST(NULL AS {kind}) AS {_quoted(column)}")
            elif have == {kind}:
                items.append(_quoted(column))
            else:
                items.append(f"CAST({_quoted(column)} AS {kind}) AS {_quoted(column)}")
        return ", ".join(items)


def stored_rows(
    cursor: duckdb.DuckDBPyConnection,
    snapshot: Snapshot,
    only: pc.Expression | None,
    roots: tuple[Path, ...],
    known: dict[str, dict[str, Shape]],
) -> StoredRows:
    """How to read `snapshot`: natively when it has files, all under `roots` (resolved), and
    no row filter. `known` caches each table's data files' shapes by path (files never
    change); files gone from the snapshot are dropped from it."""
    native = bool(snapshot.paths) and only is None and all(_under(p, roots) for p in snapshot.paths)
    if not native:
        return StoredRows(snapshot, only, False)
    cached = known.get(snapshot.table, {})
    shapes: dict[str, Shape] = {}
    for path in snapshot.paths:
        shape = cached.get(path)
        if shape is None:
            try:
                rows = cursor.execute(f"DESCRIBE SELECT * FROM read_parquet({_text(path)})")
                shape = tuple((str(row[0]), str(row[1])) for row in rows.fetchall())
            except duckdb.InterruptException:
                raise
            except duckdb.Error as exc:  # a file compacted away meanwhile: the next try works
                raise TransientError(f"a data file could not be read: {exc}") from exc
        shapes[path] = shape
    known[snapshot.table] = shapes
    present: dict[str, set[str]] = {}
    for shape in shapes.values():
        for column, kind in shape:
            present.setdefault(column, set()).add(kind)
    frozen = {column: frozenset(kinds) for column, kinds in present.items()}
    return StoredRows(snapshot, only, True, frozen, uniform=len(set(shapes.values())) == 1)


def _under(path: str, roots: tuple[Path, ...]) -> bool:
    """True when `path` is a local file under a root and has no character `read_parquet`
    would take for a glob (a home in such a directory is read through Arrow; so is a file on
    an object store, a URI)."""
    if _GLOB & set(path) or "://" in path:
        return False
    return any(Path(path).is_relative_to(root) for root in roots)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _moment(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ {_text(value.isoformat())}"
    return _text(str(value))
