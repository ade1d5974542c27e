"""Field groups read into the DSL and merged onto a base schema, additively."""

from __future__ import annotations

from typing import Any

import pytest

from koppla.platform.schemas.compose import (
    MAX_DEPTH,
    MAX_FIELDS,
    ComposeError,
    check_namespaced,
    check_superset,
    compose,
    merge,
    parse_field_group,
)
from koppla.platform.schemas.custom_fields import defined
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.types import Array, Object, Scalar
from koppla.xdm.validation import validate

NS = "_kopplademo"


def gift_wrap_group() -> dict[str, Any]:
    """A field group in AEP's form: an order flag and an item engraving."""
    return {
        "definitions": {
            "custom": {
                "properties": {
                    "commerce": {
                        "type": "object",
                        "properties": {
                            "order": {
                                "type": "object",
                                "properties": {
                                    NS: {
                                        "type": "object",
                                        "properties": {
                                            "giftWrap": {"type": "boolean", "title": "Gift"},
                                            "deliveryDate": {"type": "string", "format": "date"},
                                        },
                                    }
                                },
                            }
                        },
                    },
                    "productListItems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                NS: {
                                    "type": "object",
                                    "properties": {"engraving": {"type": "string"}},
                                }
                            },
                        },
                    },
                }
            }
        },
        "allOf": [
            {"$ref": "https://ns.adobe.com/xdm/context/experienceevent"},
            {"$ref": "#/definitions/custom"},
        ],
    }


def order_fields(**fields: dict[str, Any]) -> dict[str, Any]:
    """A field group that adds `fields` at the order level."""
    return {
        "properties": {
            "commerce": {
                "properties": {"order": {"properties": {NS: {"properties": dict(fields)}}}}
            }
        }
    }


def test_a_field_group_merges_into_the_tenant_namespace_and_validates_typed() -> None:
    base = commerce_experience_event()
    fields = parse_field_group(gift_wrap_group())
    schema = compose(
        base, "https://ns.adobe.com/kopplademo/schemas/x", "Orders", [("Gift", fields)], NS
    )
    assert defined(schema, NS) == {
        "order": {"giftWrap": "boolean", "deliveryDate": "date"},
        "item": {"engraving": "string"},
    }
    assert base.root.fields["commerce"] is not schema.root.fields["commerce"]
    assert NS not in str(defined(base, NS))  # the base is left as it was
    event = {
        "_id": "1",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "eventType": "commerce.purchases",
        "commerce": {"order": {"purchaseID": "p1", NS: {"giftWrap": True}}},
        "productListItems": [{"SKU": "s", NS: {"engraving": "hi"}}],
    }
    ok = validate(schema, event)
    assert ok.ok and ok.unknown == {}
    assert ok.record["commerce"]["order"][NS] == {"giftWrap": True}
    wrong = validate(schema, {**event, "commerce": {"order": {NS: {"giftWrap": "yes"}}}})
    assert [i.path for i in wrong.issues] == [f"commerce.order.{NS}.giftWrap"]


def test_a_type_change_of_a_base_field_is_refused_with_its_path() -> None:
    group = {
        "properties": {
            "commerce": {
                "properties": {"order": {"properties": {"purchaseID": {"type": "number"}}}}
            }
        }
    }
    with pytest.raises(ComposeError) as refused:
        merge(commerce_experience_event().root, parse_field_group(group), NS)
    assert refused.value.path == "commerce.order.purchaseID"
    assert "is string in the schema; a field's type cannot change" in str(refused.value)
    assert refused.value.field == "commerce.order.purchaseID"


def test_a_type_change_between_two_field_groups_names_the_path_and_the_group() -> None:
    first = parse_field_group(gift_wrap_group())
    second = parse_field_group(
        {
            "properties": {
                "productListItems": {
                    "type": "array",
                    "items": {
                        "properties": {NS: {"properties": {"engraving": {"type": "boolean"}}}}
                    },
                }
            }
        }
    )
    with pytest.raises(ComposeError) as refused:
        compose(commerce_experience_event(), "s", "S", [("A", first), ("B", second)], NS)
    assert refused.value.path == f"productListItems[].{NS}.engraving"
    assert "is string in the schema" in str(refused.value)
    assert "'B'" in str(refused.value)


def test_a_new_field_outside_the_tenant_namespace_is_refused() -> None:
    group = {
        "properties": {
            "commerce": {"properties": {"order": {"properties": {"giftWrap": {"type": "boolean"}}}}}
        }
    }
    with pytest.raises(ComposeError) as refused:
        merge(commerce_experience_event().root, parse_field_group(group), NS)
    assert refused.value.path == "commerce.order.giftWrap"
    assert "outside the tenant namespace" in refused.value.reason
    other = {"properties": {"_othertenant": {"properties": {"x": {"type": "string"}}}}}
    with pytest.raises(ComposeError, match="_othertenant is outside"):
        merge(commerce_experience_event().root, parse_field_group(other), NS)


def test_the_namespace_may_sit_at_the_root_and_an_existing_object_may_gain_fields() -> None:
    group = {
        "properties": {
            NS: {
                "properties": {
                    "loyalty": {
                        "properties": {"tier": {"type": "string", "enum": ["gold", "silver"]}}
                    }
                }
            }
        }
    }
    root = merge(commerce_experience_event().root, parse_field_group(group), NS)
    tier = root.fields[NS].fields["loyalty"].fields["tier"]  # type: ignore[union-attr]
    assert tier == Scalar("string", enum=("gold", "silver"))
    again = merge(root, parse_field_group(order_fields(note={"type": "string"})), NS)
    assert set(again.fields[NS].fields) == {"loyalty"}  # type: ignore[union-attr]
    order = again.fields["commerce"].fields["order"]  # type: ignore[union-attr]
    assert set(order.fields[NS].fields) == {"note"}  # type: ignore[union-attr]


def test_the_same_field_in_two_definitions_of_one_group_must_agree() -> None:
    group = {
        "definitions": {
            "a": order_fields(x={"type": "string"}),
            "b": order_fields(x={"type": "integer"}),
        }
    }
    with pytest.raises(ComposeError, match=f"commerce.order.{NS}.x is defined twice"):
        parse_field_group(group)


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ({"$ref": "https://ns.adobe.com/t/datatypes/1"}, "refers to another resource"),
        ({"type": "thing"}, "unsupported type 'thing'"),
        ({"type": "array"}, "without `items`"),
        ({"type": "string", "enum": [1]}, "has an enum"),
        ({"type": "number", "minimum": "0"}, "`minimum` that is not a number"),
        ("string", "JSON Schema object"),
    ],
)
def test_unreadable_fields_are_refused_with_their_path(field: Any, reason: str) -> None:
    with pytest.raises(ComposeError) as refused:
        parse_field_group(order_fields(bad=field))
    assert refused.value.path.startswith(f"commerce.order.{NS}.bad")
    assert reason in refused.value.reason


def test_names_depth_and_size_are_bounded() -> None:
    with pytest.raises(ComposeError, match="not a valid field name"):
        parse_field_group(order_fields(**{"gift-wrap": {"type": "boolean"}}))
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(MAX_DEPTH + 2):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ComposeError, match="deeper than"):
        parse_field_group({"properties": {NS: deep}})
    many = {f"f{i}": {"type": "string"} for i in range(MAX_FIELDS + 1)}
    with pytest.raises(ComposeError, match=f"past the {MAX_FIELDS} fields"):
        parse_field_group({"properties": {NS: {"properties": many}}})


def test_formats_maps_and_nullable_types_are_read() -> None:
    fields = parse_field_group(
        {
            "properties": {
                NS: {
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        "count": {"type": ["integer", "null"], "minimum": 0},
                        "sizes": {"type": "array", "items": {"type": "number"}},
                    }
                }
            }
        }
    )
    inner = fields.fields[NS]
    assert isinstance(inner, Object)
    assert inner.fields["at"] == Scalar("date-time")
    assert kind_of(inner.fields["tags"]) == "Map"
    assert inner.fields["count"] == Scalar("integer", minimum=0.0)
    assert inner.fields["sizes"] == Array(Scalar("number"))


def kind_of(node: object) -> str:
    return type(node).__name__


def test_a_superset_keeps_every_field_with_its_type() -> None:
    old = parse_field_group(order_fields(a={"type": "string"}, b={"type": "boolean"}))
    check_superset(
        old,
        parse_field_group(
            order_fields(a={"type": "string"}, b={"type": "boolean"}, c={"type": "number"})
        ),
    )
    with pytest.raises(ComposeError, match=f"commerce.order.{NS}.b was removed"):
        check_superset(old, parse_field_group(order_fields(a={"type": "string"})))
    with pytest.raises(ComposeError, match="is boolean in the schema"):
        check_superset(
            old, parse_field_group(order_fields(a={"type": "string"}, b={"type": "string"}))
        )


def test_a_lone_field_group_must_keep_its_leaves_in_the_namespace() -> None:
    check_namespaced(parse_field_group(gift_wrap_group()), NS)
    with pytest.raises(ComposeError, match=r"commerce\.order\.note is outside"):
        check_namespaced(
            parse_field_group(
                {
                    "properties": {
                        "commerce": {
                            "properties": {"order": {"properties": {"note": {"type": "string"}}}}
                        }
                    }
                }
            ),
            NS,
        )


def test_an_object_without_fields_adds_nothing_and_the_schema_can_be_stored(
    tmp_path: Any,
) -> None:
    from deltalake import DeltaTable

    from koppla.platform.datasets.tables import dataset_arrow_schema

    empty_items = {
        "properties": {
            "productListItems": {
                "type": "array",
                "items": {"type": "object", "properties": {NS: {"type": "object"}}},
            },
            NS: {"type": "object", "properties": {"nested": {"type": "object"}}},
        }
    }
    base = commerce_experience_event()
    schema = compose(base, "s", "t", [("empty", parse_field_group(empty_items))], NS)
    assert schema.root == base.root
    DeltaTable.create(str(tmp_path / "t"), schema=dataset_arrow_schema(schema))


def test_a_field_may_not_be_narrowed() -> None:
    def field(**rules: Any) -> Object:
        return parse_field_group(
            {"properties": {NS: {"type": "object", "properties": {"x": rules}}}}
        )

    plain = field(type="string")
    for narrower in (field(type="string", enum=["a"]),):
        with pytest.raises(ComposeError, match="allowed values"):
            check_superset(plain, narrower)
    check_superset(field(type="string", enum=["a"]), field(type="string", enum=["a", "b"]))
    with pytest.raises(ComposeError, match="minimum"):
        check_superset(field(type="number"), field(type="number", minimum=0))
    with pytest.raises(ComposeError, match="maximum"):
        check_superset(field(type="number", maximum=10), field(type="number", maximum=5))
    check_superset(field(type="number", maximum=5), field(type="number", maximum=10))


def test_names_that_differ_only_by_case_are_refused() -> None:
    one_group = {
        "properties": {
            NS: {
                "type": "object",
                "properties": {"Gift": {"type": "string"}, "gift": {"type": "string"}},
            }
        }
    }
    with pytest.raises(ComposeError, match="only by case"):
        parse_field_group(one_group)
    first = parse_field_group(
        {"properties": {NS: {"type": "object", "properties": {"Gift": {"type": "string"}}}}}
    )
    second = parse_field_group(
        {"properties": {NS: {"type": "object", "properties": {"gift": {"type": "string"}}}}}
    )
    base = commerce_experience_event()
    with pytest.raises(ComposeError, match="only by case"):
        compose(base, "s", "t", [("a", first), ("b", second)], NS)


def test_a_schema_may_add_only_so_many_fields_to_its_base() -> None:
    from koppla.platform.schemas.compose import MAX_SCHEMA_FIELDS, check_size

    def group(prefix: str, count: int) -> Object:
        fields = {f"{prefix}{i}": {"type": "string"} for i in range(count)}
        return parse_field_group({"properties": {NS: {"type": "object", "properties": fields}}})

    base = commerce_experience_event()
    half = MAX_SCHEMA_FIELDS // 2
    fits = compose(base, "s", "t", [("a", group("a", half - 1)), ("b", group("b", half - 1))], NS)
    check_size(base.root, fits.root)  # the namespace object itself counts as one
    groups = [("a", group("a", half - 1)), ("b", group("b", half - 1)), ("c", group("c", 5))]
    over = compose(base, "s", "t", groups, NS)
    with pytest.raises(ComposeError, match="at most"):
        check_size(base.root, over.root)
