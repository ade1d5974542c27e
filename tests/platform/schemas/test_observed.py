from pathlib import Path

from koppla.platform.schemas.observed import MAX_NAMES, OVERFLOW, ObservedAttributes, Tally


def order(attributes: dict[str, object], *items: dict[str, object]) -> dict[str, object]:
    return {
        "commerce": {"order": {"purchaseID": "1", "_acme": attributes}},
        "productListItems": [{"SKU": "s", "_acme": item} for item in items],
    }


def test_attributes_are_counted_per_level_name_and_kind(tmp_path: Path) -> None:
    store = ObservedAttributes(tmp_path / "a.sqlite")
    tally = Tally("_acme")
    tally.add(order({"giftWrap": True, "note": "x"}, {"engraving": "hi"}, {"engraving": "yo"}))
    tally.add(order({"giftWrap": "yes", "deliveryDate": "2026-12-24"}))
    tally.add("not an object")
    tally.add({"commerce": {"order": {"_other": {"x": 1}}}})
    store.record("ds1", tally, now_ms=1000)
    store.record("ds1", tally, now_ms=2000)
    seen = {(s.level, s.name, s.kind): s for s in store.seen("ds1")}
    assert set(seen) == {
        ("order", "giftWrap", "boolean"),
        ("order", "giftWrap", "string"),
        ("order", "note", "string"),
        ("order", "deliveryDate", "date"),
        ("item", "engraving", "string"),
    }
    engraving = seen[("item", "engraving", "string")]
    assert (engraving.count, engraving.first_ms, engraving.last_ms) == (2, 1000, 2000)
    assert store.seen("ds2") == []


def test_names_past_the_cap_are_counted_together(tmp_path: Path) -> None:
    store = ObservedAttributes(tmp_path / "a.sqlite")
    tally = Tally("_acme")
    tally.add(order({f"a{i}": 1 for i in range(MAX_NAMES + 5)}))
    store.record("ds", tally, now_ms=1)
    seen = store.seen("ds")
    assert len(seen) == MAX_NAMES + 1
    assert [s.count for s in seen if s.name == OVERFLOW] == [5]
