"""The schema registry."""

from __future__ import annotations

import pytest

from koppla.core.errors import NotFound
from koppla.xdm.experience_event import SCHEMA_ID, commerce_experience_event
from koppla.xdm.profile import PROFILE_SCHEMA_ID
from koppla.xdm.registry import SchemaRegistry, builtin_registry
from koppla.xdm.types import Object, Schema


def test_builtin_registry_holds_the_commerce_event_and_profile() -> None:
    registry = builtin_registry()
    assert registry.ids() == (SCHEMA_ID, PROFILE_SCHEMA_ID)
    assert registry.get(SCHEMA_ID) is commerce_experience_event()
    assert registry.get(PROFILE_SCHEMA_ID).xdm_class == "https://ns.adobe.com/xdm/context/profile"
    assert SCHEMA_ID in registry


def test_unknown_id_is_not_found() -> None:
    with pytest.raises(NotFound, match="urn:nope"):
        builtin_registry().get("urn:nope")


def test_register_rejects_a_different_schema_with_the_same_id() -> None:
    registry = builtin_registry()
    registry.register(commerce_experience_event())
    clash = Schema(id=SCHEMA_ID, title="x", xdm_class="urn:c", root=Object({}))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(clash)


def test_registries_are_independent() -> None:
    extra = Schema(id="urn:extra", title="x", xdm_class="urn:c", root=Object({}))
    one = SchemaRegistry([extra])
    assert one.ids() == ("urn:extra",)
    assert "urn:extra" not in builtin_registry()
