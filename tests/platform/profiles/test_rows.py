"""Stored rows back to the documents that were sent."""

from __future__ import annotations

from datetime import UTC, date, datetime

from koppla.core import codec
from koppla.platform.profiles.rows import document


def test_nulls_go_and_times_read_as_sent() -> None:
    row = {
        "_id": "e1",
        "timestamp": datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC),
        "placeContext": {"localTime": datetime(2026, 5, 1, 10, 0, tzinfo=UTC), "geo": None},
        "person": {"birthDate": date(1990, 2, 3), "name": None},
        "web": None,
        "_batch_id": "b1",
        "_unknown": None,
        "_datetimes": {"placeContext.localTime": "2026-05-01T12:00:00+02:00"},
    }

    doc = document(row)

    assert doc == {
        "_id": "e1",
        "timestamp": "2026-05-01T10:00:00.123Z",
        "placeContext": {"localTime": "2026-05-01T12:00:00+02:00"},
        "person": {"birthDate": "1990-02-03"},
    }


def test_fields_the_schema_does_not_know_are_put_back() -> None:
    row = {
        "_id": "r1",
        "productListItems": [{"SKU": "a"}, {"SKU": "b"}],
        "_unknown": codec.dumps(
            {"_tenant.loyalty": "gold", "productListItems[1].color": "red", "x[5].y": 1}
        ).decode(),
    }

    doc = document(row)

    assert doc["_tenant"] == {"loyalty": "gold"}
    assert doc["productListItems"][1] == {"SKU": "b", "color": "red"}
    assert "x" not in doc or doc["x"] == {}
