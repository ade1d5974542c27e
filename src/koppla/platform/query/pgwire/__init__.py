"""Koppla's PostgreSQL wire-protocol server (protocol 3.0) for psql, psycopg, SQLAlchemy, BI tools.

Decision: own asyncio code, no library. `riffq` 0.1.11 has no wheel for this platform and its
source build needs Rust crates fetched from GitHub. `buenavista` 0.5.0 is a thread-per-connection
`socketserver` that answers SSLRequest with 'N' (no TLS), authenticates only with MD5 against
one fixed password (a token cannot be checked that way), turns a CancelRequest into closing the
session, materialises every result before sending it, sets no limit on message or startup sizes
or startup time, and needs an adapter for duckdb 2.0. Fitting Koppla's engine (scoped
`QueryEngine.stream`, guard, slots, time limits), TLS, cancellation and bounded streaming into it
would replace most of it, so the protocol is written here, kept to what clients use.

Modules: `messages` (wire codec), `types` (DuckDB types as PG oids and text), `auth` (user /
database / token → scope), `commands` (SET, SHOW, transactions), `params` (Bind values),
`catalog` (answers to catalogue queries), `rows` (streamed engine results), `session` (one
connection), `server` (`PgServer`), `tls` (certificate), `process` (the `koppla up` child).
"""
