"""The schema registry's tenant part: field groups and tenant schemas in `<home>/schemas.sqlite`,
or in PostgreSQL when the processes of a deployment share it (`url`).

Everything belongs to one organization and sandbox; a lookup from another finds nothing. Every
change bumps one global generation counter, so a process holding composed schemas notices a
change with one cheap read (`generation`). A change is checked inside its write transaction:
the caller's `check` sees the organization's field groups and schemas before and after the
change and raises to refuse it, so nothing is stored unless the check passed against exactly
what is stored.

On PostgreSQL the generation is the same one-row counter: each change takes its row lock (and
every transaction the store's writer lock, see `koppla.core.pgfile`), so generations are
committed in the order they are numbered and `changes_since(n)` never misses a change numbered
below one it has seen, as a sequence (handed out before commit, in any commit order) could.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

from koppla.core import clock, codec
from koppla.core.database import Connection, open_db
from koppla.core.errors import Conflict, InvalidInput, NotFound
from koppla.platform.schemas.models import FieldGroup, Tenant, TenantSchema, new_id, resolve_key
from koppla.xdm.tenant import tenant_id

MAX_FIELD_GROUPS = 500
"""Field groups one organization may keep, all sandboxes together."""
MAX_SCHEMAS = 500
"""Tenant schemas one organization may keep, all sandboxes together."""
MAX_DEFINITION_BYTES = 65_536
"""The largest field group definition kept (as JSON): every process reads them all again after
any change."""
MAX_GROUPS_PER_SCHEMA = 100
"""Field groups one schema may include."""
MAX_TITLE_CHARS = 256
MAX_DESCRIPTION_CHARS = 4096

Check: TypeAlias = Callable[[Tenant, Tenant], None]
"""`check(before, after)`: raises to refuse a change (before and after are one tenant's
stored resources)."""

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS field_groups (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, title TEXT NOT NULL,
  description TEXT NOT NULL, definition TEXT NOT NULL, version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS field_groups_by_tenant ON field_groups (org_id, sandbox);
CREATE TABLE IF NOT EXISTS schemas (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, title TEXT NOT NULL,
  description TEXT NOT NULL, base TEXT NOT NULL, field_groups TEXT NOT NULL,
  version INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS schemas_by_tenant ON schemas (org_id, sandbox);
CREATE TABLE IF NOT EXISTS generation (
  one INTEGER PRIMARY KEY CHECK (one = 1), value INTEGER NOT NULL);
INSERT OR IGNORE INTO generation VALUES (1, 0);
CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY, gen INTEGER NOT NULL);
"""
_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS field_groups (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, title TEXT NOT NULL,
  description TEXT NOT NULL, definition TEXT NOT NULL, version BIGINT NOT NULL,
  created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS field_groups_by_tenant ON field_groups (org_id, sandbox);
CREATE TABLE IF NOT EXISTS schemas (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, title TEXT NOT NULL,
  description TEXT NOT NULL, base TEXT NOT NULL, field_groups TEXT NOT NULL,
  version BIGINT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS schemas_by_tenant ON schemas (org_id, sandbox);
CREATE TABLE IF NOT EXISTS generation (
  one INTEGER PRIMARY KEY CHECK (one = 1), value BIGINT NOT NULL);
INSERT INTO generation VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY, gen BIGINT NOT NULL);
"""
_COLUMNS = (  # the change that last touched each row (`changes_since`)
    ("field_groups", "gen", "INTEGER NOT NULL DEFAULT 0"),
    ("schemas", "gen", "INTEGER NOT NULL DEFAULT 0"),
)
_FG_COLUMNS = "id, org_id, sandbox, title, description, definition, version, created_ms, updated_ms"
_SCHEMA_COLUMNS = (
    "id, org_id, sandbox, title, description, base, field_groups, version, created_ms, updated_ms"
)


@dataclass(frozen=True, slots=True)
class Changes:
    """What `SchemaStore.changes_since` found."""

    generation: int
    field_groups: dict[str, FieldGroup]
    schemas: dict[str, TenantSchema]
    removed: frozenset[str]


class SchemaStore:
    """Tenant field groups and schemas, per organization and sandbox, in one SQLite file (or
    PostgreSQL)."""

    def __init__(self, path: Path, *, url: str = "") -> None:
        """The store in the SQLite file `path`, or, given a PostgreSQL `url`, there (`path`
        is then unused)."""
        self._db = open_db(path, _SQLITE_SCHEMA, url=url, pg_schema=_PG_SCHEMA, name="schemas")
        self._db.add_columns(_COLUMNS)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def generation(self) -> int:
        """A number that grows with every stored change (of any organization)."""
        row = self._db.one("SELECT value FROM generation WHERE one = 1")
        return int(row[0]) if row else 0

    def snapshot(self) -> tuple[int, dict[str, FieldGroup], dict[str, TenantSchema]]:
        """The generation and every field group and schema of every tenant, read together."""
        changes = self.changes_since(-1)
        return changes.generation, changes.field_groups, changes.schemas

    def changes_since(self, generation: int) -> Changes:
        """What changed after `generation` (of every tenant), read together: the field groups
        and schemas made or changed since, and the ids of those removed (-1: everything)."""
        with self._db.transaction() as db:
            now = int(db.execute("SELECT value FROM generation").fetchone()[0])
            groups = db.execute(
                f"SELECT {_FG_COLUMNS} FROM field_groups WHERE gen > ?", (generation,)
            ).fetchall()
            rows = db.execute(
                f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE gen > ?", (generation,)
            ).fetchall()
            gone = db.execute("SELECT id FROM removed WHERE gen > ?", (generation,)).fetchall()
        return Changes(
            now,
            {g.id: g for g in map(_field_group, groups)},
            {s.id: s for s in map(_schema, rows)},
            frozenset(str(r[0]) for r in gone),
        )

    def tenant(self, org_id: str, sandbox: str) -> Tenant:
        """One organization's field groups and schemas in one sandbox."""
        with self._db.transaction() as db:
            return _tenant(db, org_id, sandbox)

    def field_group(self, key: str, org_id: str, sandbox: str) -> FieldGroup:
        """The field group a key (id, URL-encoded id, altId) names; `NotFound` otherwise,
        also when it belongs to another organization or sandbox."""
        found = self.tenant(org_id, sandbox).field_groups.get(resolve_key(key, "mixins") or "")
        if found is None:
            raise NotFound(f"no field group {key!r} in this organization and sandbox")
        return found

    def schema(self, key: str, org_id: str, sandbox: str) -> TenantSchema:
        """The tenant schema a key names; `NotFound` otherwise (also another tenant's)."""
        found = self.tenant(org_id, sandbox).schemas.get(resolve_key(key, "schemas") or "")
        if found is None:
            raise NotFound(f"no schema {key!r} in this organization and sandbox")
        return found

    def create_field_group(
        self,
        org_id: str,
        sandbox: str,
        *,
        title: str,
        description: str,
        definition: Mapping[str, Any],
        check: Check,
    ) -> FieldGroup:
        """Store a new field group once `check` accepts it."""
        now = clock.now_ms()
        group = FieldGroup(
            id=new_id(tenant_id(org_id), "mixins"),
            org_id=org_id,
            sandbox=sandbox,
            title=_title(title),
            description=_description(description),
            definition=dict(definition),
            version=1,
            created_ms=now,
            updated_ms=now,
        )
        with self._db.transaction() as db:
            before = _tenant(db, org_id, sandbox)
            if _owned(db, "field_groups", org_id) >= MAX_FIELD_GROUPS:
                raise Conflict(f"an organization keeps at most {MAX_FIELD_GROUPS} field groups")
            _check_definition_size(group.definition)
            _unique_title(group.title, group.id, before.field_groups.values(), "field group")
            after = replace(before, field_groups={**before.field_groups, group.id: group})
            check(before, after)
            db.execute(
                f"INSERT INTO field_groups ({_FG_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                _fg_values(group),
            )
            _bump(db, "field_groups", group.id)
        return group

    def update_field_group(
        self,
        key: str,
        org_id: str,
        sandbox: str,
        *,
        change: Callable[[FieldGroup], tuple[str, str, Mapping[str, Any]]],
        check: Check,
    ) -> FieldGroup:
        """Change a field group: `change(current)` gives its new title, description and
        definition; stored (as the next version) once `check` accepts it. Nothing changes,
        and the version stays, when the result equals what is stored."""
        with self._db.transaction() as db:
            before = _tenant(db, org_id, sandbox)
            current = before.field_groups.get(resolve_key(key, "mixins") or "")
            if current is None:
                raise NotFound(f"no field group {key!r} in this organization and sandbox")
            title, description, definition = change(current)
            updated = replace(
                current,
                title=_title(title),
                description=_description(description),
                definition=dict(definition),
                version=current.version + 1,
                updated_ms=clock.now_ms(),
            )
            if _same_content(updated, current):
                return current
            _check_definition_size(updated.definition)
            _unique_title(updated.title, updated.id, before.field_groups.values(), "field group")
            after = replace(before, field_groups={**before.field_groups, updated.id: updated})
            check(before, after)
            db.execute(
                "UPDATE field_groups SET title = ?, description = ?, definition = ?, "
                "version = ?, updated_ms = ? WHERE id = ?",
                (
                    updated.title,
                    updated.description,
                    _json(updated.definition),
                    updated.version,
                    updated.updated_ms,
                    updated.id,
                ),
            )
            _bump(db, "field_groups", updated.id)
        return updated

    def delete_field_group(self, key: str, org_id: str, sandbox: str) -> None:
        """Delete a field group; `Conflict` while a schema includes it."""
        with self._db.transaction() as db:
            before = _tenant(db, org_id, sandbox)
            current = before.field_groups.get(resolve_key(key, "mixins") or "")
            if current is None:
                raise NotFound(f"no field group {key!r} in this organization and sandbox")
            users = before.users_of(current.id)
            if users:
                names = ", ".join(repr(s.title) for s in users)
                raise Conflict(
                    f"field group {current.title!r} is used by schema(s) {names}; "
                    "a field group in use cannot be deleted"
                )
            db.execute("DELETE FROM field_groups WHERE id = ?", (current.id,))
            _bump(db, "field_groups", current.id, removed=True)

    def delete_schema(
        self, key: str, org_id: str, sandbox: str, *, in_use: Callable[[str], bool]
    ) -> None:
        """Delete a tenant schema; `Conflict` while `in_use(schema id)` (a dataset follows
        it: its records would lose their schema)."""
        with self._db.transaction() as db:
            current = _tenant(db, org_id, sandbox).schemas.get(resolve_key(key, "schemas") or "")
            if current is None:
                raise NotFound(f"no schema {key!r} in this organization and sandbox")
            if in_use(current.id):
                raise Conflict(
                    f"schema {current.title!r} is the schema of a dataset; a schema in use "
                    "cannot be deleted"
                )
            db.execute("DELETE FROM schemas WHERE id = ?", (current.id,))
            _bump(db, "schemas", current.id, removed=True)

    def create_schema(
        self,
        org_id: str,
        sandbox: str,
        *,
        title: str,
        description: str,
        base: str,
        field_groups: Sequence[str],
        check: Check,
    ) -> TenantSchema:
        """Store a new tenant schema on built-in schema `base` once `check` accepts it."""
        now = clock.now_ms()
        schema = TenantSchema(
            id=new_id(tenant_id(org_id), "schemas"),
            org_id=org_id,
            sandbox=sandbox,
            title=_title(title),
            description=_description(description),
            base=base,
            field_groups=(),
            version=1,
            created_ms=now,
            updated_ms=now,
        )
        with self._db.transaction() as db:
            before = _tenant(db, org_id, sandbox)
            if _owned(db, "schemas", org_id) >= MAX_SCHEMAS:
                raise Conflict(f"an organization keeps at most {MAX_SCHEMAS} schemas")
            _unique_title(schema.title, schema.id, before.schemas.values(), "schema")
            schema = replace(schema, field_groups=_member_ids(before, field_groups))
            after = replace(before, schemas={**before.schemas, schema.id: schema})
            check(before, after)
            db.execute(
                f"INSERT INTO schemas ({_SCHEMA_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                _schema_values(schema),
            )
            _bump(db, "schemas", schema.id)
        return schema

    def update_schema(
        self,
        key: str,
        org_id: str,
        sandbox: str,
        *,
        change: Callable[[TenantSchema], tuple[str, str, Sequence[str]]],
        check: Check,
    ) -> TenantSchema:
        """Change a tenant schema: `change(current)` gives its new title, description and
        field group ids (its base stays); stored once `check` accepts it. Nothing changes
        when the result equals what is stored."""
        with self._db.transaction() as db:
            before = _tenant(db, org_id, sandbox)
            current = before.schemas.get(resolve_key(key, "schemas") or "")
            if current is None:
                raise NotFound(f"no schema {key!r} in this organization and sandbox")
            title, description, groups = change(current)
            updated = replace(
                current,
                title=_title(title),
                description=_description(description),
                field_groups=_member_ids(before, groups),
                version=current.version + 1,
                updated_ms=clock.now_ms(),
            )
            if (updated.title, updated.description, updated.field_groups) == (
                current.title,
                current.description,
                current.field_groups,
            ):
                return current
            _unique_title(updated.title, updated.id, before.schemas.values(), "schema")
            after = replace(before, schemas={**before.schemas, updated.id: updated})
            check(before, after)
            db.execute(
                "UPDATE schemas SET title = ?, description = ?, field_groups = ?, version = ?, "
                "updated_ms = ? WHERE id = ?",
                (
                    updated.title,
                    updated.description,
                    _json(list(updated.field_groups)),
                    updated.version,
                    updated.updated_ms,
                    updated.id,
                ),
            )
            _bump(db, "schemas", updated.id)
        return updated


def _tenant(db: Connection, org_id: str, sandbox: str) -> Tenant:
    where = "WHERE org_id = ? AND sandbox = ? ORDER BY created_ms, id"
    groups = db.execute(f"SELECT {_FG_COLUMNS} FROM field_groups {where}", (org_id, sandbox))
    found = [_field_group(r) for r in groups]
    rows = db.execute(f"SELECT {_SCHEMA_COLUMNS} FROM schemas {where}", (org_id, sandbox))
    schemas = [_schema(r) for r in rows]
    return Tenant(org_id, sandbox, {g.id: g for g in found}, {s.id: s for s in schemas})


def _member_ids(tenant: Tenant, given: Sequence[str]) -> tuple[str, ...]:
    """The field group ids a schema lists, each resolved in the tenant, in order, once."""
    if len(given) > MAX_GROUPS_PER_SCHEMA:
        raise InvalidInput(
            f"a schema includes at most {MAX_GROUPS_PER_SCHEMA} field groups", field="allOf"
        )
    out: list[str] = []
    for key in given:
        group_id = resolve_key(key, "mixins")
        if group_id is None or group_id not in tenant.field_groups:
            raise InvalidInput(
                f"allOf: no field group {key!r} in this organization and sandbox", field="allOf"
            )
        if group_id not in out:
            out.append(group_id)
    return tuple(out)


def _unique_title(title: str, own_id: str, others: Any, what: str) -> None:
    for other in others:
        if other.title == title and other.id != own_id:
            raise Conflict(f"title must be unique: {what} {other.id} has the title {title!r}")


def _title(title: str) -> str:
    if not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise InvalidInput(
            f"title is required (at most {MAX_TITLE_CHARS} characters)", field="title"
        )
    return title


def _description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidInput(
            f"description is at most {MAX_DESCRIPTION_CHARS} characters", field="description"
        )
    return description


def _same_content(one: FieldGroup, other: FieldGroup) -> bool:
    return (one.title, one.description, _json(one.definition)) == (
        other.title,
        other.description,
        _json(other.definition),
    )


def _bump(db: Connection, table: str, row_id: str, *, removed: bool = False) -> None:
    """Count one more change, and mark the row of `table` it made (or its removal) with it,
    so `changes_since` finds it."""
    db.execute("UPDATE generation SET value = value + 1 WHERE one = 1")
    (generation,) = db.execute("SELECT value FROM generation WHERE one = 1").fetchone()
    if removed:
        db.execute(
            "INSERT INTO removed VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET gen = excluded.gen",
            (row_id, generation),
        )
    else:
        db.execute(f"UPDATE {table} SET gen = ? WHERE id = ?", (generation, row_id))


def _json(value: Any) -> str:
    return codec.dumps(value, sort_keys=True).decode()


def _fg_values(group: FieldGroup) -> tuple[object, ...]:
    return (
        group.id,
        group.org_id,
        group.sandbox,
        group.title,
        group.description,
        _json(group.definition),
        group.version,
        group.created_ms,
        group.updated_ms,
    )


def _schema_values(schema: TenantSchema) -> tuple[object, ...]:
    return (
        schema.id,
        schema.org_id,
        schema.sandbox,
        schema.title,
        schema.description,
        schema.base,
        _json(list(schema.field_groups)),
        schema.version,
        schema.created_ms,
        schema.updated_ms,
    )


def _field_group(row: tuple[Any, ...]) -> FieldGroup:
    return FieldGroup(
        id=str(row[0]),
        org_id=str(row[1]),
        sandbox=str(row[2]),
        title=str(row[3]),
        description=str(row[4]),
        definition=codec.loads(row[5]),
        version=int(row[6]),
        created_ms=int(row[7]),
        updated_ms=int(row[8]),
    )


def _schema(row: tuple[Any, ...]) -> TenantSchema:
    return TenantSchema(
        id=str(row[0]),
        org_id=str(row[1]),
        sandbox=str(row[2]),
        title=str(row[3]),
        description=str(row[4]),
        base=str(row[5]),
        field_groups=tuple(str(g) for g in codec.loads(row[6])),
        version=int(row[7]),
        created_ms=int(row[8]),
        updated_ms=int(row[9]),
    )


def _owned(db: Connection, table: str, org_id: str) -> int:
    """How many rows of `table` (`field_groups` or `schemas`) an organization keeps, in every
    sandbox (a sandbox name costs nothing to make up, so limits count across them)."""
    row = db.execute(f"SELECT count(*) FROM {table} WHERE org_id = ?", (org_id,)).fetchone()
    return int(row[0])


def _check_definition_size(definition: Mapping[str, Any]) -> None:
    size = len(_json(definition))
    if size > MAX_DEFINITION_BYTES:
        raise InvalidInput(
            f"the field group's definition is {size} bytes as JSON; at most "
            f"{MAX_DEFINITION_BYTES} are kept",
            field="definitions",
        )
