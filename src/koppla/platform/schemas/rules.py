"""The rules a change to the tenant part of the registry must keep, as `Check`s for the store.

- A field group's fields must be readable (see `compose`); a new one's fields must lie in the
  tenant namespace (and merge onto the built-in schemas it says it extends).
- A changed field group keeps every field it had, with its type; and every schema that
  includes it must still compose.
- A schema's base is a built-in schema; its field groups, in order, must merge onto it; a field
  group that names the classes it extends (`meta:intendedToExtend`) joins only those.
- A dataset may move to a schema of the same class that keeps every field of its current one.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping

from koppla.core.errors import InvalidInput
from koppla.platform.datasets.tables import dataset_arrow_schema
from koppla.platform.schemas.compose import (
    ComposeError,
    check_namespaced,
    check_size,
    check_superset,
    compose,
    merge,
    parse_field_group,
)
from koppla.platform.schemas.models import FieldGroup, Tenant, TenantSchema
from koppla.platform.schemas.store import Check
from koppla.xdm.registry import SchemaRegistry
from koppla.xdm.tenant import namespace, tenant_id
from koppla.xdm.types import Schema

log = logging.getLogger(__name__)


def tenant_namespace(org_id: str) -> str:
    """The object name an organization's own fields live in (`_<tenantId>`)."""
    return namespace(tenant_id(org_id))


def compose_schema(
    builtins: SchemaRegistry,
    schema: TenantSchema,
    groups: Mapping[str, FieldGroup],
    *,
    lenient: bool = False,
) -> Schema:
    """The composed schema: its base with its field groups merged in order.

    Strict (the default), any problem raises (`ComposeError`, `InvalidInput`). Lenient (what a
    registry serving stored schemas does), a field group that no longer merges, or is gone, is
    left out and logged, so data keeps flowing.
    """
    base = builtins.get(schema.base)
    ns = tenant_namespace(schema.org_id)
    composed = compose(base, schema.id, schema.title, [], ns)
    for group_id in schema.field_groups:
        group = groups.get(group_id)
        try:
            if group is None:
                raise InvalidInput(f"field group {group_id} does not exist", field="allOf")
            _check_intended(group, base)
            composed = compose(
                composed,
                schema.id,
                schema.title,
                [(group.title, parse_field_group(group.definition))],
                ns,
            )
        except InvalidInput:
            if not lenient:
                raise
            log.exception("schema %s: field group %s left out", schema.id, group_id)
    return composed


def field_group_check(builtins: SchemaRegistry) -> Check:
    """The check of a created or changed field group."""

    def check(before: Tenant, after: Tenant) -> None:
        for group_id, group in after.field_groups.items():
            old = before.field_groups.get(group_id)
            if old is not group:
                _check_group(builtins, old, group, after)

    return check


def schema_check(builtins: SchemaRegistry) -> Check:
    """The check of a created or changed tenant schema."""

    def check(before: Tenant, after: Tenant) -> None:
        for schema_id, schema in after.schemas.items():
            if before.schemas.get(schema_id) is not schema:
                if schema.base not in builtins:
                    raise InvalidInput(
                        f"base schema {schema.base!r} is not a built-in schema", field="allOf"
                    )
                composed = compose_schema(builtins, schema, after.field_groups)
                check_size(builtins.get(schema.base).root, composed.root)
                check_storable(composed)
                old = before.schemas.get(schema_id)
                if old is not None:
                    previous = compose_schema(builtins, old, before.field_groups, lenient=True)
                    check_superset(previous.root, composed.root)

    return check


def check_storable(schema: Schema) -> None:
    """`InvalidInput` unless a dataset's Delta table can hold rows of `schema` (its fields and
    the system columns): a table is made in a scratch directory and a row of nulls appended.
    A schema the pipeline could not write would hold up every dataset's records."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    shape = dataset_arrow_schema(schema)
    try:
        with tempfile.TemporaryDirectory(prefix="koppla-schema-check-") as scratch:
            table = DeltaTable.create(scratch, schema=shape)
            row = pa.Table.from_pylist([dict.fromkeys(shape.names)], schema=shape)
            write_deltalake(table, row, mode="append")
    except Exception as error:  # whatever Arrow or Delta refuse, the schema is refused for
        reason = str(error)
        reason = reason if len(reason) <= 300 else reason[:300] + "…"
        raise InvalidInput(
            f"schema {schema.title!r} could not be stored: {reason}", field="allOf"
        ) from error


def check_dataset_move(current: Schema, target: Schema) -> None:
    """`InvalidInput` unless a dataset on `current` may move to `target`: the same class,
    every field kept with its type."""
    if current.xdm_class != target.xdm_class:
        raise InvalidInput(
            f"schema {target.id} is of class {target.xdm_class}, the dataset's is "
            f"{current.xdm_class}",
            field="schemaId",
        )
    try:
        check_superset(current.root, target.root)
    except ComposeError as error:
        raise InvalidInput(
            f"schema {target.id} does not keep the dataset's fields: {error}", field="schemaId"
        ) from error


def _check_group(
    builtins: SchemaRegistry, old: FieldGroup | None, group: FieldGroup, after: Tenant
) -> None:
    fields = parse_field_group(group.definition)
    if old is not None:
        check_superset(parse_field_group(old.definition), fields)
    users = after.users_of(group.id)
    for schema in users:
        composed = compose_schema(builtins, schema, after.field_groups)
        check_size(builtins.get(schema.base).root, composed.root)
        check_storable(composed)
    if users:
        return
    ns = tenant_namespace(group.org_id)
    bases = [s for s in _builtins(builtins) if _extends(group, s)]
    if not bases:
        check_namespaced(fields, ns)
    for base in bases:
        merge(base.root, fields, ns)


def _check_intended(group: FieldGroup, base: Schema) -> None:
    if group.intended_to_extend and not _extends(group, base):
        raise InvalidInput(
            f"field group {group.title!r} is intended to extend "
            f"{', '.join(group.intended_to_extend)}, not {base.xdm_class}",
            field="allOf",
        )


def _extends(group: FieldGroup, base: Schema) -> bool:
    return base.id in group.intended_to_extend or base.xdm_class in group.intended_to_extend


def _builtins(registry: SchemaRegistry) -> list[Schema]:
    return [registry.get(schema_id) for schema_id in registry.ids()]
