"""The home registry: built-ins plus composed tenant schemas, refreshed by generation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from koppla.core.errors import InvalidInput, NotFound
from koppla.core.layout import Layout
from koppla.platform.schemas.compose import ComposeError
from koppla.platform.schemas.custom_fields import defined
from koppla.platform.schemas.models import FieldGroup
from koppla.platform.schemas.registry import HomeRegistry, home_registry
from koppla.platform.schemas.rules import field_group_check, schema_check
from koppla.xdm.experience_event import SCHEMA_ID
from koppla.xdm.validation import validate

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
OTHER = "ACME00000000000000000000@AdobeOrg"
NS = "_kopplademo"


def order_group(**fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "properties": {
            "commerce": {
                "properties": {"order": {"properties": {NS: {"properties": dict(fields)}}}}
            }
        }
    }


@pytest.fixture
def registry(tmp_path: Path, schemas_url: str) -> Iterator[HomeRegistry]:
    opened = home_registry(Layout(tmp_path), schemas_url)
    yield opened
    opened.close()


def add_group(
    registry: HomeRegistry, title: str, definition: dict[str, Any], org: str = ORG
) -> FieldGroup:
    return registry.store.create_field_group(
        org,
        "prod",
        title=title,
        description="",
        definition=definition,
        check=field_group_check(registry.builtins),
    )


def test_a_tenant_schema_is_composed_and_validates_its_custom_fields(
    registry: HomeRegistry,
) -> None:
    assert registry.tenant_schemas(ORG, "prod") == []  # no file yet: nothing, no error
    group = add_group(registry, "Gift", order_group(giftWrap={"type": "boolean"}))
    stored = registry.store.create_schema(
        ORG,
        "prod",
        title="Orders",
        description="",
        base=SCHEMA_ID,
        field_groups=[group.id],
        check=schema_check(registry.builtins),
    )
    schema = registry.get(stored.id)
    assert stored.id in registry and registry.get(stored.id) is schema
    assert defined(schema, NS)["order"] == {"giftWrap": "boolean"}
    issues = validate(
        schema,
        {
            "_id": "1",
            "timestamp": "2026-01-01T00:00:00Z",
            "commerce": {"order": {NS: {"giftWrap": 1}}},
        },
    ).issues
    assert [i.path for i in issues] == [f"commerce.order.{NS}.giftWrap"]
    assert [s.id for s in registry.tenant_schemas(ORG, "prod")] == [stored.id]
    assert registry.usable(stored.id, ORG, "prod")
    assert not registry.usable(stored.id, OTHER, "prod")
    assert not registry.usable(stored.id, ORG, "dev")


def test_a_change_makes_a_new_object_only_for_the_schemas_it_touches(
    registry: HomeRegistry, tmp_path: Path, schemas_url: str
) -> None:
    gift = add_group(registry, "Gift", order_group(giftWrap={"type": "boolean"}))
    note = add_group(registry, "Note", order_group(note={"type": "string"}))
    check = schema_check(registry.builtins)
    one = registry.store.create_schema(
        ORG,
        "prod",
        title="One",
        description="",
        base=SCHEMA_ID,
        field_groups=[gift.id],
        check=check,
    )
    two = registry.store.create_schema(
        ORG,
        "prod",
        title="Two",
        description="",
        base=SCHEMA_ID,
        field_groups=[note.id],
        check=check,
    )
    first, second = registry.get(one.id), registry.get(two.id)
    elsewhere = home_registry(Layout(tmp_path), schemas_url)  # another process's registry
    try:
        elsewhere.store.update_field_group(
            gift.id,
            ORG,
            "prod",
            check=field_group_check(elsewhere.builtins),
            change=lambda g: (
                g.title,
                "",
                order_group(giftWrap={"type": "boolean"}, giftNote={"type": "string"}),
            ),
        )
    finally:
        elsewhere.close()
    registry.refresh()
    changed = registry.get(one.id)
    assert changed is not first
    assert defined(changed, NS)["order"] == {"giftWrap": "boolean", "giftNote": "string"}
    assert registry.get(two.id) is second


def test_a_type_change_is_refused_with_the_path_and_nothing_stored_changes(
    registry: HomeRegistry,
) -> None:
    gift = add_group(registry, "Gift", order_group(giftWrap={"type": "boolean"}))
    generation = registry.store.generation()
    with pytest.raises(ComposeError) as refused:
        registry.store.update_field_group(
            gift.id,
            ORG,
            "prod",
            check=field_group_check(registry.builtins),
            change=lambda g: (g.title, "", order_group(giftWrap={"type": "string"})),
        )
    assert refused.value.path == f"commerce.order.{NS}.giftWrap"
    assert "is boolean in the schema" in str(refused.value)
    assert registry.store.field_group(gift.id, ORG, "prod") == gift
    assert registry.store.generation() == generation


def test_a_second_field_group_may_not_retype_the_first_ones_field(
    registry: HomeRegistry,
) -> None:
    gift = add_group(registry, "Gift", order_group(giftWrap={"type": "boolean"}))
    clash = add_group(registry, "Clash", order_group(giftWrap={"type": "string"}))
    with pytest.raises(ComposeError, match=f"commerce.order.{NS}.giftWrap is boolean"):
        registry.store.create_schema(
            ORG,
            "prod",
            title="Both",
            description="",
            base=SCHEMA_ID,
            field_groups=[gift.id, clash.id],
            check=schema_check(registry.builtins),
        )
    assert registry.store.tenant(ORG, "prod").schemas == {}


def test_a_field_group_outside_the_namespace_is_refused(registry: HomeRegistry) -> None:
    outside = {
        "properties": {
            "commerce": {"properties": {"order": {"properties": {"giftWrap": {"type": "boolean"}}}}}
        }
    }
    with pytest.raises(InvalidInput, match=r"commerce\.order\.giftWrap is outside"):
        add_group(registry, "Bad", outside)
    acme = {"properties": {"_acme": {"properties": {"x": {"type": "string"}}}}}
    add_group(registry, "Acme", acme, org=OTHER)  # its own namespace is fine
    with pytest.raises(InvalidInput, match="_acme"):
        add_group(registry, "Acme", acme)  # another tenant's is not


def test_unknown_ids_are_not_found_and_built_ins_need_no_store(tmp_path: Path) -> None:
    registry = HomeRegistry(tmp_path / "absent" / "schemas.sqlite")
    try:
        assert registry.get(SCHEMA_ID).id == SCHEMA_ID
        with pytest.raises(NotFound):
            registry.get("https://ns.adobe.com/kopplademo/schemas/" + "0" * 32)
        assert not (tmp_path / "absent").exists()
    finally:
        registry.close()


def test_get_notices_another_process_change_without_being_told(
    tmp_path: Path, schemas_url: str
) -> None:
    path = Layout(tmp_path).schemas
    reader = HomeRegistry(path, check_every_s=0.0, url=schemas_url)
    writer = home_registry(Layout(tmp_path), schemas_url)
    try:
        gift = add_group(writer, "Gift", order_group(giftWrap={"type": "boolean"}))
        made = writer.store.create_schema(
            ORG,
            "prod",
            title="Orders",
            description="",
            base=SCHEMA_ID,
            field_groups=[gift.id],
            check=schema_check(writer.builtins),
        )
        first = reader.get(made.id)
        writer.store.update_field_group(
            gift.id,
            ORG,
            "prod",
            check=field_group_check(writer.builtins),
            change=lambda g: (
                g.title,
                "",
                order_group(giftWrap={"type": "boolean"}, wrapColour={"type": "string"}),
            ),
        )
        second = reader.get(made.id)
        assert second is not first
        assert "wrapColour" in defined(second, NS)["order"]
        writer.store.delete_schema(made.id, ORG, "prod", in_use=lambda _: False)
        with pytest.raises(NotFound):
            reader.get(made.id)
        assert reader.tenant_schema(made.id) is None
    finally:
        reader.close()
        writer.close()
