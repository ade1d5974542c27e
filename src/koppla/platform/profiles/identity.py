"""Identities: a namespace and an id, normalised the one way the identity graph links them.

Pure. `identities_of(xdm)` reads a record's or event's `identityMap` (the pipeline has already
spelled standard namespaces one way and added `personalEmail.address` as `Email`) and returns
each usable identity once, normalised, with the one the record names as primary first. What
cannot identify a person is left out: empty or oversized ids, ids or namespaces holding NUL
(no text column of PostgreSQL can store it), the Web SDK's all-zero fallback
ECID (every visitor without an ECID would otherwise become one person), malformed items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

MAX_ID_CHARS = 256
MAX_NAMESPACE_CHARS = 64

STANDARD = {
    name.lower(): name
    for name in ("ECID", "Email", "Phone", "Email_LC_SHA256", "Phone_SHA256", "CustomerId")
}
"""AEP's standard namespace symbols (matched case-insensitively) plus Commerce's `CustomerId`."""

PRIMARY_ORDER = ("CustomerId", "Email", "Email_LC_SHA256", "Phone", "Phone_SHA256", "ECID")
"""Which identity stands for a record that names no primary: the first namespace present here."""

_PHONE_NOISE = re.compile(r"[\s().\-/]")
_ZERO_ECID = re.compile(r"^0+$")


class Identity(NamedTuple):
    """One identity: a namespace symbol (`ECID`, `Email`, `CustomerId`, ...) and an id in it.

    A named tuple: the graph hashes and compares identities millions of times a second, and a
    tuple does that in C.
    """

    namespace: str
    id: str

    def __str__(self) -> str:
        return f"{self.namespace}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Identity:
        """`email:ann@example.com` → `Identity("Email", "ann@example.com")`, normalised.

        Raises `ValueError` when `text` has no `namespace:` prefix or the id is unusable.
        """
        namespace, sep, value = text.partition(":")
        if not sep or not namespace or not value:
            raise ValueError(f"{text!r} must look like namespace:id, e.g. email:ann@example.com")
        found = normalise(namespace, value)
        if found is None:
            raise ValueError(f"{text!r} is not a usable identity")
        return found


def namespace_symbol(namespace: str) -> str:
    """The one spelling of a namespace: standard symbols in AEP's case, others as sent."""
    return STANDARD.get(namespace.strip().lower(), namespace.strip())


def normalise(namespace: str, value: str) -> Identity | None:
    """`value` in `namespace` as the graph keys it, or None when it cannot identify anyone.

    Emails are trimmed and lower-cased (`Ann@Example.com ` and `ann@example.com` are one
    person), phone numbers lose spaces, dots, dashes, slashes and brackets, hashes are
    lower-cased, every other id is trimmed.
    """
    symbol = namespace_symbol(namespace)
    if not symbol or len(symbol) > MAX_NAMESPACE_CHARS or ":" in symbol or "\x00" in symbol:
        return None
    text = value.strip()
    if symbol in ("Email", "Email_LC_SHA256", "Phone_SHA256"):
        text = text.lower()
    elif symbol == "Phone":
        text = _PHONE_NOISE.sub("", text)
    if not text or len(text) > MAX_ID_CHARS or "\x00" in text:
        return None
    if symbol == "ECID" and _ZERO_ECID.fullmatch(text):
        return None
    return Identity(symbol, text)


def identities_of(xdm: Mapping[str, Any]) -> list[Identity]:
    """The usable identities of a record or event, each once, the primary one first.

    The primary is the item marked `primary: true` (the first such), else the first present of
    `PRIMARY_ORDER`, else the first identity in the map. Never raises on malformed input.
    """
    identity_map = xdm.get("identityMap")
    if not isinstance(identity_map, Mapping):
        return []
    found: dict[Identity, bool] = {}
    for namespace, items in identity_map.items():
        if not isinstance(namespace, str) or not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                continue
            identity = normalise(namespace, item["id"])
            if identity is not None:
                found[identity] = found.get(identity, False) or item.get("primary") is True
    ordered = list(found)
    primary = next((i for i, marked in found.items() if marked), None)
    if primary is None:
        rank = {name: n for n, name in enumerate(PRIMARY_ORDER)}
        known = [i for i in ordered if i.namespace in rank]
        primary = min(known, key=lambda i: rank[i.namespace]) if known else None
    if primary is not None:
        ordered.remove(primary)
        ordered.insert(0, primary)
    return ordered
