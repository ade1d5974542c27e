import pytest

from koppla.core.errors import InvalidInput
from koppla.platform.schemas.rules import check_storable
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.types import Object, Schema


def test_the_built_in_schemas_can_be_stored() -> None:
    check_storable(commerce_experience_event())
    check_storable(commerce_profile())


def test_a_schema_parquet_cannot_hold_is_refused() -> None:
    base = commerce_experience_event()
    shapeless = Object({**base.root.fields, "_acme": Object({"nothing": Object({})})})
    with pytest.raises(InvalidInput, match="could not be stored"):
        check_storable(Schema("s", "Shapeless", base.xdm_class, shapeless))


def test_a_schema_whose_fields_clash_with_the_system_columns_is_refused() -> None:
    base = commerce_experience_event()
    clash = Object({**base.root.fields, "_unknown": Object({"x": base.root.fields["_id"]})})
    with pytest.raises(InvalidInput, match="could not be stored"):
        check_storable(Schema("s", "Clash", base.xdm_class, clash))
