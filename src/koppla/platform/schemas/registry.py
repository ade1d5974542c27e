"""The schema registry of a Koppla home: the built-in schemas plus the tenant schemas stored in
`<home>/schemas.sqlite` or PostgreSQL (see `koppla.platform.schemas.store`), composed.

Every process of a home (web, pipeline, profiles) holds one `HomeRegistry`. A tenant schema is
composed once and cached; the store's generation is read at most every `CHECK_EVERY_S` (or on
demand, `refresh`), and when it moved the schemas whose stored parts changed are composed anew
into new `Schema` objects. Unchanged schemas keep their object, so caches keyed on a schema
object (compiled validators, Arrow layouts) stay warm.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from koppla.core import clock
from koppla.core.errors import NotFound
from koppla.core.layout import Layout
from koppla.platform.schemas.models import FieldGroup, TenantSchema
from koppla.platform.schemas.rules import compose_schema
from koppla.platform.schemas.store import SchemaStore
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.2
"""How stale a tenant schema may be: the store's generation is read at most this often."""

_Print = tuple[int, str, tuple[tuple[str, int], ...]]


class HomeRegistry(SchemaRegistry):
    """Built-in schemas plus the home's tenant schemas, composed and kept current.

    `ids()` and `register` concern the built-in schemas; `get` and `in` also know every tenant
    schema (of every organization: a dataset's schema id is trusted as stored; callers that act
    for an organization check `usable` first).
    """

    def __init__(
        self,
        path: Path,
        builtins: Iterable[Schema] = (),
        *,
        check_every_s: float = CHECK_EVERY_S,
        url: str = "",
    ) -> None:
        schemas = list(builtins) or [commerce_experience_event(), commerce_profile()]
        super().__init__(schemas)
        self.builtins = SchemaRegistry(schemas)
        """The built-in schemas alone."""
        self._path = path
        self._url = url
        self._check_every_s = check_every_s
        self._store: SchemaStore | None = None
        self._lock = threading.RLock()
        self._generation = -1
        self._checked_at = float("-inf")
        self._tenant: dict[str, Schema] = {}
        self._stored: dict[str, TenantSchema] = {}
        self._groups: dict[str, FieldGroup] = {}
        self._prints: dict[str, _Print] = {}

    @property
    def store(self) -> SchemaStore:
        """The tenant store (its file, or its PostgreSQL tables, made on first use)."""
        with self._lock:
            if self._store is None:
                self._store = SchemaStore(self._path, url=self._url)
            return self._store

    def close(self) -> None:
        """Close the store's file, if it was opened."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def get(self, schema_id: str) -> Schema:
        """The schema with `schema_id`, a tenant schema in its newest composition; `NotFound`
        when there is none."""
        if schema_id in self.builtins:
            return super().get(schema_id)
        self._refresh_when_due()
        found = self._tenant.get(schema_id)
        if found is None:
            self.refresh()  # perhaps made a moment ago by another process
            found = self._tenant.get(schema_id)
        if found is None:
            raise NotFound(f"no XDM schema with id {schema_id}")
        return found

    def __contains__(self, schema_id: object) -> bool:
        if schema_id in self.builtins:
            return True
        self._refresh_when_due()
        return schema_id in self._tenant

    def tenant_schemas(self, org_id: str, sandbox: str) -> list[TenantSchema]:
        """The stored tenant schemas of one organization and sandbox (oldest first)."""
        self._refresh_when_due()
        found = [s for s in self._stored.values() if (s.org_id, s.sandbox) == (org_id, sandbox)]
        return sorted(found, key=lambda s: (s.created_ms, s.id))

    def tenant_schema(self, schema_id: str) -> TenantSchema | None:
        """The stored tenant schema with `schema_id`, or None (also for built-ins)."""
        self._refresh_when_due()
        return self._stored.get(schema_id)

    def base_of(self, schema_id: str) -> str:
        """The built-in schema `schema_id` extends (a tenant schema's base), else `schema_id`:
        what a dataset holds, for callers that look for datasets of a built-in schema."""
        stored = self.tenant_schema(schema_id)
        return stored.base if stored is not None else schema_id

    def usable(self, schema_id: str, org_id: str, sandbox: str) -> bool:
        """True when an organization may put a dataset in `sandbox` on `schema_id`: a
        built-in schema, or a tenant schema of its own there."""
        if schema_id in self.builtins:
            return True
        self.refresh()
        stored = self._stored.get(schema_id)
        return stored is not None and (stored.org_id, stored.sandbox) == (org_id, sandbox)

    def refresh(self) -> None:
        """Read the store's generation now, and recompose what changed since the last read."""
        with self._lock:
            self._checked_at = clock.monotonic()
            if self._store is None and not self._url and not self._path.exists():
                return
            store = self.store
            if store.generation() == self._generation:
                return
            changes = store.changes_since(self._generation)
            groups = {**self._groups, **changes.field_groups}
            stored = {**self._stored, **changes.schemas}
            for gone in changes.removed:
                groups.pop(gone, None)
                stored.pop(gone, None)
            self._recompose(groups, stored)
            self._groups = groups
            self._generation = changes.generation

    def _refresh_when_due(self) -> None:
        if clock.monotonic() - self._checked_at >= self._check_every_s:
            self.refresh()

    def _recompose(self, groups: dict[str, FieldGroup], stored: dict[str, TenantSchema]) -> None:
        tenant: dict[str, Schema] = {}
        prints: dict[str, _Print] = {}
        for schema in stored.values():
            printed = _fingerprint(schema, groups)
            kept = self._tenant.get(schema.id)
            if kept is not None and self._prints.get(schema.id) == printed:
                tenant[schema.id] = kept
            else:
                try:
                    tenant[schema.id] = compose_schema(self.builtins, schema, groups, lenient=True)
                except NotFound:
                    log.exception("tenant schema %s: its base is not a built-in schema", schema.id)
                    continue
            prints[schema.id] = printed
        self._tenant, self._prints, self._stored = tenant, prints, dict(stored)


def _fingerprint(schema: TenantSchema, groups: dict[str, FieldGroup]) -> _Print:
    """What a composition depends on: the schema's version and its field groups' versions."""
    versions = tuple((g, groups[g].version if g in groups else 0) for g in schema.field_groups)
    return schema.version, schema.base, versions


def home_registry(layout: Layout, url: str = "") -> HomeRegistry:
    """The registry every process of the home at `layout` resolves dataset schemas with; its
    tenant part in PostgreSQL at `url` when given (`settings.catalog_url`: every process of a
    deployment shares it), else in the home's `schemas.sqlite`.

    `get` returns the newest composition of a tenant schema (a new `Schema` object after each
    change, so per-schema caches such as compiled validators refresh)."""
    return HomeRegistry(layout.schemas, url=url)
