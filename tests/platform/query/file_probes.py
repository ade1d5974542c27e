"""SQL that tries every way DuckDB has to read a file or a setting, and files worth stealing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SECRET = "tmpsecret-7f3a"
"""Written into every planted file; no answer to a probe may contain it."""

_FILE_PROBES = [
    "SELECT * FROM read_csv('{d}/leak.csv')",
    "SELECT * FROM read_csv_auto('{d}/leak.csv')",
    "SELECT * FROM read_parquet('{d}/leak.parquet')",
    "SELECT * FROM parquet_scan('{d}/leak.parquet')",
    "SELECT * FROM read_json('{d}/leak.json')",
    "SELECT * FROM read_json_auto('{d}/leak.json')",
    "SELECT * FROM read_ndjson('{d}/leak.json')",
    "SELECT * FROM read_json_objects('{d}/leak.json')",
    "SELECT * FROM read_text('{d}/leak.csv')",
    "SELECT * FROM read_blob('{d}/leak.csv')",
    "SELECT * FROM glob('{d}/*')",
    "SELECT * FROM parquet_metadata('{d}/leak.parquet')",
    "SELECT * FROM parquet_schema('{d}/leak.parquet')",
    "SELECT * FROM parquet_file_metadata('{d}/leak.parquet')",
    "SELECT * FROM parquet_kv_metadata('{d}/leak.parquet')",
    "SELECT * FROM sniff_csv('{d}/leak.csv')",
    "SELECT * FROM read_duckdb('{d}/leak.db')",
    "SELECT * FROM '{d}/leak.csv'",
    "FROM '{d}/leak.parquet'",
    "SELECT * FROM query_table('{d}/leak.csv')",
    "SELECT * FROM query('SELECT * FROM read_text(''{d}/leak.csv'')')",
    "SELECT * FROM json_execute_serialized_sql("
    "json_serialize_sql('SELECT * FROM read_text(''{d}/leak.csv'')'))",
    "SELECT json_serialize_plan('SELECT * FROM read_csv(''{d}/leak.csv'')')",
    "DESCRIBE '{d}/leak.csv'",
    "SUMMARIZE '{d}/leak.csv'",
    "SHOW '{d}/leak.csv'",
    "SELECT (SELECT content FROM read_text('{d}/leak.csv'))",
    "SELECT 1 WHERE EXISTS (SELECT * FROM read_text('{d}/leak.csv') WHERE content LIKE '%s%')",
    "WITH f AS (SELECT * FROM read_blob('{d}/leak.csv')) SELECT * FROM f",
    "SELECT * FROM range(1) r, LATERAL (SELECT * FROM glob('{d}/*'))",
    "SELECT 1 UNION ALL SELECT size FROM read_blob('{d}/leak.csv')",
    "EXPLAIN SELECT * FROM read_csv('{d}/leak.csv')",
    "EXPLAIN ANALYZE SELECT * FROM read_text('{d}/leak.csv')",
    "COPY (SELECT 1) TO '{d}/out.csv'",
    "CREATE TABLE t AS SELECT * FROM read_csv('{d}/leak.csv')",
    "ATTACH '{d}/leak.db' AS leak",
    "CALL glob('{d}/*')",
    "IMPORT DATABASE '{d}'",
]

SETTING_PROBES = [
    "SELECT current_setting('temp_directory')",
    "SELECT current_setting('allowed_directories')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_temporary_files()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_databases",
    "SELECT * FROM pg_settings",
    "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'temp_directory'",
    "SELECT * FROM system.pg_catalog.pg_settings",
    "SELECT * FROM PG_SETTINGS",
    "SELECT * FROM duckdb_logs",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM pragma_show('temp_directory')",
    "SELECT getvariable('temp_directory')",
    "SELECT * FROM which_secret('s3://bucket/x', 's3')",
    "PRAGMA temp_directory",
    "SET temp_directory = '/'",
    "RESET temp_directory",
    "INSTALL httpfs",
    "LOAD httpfs",
]
"""Ways to read the server's settings (where the temp directory is) or to change them."""


def file_probes(directory: str) -> list[str]:
    """Every file-reading probe aimed at `directory` (absolute, or relative to the cwd)."""
    return [probe.format(d=directory) for probe in _FILE_PROBES]


def plant_files(directory: Path) -> None:
    """Put a CSV, a Parquet, a JSON and a text file holding `SECRET` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "leak.csv").write_text(f"token,n\n{SECRET},1\n")
    (directory / "leak.json").write_text(f'{{"token": "{SECRET}"}}\n')
    pq.write_table(pa.table({"token": [SECRET]}), directory / "leak.parquet")
