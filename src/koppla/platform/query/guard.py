"""The guard: admit exactly one read-only SELECT (or EXPLAIN of one) before anything executes."""

from __future__ import annotations

import re

import duckdb

from koppla.core.errors import InvalidInput
from koppla.core.text import check_unicode
from koppla.platform.query.errors import QueryRefused

_READ_ONLY = "only SELECT queries are allowed"
_DATASETS_ONLY = "queries may read datasets only"

# Why each statement type is refused; the verb the user wrote is put in front of it.
_REASONS: dict[str, str] = {
    "INSERT": "datasets are read-only",
    "UPDATE": "datasets are read-only",
    "DELETE": "datasets are read-only",
    "MERGE_INTO": "datasets are read-only",
    "CREATE": "datasets are read-only and queries cannot define objects",
    "CREATE_FUNC": "datasets are read-only and queries cannot define objects",
    "DROP": "datasets are read-only",
    "ALTER": "datasets are read-only",
    "COPY": f"it writes files; {_READ_ONLY}",
    "COPY_DATABASE": f"it writes files; {_READ_ONLY}",
    "EXPORT": f"it writes files; {_READ_ONLY}",
    "ATTACH": _DATASETS_ONLY,
    "DETACH": _DATASETS_ONLY,
    "LOAD": "extensions cannot be installed or loaded",
    "SET": "settings are fixed by the server",
    "VARIABLE_SET": "settings are fixed by the server",
    "PRAGMA": "pragmas change settings or read files; settings are fixed by the server",
}
_VERB_REASONS: dict[str, str] = {
    "IMPORT": f"it reads files and creates tables; {_DATASETS_ONLY}",
    "INSTALL": "extensions cannot be installed or loaded",
}
_LEADING_WORD = re.compile(r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*([A-Za-z_]+)", re.DOTALL)
_EXPLAIN = re.compile(r"^\s*EXPLAIN(?:\s+ANALYZE)?\s+", re.IGNORECASE)


def check_sql(sql: str) -> str:
    """Return `sql` stripped if it is one read-only SELECT, else raise `QueryRefused`.

    Also admitted: `EXPLAIN` / `EXPLAIN ANALYZE` of a SELECT, and SELECT-shaped statements
    DuckDB classes as SELECT (`WITH`, `FROM t`, `VALUES`, `DESCRIBE`, `SUMMARIZE`, `SHOW`).
    The message names the refused statement and the reason, or carries DuckDB's parser message
    (or names `sql` when the text is no valid Unicode, such as JSON's lone surrogate `"\\ud800"`).
    """
    _check_text(sql)
    statement = _single_statement(sql)
    if statement.type == duckdb.StatementType.SELECT:
        return sql.strip()
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _single_statement(_EXPLAIN.sub("", statement.query, count=1))
        if inner.type == duckdb.StatementType.SELECT:
            return sql.strip()
        raise QueryRefused(f"EXPLAIN is allowed only for a SELECT, not {_verb(inner)}")
    raise QueryRefused(_refusal(statement))


def _check_text(sql: str) -> None:
    """Refuse text DuckDB cannot take (no UTF-8 form), as a refused query."""
    try:
        check_unicode(sql, "sql")
    except InvalidInput as error:
        raise QueryRefused(f"{error}; send the query as Unicode characters", field="sql") from None


def explained_select(sql: str) -> str:
    """The SELECT inside `EXPLAIN [ANALYZE] SELECT ...`, or `sql` itself when it is no EXPLAIN."""
    return _EXPLAIN.sub("", sql, count=1).strip()


def _refusal(statement: duckdb.Statement) -> str:
    """The message for a statement that is not a SELECT: what was refused and why."""
    verb = _verb(statement)
    reason = _VERB_REASONS.get(verb) or _REASONS.get(statement.type.name, _READ_ONLY)
    return f"{verb} is not allowed: {reason}"


def _single_statement(sql: str) -> duckdb.Statement:
    if not sql.strip():
        raise QueryRefused("empty query: write one SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the query could not be parsed: {exc}") from exc
    if not statements:
        raise QueryRefused("empty query: write one SELECT statement")
    if len(statements) > 1:
        raise QueryRefused(
            f"multiple statements are not allowed: found {len(statements)}, send one SELECT"
        )
    return statements[0]


def _verb(statement: duckdb.Statement) -> str:
    """The keyword the statement starts with (`INSTALL`, `CHECKPOINT`), else its type name."""
    match = _LEADING_WORD.match(statement.query)
    word = match.group(1).upper() if match else ""
    if not word or word == "WITH":
        return statement.type.name.replace("_", " ")
    return word
