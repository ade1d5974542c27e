"""Answers to the catalogue queries PostgreSQL clients send (psql's `\\dt`, `\\d`, drivers, BI).

The query engine refuses system views, so these queries run in a private catalog database
instead: a sandboxed in-memory DuckDB (files and settings locked, as the engine's) holding an
empty table in schema `public` for each dataset the scope may read, so DuckDB's own `pg_catalog`
and `information_schema` views describe the datasets. What DuckDB lacks or cannot parse is
rewritten before the query runs (`OPERATOR(pg_catalog.~)`, `COLLATE pg_catalog.default`,
`::regclass`, `version()`), and missing functions and catalogues are defined as small macros and
empty views. Each query still passes the guard (one read-only statement) and `Reach` (no file,
setting or more-SQL functions).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from koppla.platform.query.errors import QueryFailed
from koppla.platform.query.guard import check_sql
from koppla.platform.query.reach import Reach
from koppla.platform.query.result import Column, TableInfo
from koppla.platform.query.sandbox import SandboxLimits, open_sandbox

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
    "pg_koppla_database() AS (SELECT datname FROM pg_shim.pg_database)",
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
_HIDDEN = "('pg_shim', 'main')"
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
_SHIM_SCHEMA = "pg_shim"

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bpg_catalog\.(pg_\w+)\.(?=\w)", re.I), r"\1."),
    (re.compile(r"OPERATOR\s*\(\s*pg_catalog\.([~!<>=*]+)\s*\)", re.I), r"\1"),
    (re.compile(r"\s+COLLATE\s+(?:pg_catalog\.)?\"?(?:default|C|POSIX)\"?", re.I), ""),
    (re.compile(r"(?:pg_catalog\.)?version\s*\(\s*\)", re.I), "'" + VERSION_TEXT + "'"),
    (re.compile(r"(?:pg_catalog\.)?current_database\s*\(\s*\)", re.I), "pg_koppla_database()"),
    (
        re.compile(r"('(?:[^']|'')*')\s*::\s*(?:pg_catalog\.)?regclass\b", re.I),
        r"pg_koppla_regclass(\1)",
    ),
    (re.compile(r"(\b[\w.]+)\s*::\s*(?:pg_catalog\.)?regclass\b", re.I), r"\1"),
    (re.compile(r"(\b[\w.]+)\s*::\s*(?:pg_catalog\.)?regtype\b", re.I), r"pg_koppla_regtype(\1)"),
    (re.compile(r"::\s*(?:pg_catalog\.)?regproc\b", re.I), "::VARCHAR"),
    (re.compile(r"::\s*(?:pg_catalog\.)?(?:oid|regnamespace|regrole)\b", re.I), "::BIGINT"),
    (re.compile(r"::\s*pg_catalog\.(text|name|char|int2|int4|int8|bool)\b", re.I), r"::\1"),
    (re.compile(r"::\s*name\b", re.I), "::VARCHAR"),
    (
        re.compile(r"\bCAST\s*\(([^()]+?)\s+AS\s+(?:pg_catalog\.)?regclass\s*\)", re.I),
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


def is_catalog_query(sql: str) -> bool:
    """True when `sql` reads PostgreSQL's catalogues or server functions rather than datasets."""
    return _CATALOG_WORDS.search(sql) is not None


def rewrite(sql: str) -> str:
    """`sql` in words DuckDB's catalogue understands."""
    for pattern, replacement in _REWRITES:
        sql = pattern.sub(replacement, sql)
    sql = _INFORMATION.sub(lambda m: f"{_SHIM_SCHEMA}.information_{m.group(1).lower()}", sql)
    return _SHIMMED.sub(lambda m: f"{_SHIM_SCHEMA}.{m.group(1).lower()}", sql)


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
        db.execute(f"CREATE SCHEMA {_SHIM_SCHEMA}")
        db.execute("SET search_path = 'public,main'")
        for name, columns in _EMPTY_VIEWS.items():
            db.execute(
                f"CREATE VIEW {_SHIM_SCHEMA}.{name} AS SELECT * FROM "
                f"(SELECT {_nulls(columns)}) WHERE false"
            )
        for name in _PASSED_VIEWS:
            db.execute(f"CREATE VIEW {_SHIM_SCHEMA}.{name} AS SELECT * FROM pg_catalog.{name}")
        for name, select in _WIDER_VIEWS.items():
            db.execute(f"CREATE VIEW {_SHIM_SCHEMA}.{name} AS {select}")
        db.execute(
            f"CREATE VIEW {_SHIM_SCHEMA}.pg_database AS SELECT 1::BIGINT AS oid, "
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
                f"CREATE VIEW {_SHIM_SCHEMA}.information_{name} AS SELECT * REPLACE "
                f"({_literal(self.database)} AS {catalog_column}) FROM information_schema.{name} "
                f"WHERE {schema_column} NOT IN {_HIDDEN}"
            )
        for macro in _MACROS:
            db.execute(f"CREATE MACRO main.{macro}")
        for table in tables:
            db.execute(f"CREATE TABLE public.{_quoted(table.name)} ({_definition(table.columns)})")

    def run(
        self, sql: str, params: Sequence[object] | None = None
    ) -> tuple[tuple[Column, ...], pa.Table]:
        """Run one catalogue SELECT; `QueryRefused` / `QueryFailed` as the engine raises them."""
        text = rewrite(check_sql(sql))
        with self._lock:
            cursor = self._db.cursor()
        with cursor:
            cursor.execute("SET search_path = 'public,main'")
            self._reach.check(cursor, text, [])
            try:
                relation = cursor.sql(text, params=list(params) if params else None)
                table = relation.to_arrow_table()
                names, kinds = relation.columns, relation.types
            except duckdb.Error as exc:
                raise QueryFailed(str(exc)) from exc
        columns = tuple(Column(str(n), str(k)) for n, k in zip(names, kinds, strict=True))
        return columns, table

    def close(self) -> None:
        """Close the database."""
        self._db.close()


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
