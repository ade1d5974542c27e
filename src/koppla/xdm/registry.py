"""The schema registry: Koppla's schemas by id."""

from __future__ import annotations

from collections.abc import Iterable

from koppla.core.errors import NotFound
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.types import Schema


class SchemaRegistry:
    """Schemas looked up by their `$id`; built-ins and extensions register the same way."""

    def __init__(self, schemas: Iterable[Schema] = ()) -> None:
        self._schemas: dict[str, Schema] = {}
        for schema in schemas:
            self.register(schema)

    def register(self, schema: Schema) -> None:
        """Add `schema`; raises `ValueError` if another schema already has its id."""
        existing = self._schemas.get(schema.id)
        if existing is not None and existing is not schema:
            raise ValueError(f"a different schema is already registered as {schema.id}")
        self._schemas[schema.id] = schema

    def get(self, schema_id: str) -> Schema:
        """The schema with `schema_id`; raises `NotFound` when there is none."""
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise NotFound(f"no XDM schema with id {schema_id}") from None

    def ids(self) -> tuple[str, ...]:
        """The registered schema ids, in registration order."""
        return tuple(self._schemas)

    def __contains__(self, schema_id: object) -> bool:
        return schema_id in self._schemas

    def refresh(self) -> None:
        """Take up schema changes made outside this process now (a registry that keeps its
        schemas elsewhere overrides this; built-ins never change)."""


def builtin_registry() -> SchemaRegistry:
    """A registry holding Koppla's built-in schemas."""
    return SchemaRegistry([commerce_experience_event(), commerce_profile()])
