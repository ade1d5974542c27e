from koppla.platform.schemas.mismatch import DatasetUse, rows
from koppla.platform.schemas.observed import Seen

LIVE = DatasetUse("d1", "shop_events", ("live",))
HISTORY = DatasetUse("d2", "shop_history", ("historical",))


def seen(dataset: str, level: str, name: str, kind: str, last: int = 10) -> Seen:
    return Seen(dataset, level, name, kind, 1, last, 3)  # type: ignore[arg-type]


def test_names_on_both_sides_match_and_the_others_do_not() -> None:
    table = rows(
        [LIVE],
        {
            "d1": [
                seen("d1", "order", "giftWrap", "boolean"),
                seen("d1", "item", "engraving", "string"),
            ]
        },
        {"d1": {"order": {"giftWrap": "boolean", "deliveryDate": "date"}, "item": {}}},
    )
    shown = [(r.level, r.commerce, r.platform, r.match) for r in table]
    assert shown == [
        ("order", "giftWrap", "giftWrap", True),
        ("order", "", "deliveryDate", False),
        ("item", "engraving", "", False),
    ]
    assert all(r.dataset_name == "shop_events" and r.roles == ("live",) for r in table)


def test_live_and_historical_datasets_show_separately() -> None:
    table = rows(
        [LIVE, HISTORY],
        {
            "d1": [seen("d1", "order", "giftWrap", "boolean")],
            "d2": [seen("d2", "order", "gift_wrap", "boolean")],
        },
        {},
    )
    assert [(r.dataset_id, r.commerce) for r in table] == [("d1", "giftWrap"), ("d2", "gift_wrap")]


def test_a_kind_the_schema_cannot_hold_is_noted() -> None:
    table = rows(
        [LIVE],
        {
            "d1": [
                seen("d1", "order", "giftWrap", "string"),
                seen("d1", "order", "giftWrap", "boolean"),
            ]
        },
        {"d1": {"order": {"giftWrap": "boolean"}}},
    )
    (row,) = table
    assert row.match and row.commerce_kinds == ("boolean", "string")
    assert row.count == 6
    assert "sent as string" in row.note and "boolean in the schema" in row.note


def test_a_date_fits_a_date_field_and_a_number_an_integer_one() -> None:
    table = rows(
        [LIVE],
        {"d1": [seen("d1", "order", "due", "date"), seen("d1", "order", "n", "number")]},
        {"d1": {"order": {"due": "date", "n": "integer"}}},
    )
    assert [r.note for r in table] == ["", ""]


def test_the_newest_name_comes_first_after_a_rename() -> None:
    table = rows(
        [LIVE],
        {"d1": [seen("d1", "order", "old", "string", 5), seen("d1", "order", "new", "string", 9)]},
        {},
    )
    assert [r.commerce for r in table] == ["new", "old"]
