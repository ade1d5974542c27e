"""Derived ids: stable, and the same whether the leading parts are hashed once or each time."""

from __future__ import annotations

import uuid

from koppla.core.ids import derived_uuid, derived_uuid_under


def test_a_derived_uuid_under_a_prefix_is_the_derived_uuid_of_all_parts() -> None:
    for prefix, parts in (
        ((), ("a",)),
        (("koppla-connector", "env-1", "base"), ("1234", "commerce.backofficeOrderPlaced", "")),
        (("koppla-connector-order",), ("7",)),
    ):
        assert derived_uuid_under(prefix, *parts) == derived_uuid(*prefix, *parts)
        assert derived_uuid_under(prefix, *parts) == derived_uuid_under(prefix, *parts)


def test_a_derived_uuid_is_a_version_5_shaped_uuid_and_parts_do_not_run_together() -> None:
    value = derived_uuid_under(("ab",), "c")
    parsed = uuid.UUID(value)
    assert str(parsed) == value and parsed.version == 5
    assert value != derived_uuid_under(("a",), "bc")
    assert derived_uuid("x", b"y") == derived_uuid("x", "y")


def test_the_ids_already_stored_stay_what_they_were() -> None:
    # pinned from the implementation before `derived_uuid_under`: stored event and order ids
    assert derived_uuid("a") == "72ff6b02-949d-5d95-806c-343e3db31500"
    assert derived_uuid_under(("koppla-connector-order",), "1") == (
        "00a1c955-7f68-551e-bdfb-c2fe24595d65"
    )
