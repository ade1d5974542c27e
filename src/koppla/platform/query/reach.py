"""What a SELECT may reach: datasets and pure functions, never a file, a setting or more SQL.

DuckDB keeps its temp directory readable even when external access is off, and its file
replacement scans (`FROM 'x.csv'`) and table functions (`read_csv`, `glob`, `query`, ...) can
read what lies there. So before a query runs, DuckDB's own parse of it (`json_serialize_sql`) is
walked, and it is refused when it calls a table function outside a short list of generators,
calls a scalar function that reads settings or binds other SQL, names a table like a path, or
names one of DuckDB's system views (`pg_settings`, `duckdb_databases`, ...) other than those of
`information_schema`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

import duckdb

from koppla.core import codec
from koppla.platform.query.errors import QueryRefused

FILES_OFF = "file system access is disabled; queries may read datasets only"

TABLE_FUNCTIONS = frozenset(
    {"range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree"}
)
"""The only table functions a query may call: generators that touch no file or setting."""

_REFUSED_SCALARS: dict[str, str] = {
    "current_setting": "server settings are not readable",
    "getvariable": "server settings are not readable",
    "json_serialize_plan": "it plans other SQL, which could read files",
    "write_log": "it writes to the server's log",
    "enable_profile": "settings are fixed by the server",
    "disable_profile": "settings are fixed by the server",
}
_PATH_CHARACTERS = frozenset("./\\:")
_TABLE_KEYS = ("catalog_name", "schema_name", "table_name")
_TABLE_TYPES = ("BASE_TABLE", "SHOW_REF")
_CATALOGS = frozenset({"", "memory", "temp", "system"})
_SCHEMAS = frozenset({"", "main", "information_schema", "pg_catalog"})


class Reach:
    """What user SQL may name in one sandboxed database; safe to share between threads."""

    def __init__(self, system_views: Iterable[str]) -> None:
        """Refuse, besides files and settings functions, the views named in `system_views`."""
        self._system_views = frozenset(name.lower() for name in system_views)

    @classmethod
    def of(cls, db: duckdb.DuckDBPyConnection) -> Reach:
        """The reach for `db`: its internal views outside `information_schema` are refused."""
        rows = db.execute(
            "SELECT DISTINCT view_name FROM duckdb_views() "
            "WHERE internal AND schema_name <> 'information_schema'"
        ).fetchall()
        return cls(str(row[0]) for row in rows)

    def check(self, cursor: duckdb.DuckDBPyConnection, sql: str, datasets: Collection[str]) -> None:
        """Raise `QueryRefused` unless the SELECT `sql` reaches only tables and pure functions.

        `cursor` parses `sql` without running it; a name in `datasets` is always a dataset. A
        query DuckDB cannot serialize is refused too: what cannot be checked does not run.
        """
        own = {name.lower() for name in datasets}
        tree = _parse(cursor, sql)
        for kind, name in _references(tree):
            reason = _refusal(kind, name)
            if reason:
                raise QueryRefused(reason)
        for catalog, schema, table in _tables(tree):
            reason = _qualified(catalog, schema, table) or self._system_view(
                table, own if not (catalog or schema) else set()
            )
            if reason:
                raise QueryRefused(reason)

    def _system_view(self, name: str, datasets: set[str]) -> str | None:
        """Why `name` may not be read: it is a system view and no dataset (a dataset's name
        counts only when the reference is not qualified)."""
        lowered = name.lower()
        if lowered in self._system_views and lowered not in datasets:
            return f"{name} is not allowed: it is a system view; queries may read datasets only"
        return None


def _parse(cursor: duckdb.DuckDBPyConnection, sql: str) -> Any:
    try:
        rows = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    except duckdb.Error as exc:
        raise QueryRefused(f"the query could not be checked: {exc}") from exc
    try:
        tree = codec.loads(rows[0][0]) if rows else None
    except codec.JSONDecodeError as exc:  # the parse tree nests deeper than JSON is read
        raise QueryRefused(f"the query is nested too deeply to be checked ({exc})") from exc
    if not isinstance(tree, dict) or tree.get("error") is not False:
        message = tree.get("error_message") if isinstance(tree, dict) else None
        raise QueryRefused(f"the query could not be checked: {message or 'no parse tree'}")
    return tree


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object node of the parse tree, walked with a stack, so a query nested as deep as
    the parser allows is checked too."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            yield node
            pending.extend(node.values())


def _references(tree: Any) -> Iterator[tuple[str, str]]:
    """Every `(kind, name)` the parse tree refers to: table functions, functions, tables."""
    for node in _nodes(tree):
        if node.get("type") == "TABLE_FUNCTION":
            function = node.get("function") or {}
            yield "table_function", str(function.get("function_name", ""))
        elif node.get("class") == "FUNCTION":
            yield "function", str(node.get("function_name", ""))
        elif node.get("type") in _TABLE_TYPES:
            for key in _TABLE_KEYS:
                yield "table", str(node.get(key) or "")


def _tables(tree: Any) -> Iterator[tuple[str, str, str]]:
    """Every table reference's `(catalog, schema, table)` (empty strings where not given)."""
    for node in _nodes(tree):
        if node.get("type") in _TABLE_TYPES:
            catalog, schema, table = (str(node.get(k) or "") for k in _TABLE_KEYS)
            yield catalog, schema, table


def _qualified(catalog: str, schema: str, table: str) -> str | None:
    """Why a qualified table reference is refused: DuckDB reads `a.b` as the file `a.b` when no
    table `b` is in a schema `a`, so only its own catalogs and schemas may qualify a name, and
    `information_schema.views` (it shows the engine's own views) is not readable."""
    named = ".".join(part for part in (catalog, schema, table) if part)
    if catalog.lower() not in _CATALOGS or schema.lower() not in _SCHEMAS:
        return f"{named!r} is not a dataset name: {FILES_OFF}"
    if schema.lower() == "information_schema" and table.lower() == "views":
        return f"{named} is not allowed: it shows the engine's own views; query datasets"
    return None


def _refusal(kind: str, name: str) -> str | None:
    lowered = name.lower()
    if kind == "table_function" and lowered not in TABLE_FUNCTIONS:
        return f"{name}() is not allowed: {FILES_OFF}"
    if kind == "function" and lowered in _REFUSED_SCALARS:
        return f"{name}() is not allowed: {_REFUSED_SCALARS[lowered]}"
    if kind == "table" and _PATH_CHARACTERS & set(name):
        return f"{name!r} is not a dataset name: {FILES_OFF}"
    return None
