"""Newest (or oldest) rows first, cheaply: `ORDER BY timestamp DESC LIMIT n` reads few files.

Sorting a large dataset by time to keep 100 rows makes DuckDB read every column of every row.
A query shaped as "the first `n` rows of one dataset by `timestamp`, after a row filter"
(`SELECT ... FROM t [WHERE ...] ORDER BY timestamp DESC LIMIT n [OFFSET m]`) only needs the
rows at or past the `n + m`-th timestamp. So, for such a query:

1. The data files are taken newest first (by their `timestamp` statistics in the Delta log)
   until they hold at least `need` rows, and a probe reads only the `timestamp` column of
   those files (through the query's own filter) for its `need` newest values. When the filter
   left too few, twice as many files are probed, and so on.
2. The query then runs over the rows at or past the probe's last timestamp: Arrow skips every
   file and row group whose statistics lie before it.

Any row before that timestamp would rank after `need` rows that pass the filter, so the answer
is the one the whole dataset gives. Only queries that are provably of that shape are helped:
one dataset, no join, grouping, DISTINCT, window, subquery or CTE (checked on DuckDB's parse
tree and plan); nulls sort last. Anything else runs as written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from koppla.core import codec

TIME = "timestamp"
_PLAN_OPERATORS = frozenset(
    {
        "TOP_N",
        "PROJECTION",
        "FILTER",
        "PYTHON_ARROW_SCAN",
        "ARROW_SCAN",
        "TABLE_SCAN",
        "READ_PARQUET",
    }
)
_MAX_NEED = 100_000
"""Largest `LIMIT + OFFSET` helped; past it a probe saves little."""
_PROBES = 3
"""Probes tried (each over four times as many rows) before the query reads every row."""
_VOLATILE = frozenset(
    {
        "random",
        "setseed",
        "uuid",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "now",
        "current_timestamp",
        "get_current_timestamp",
        "current_date",
        "current_time",
        "current_localtime",
        "current_localtimestamp",
        "localtime",
        "localtimestamp",
        "today",
        "transaction_timestamp",
        "nextval",
        "currval",
    }
)
"""Functions whose value differs between the probe and the query: a filter calling one could
keep other rows in each, so such queries read every row."""


@dataclass(frozen=True, slots=True)
class FileSpan:
    """One data file's time range and row count, from the Delta log."""

    first: datetime
    last: datetime
    rows: int


@dataclass(frozen=True, slots=True)
class NewestQuery:
    """A query asking for the first `need` rows of `table` by time."""

    table: str
    descending: bool
    need: int
    probe_sql: str
    """The same query selecting only `timestamp`, with `LIMIT need` and no offset."""


def newest_query(
    cursor: duckdb.DuckDBPyConnection, sql: str, datasets: Collection[str]
) -> NewestQuery | None:
    """What `sql` asks, when it is a first-rows-by-time query over one of `datasets`."""
    try:
        rows = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
        tree = codec.loads(rows[0][0])
    except (duckdb.Error, codec.JSONDecodeError, IndexError):
        return None
    shape = _shape(tree, {name.lower(): name for name in datasets})
    if shape is None:
        return None
    table, descending, need, probe_tree = shape
    try:
        probe = cursor.execute("SELECT json_deserialize_sql(?)", [codec.dumps(probe_tree).decode()])
        probe_sql = str(probe.fetchall()[0][0])
    except (duckdb.Error, IndexError):
        return None
    return NewestQuery(table, descending, need, probe_sql)


def plain_plan(cursor: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None) -> bool:
    """True when DuckDB plans `sql` as a top-N over filters and projections of one scan."""
    try:
        rows = cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchall()
        plan = codec.loads(rows[0][1])
    except (duckdb.Error, codec.JSONDecodeError, IndexError):
        return False
    scans = 0
    pending: list[Any] = list(plan) if isinstance(plan, list) else [plan]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict) or node.get("name") not in _PLAN_OPERATORS:
            return False
        scans += "SCAN" in str(node.get("name")) or node.get("name") == "READ_PARQUET"
        pending.extend(node.get("children") or [])
    return scans == 1


def time_threshold(
    cursor: duckdb.DuckDBPyConnection,
    query: NewestQuery,
    files: list[FileSpan],
    params: list[object] | None,
    restrict: Callable[[Any | None], None],
) -> Any | None:
    """The timestamp past which (before which, ascending) the query's rows all lie, or None
    when every row may be needed. `restrict(bound)` narrows the table's rows to those at or
    past `bound` (all rows with None) before each probe."""
    ordered = sorted(
        files, key=lambda f: f.last if query.descending else f.first, reverse=query.descending
    )
    wanted = query.need
    for _probe in range(_PROBES):
        taken, covered = 0, 0
        bound: datetime | None = None
        for span in ordered:
            if covered >= wanted:
                break
            edge = span.first if query.descending else span.last
            bound = (
                edge
                if bound is None
                else (min(bound, edge) if query.descending else max(bound, edge))
            )
            covered += span.rows
            taken += 1
        if bound is None or taken == len(ordered):  # every file is needed: nothing to skip
            return None
        restrict(bound)
        found = cursor.execute(query.probe_sql, params).fetchall()
        if len(found) >= query.need and found[-1][0] is not None:
            return found[-1][0]
        wanted *= 4
    return None  # the filter keeps few rows: probing further would cost a full scan twice


def file_spans(actions: pa.Table) -> list[FileSpan] | None:
    """Each data file's time range from Delta add actions (`get_add_actions(flatten=True)`);
    None when a file has no time statistics."""
    names = set(actions.column_names)
    if not {f"min.{TIME}", f"max.{TIME}", "num_records"} <= names:
        return None
    spans = []
    for first, last, rows in zip(
        actions.column(f"min.{TIME}").to_pylist(),
        actions.column(f"max.{TIME}").to_pylist(),
        actions.column("num_records").to_pylist(),
        strict=True,
    ):
        if first is None or last is None or rows is None:
            return None
        spans.append(FileSpan(first, last, int(rows)))
    return spans


def _shape(tree: Any, datasets: dict[str, str]) -> tuple[str, bool, int, Any] | None:
    if not isinstance(tree, dict) or tree.get("error") is not False:
        return None
    statements = tree.get("statements") or []
    if len(statements) != 1:
        return None
    node = statements[0].get("node") or {}
    table = _single_table(node, datasets)
    if table is None or _has_nested_query(node) or _renames_columns(node):
        return None
    modifiers = node.get("modifiers") or []
    kinds = [m.get("type") for m in modifiers]
    if sorted(kinds) != ["LIMIT_MODIFIER", "ORDER_MODIFIER"]:
        return None
    order = next(m for m in modifiers if m["type"] == "ORDER_MODIFIER")
    limit = next(m for m in modifiers if m["type"] == "LIMIT_MODIFIER")
    first = (order.get("orders") or [None])[0]
    source = node["from_table"]
    owner = {str(source.get("table_name", "")).lower(), str(source.get("alias") or "").lower()}
    if not first or not _is_time(first.get("expression"), owner) or _aliases_time(node, owner):
        return None
    if first.get("null_order") not in ("ORDER_DEFAULT", "NULLS_LAST"):
        return None
    descending = first.get("type") == "DESCENDING"
    count, skip = _constant(limit.get("limit")), _constant(limit.get("offset"), default=0)
    if count is None or skip is None or not 0 < count + skip <= _MAX_NEED:
        return None
    probe = copy.deepcopy(tree)
    probe_node = probe["statements"][0]["node"]
    probe_node["select_list"] = [copy.deepcopy(first["expression"])]
    for modifier in probe_node["modifiers"]:
        if modifier["type"] == "ORDER_MODIFIER":
            modifier["orders"] = [copy.deepcopy(first)]
        else:
            modifier["limit"] = _integer(count + skip)
            modifier["offset"] = None
    return table, descending, count + skip, probe


def _single_table(node: dict[str, Any], datasets: dict[str, str]) -> str | None:
    if node.get("type") != "SELECT_NODE" or (node.get("cte_map") or {}).get("map"):
        return None
    if node.get("group_expressions") or node.get("group_sets") or node.get("having"):
        return None
    if (
        node.get("qualify")
        or node.get("sample")
        or node.get("aggregate_handling") != "STANDARD_HANDLING"
    ):
        return None
    source = node.get("from_table") or {}
    if (
        source.get("type") != "BASE_TABLE"
        or source.get("schema_name")
        or source.get("catalog_name")
    ):
        return None
    if source.get("sample") or source.get("at_clause"):
        return None
    return datasets.get(str(source.get("table_name", "")).lower())


def _renames_columns(node: dict[str, Any]) -> bool:
    """True when the query gives columns other names: `FROM t AS x(a, b)`, or a `*` or
    `COLUMNS(...)` with `REPLACE` or `RENAME` (which could name another value `timestamp`)."""
    if (node.get("from_table") or {}).get("column_name_alias"):
        return True
    for item in node.get("select_list") or []:
        if isinstance(item, dict) and (item.get("replace_list") or item.get("rename_list")):
            return True
    return False


def _has_nested_query(node: Any) -> bool:
    """True when the select list or filter holds a subquery, a window or a volatile call."""
    pending = [node.get("select_list"), node.get("where_clause")]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if str(item.get("function_name", "")).lower() in _VOLATILE:
                return True
            if item.get("class") in ("SUBQUERY", "WINDOW") or item.get("type") in (
                "SUBQUERY",
                "WINDOW",
            ):
                return True
            pending.extend(item.values())
    return False


def _is_time(expression: Any, owner: set[str]) -> bool:
    """True for the column `timestamp` itself (`timestamp`, or `t.timestamp` with `t` the table
    or its alias; `commerce.timestamp` is a struct field, not the column)."""
    if not isinstance(expression, dict) or expression.get("class") != "COLUMN_REF":
        return False
    names = [str(n).lower() for n in expression.get("column_names") or []]
    if names == [TIME]:
        return True
    return len(names) == 2 and names[1] == TIME and names[0] in owner


def _aliases_time(node: dict[str, Any], owner: set[str]) -> bool:
    """True when a select item other than the column itself is named `timestamp`."""
    for item in node.get("select_list") or []:
        if str(item.get("alias", "")).lower() == TIME and not _is_time(item, owner):
            return True
    return False


def _constant(expression: Any, default: int | None = None) -> int | None:
    if expression is None:
        return default
    literal = expression.get("literal") if isinstance(expression, dict) else None
    if expression.get("class") != "CONSTANT" or not isinstance(literal, dict):
        return None
    if literal.get("kind") not in (
        "INTEGER",
        "BIGINT",
        "SMALLINT",
        "TINYINT",
        "UINTEGER",
        "UBIGINT",
    ):
        return None
    try:
        return int(literal.get("text", ""))
    except ValueError:
        return None


def _integer(value: int) -> dict[str, Any]:
    return {
        "class": "CONSTANT",
        "type": "VALUE_CONSTANT",
        "alias": "",
        "query_location": 0,
        "query_location_length": 0,
        "literal": {"kind": "INTEGER", "text": str(value)},
    }
