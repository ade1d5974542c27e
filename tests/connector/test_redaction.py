"""The redaction option: hashed email in identityMap and personalEmail, no addresses."""

from __future__ import annotations

import hashlib

from koppla.connector.events import EventContext, history
from koppla.connector.redaction import HASHED_NAMESPACE, hash_email, identity
from koppla.core import codec
from tests.connector.samples import Order


def test_hash_email_is_sha256_of_trimmed_lowercase() -> None:
    expected = hashlib.sha256(b"ana.berg@example.com").hexdigest()
    assert hash_email("  Ana.Berg@Example.COM ") == expected
    assert identity("Ana@x.io", redact=False) == ("Email", "Ana@x.io")


def test_redacted_events_hash_the_email_and_drop_addresses() -> None:
    order = Order(seed=12).invoice().ship()
    email = order.draft.order["customer_email"]
    events = history(order.snapshot(), EventContext("base", "env", redact=True))
    hashed = hash_email(email)
    for event in events:
        assert event["identityMap"] == {HASHED_NAMESPACE: [{"id": hashed, "primary": True}]}
        assert event["personalEmail"] == {"address": hashed}
        assert "billing" not in event["commerce"]
        assert "address" not in event["commerce"].get("shipping", {})
        text = codec.dumps(event).decode()
        assert email not in text and "Main Street" not in text
