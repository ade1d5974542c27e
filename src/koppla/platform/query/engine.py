"""The query engine: read-only SQL over the current Delta datasets, with a time limit and row cap.

One in-memory DuckDB database per engine is configured and then locked (`sandbox`): capped
memory, threads and spill disk, no file system or network access, no extension loading. Before a
query runs, the guard admits one SELECT and `reach` refuses anything in it that could name a file
or a setting. At most `max_concurrent` queries run at once (`slots`), and a result may take at
most `max_result_bytes` as Python values (`fetch`). Every query gets its own cursor (a DuckDB
connection to that database) on which the datasets are registered as Arrow views, so queries
running at the same time never see each other's state and each can be interrupted alone.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from koppla.core import clock
from koppla.core.errors import InvalidInput
from koppla.platform.query import newest, presented
from koppla.platform.query.errors import QueryFailed, QueryTimeout
from koppla.platform.query.fetch import fetch_rows
from koppla.platform.query.guard import check_sql, explained_select
from koppla.platform.query.live import LiveTable, LiveTables
from koppla.platform.query.reach import FILES_OFF, Reach
from koppla.platform.query.result import Column, QueryResult, TableInfo
from koppla.platform.query.sandbox import SandboxLimits, open_sandbox
from koppla.platform.query.slots import QuerySlots
from koppla.platform.query.snapshots import DeltaSnapshots, Snapshot
from koppla.platform.query.stored import Shape, StoredRows, stored_rows
from koppla.platform.query.stream import RowStream

T = TypeVar("T")

log = logging.getLogger(__name__)

TableSource = Callable[[], Mapping[str, str]]
"""Returns the current `{table_name: delta_table_path}` (a path or object-store URI); called
once per query."""


@dataclass(frozen=True, slots=True)
class ScopedTables:
    """What one organization's query may read: Delta tables by name, the rows of each it may see
    (an Arrow filter, for tables shared between organizations such as the quarantine), and live
    tables."""

    tables: Mapping[str, str]
    filters: Mapping[str, pc.Expression] = field(default_factory=dict)
    live: Mapping[str, LiveTable] = field(default_factory=dict)


Scope = tuple[str, str]
"""An organization id and a sandbox name."""

ScopedSource = Callable[[Scope], ScopedTables]
"""Returns what a scope may read; called once per scoped query."""

DEFAULT_MAX_RESULT_BYTES = 64 * 2**20
"""The default of the `query_max_result_bytes` setting."""

_UNKNOWN_TABLE = re.compile(r"Table with name (.+?) does not exist")


class QueryEngine:
    """Runs one read-only SELECT at a time per call; safe to share between threads."""

    def __init__(
        self,
        tables: TableSource,
        *,
        timeout_s: float = 30.0,
        max_rows: int = 10_000,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        memory_limit: str = "1GB",
        threads: int = 2,
        temp_directory: Path | None = None,
        temp_limit: str = "0",
        max_concurrent: int = 4,
        slot_wait_s: float = 3.0,
        stream_timeout_s: float = 600.0,
        data_roots: Sequence[Path] = (),
        storage_options: Mapping[str, str] | None = None,
        live: LiveTables | None = None,
        scoped: ScopedSource | None = None,
    ) -> None:
        """Configure and lock the DuckDB database; `tables` is consulted on every query.

        Queries may spill up to `temp_limit` into `temp_directory` (no directory or "0": no
        spilling). At most `max_concurrent` queries run at once; one more waits up to
        `slot_wait_s` for a slot, then fails with `QueryBusy`. `live` names tables read fresh
        for each query that names them (the profile store's), beside the datasets. `scoped`
        says what a query run with a `scope` (an organization and sandbox) may read instead.
        A result whose values take more than `max_result_bytes` fails (`QueryFailed`, naming
        the setting `query_max_result_bytes`) as soon as its rows pass it. A streamed query
        (`stream`) may run `stream_timeout_s`. Datasets under `data_roots` (local directories)
        are read by DuckDB's own Parquet reader (`stored`), others through Arrow: tables on an
        object store too, opened with `storage_options`, so DuckDB itself never reads a remote
        file nor gains network access.
        """
        self._tables = tables
        self._live: LiveTables = live or dict
        self._scoped = scoped
        self._timeout_s = timeout_s
        self._stream_timeout_s = stream_timeout_s
        self._max_rows = _positive(max_rows)
        self._max_result_bytes = _positive(max_result_bytes, "max_result_bytes")
        self._limits = SandboxLimits(
            memory_limit,
            threads,
            temp_directory,
            temp_limit,
            tuple(p.resolve() for p in data_roots),
        )
        self._file_columns: dict[str, dict[str, Shape]] = {}
        self._slots = QuerySlots(max_concurrent, wait_s=slot_wait_s)
        self._snapshots = DeltaSnapshots(storage_options)
        self._lock = threading.Lock()
        self._db = open_sandbox(self._limits)
        self._reach = Reach.of(self._db)

    def run(
        self,
        sql: str,
        *,
        max_rows: int | None = None,
        scope: Scope | None = None,
        params: Sequence[object] | None = None,
    ) -> QueryResult:
        """Run one SELECT and return at most `max_rows` rows (the engine's cap by default).

        With `scope` (an organization and sandbox) the query sees only what that scope may read;
        without, every dataset (the operator's view, as `koppla query` on the machine has).
        `params` fill the query's `$1`, `$2`... placeholders. Raises `QueryRefused` before
        execution for anything but a SELECT over datasets and pure functions, `QueryBusy` when
        no query slot frees up in time, `QueryFailed` with DuckDB's message when the query
        fails or its result is too large, `QueryTimeout` past the time limit.
        """
        sql = check_sql(sql)
        cap = self._max_rows if max_rows is None else _positive(max_rows)
        with self._slots.hold(scope):
            started = clock.monotonic()
            readable = self._readable(scope)
            with self._cursor() as cursor:
                hint = lambda: self._catalog_hint(readable.tables)  # noqa: E731
                expired = threading.Event()

                def expire() -> None:
                    expired.set()
                    cursor.interrupt()

                timer = threading.Timer(self._timeout_s, expire)  # covers the preparing too
                timer.start()
                try:
                    self._prepare(cursor, sql, readable, params)
                    columns, rows = self._execute(cursor, sql, params, cap)
                except duckdb.InterruptException as exc:
                    raise _interrupted(expired.is_set(), self._timeout_s) from exc
                except duckdb.Error as exc:
                    raise _failed(exc, hint, self._limits) from exc
                finally:
                    timer.cancel()
                    timer.join()
        truncated = len(rows) > cap
        elapsed_ms = (clock.monotonic() - started) * 1000
        return QueryResult(columns, rows[:cap], truncated, elapsed_ms)

    @contextmanager
    def stream(
        self,
        sql: str,
        *,
        scope: Scope | None = None,
        params: Sequence[object] | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[RowStream]:
        """Run one SELECT whose rows are read as Arrow batches while the block lasts.

        No row or byte cap applies: rows are produced as they are read. The query holds a
        query slot (of its scope's share) for the block, until it is stopped after `timeout_s`
        (default: the `stream_timeout_s` the engine was made with), which frees the slot at
        once even while the block still runs. Refusals and failures to start raise as
        `run`'s do; failures while reading raise from `RowStream.batches`.
        """
        sql = check_sql(sql)
        limit_s = self._stream_timeout_s if timeout_s is None else timeout_s
        with self._slots.hold(scope) as slot, self._cursor() as cursor:
            readable = self._readable(scope)
            hint = lambda: self._catalog_hint(readable.tables)  # noqa: E731
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                with contextlib.suppress(duckdb.Error):  # the cursor may be closed already
                    cursor.interrupt()
                slot.release()  # the query is over: its slot is free even if the block is not

            timer = threading.Timer(limit_s, expire)  # covers the preparing too
            timer.start()
            try:
                try:
                    self._prepare(cursor, sql, readable, params)
                    relation = cursor.sql(sql, params=list(params) if params else None)
                except duckdb.InterruptException as exc:
                    raise _interrupted(expired.is_set(), limit_s, "query_stream_timeout_s") from exc
                except duckdb.Error as exc:
                    raise _failed(exc, hint, self._limits) from exc
                failed = lambda e: _failed(e, hint, self._limits)  # noqa: E731
                rows = RowStream(relation, cursor, limit_s, failed, expired=expired)
                try:
                    yield rows
                finally:
                    rows.cancel()
            finally:
                timer.cancel()

    def _prepare(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        readable: ScopedTables,
        params: Sequence[object] | None,
    ) -> None:
        """Check what `sql` reaches, then register on `cursor` the tables it names: datasets
        as their presented view (`presented`), others as they are. A first-rows-by-time
        query reads only the rows it can need (`newest`)."""
        tables, live = readable.tables, readable.live
        self._reach.check(cursor, explained_select(sql), [*tables, *live])
        names = _named(cursor, sql)
        snapshots = self._current(_referenced(names, tables))
        stored: dict[str, tuple[str, StoredRows]] = {}
        for number, (name, snapshot) in enumerate(snapshots.items()):
            only = readable.filters.get(name)
            if presented.is_dataset(snapshot.dataset.schema):
                raw = f"_koppla_stored_{number}"
                rows = stored_rows(
                    cursor, snapshot, only, self._limits.readable, self._file_columns
                )
                rows.define(cursor, raw)
                cursor.execute(presented.view_sql(name, raw, snapshot.dataset.schema))
                stored[name] = (raw, rows)
            else:
                view = snapshot.dataset if only is None else snapshot.dataset.filter(only)
                cursor.register(name, view)
        live_named = _referenced(names, live) if names != set() else {}
        for name in live_named:  # each is read from its store: only when named
            cursor.register(name, live[name].load())
        self._read_newest_only(cursor, sql, stored, list(params) if params else None)

    def _read_newest_only(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        stored: Mapping[str, tuple[str, StoredRows]],
        params: list[object] | None,
    ) -> None:
        timed = [name for name, (_, rows) in stored.items() if rows.snapshot.files]
        query = newest.newest_query(cursor, sql, timed) if timed else None
        if query is None or not newest.plain_plan(cursor, sql, params):
            return
        raw, rows = stored[query.table]

        def restrict(bound: object | None) -> None:
            rows.define(cursor, raw, bound, query.descending)

        try:
            bound = newest.time_threshold(
                cursor, query, rows.snapshot.files or [], params, restrict
            )
            restrict(bound)
        except duckdb.InterruptException:  # the time limit or a cancel: stop here
            raise
        except (duckdb.Error, pa.ArrowException, TypeError, ValueError) as exc:
            log.debug("no shortcut for the newest rows: %s", exc)  # the query itself will say
            restrict(None)

    def tables_info(self, scope: Scope | None = None) -> list[TableInfo]:
        """Every dataset that can be queried now (in `scope`), with DuckDB column types, sorted
        by name. Row counts of tables shared between organizations are left out in a scope."""
        readable = self._readable(scope)
        infos = []
        with self._cursor() as cursor:
            for name, snapshot in sorted(self._current(readable.tables).items()):
                schema = snapshot.dataset.schema
                if presented.is_dataset(schema):
                    schema = presented.presented_schema(schema)
                columns = _columns(cursor, schema)
                rows = None if name in readable.filters else snapshot.row_count
                infos.append(TableInfo(name, columns, rows, snapshot.version))
            for name, table in sorted(readable.live.items()):
                infos.append(TableInfo(name, _columns(cursor, table.schema), None, None))
        return sorted(infos, key=lambda info: info.name)

    def _readable(self, scope: Scope | None) -> ScopedTables:
        if scope is None:
            return ScopedTables(self._tables(), {}, self._live())
        if self._scoped is None:
            raise InvalidInput("this query engine cannot run queries for one organization")
        return self._scoped(scope)

    def close(self) -> None:
        """Close the DuckDB database; the engine cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _current(self, tables: Mapping[str, str]) -> dict[str, Snapshot]:
        """Snapshots of the tables that exist now; tables not yet written are left out."""
        current = {}
        for name, path in tables.items():
            snapshot = self._snapshots.latest(path)
            if snapshot is not None:
                current[name] = snapshot
        return current

    def _catalog_hint(self, tables: Mapping[str, str]) -> str:
        snapshots = self._current(tables)
        hint = "available tables: " + (", ".join(sorted(snapshots)) or "none")
        pending = sorted(tables.keys() - snapshots.keys())
        if pending:
            hint += "; no data written yet: " + ", ".join(pending)
        return hint

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._db.cursor()

    def _execute(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        params: Sequence[object] | None,
        cap: int,
    ) -> tuple[tuple[Column, ...], list[tuple[Any, ...]]]:
        cursor.execute(sql, list(params) if params else None)
        rows = fetch_rows(cursor, cap, self._max_result_bytes)
        columns = tuple(Column(d[0], str(d[1])) for d in cursor.description or ())
        return columns, rows


def _columns(cursor: duckdb.DuckDBPyConnection, schema: pa.Schema) -> tuple[Column, ...]:
    relation = cursor.from_arrow(schema.empty_table())
    return tuple(Column(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True))


def _positive(value: int, name: str = "max_rows") -> int:
    if value < 1:
        raise InvalidInput(f"{name} must be at least 1, got {value}", field=name)
    return value


def _interrupted(expired: bool, timeout_s: float, setting: str = "query_timeout_s") -> Exception:
    if expired:
        return QueryTimeout(
            f"query stopped: it ran longer than the {timeout_s:g} s time limit "
            f"({setting}); narrow it with filters or fewer columns"
        )
    return QueryFailed("query was interrupted")


def _named(cursor: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """The (lower-cased) table names `sql` mentions; None when DuckDB cannot tell."""
    try:
        return {name.lower() for name in cursor.get_table_names(sql)}
    except duckdb.Error:
        return None


def _referenced(names: set[str] | None, tables: Mapping[str, T]) -> Mapping[str, T]:
    """The tables among `names`, so only those are refreshed and registered; all if unclear."""
    if not names:
        return tables
    return {name: path for name, path in tables.items() if name.lower() in names}


def _failed(exc: duckdb.Error, hint: Callable[[], str], limits: SandboxLimits) -> QueryFailed:
    text = str(exc)
    if isinstance(exc, duckdb.PermissionException):
        return QueryFailed(f"{FILES_OFF} ({text})")
    unknown = _UNKNOWN_TABLE.search(text)
    if isinstance(exc, duckdb.CatalogException) and unknown:
        return QueryFailed(f"unknown table {unknown.group(1)}; {hint()} ({text})")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryFailed(
            f"query needs more than the engine allows ({limits.describe()}); filter or "
            f"aggregate earlier, or select fewer columns ({text.splitlines()[0]})"
        )
    return QueryFailed(text)
