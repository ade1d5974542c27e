"""The redaction option: hashed emails, no postal addresses (domain.md §5.3)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

PLAIN_NAMESPACE = "Email"
"""identityMap namespace of a plain email address (AEP's standard `Email` namespace symbol)."""

HASHED_NAMESPACE = "Email_LC_SHA256"
"""identityMap namespace of a hashed email (SHA-256 of the trimmed, lower-cased address, hex)."""
EMAIL_IN_TEXT = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"']+")
"""Something that looks like an email address, inside any text."""


def hash_email(address: str) -> str:
    """SHA-256 (hex) of the trimmed, lower-cased address."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def redact_value(value: Any) -> Any:
    """A custom attribute's value as redaction sends it: an email address hashed (as
    `hash_email`, also inside longer text), anything else as it is."""
    if isinstance(value, str) and "@" in value:
        return EMAIL_IN_TEXT.sub(lambda found: hash_email(found.group(0)), value)
    return value


def identity(email: str, *, redact: bool) -> tuple[str, str]:
    """The (namespace, id) that identifies a shopper by `email`."""
    if redact:
        return HASHED_NAMESPACE, hash_email(email)
    return PLAIN_NAMESPACE, email.strip()


def drop_addresses(event: dict[str, Any]) -> dict[str, Any]:
    """`event` without `commerce.shipping.address` and `commerce.billing` (in place; returned)."""
    commerce = event.get("commerce", {})
    commerce.pop("billing", None)
    shipping = commerce.get("shipping")
    if isinstance(shipping, dict):
        shipping.pop("address", None)
    return event
