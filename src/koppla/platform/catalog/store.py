"""The catalog store: datastreams, datasets, batches, tokens and credentials, in one database.

Everything but batches belongs to an organization (and datasets and datastreams to a sandbox);
methods taking `org_id` (and `sandbox`) see only that organization's part, `None` sees all.

A SQLite file under the home (WAL mode: one writer at a time, any number of readers, safe across
the processes of one machine), or PostgreSQL for processes on several machines (`url`; one writer
at a time too, see `koppla.core.pgfile`). Both hold the same tables and behave the same.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from koppla.core import clock, codec, ids
from koppla.core.database import Connection, Dialect, integrity_errors, open_db
from koppla.core.errors import Conflict, NotFound
from koppla.platform.catalog import access
from koppla.platform.catalog.access import (
    DEFAULT_SANDBOX,
    Access,
    AuthType,
    Credential,
    Principal,
    TokenInfo,
    TokenKind,
)
from koppla.platform.catalog.models import (
    BATCH_STATUSES,
    DEFAULT_ORG_ID,
    Batch,
    BatchError,
    BatchStatus,
    Dataset,
    Datastream,
    check_dataset_name,
    check_datastream_id,
    check_org_id,
    check_origin,
    check_sandbox,
)

_SQLITE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, schema_id TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datastreams (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL,
  event_dataset_id TEXT NOT NULL REFERENCES datasets(id),
  profile_dataset_id TEXT REFERENCES datasets(id),
  allowed_origins TEXT NOT NULL DEFAULT '[]', created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, status TEXT NOT NULL,
  records INTEGER NOT NULL, failed_records INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  completed_ms INTEGER, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_dataset ON batches(dataset_id, created_ms);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches(status, created_ms);
CREATE TABLE IF NOT EXISTS consents (
  org_id TEXT NOT NULL, ecid TEXT NOT NULL, general TEXT NOT NULL, updated_ms INTEGER NOT NULL,
  PRIMARY KEY (org_id, ecid));
CREATE INDEX IF NOT EXISTS consents_by_age ON consents(updated_ms);
CREATE TABLE IF NOT EXISTS consent_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, org_id TEXT NOT NULL, ecid TEXT NOT NULL,
  general TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
  datastream_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
  PRIMARY KEY (datastream_id, name));
CREATE TABLE IF NOT EXISTS api_tokens (
  digest TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL);
"""
    + access.SCHEMA
)

_PG_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, schema_id TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS datastreams (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL,
  event_dataset_id TEXT NOT NULL REFERENCES datasets(id),
  profile_dataset_id TEXT REFERENCES datasets(id),
  allowed_origins TEXT NOT NULL DEFAULT '[]', created_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, status TEXT NOT NULL,
  records BIGINT NOT NULL, failed_records BIGINT NOT NULL, created_ms BIGINT NOT NULL,
  completed_ms BIGINT, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS batches_by_dataset ON batches(dataset_id, created_ms);
CREATE INDEX IF NOT EXISTS batches_by_status ON batches(status, created_ms);
CREATE TABLE IF NOT EXISTS consents (
  org_id TEXT NOT NULL, ecid TEXT NOT NULL, general TEXT NOT NULL, updated_ms BIGINT NOT NULL,
  seq BIGSERIAL NOT NULL, PRIMARY KEY (org_id, ecid));
CREATE INDEX IF NOT EXISTS consents_by_age ON consents(updated_ms);
CREATE TABLE IF NOT EXISTS consent_changes (
  seq BIGSERIAL PRIMARY KEY, org_id TEXT NOT NULL, ecid TEXT NOT NULL, general TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
  datastream_id TEXT NOT NULL, name TEXT NOT NULL, value BIGINT NOT NULL,
  PRIMARY KEY (datastream_id, name));
CREATE TABLE IF NOT EXISTS api_tokens (
  digest TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms BIGINT NOT NULL);
"""
    + access.PG_SCHEMA
)
"""The same tables in PostgreSQL: 64-bit integers, sequences for AUTOINCREMENT, and `seq` in
`consents` for SQLite's `rowid` (the order opt-outs were first stored in); the columns of
`_MIGRATIONS` are added on open, as to a SQLite file."""

_INSERT_ORDER: dict[Dialect, str] = {"sqlite": "rowid", "postgresql": "seq"}
"""The column numbering a table's rows in the order they were inserted (consents)."""

_WAITING_HINT: dict[Dialect, str] = {"sqlite": " INDEXED BY batches_waiting", "postgresql": ""}
"""SQLite's planner is told to use the partial index; PostgreSQL's finds it."""

CONSENT_CHANGES_KEPT = 100_000

_DATASET_COLUMNS = "id, name, schema_id, created_ms, description, profile_enabled, org_id, sandbox"
_DATASTREAM_COLUMNS = (
    "id, org_id, name, event_dataset_id, profile_dataset_id, allowed_origins, created_ms, sandbox"
)

_BATCH_COLUMNS = (
    "id, dataset_id, status, records, failed_records, created_ms, completed_ms, source, "
    "input_format, multiline_json, file_count, input_bytes, duplicates, errors, created_by, "
    "started_ms, updated_ms, records_read"
)

_BATCH_REPLACE = ", ".join(
    f"{column} = excluded.{column}" for column in _BATCH_COLUMNS.split(", ")[1:]
)
"""Every column but the id, from the row offered: `record_batch` replaces a stored batch."""

_MIGRATIONS = (
    ("datasets", "profile_enabled", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "input_format", "TEXT NOT NULL DEFAULT ''"),
    ("batches", "multiline_json", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "file_count", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "input_bytes", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "duplicates", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "errors", "TEXT NOT NULL DEFAULT '[]'"),
    ("batches", "created_by", "TEXT NOT NULL DEFAULT ''"),
    ("batches", "started_ms", "INTEGER"),
    ("batches", "updated_ms", "INTEGER"),
    ("batches", "records_read", "INTEGER"),
    ("datasets", "org_id", "TEXT NOT NULL DEFAULT ''"),
    ("datasets", "sandbox", "TEXT NOT NULL DEFAULT 'prod'"),
    ("datastreams", "sandbox", "TEXT NOT NULL DEFAULT 'prod'"),
    *access.TOKEN_COLUMNS,
)
"""Columns added after a catalog file may have been created: (table, column, definition)."""

_WAITING_INDEX = (
    "CREATE INDEX IF NOT EXISTS batches_waiting ON batches(started_ms, id) "
    "WHERE status = 'processing' AND input_format <> ''"
)
"""The ingestion batches waiting for the pipeline, oldest completed first."""

_EXPIRY_INDEX = (
    "CREATE INDEX IF NOT EXISTS api_tokens_by_expiry ON api_tokens(expires_ms) "
    "WHERE expires_ms IS NOT NULL"
)
"""Tokens that expire (IMS access tokens, a command's own): expired ones are dropped by it."""


class Catalog:
    """Read and change the catalog; every method is one short transaction."""

    def __init__(self, path: Path, *, url: str = "") -> None:
        """The catalog in the SQLite file `path`, or, given a PostgreSQL `url`, there (its
        tables are made on first open; `path` is then unused)."""
        self._file = open_db(
            path,
            _SQLITE_SCHEMA,
            url=url,
            pg_schema=_PG_SCHEMA,
            name="catalog",
            foreign_keys=True,
        )
        self._file.add_columns(_MIGRATIONS)
        with self._write() as db:  # after the migrations: they index columns they add
            db.execute(_WAITING_INDEX)
            db.execute(_EXPIRY_INDEX)
            self._default_org = _adopt_orphans(db)
        self.access = Access(self._file, self._default_org)

    @property
    def dialect(self) -> Dialect:
        """Where it lives: "sqlite" (a file under the home) or "postgresql"."""
        return self._file.dialect

    def default_org(self) -> str:
        """The home's organization: the owner of data made before organizations existed."""
        return self._default_org

    def close(self) -> None:
        """Close the connection."""
        self._file.close()

    def _all(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        return self._file.all(sql, args)

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> tuple[Any, ...] | None:
        return self._file.one(sql, args)

    def _write(self) -> AbstractContextManager[Connection]:
        return self._file.transaction()

    # datasets
    def create_dataset(
        self,
        name: str,
        *,
        schema_id: str,
        description: str = "",
        dataset_id: str | None = None,
        profile_enabled: bool = False,
        org_id: str | None = None,
        sandbox: str = DEFAULT_SANDBOX,
    ) -> Dataset:
        """Create a dataset; `Conflict` if the name is taken (names are table names in SQL, so
        they are unique across organizations)."""
        dataset = Dataset(
            id=dataset_id or ids.new_hex_id(),
            name=check_dataset_name(name),
            schema_id=schema_id,
            created_ms=clock.now_ms(),
            description=description,
            profile_enabled=profile_enabled,
            org_id=check_org_id(org_id or self._default_org),
            sandbox=check_sandbox(sandbox),
        )
        try:
            with self._write() as db:
                db.execute(
                    f"INSERT INTO datasets ({_DATASET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        dataset.id,
                        dataset.name,
                        dataset.schema_id,
                        dataset.created_ms,
                        description,
                        int(profile_enabled),
                        dataset.org_id,
                        dataset.sandbox,
                    ),
                )
        except integrity_errors() as error:
            raise Conflict(f"a dataset named {name!r} or with id {dataset.id!r} exists") from error
        return dataset

    def datasets(self, org_id: str | None = None, sandbox: str | None = None) -> list[Dataset]:
        """Every dataset (of one organization, and sandbox), by name."""
        rows = self._all(f"SELECT {_DATASET_COLUMNS} FROM datasets ORDER BY name")
        found = [_dataset(row) for row in rows]
        return [d for d in found if _within(d.org_id, d.sandbox, org_id, sandbox)]

    def dataset(self, key: str, org_id: str | None = None, sandbox: str | None = None) -> Dataset:
        """The dataset with id or name `key` (in that organization and sandbox); `NotFound`
        otherwise, also when it exists elsewhere."""
        row = self._one(
            f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id = ? OR name = ?", (key, key)
        )
        found = None if row is None else _dataset(row)
        if found is None or not _within(found.org_id, found.sandbox, org_id, sandbox):
            raise NotFound(f"no dataset with id or name {key!r}")
        return found

    def set_profile_enabled(self, key: str, enabled: bool) -> Dataset:
        """Enable (or disable) a dataset for Profile; `NotFound` for an unknown dataset."""
        dataset = self.dataset(key)
        with self._write() as db:
            db.execute(
                "UPDATE datasets SET profile_enabled = ? WHERE id = ?", (int(enabled), dataset.id)
            )
        return self.dataset(dataset.id)

    def set_dataset_schema(self, key: str, schema_id: str) -> Dataset:
        """Move a dataset onto the schema `schema_id`; `NotFound` for an unknown dataset.

        The catalog does not know schemas: the caller checks that the new schema keeps every
        field of the old one (`koppla.platform.schemas.rules.check_dataset_move`); the pipeline,
        the writer of the dataset's table, adds the new schema's fields within a step. Every
        process reads a dataset's schema id from here.
        """
        dataset = self.dataset(key)
        with self._write() as db:
            db.execute("UPDATE datasets SET schema_id = ? WHERE id = ?", (schema_id, dataset.id))
        return self.dataset(dataset.id)

    # datastreams
    def create_datastream(
        self,
        *,
        org_id: str,
        event_dataset: str,
        name: str = "",
        profile_dataset: str | None = None,
        allowed_origins: tuple[str, ...] = (),
        datastream_id: str | None = None,
        sandbox: str = DEFAULT_SANDBOX,
    ) -> Datastream:
        """Create a datastream for `org_id` that lands events in `event_dataset` (id or name),
        a dataset of the same organization and sandbox."""
        check_org_id(org_id)
        events = self.dataset(event_dataset, org_id, sandbox)
        profiles = self.dataset(profile_dataset, org_id, sandbox) if profile_dataset else None
        if profiles is not None and profiles.id == events.id:
            raise Conflict("the profile dataset must differ from the event dataset")
        stream = Datastream(
            id=check_datastream_id(datastream_id or ids.new_uuid()),
            org_id=check_org_id(org_id),
            name=name or events.name,
            event_dataset_id=events.id,
            profile_dataset_id=profiles.id if profiles else None,
            allowed_origins=tuple(check_origin(o) for o in allowed_origins),
            created_ms=clock.now_ms(),
            sandbox=check_sandbox(sandbox),
        )
        try:
            with self._write() as db:
                db.execute(
                    f"INSERT INTO datastreams ({_DATASTREAM_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stream.id,
                        stream.org_id,
                        stream.name,
                        stream.event_dataset_id,
                        stream.profile_dataset_id,
                        codec.dumps(list(stream.allowed_origins)).decode(),
                        stream.created_ms,
                        stream.sandbox,
                    ),
                )
        except integrity_errors() as error:
            raise Conflict(f"a datastream with id {stream.id!r} exists") from error
        return stream

    def set_profile_dataset(self, datastream_id: str, dataset: str) -> Datastream:
        """Make `dataset` (id or name) the datastream's profile dataset."""
        stream = self.datastream(datastream_id)
        profiles = self.dataset(dataset, stream.org_id, stream.sandbox)
        if profiles.id == stream.event_dataset_id:
            raise Conflict("the profile dataset must differ from the event dataset")
        with self._write() as db:
            db.execute(
                "UPDATE datastreams SET profile_dataset_id = ? WHERE id = ?",
                (profiles.id, stream.id),
            )
        return self.datastream(stream.id)

    def datastreams(
        self, org_id: str | None = None, sandbox: str | None = None
    ) -> list[Datastream]:
        """Every datastream (of one organization, and sandbox)."""
        rows = self._all(f"SELECT {_DATASTREAM_COLUMNS} FROM datastreams ORDER BY created_ms")
        found = [_datastream(row) for row in rows]
        return [s for s in found if _within(s.org_id, s.sandbox, org_id, sandbox)]

    def datastream(
        self, datastream_id: str, org_id: str | None = None, sandbox: str | None = None
    ) -> Datastream:
        """The datastream `datastream_id` (of that organization and sandbox); `NotFound`
        otherwise."""
        row = self._one(
            f"SELECT {_DATASTREAM_COLUMNS} FROM datastreams WHERE id = ?", (datastream_id,)
        )
        found = None if row is None else _datastream(row)
        if found is None or not _within(found.org_id, found.sandbox, org_id, sandbox):
            raise NotFound(f"no datastream with id {datastream_id!r}")
        return found

    # batches
    def record_batch(self, batch: Batch) -> None:
        """Store `batch`, replacing an earlier record of the same id (replays are idempotent)."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT(id) DO UPDATE SET {_BATCH_REPLACE}",
                _batch_values(batch),
            )

    def change_batch(self, batch: Batch, *, expect: tuple[BatchStatus, ...]) -> bool:
        """Store `batch` only if the stored batch of its id has one of the statuses `expect`.

        Returns whether it was stored: a compare-and-set, so that two processes moving the same
        batch on (a client completing it, the pipeline finishing it) never overwrite each other.
        """
        marks = ", ".join("?" * len(expect))
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE batches SET ({_BATCH_COLUMNS}) = "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"WHERE id = ? AND status IN ({marks})",
                (*_batch_values(batch), batch.id, *expect),
            )
            return cursor.rowcount == 1

    def batches(
        self,
        *,
        dataset_id: str | None = None,
        limit: int = 100,
        status: BatchStatus | None = None,
        org_id: str | None = None,
        sandbox: str | None = None,
    ) -> list[Batch]:
        """The newest batches first, of one dataset or of all (of one organization, and
        sandbox), optionally of one status."""
        query = f"SELECT {_BATCH_COLUMNS} FROM batches"
        conditions: list[str] = []
        args: list[object] = []
        if dataset_id:
            conditions.append("dataset_id = ?")
            args.append(dataset_id)
        if org_id is not None or sandbox is not None:
            owned = [d.id for d in self.datasets(org_id, sandbox)]
            conditions.append(f"dataset_id IN ({', '.join('?' * len(owned)) or 'NULL'})")
            args.extend(owned)
        if status:
            conditions.append("status = ?")
            args.append(status)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        query += " ORDER BY created_ms DESC, id LIMIT ?"
        rows = self._all(query, (*args, limit))
        return [_batch(row) for row in rows]

    def next_ingestion_batch(self, skip: Collection[str] = ()) -> Batch | None:
        """The ingestion batch that has waited longest in `processing` (completed first), not
        one of `skip`; None when none waits. One indexed query, however many wait."""
        marks = ", ".join("?" * len(skip))
        excluded = f" AND id NOT IN ({marks})" if skip else ""
        row = self._one(
            f"SELECT {_BATCH_COLUMNS} FROM batches{_WAITING_HINT[self._file.dialect]} "
            f"WHERE status = 'processing' AND input_format <> ''{excluded} "
            "ORDER BY started_ms, id LIMIT 1",
            tuple(skip),
        )
        return None if row is None else _batch(row)

    def batch(self, batch_id: str, org_id: str | None = None, sandbox: str | None = None) -> Batch:
        """The batch `batch_id` (of a dataset of that organization and sandbox); `NotFound`
        otherwise."""
        row = self._one(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
        if row is None:
            raise NotFound(f"no batch with id {batch_id!r}")
        found = _batch(row)
        if org_id is not None or sandbox is not None:
            try:
                self.dataset(found.dataset_id, org_id, sandbox)
            except NotFound:
                raise NotFound(f"no batch with id {batch_id!r}") from None
        return found

    # consent and counters
    def set_consent(self, org_id: str, ecid: str, general: str) -> None:
        """Record a visitor's general consent for an organization.

        Only opt-outs are stored: `in` is what an unknown visitor gets anyway, so it removes the
        visitor's row. Every choice is also appended to a short change log (`consent_changes`),
        from which the edge processes keep their copies current.
        """
        with self._write() as db:
            if general == "out":
                db.execute(
                    "INSERT INTO consents (org_id, ecid, general, updated_ms) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(org_id, ecid) "
                    "DO UPDATE SET general = excluded.general, updated_ms = excluded.updated_ms",
                    (org_id, ecid, general, clock.now_ms()),
                )
            else:
                db.execute("DELETE FROM consents WHERE org_id = ? AND ecid = ?", (org_id, ecid))
            _log_consents(db, [(org_id, ecid, "out" if general == "out" else "in")])

    def trim_consents(self, max_out: int) -> int:
        """Forget the oldest opt-outs beyond `max_out`; returns how many were forgotten."""
        order = _INSERT_ORDER[self._file.dialect]
        with self._write() as db:
            (count,) = db.execute("SELECT count(*) FROM consents").fetchone()
            excess = int(count) - max_out
            if excess <= 0:
                return 0
            dropped = db.execute(
                f"DELETE FROM consents WHERE {order} IN (SELECT {order} FROM consents "
                f"ORDER BY updated_ms, {order} LIMIT ?) RETURNING org_id, ecid",
                (excess,),
            ).fetchall()
            _log_consents(db, [(str(org), str(ecid), "in") for org, ecid in dropped])
        return len(dropped)

    def consents_out(self) -> set[tuple[str, str]]:
        """Every `(org_id, ecid)` whose consent is `out`."""
        rows = self._all("SELECT org_id, ecid FROM consents WHERE general = 'out'")
        return {(str(org), str(ecid)) for org, ecid in rows}

    def consent_seq(self) -> int:
        """The number of the newest consent change (0 before any)."""
        row = self._one("SELECT max(seq) FROM consent_changes")
        return 0 if row is None or row[0] is None else int(row[0])

    def consent_changes(self, after: int) -> list[tuple[int, str, str, str]] | None:
        """`(seq, org_id, ecid, general)` of each consent change after `after`, oldest first.

        None when the log, which keeps only the newest `CONSENT_CHANGES_KEPT` changes, no longer
        reaches back to `after`: the caller then reloads `consents_out()`.
        """
        row = self._one("SELECT min(seq) FROM consent_changes")
        if row is not None and row[0] is not None and int(row[0]) > after + 1:
            return None
        rows = self._all(
            "SELECT seq, org_id, ecid, general FROM consent_changes WHERE seq > ? ORDER BY seq",
            (after,),
        )
        return [(int(seq), str(org), str(ecid), str(general)) for seq, org, ecid, general in rows]

    def add_to_counter(self, datastream_id: str, name: str, amount: int) -> None:
        """Add `amount` to a datastream's counter `name`."""
        with self._write() as db:
            db.execute(
                "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT(datastream_id, name) "
                "DO UPDATE SET value = counters.value + excluded.value",
                (datastream_id, name, amount),
            )

    def counters(self, datastream_id: str) -> dict[str, int]:
        """A datastream's counters by name."""
        rows = self._all(
            "SELECT name, value FROM counters WHERE datastream_id = ?", (datastream_id,)
        )
        return {str(name): int(value) for name, value in rows}

    # tokens and credentials (see `access.Access`)
    def add_token(
        self,
        name: str,
        *,
        org_id: str | None = None,
        sandbox: str = DEFAULT_SANDBOX,
        expires_s: float | None = None,
        client_id: str = "",
        scopes: tuple[str, ...] = (),
        kind: TokenKind = "token",
    ) -> str:
        """Create an API token and return it; only its digest is stored."""
        return self.access.add_token(
            name,
            org_id=org_id,
            sandbox=sandbox,
            expires_s=expires_s,
            client_id=client_id,
            scopes=scopes,
            kind=kind,
        )

    def remove_token(self, token: str) -> None:
        """Revoke `token`."""
        self.access.revoke_token(token)

    def revoke_token(self, token_or_id: str) -> bool:
        """Revoke a token given itself or its id; True when one was revoked."""
        return self.access.revoke_token(token_or_id)

    def principal(self, token: str) -> Principal | None:
        """The holder of a valid `token`, or None."""
        return self.access.principal(token)

    def token_name(self, token: str) -> str | None:
        """The name of the holder of `token`, or None when it is not a valid token."""
        holder = self.access.principal(token)
        return None if holder is None else holder.name

    def tokens(self, org_id: str | None = None) -> list[TokenInfo]:
        """The unexpired tokens (of one organization)."""
        return self.access.tokens(org_id)

    def has_tokens(self) -> bool:
        """True once any API token exists."""
        return self.access.has_tokens()

    def create_credential(
        self,
        name: str,
        *,
        org_id: str | None = None,
        scopes: tuple[str, ...] = access.DEFAULT_SCOPES,
        auth_type: AuthType = "oauth_server_to_server",
        public_key_pem: str | None = None,
    ) -> tuple[Credential, str]:
        """A new service credential and its client secret (shown once)."""
        if org_id is not None:
            check_org_id(org_id)
        return self.access.create_credential(
            name, org_id=org_id, scopes=scopes, auth_type=auth_type, public_key_pem=public_key_pem
        )

    def credentials(self, org_id: str | None = None) -> list[Credential]:
        """The service credentials (of one organization)."""
        return self.access.credentials(org_id)

    def revoke_credential(self, client_id: str) -> bool:
        """Revoke a credential and its access tokens; True when it was active."""
        return self.access.revoke_credential(client_id)


def _within(org_id: str, sandbox: str, want_org: str | None, want_sandbox: str | None) -> bool:
    """True when an organization's thing is in the wanted organization and sandbox (None: any)."""
    return (want_org is None or org_id == want_org) and (
        want_sandbox is None or sandbox == want_sandbox
    )


def _adopt_orphans(db: Connection) -> str:
    """The home's organization (set on first open), given to datasets made before
    organizations: each takes the organization of a datastream landing in it, else the home's."""
    default = access.read_meta(db, "default_org")
    if default is None:
        # An older home's tokens acted for any organization; they now act for the home's. When
        # its datastreams name one organization besides the demo's, that is the shop's: its
        # tokens keep reaching its data (the demo's stays reachable with `--org`).
        named = {
            str(org)
            for (org,) in db.execute("SELECT DISTINCT org_id FROM datastreams").fetchall()
            if org != DEFAULT_ORG_ID
        }
        default = named.pop() if len(named) == 1 else DEFAULT_ORG_ID
        db.execute("INSERT INTO meta VALUES ('default_org', ?)", (default,))
    db.execute(
        "UPDATE datasets SET org_id = coalesce((SELECT s.org_id FROM datastreams s "
        "WHERE s.event_dataset_id = datasets.id OR s.profile_dataset_id = datasets.id "
        "ORDER BY s.created_ms LIMIT 1), ?) WHERE org_id = ''",
        (default,),
    )
    return default


def _log_consents(db: Connection, changes: list[tuple[str, str, str]]) -> None:
    """Append consent changes to the log and drop the log's oldest entries past its size."""
    if not changes:
        return
    db.executemany("INSERT INTO consent_changes (org_id, ecid, general) VALUES (?, ?, ?)", changes)
    db.execute(
        "DELETE FROM consent_changes WHERE seq <= (SELECT max(seq) FROM consent_changes) - ?",
        (CONSENT_CHANGES_KEPT,),
    )


def _dataset(row: tuple[Any, ...]) -> Dataset:
    return Dataset(
        id=str(row[0]),
        name=str(row[1]),
        schema_id=str(row[2]),
        created_ms=int(row[3]),
        description=str(row[4]),
        profile_enabled=bool(row[5]),
        org_id=str(row[6]),
        sandbox=str(row[7]),
    )


def _datastream(row: tuple[object, ...]) -> Datastream:
    origins = codec.loads(str(row[5]))
    return Datastream(
        id=str(row[0]),
        org_id=str(row[1]),
        name=str(row[2]),
        event_dataset_id=str(row[3]),
        profile_dataset_id=None if row[4] is None else str(row[4]),
        allowed_origins=tuple(origins),
        created_ms=int(str(row[6])),
        sandbox=str(row[7]),
    )


def _batch_values(batch: Batch) -> tuple[object, ...]:
    errors = [[e.code, e.description, e.record_count] for e in batch.errors]
    return (
        batch.id,
        batch.dataset_id,
        batch.status,
        batch.records,
        batch.failed_records,
        batch.created_ms,
        batch.completed_ms,
        batch.source,
        batch.input_format,
        int(batch.multiline_json),
        batch.file_count,
        batch.input_bytes,
        batch.duplicates,
        codec.dumps(errors).decode(),
        batch.created_by,
        batch.started_ms,
        batch.updated_ms,
        batch.records_read,
    )


def _batch(row: tuple[Any, ...]) -> Batch:
    status: BatchStatus = "failed"
    for known in BATCH_STATUSES:
        if row[2] == known:
            status = known
    errors = tuple(
        BatchError(str(code), str(description), int(count))
        for code, description, count in codec.loads(str(row[13]))
    )
    return Batch(
        id=str(row[0]),
        dataset_id=str(row[1]),
        status=status,
        records=int(row[3]),
        failed_records=int(row[4]),
        created_ms=int(row[5]),
        completed_ms=None if row[6] is None else int(row[6]),
        source=str(row[7]),
        input_format=str(row[8]),
        multiline_json=bool(row[9]),
        file_count=int(row[10]),
        input_bytes=int(row[11]),
        duplicates=int(row[12]),
        errors=errors,
        created_by=str(row[14]),
        started_ms=None if row[15] is None else int(row[15]),
        updated_ms=None if row[16] is None else int(row[16]),
        records_read=None if row[17] is None else int(row[17]),
    )
