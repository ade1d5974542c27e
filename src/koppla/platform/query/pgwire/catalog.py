"""Answers to the catalogue queries PostgreSQL clients send (psql's `\\dt`, `\\d`, drivers, BI).

The query engine refuses system views, so these queries run in a private catalog database
instead: a sandboxed in-memory DuckDB (files and settings locked, as the engine's) holding an
empty table in schema `public` for each dataset the scope may read, so DuckDB's own `pg_catalog`
and `information_schema` views describe the datasets. What DuckDB lacks or cannot parse is
rewritten before the query runs (`OPERATOR(pg_catalog.~)`, `COLLATE pg_catalog.default`,
`::regclass`, `version()`), and missing functions and catalogues are defined as small macros and
empty views. Each query still passes the guard (one read-only statement) and `Reach` (no file,
setting or more-SQL functions).

Client text is hostile: routing and rewriting look only at SQL outside string constants and
comments (found by DuckDB's own tokenizer), every pattern runs in linear time, and a query runs
under a time limit, can be interrupted from any thread (`CatalogQuery.interrupt`), and may answer
at most `MAX_ROWS` rows and `MAX_BYTES` bytes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from koppla.platform.query.errors import QueryFailed, QueryTimeout
from koppla.platform.query.guard import check_sql
from koppla.platform.query.reach import Reach
from koppla.platform.query.result import Column, TableInfo
from koppla.platform.query.sandbox import SandboxLimits, open_sandbox

MAX_ROWS = 10_000
"""Most rows a catalogue query may answer (psql's and drivers' answers are far smaller)."""
MAX_BYTES = 64 * 2**20
"""Most bytes (as Arrow holds them) a catalogue query may answer."""
BATCH_ROWS = 64
"""Rows read at a time, so the caps are checked before much more than they allow is held."""

SERVER_VERSION = "15.0 (Koppla)"
VERSION_TEXT = f"PostgreSQL {SERVER_VERSION} on x86_64-pc-linux-gnu, compiled by Koppla, 64-bit"

_CATALOG_WORDS = re.compile(
    r"\b(pg_catalog|information_schema|pg_\w+|version\s*\(|current_schemas?\b|"
    r"current_database\b|current_user\b|session_user\b|current_role\b|has_\w+_privilege|"
    r"format_type|obj_description|col_description|to_regtype|to_regclass|regclass|regtype|"
    r"regproc|oid\b)",
    re.IGNORECASE,
)

_PG_TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "hugeint": "numeric",
    "uhugeint": "numeric",
    "float4": "real",
    "float8": "double precision",
    "varchar": "text",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
    "struct": "json",
    "map": "json",
    "list": "json",
    "union": "json",
    "array": "json",
}
_TYPE_MAP = "MAP {" + ", ".join(f"'{duck}': '{pg}'" for duck, pg in _PG_TYPE_NAMES.items()) + "}"

_MACROS = [
    f"pg_koppla_type_name(name) AS coalesce({_TYPE_MAP}[name], name)",
    "pg_get_userbyid(id) AS 'koppla'",
    "pg_encoding_to_char(id) AS 'UTF8'",
    "pg_get_indexdef(a, b := 0, c := false) AS ''",
    "pg_get_statisticsobjdef_columns(id) AS NULL::VARCHAR",
    "pg_get_partkeydef(id) AS NULL::VARCHAR",
    "pg_get_triggerdef(a, b := false) AS NULL::VARCHAR",
    "pg_get_ruledef(a, b := false) AS NULL::VARCHAR",
    "pg_relation_is_publishable(id) AS false",
    "pg_total_relation_size(id) AS 0::BIGINT",
    "pg_relation_size(id) AS 0::BIGINT",
    "pg_table_size(id) AS 0::BIGINT",
    "pg_backend_pid() AS 0",
    "pg_koppla_setting(name) AS CASE lower(name) WHEN 'server_version_num' THEN '150000' "
    f"WHEN 'server_version' THEN '{SERVER_VERSION}' WHEN 'default_table_access_method' "
    "THEN 'heap' WHEN 'server_encoding' THEN 'UTF8' WHEN 'client_encoding' THEN 'UTF8' "
    "WHEN 'timezone' THEN 'UTC' WHEN 'datestyle' THEN 'ISO, MDY' "
    "WHEN 'standard_conforming_strings' THEN 'on' WHEN 'max_identifier_length' THEN '63' "
    "ELSE NULL END",
    "pg_get_serial_sequence(t, c) AS NULL::VARCHAR",
    "pg_get_function_result(id) AS ''",
    "pg_get_function_arguments(id) AS ''",
    "pg_get_function_identity_arguments(id) AS ''",
    "array_upper(a, d) AS len(a)",
    "array_lower(a, d) AS 1",
    "pg_koppla_database() AS (SELECT datname FROM main.pg_database)",
    "to_regtype(name) AS (SELECT min(oid) FROM pg_catalog.pg_type t WHERE t.typname = name)",
    "to_regclass(name) AS (SELECT min(oid) FROM pg_catalog.pg_class c WHERE c.relname = name)",
    "pg_koppla_regclass(name) AS coalesce(TRY_CAST(name AS BIGINT), "
    "(SELECT min(oid) FROM pg_catalog.pg_class c WHERE c.relname = split_part(name, '.', -1)))",
    "pg_koppla_format_type(id, modifier) AS "
    "pg_koppla_type_name(pg_catalog.format_type(id, modifier))",
    "pg_koppla_regtype(id) AS pg_koppla_format_type(id, NULL)",
]

# Catalogues psql and drivers read that DuckDB does not have: empty views with their columns.
_EMPTY_VIEWS = {
    "pg_index": "indexrelid BIGINT, indrelid BIGINT, indnatts SMALLINT, indnkeyatts SMALLINT, "
    "indisunique BOOLEAN, indnullsnotdistinct BOOLEAN, indisprimary BOOLEAN, "
    "indisexclusion BOOLEAN, indimmediate BOOLEAN, indisclustered BOOLEAN, indisvalid BOOLEAN, "
    "indcheckxmin BOOLEAN, indisready BOOLEAN, indislive BOOLEAN, indisreplident BOOLEAN, "
    "indkey SMALLINT[], indcollation BIGINT[], indclass BIGINT[], indoption SMALLINT[], "
    "indexprs VARCHAR, indpred VARCHAR",
    "pg_constraint": "oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, "
    "condeferrable BOOLEAN, condeferred BOOLEAN, convalidated BOOLEAN, conrelid BIGINT, "
    "contypid BIGINT, conindid BIGINT, conparentid BIGINT, confrelid BIGINT, "
    "confupdtype VARCHAR, confdeltype VARCHAR, confmatchtype VARCHAR, conislocal BOOLEAN, "
    "coninhcount INTEGER, connoinherit BOOLEAN, conkey SMALLINT[], confkey SMALLINT[], "
    "conpfeqop BIGINT[], conppeqop BIGINT[], conffeqop BIGINT[], confdelsetcols SMALLINT[], "
    "conexclop BIGINT[], conbin VARCHAR",
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, "
    "polpermissive BOOLEAN, polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, "
    "stxowner BIGINT, stxstattarget INTEGER, stxkeys INTEGER[], stxkind VARCHAR[]",
    "pg_publication": "oid BIGINT, pubname VARCHAR, puballtables BOOLEAN",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, "
    "prattrs SMALLINT[]",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgname VARCHAR, tgenabled VARCHAR, "
    "tgisinternal BOOLEAN, tgparentid BIGINT",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR",
    "pg_user": "usesysid BIGINT, usename VARCHAR, usesuper BOOLEAN",
    "pg_matviews": "schemaname VARCHAR, matviewname VARCHAR",
    "pg_range": "rngtypid BIGINT, rngsubtype BIGINT",
    "pg_extension": "oid BIGINT, extname VARCHAR, extversion VARCHAR",
    "pg_auth_members": "roleid BIGINT, member BIGINT",
    "pg_authid": "oid BIGINT, rolname VARCHAR",
    "pg_shdescription": "objoid BIGINT, classoid BIGINT, description VARCHAR",
    "pg_stat_activity": "pid INTEGER, datname VARCHAR, query VARCHAR",
    "pg_opclass": "oid BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcmethod BIGINT, "
    "opcdefault BOOLEAN, opcintype BIGINT, opcfamily BIGINT, opckeytype BIGINT",
    "pg_operator": "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT",
    "pg_event_trigger": "oid BIGINT, evtname VARCHAR",
    "pg_sequence_data": "seqrelid BIGINT",
}
# Catalogues DuckDB has with too few columns: views over them adding what clients read.
_HIDDEN = "('main')"
_WIDER_VIEWS = {
    "pg_class": "SELECT * REPLACE (NULL::VARCHAR[] AS reloptions), false AS relforcerowsecurity "
    "FROM pg_catalog.pg_class WHERE relnamespace NOT IN "
    f"(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN {_HIDDEN})",
    "pg_collation": "SELECT *, NULL::BIGINT AS collnamespace, 10::BIGINT AS collowner, "
    "'c' AS collprovider, true AS collisdeterministic, -1 AS collencoding, "
    "NULL::VARCHAR AS collcollate, NULL::VARCHAR AS collctype FROM pg_catalog.pg_collation",
    "pg_namespace": f"SELECT * FROM pg_catalog.pg_namespace WHERE nspname NOT IN {_HIDDEN}",
    "pg_roles": "SELECT 10::BIGINT AS oid, 'koppla' AS rolname, false AS rolsuper, "
    "true AS rolinherit, false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, "
    "-1 AS rolconnlimit, NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolreplication, "
    "false AS rolbypassrls, NULL::VARCHAR AS rolpassword, NULL::VARCHAR[] AS rolconfig",
}
# DuckDB's own catalogues, seen through a view of the same name so that fully qualified column
# references (`pg_catalog.pg_type.oid`), which DuckDB cannot bind to its system schema, work.
_PASSED_VIEWS = (
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_indexes",
    "pg_proc",
    "pg_sequence",
    "pg_sequences",
    "pg_tables",
    "pg_tablespace",
    "pg_type",
    "pg_views",
)
_INFORMATION_VIEWS = {
    "tables": "table_catalog",
    "columns": "table_catalog",
    "views": "table_catalog",
    "schemata": "catalog_name",
}
_SHIM = "main."
"""Where the stand-in views live (qualified only by `main`, as the query reach allows)."""

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bpg_catalog\.(pg_\w+)\.(?=\w)", re.I), r"\1."),
    (re.compile(r"OPERATOR\s*\(\s*pg_catalog\.([~!<>=*]+)\s*\)", re.I), r"\1"),
    (re.compile(r"(?<!\s)\s+COLLATE\s+(?:pg_catalog\.)?\"?(?:default|C|POSIX)\"?", re.I), ""),
    (re.compile(r"(?:pg_catalog\.)?version\s*\(\s*\)", re.I), "'" + VERSION_TEXT + "'"),
    (re.compile(r"(?:pg_catalog\.)?current_database\s*\(\s*\)", re.I), "pg_koppla_database()"),
    (
        re.compile(r"('\x00\d+')\s*::\s*(?:pg_catalog\.)?regclass\b", re.I),
        r"pg_koppla_regclass(\1)",
    ),
    (re.compile(r"(?<![\w.])([\w.]+)\s*::\s*(?:pg_catalog\.)?regclass\b", re.I), r"\1"),
    (
        re.compile(r"(?<![\w.])([\w.]+)\s*::\s*(?:pg_catalog\.)?regtype\b", re.I),
        r"pg_koppla_regtype(\1)",
    ),
    (re.compile(r"::\s*(?:pg_catalog\.)?regproc\b", re.I), "::VARCHAR"),
    (re.compile(r"::\s*(?:pg_catalog\.)?(?:oid|regnamespace|regrole)\b", re.I), "::BIGINT"),
    (re.compile(r"::\s*pg_catalog\.(text|name|char|int2|int4|int8|bool)\b", re.I), r"::\1"),
    (re.compile(r"::\s*name\b", re.I), "::VARCHAR"),
    (
        re.compile(r"\bCAST\s*\(([^()]*?[^()\s])\s+AS\s+(?:pg_catalog\.)?regclass\s*\)", re.I),
        r"pg_koppla_regclass(CAST(\1 AS VARCHAR))",
    ),
    (
        re.compile(
            r"\bAS\s+(?:pg_catalog\.)?(?:regclass|regtype|regproc|oid|regnamespace)\s*\)", re.I
        ),
        "AS BIGINT)",
    ),
    (re.compile(r"::\s*\"char\"", re.I), "::VARCHAR"),
    (re.compile(r"\bpg_catalog\.(?=\w+\s*\()", re.I), ""),
    (re.compile(r"\bformat_type\s*\(", re.I), "pg_koppla_format_type("),
    (re.compile(r"\bjson_build_object\s*\(", re.I), "json_object("),
    (re.compile(r"\bcurrent_setting\s*\(", re.I), "pg_koppla_setting("),
    (re.compile(r"\bpg_get_expr\s*\(([^(),]+),([^(),]+),[^(),]+\)", re.I), r"pg_get_expr(\1,\2)"),
]
_SHIMMED = re.compile(
    r"(?<![.\w])(?:pg_catalog\.)?("
    + "|".join([*_EMPTY_VIEWS, *_WIDER_VIEWS, *_PASSED_VIEWS, "pg_database"])
    + r")\b(?!\s*\.)",
    re.I,
)


_INFORMATION = re.compile(
    r"\binformation_schema\s*\.\s*(" + "|".join(_INFORMATION_VIEWS) + r")\b", re.I
)


_PLACEHOLDER = re.compile(r"'\x00(\d+)'")
_HIDDEN_TOKENS = frozenset({duckdb.token_type.string_const, duckdb.token_type.comment})


def is_catalog_query(sql: str) -> bool:
    """True when `sql` reads PostgreSQL's catalogues or server functions rather than datasets
    (a catalogue word inside a string constant or a comment does not count)."""
    if _CATALOG_WORDS.search(sql) is None:
        return False
    return _CATALOG_WORDS.search(_masked(sql)[0]) is not None


def rewrite(sql: str) -> str:
    """`sql` in words DuckDB's catalogue understands (string constants and comments untouched)."""
    text, constants = _masked(sql)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    text = _INFORMATION.sub(lambda m: f"{_SHIM}information_{m.group(1).lower()}", text)
    text = _SHIMMED.sub(lambda m: f"{_SHIM}{m.group(1).lower()}", text)
    return _PLACEHOLDER.sub(lambda m: constants[int(m.group(1))], text)


def _masked(sql: str) -> tuple[str, list[str]]:
    """`sql` with each string constant replaced by `'<NUL><n>'` (the n-th of the list returned)
    and each comment by a space; NUL never occurs in a query's text, so the marks are unique."""
    try:
        tokens = duckdb.tokenize(sql)
    except (duckdb.Error, RuntimeError, ValueError):
        return sql, []
    if not any(kind in _HIDDEN_TOKENS for _, kind in tokens):
        return sql, []
    raw = sql.encode("utf-8")  # token offsets count UTF-8 bytes
    parts: list[bytes] = []
    constants: list[str] = []
    kept = 0
    for index, (start, kind) in enumerate(tokens):
        if kind not in _HIDDEN_TOKENS:
            continue
        end = tokens[index + 1][0] if index + 1 < len(tokens) else len(raw)
        token = raw[start:end].rstrip()
        parts.append(raw[kept:start])
        if kind == duckdb.token_type.string_const:
            parts.append(b"'\x00%d'" % len(constants))
            constants.append(token.decode("utf-8"))
        else:
            parts.append(b" ")
        kept = start + len(token)
    parts.append(raw[kept:])
    return b"".join(parts).decode("utf-8"), constants


class CatalogDatabase:
    """Empty tables shaped like one scope's datasets, for catalogue queries; thread-safe."""

    def __init__(self, tables: Sequence[TableInfo], database: str = "prod:all") -> None:
        """Build the database for `tables` (as `QueryEngine.tables_info` lists them), which
        clients see as the database named `database`."""
        self.tables = tuple((t.name, t.columns) for t in tables)
        self.database = database
        self._db = open_sandbox(SandboxLimits(memory_limit="64MB", threads=1))
        self._lock = threading.Lock()
        try:
            self._build(tables)
            self._reach = Reach(())
        except BaseException:
            self._db.close()
            raise

    def _build(self, tables: Sequence[TableInfo]) -> None:
        db = self._db
        db.execute("CREATE SCHEMA public")
        db.execute("SET search_path = 'public,main'")
        for name, columns in _EMPTY_VIEWS.items():
            db.execute(
                f"CREATE VIEW {_SHIM}{name} AS SELECT * FROM (SELECT {_nulls(columns)}) WHERE false"
            )
        for name in _PASSED_VIEWS:
            db.execute(f"CREATE VIEW {_SHIM}{name} AS SELECT * FROM pg_catalog.{name}")
        for name, select in _WIDER_VIEWS.items():
            db.execute(f"CREATE VIEW {_SHIM}{name} AS {select}")
        db.execute(
            f"CREATE VIEW {_SHIM}pg_database AS SELECT 1::BIGINT AS oid, "
            f"{_literal(self.database)} AS datname, 10::BIGINT AS datdba, 6 AS encoding, "
            "'c' AS datlocprovider, "
            "false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, "
            "'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale, "
            "NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl, "
            "0::BIGINT AS dattablespace"
        )
        for name, catalog_column in _INFORMATION_VIEWS.items():
            schema_column = "schema_name" if name == "schemata" else "table_schema"
            db.execute(
                f"CREATE VIEW {_SHIM}information_{name} AS SELECT * REPLACE "
                f"({_literal(self.database)} AS {catalog_column}) FROM information_schema.{name} "
                f"WHERE {schema_column} NOT IN {_HIDDEN}"
            )
        for macro in _MACROS:
            db.execute(f"CREATE MACRO main.{macro}")
        for table in tables:
            db.execute(f"CREATE TABLE public.{_quoted(table.name)} ({_definition(table.columns)})")

    def run(
        self,
        sql: str,
        params: Sequence[object] | None = None,
        *,
        timeout_s: float = 60.0,
        max_rows: int = MAX_ROWS,
        max_bytes: int = MAX_BYTES,
    ) -> tuple[tuple[Column, ...], pa.Table]:
        """Run one catalogue SELECT within the limits (see `CatalogQuery`)."""
        return CatalogQuery(sql, params, timeout_s, max_rows, max_bytes).run(self)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the database, for one query."""
        with self._lock:
            return self._db.cursor()

    def check(self, cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
        """`QueryRefused` unless `sql` (rewritten) reaches only what catalogue queries may."""
        self._reach.check(cursor, sql, [])

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class CatalogTooLarge(QueryFailed):
    """A catalogue query's answer passed `MAX_ROWS` or `MAX_BYTES` (SQLSTATE 54000)."""


class CatalogQuery:
    """One catalogue query: `run` it once (in a worker thread); `interrupt` it from any thread.

    It stops with `QueryTimeout` after `timeout_s`, with `QueryFailed` when interrupted, and
    with `QueryFailed` (`too large`) past `max_rows` rows or `max_bytes` bytes.
    """

    def __init__(
        self,
        sql: str,
        params: Sequence[object] | None,
        timeout_s: float,
        max_rows: int = MAX_ROWS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.sql = sql
        self._params = list(params) if params else None
        self._timeout_s = timeout_s
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._finished = threading.Event()
        self._expired = False

    def interrupt(self) -> None:
        """Stop the query (before, while or after it runs)."""
        self._stop.set()
        self._wake.set()

    def run(self, database: CatalogDatabase) -> tuple[tuple[Column, ...], pa.Table]:
        """The query's columns and rows; `QueryRefused` / `QueryFailed` / `QueryTimeout`."""
        text = rewrite(check_sql(self.sql))
        cursor = database.cursor()
        watcher = threading.Thread(target=self._watch, args=(cursor,), daemon=True)
        watcher.start()
        try:
            with cursor:
                cursor.execute("SET search_path = 'public,main'")
                database.check(cursor, text)
                return self._read(cursor, text)
        except duckdb.Error as exc:
            raise self._stopped() or QueryFailed(str(exc)) from exc
        finally:
            self._finished.set()
            self._wake.set()
            watcher.join()

    def _read(
        self, cursor: duckdb.DuckDBPyConnection, text: str
    ) -> tuple[tuple[Column, ...], pa.Table]:
        relation = cursor.sql(text, params=self._params)
        names, kinds = relation.columns, relation.types
        reader = relation.to_arrow_reader(BATCH_ROWS)
        batches: list[pa.RecordBatch] = []
        rows = size = 0
        for batch in reader:
            stopped = self._stopped()
            if stopped is not None:
                raise stopped
            rows += batch.num_rows
            size += batch.nbytes
            if rows > self._max_rows or size > self._max_bytes:
                raise CatalogTooLarge(_too_large(self._max_rows, self._max_bytes))
            batches.append(batch)
        stopped = self._stopped()
        if stopped is not None:
            raise stopped
        columns = tuple(Column(str(n), str(k)) for n, k in zip(names, kinds, strict=True))
        return columns, pa.Table.from_batches(batches, schema=reader.schema)

    def _watch(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Interrupt the cursor once stopped or out of time, again until the run is over (an
        interrupt that comes before DuckDB starts executing is otherwise lost)."""
        if not self._wake.wait(self._timeout_s):
            self._expired = True
        while not self._finished.is_set():
            try:
                cursor.interrupt()
            except duckdb.Error:  # closed: the run is ending
                return
            self._finished.wait(0.05)

    def _stopped(self) -> Exception | None:
        if self._expired:
            return QueryTimeout(
                f"query stopped: it ran longer than the {self._timeout_s:g} s time limit "
                "(statement_timeout, query_stream_timeout_s)"
            )
        if self._stop.is_set():
            return QueryFailed("query was cancelled")
        return None


def _too_large(max_rows: int, max_bytes: int) -> str:
    return (
        f"the catalogue answer is too large: at most {max_rows} rows and "
        f"{max_bytes // 2**20} MiB; select fewer rows or columns"
    )


def _definition(columns: tuple[Column, ...]) -> str:
    return ", ".join(f"{_quoted(c.name)} {c.type}" for c in columns) or "_empty INTEGER"


def _nulls(columns: str) -> str:
    parts = []
    for column in columns.split(", "):
        name, _, kind = column.partition(" ")
        parts.append(f"NULL::{kind} AS {name}")
    return ", ".join(parts)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
