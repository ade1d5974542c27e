"""Profile events and records built from customer snapshots (pure, no database)."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any

from koppla.connector.customers import CustomerRows, build_customer_snapshot
from koppla.connector.demo_store import Ids, new_customer
from koppla.connector.events import EventContext
from koppla.connector.profile_events import (
    CREATE_PROFILE,
    DELETE_PROFILE,
    UPDATE_PROFILE,
    profile_event,
    profile_record,
)
from koppla.connector.snapshot import Scope, snapshot_hash
from koppla.xdm.event_types import validate_event
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import commerce_profile
from koppla.xdm.validation import validate

SCOPE = Scope("base", "main_website_store", "default")
CTX = EventContext("base", "env-1")
JOINED = datetime(2026, 3, 4, 5, 6, 7)


def customer(seed: int = 1, **changes: Any) -> CustomerRows:
    """Demo customer 42 as the source reads it, with `changes` applied to its entity row."""
    rows = new_customer(random.Random(seed), Ids(), JOINED, customer_id=42)
    entity = {**rows[0][1], **changes}
    return CustomerRows(entity, SCOPE, [row for _table, row in rows[1:]])


def snapshot(rows: CustomerRows) -> tuple[dict[str, Any], str]:
    snap = build_customer_snapshot(rows)
    return snap, snapshot_hash(snap)


def test_the_create_event_carries_the_documented_fields() -> None:
    rows = customer(firstname="Ana", lastname="Berg", email="ana.berg.42@example.com")
    snap, digest = snapshot(rows)
    event = profile_event(snap, digest, CREATE_PROFILE, CTX)
    assert event["eventType"] == "userAccount.backofficeCreateProfile"
    assert event["timestamp"] == "2026-03-04T05:06:07.000Z"
    assert event["person"] == {"name": {"firstName": "Ana", "lastName": "Berg"}}
    assert event["personalEmail"] == {"address": "ana.berg.42@example.com"}
    assert event["identityMap"] == {
        "CustomerId": [{"id": "42", "primary": True}],
        "Email": [{"id": "ana.berg.42@example.com", "primary": False}],
    }
    assert event["commerce"]["commerceScope"] == {
        "environmentID": "env-1",
        "websiteCode": "base",
        "storeCode": "main_website_store",
        "storeViewCode": "default",
    }
    assert validate_event(commerce_experience_event(), event).issues == ()


def test_the_record_carries_names_addresses_phones_and_account_dates() -> None:
    base = customer(middlename="J.", dob=datetime(1980, 2, 29).date())
    oslo = {
        "street": "1 Main Street\nApt 4",
        "city": "Oslo",
        "region": "Oslo",
        "postcode": "0150",
        "country_id": "NO",
        "telephone": "+4712345678",
    }
    billing_id = base.customer["default_billing"]
    addresses = [{**a, **oslo} if a["entity_id"] == billing_id else a for a in base.addresses]
    rows = CustomerRows(base.customer, SCOPE, addresses)
    snap, digest = snapshot(rows)
    record = profile_record(snap, digest, CTX)
    assert record["person"]["name"]["middleName"] == "J."
    assert record["person"]["birthDate"] == "1980-02-29"
    assert record["billingAddress"] == {
        "street1": "1 Main Street",
        "street2": "Apt 4",
        "city": "Oslo",
        "state": "Oslo",
        "postalCode": "0150",
        "country": "NO",
        "primary": False,
    }
    assert record["billingAddressPhone"] == {"number": "+4712345678", "primary": False}
    assert record["shippingAddress"]["primary"] is False
    assert record["shippingAddressPhone"]["primary"] is False
    assert record["userAccount"] == {"startDate": "2026-03-04T05:06:07.000Z"}
    assert record["extSourceSystemAudit"] == {"lastUpdatedDate": "2026-03-04T05:06:07.000Z"}
    assert record["channel"]["_type"] == "https://ns.adobe.com/xdm/channel-types/web"
    assert record["identityMap"]["CustomerId"] == [{"id": "42", "primary": True}]
    assert validate(commerce_profile(), record).issues == ()


def test_a_customer_without_addresses_has_no_address_fields() -> None:
    rows = customer(default_billing=None, default_shipping=None)
    snap, digest = snapshot(rows)
    record = profile_record(snap, digest, CTX)
    assert not {"billingAddress", "shippingAddress", "billingAddressPhone"} & set(record)


def test_ids_repeat_for_the_same_state_and_change_with_every_real_change() -> None:
    snap, digest = snapshot(customer())
    again, same = snapshot(customer())
    assert (
        profile_event(snap, digest, CREATE_PROFILE, CTX)["_id"]
        == (profile_event(again, same, CREATE_PROFILE, CTX)["_id"])
    )
    assert profile_record(snap, digest, CTX)["_id"] == profile_record(again, same, CTX)["_id"]
    later = JOINED + timedelta(days=1)
    renamed, renamed_digest = snapshot(customer(lastname="Zed", updated_at=later))
    assert renamed_digest != digest
    assert (
        profile_record(renamed, renamed_digest, CTX)["_id"]
        != profile_record(snap, digest, CTX)["_id"]
    )
    back, back_digest = snapshot(customer(updated_at=later + timedelta(days=1)))
    assert back_digest == digest  # the same data again...
    assert (
        profile_event(back, back_digest, UPDATE_PROFILE, CTX)["_id"]
        != (profile_event(snap, digest, UPDATE_PROFILE, CTX)["_id"])
    )  # ...is still a new change
    other_env = EventContext("base", "env-2")
    assert (
        profile_event(snap, digest, CREATE_PROFILE, other_env)["_id"]
        != (profile_event(snap, digest, CREATE_PROFILE, CTX)["_id"])
    )


def test_a_save_that_changes_nothing_sent_keeps_the_hash() -> None:
    _, digest = snapshot(customer())
    _, touched = snapshot(customer(updated_at=JOINED + timedelta(hours=1), is_active=0))
    assert touched == digest


def test_the_delete_event_is_stamped_when_noticed() -> None:
    snap, digest = snapshot(customer())
    event = profile_event(snap, digest, DELETE_PROFILE, CTX, "2026-12-01T10:00:00.000Z")
    assert event["eventType"] == "userAccount.backofficeDeleteProfile"
    assert event["timestamp"] == "2026-12-01T10:00:00.000Z"
    assert event["identityMap"]["CustomerId"] == [{"id": "42", "primary": True}]
    assert validate_event(commerce_experience_event(), event).issues == ()


def test_redaction_hashes_the_email_and_drops_addresses_and_phones() -> None:
    rows = customer(email="Ana.Berg@Example.com ")
    snap, digest = snapshot(rows)
    ctx = EventContext("base", "env-1", redact=True)
    hashed = hashlib.sha256(b"ana.berg@example.com").hexdigest()
    event = profile_event(snap, digest, UPDATE_PROFILE, ctx)
    record = profile_record(snap, digest, ctx)
    for doc in (event, record):
        assert doc["personalEmail"] == {"address": hashed}
        assert doc["identityMap"]["Email_LC_SHA256"] == [{"id": hashed, "primary": False}]
        assert "Email" not in doc["identityMap"]
    assert not {"billingAddress", "shippingAddress", "billingAddressPhone"} & set(record)
    assert not {"shippingAddressPhone"} & set(record)
