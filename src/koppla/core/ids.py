"""The one source of identifiers: ECIDs, event ids, dataset, batch and datastream ids."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from functools import lru_cache
from typing import Any

_ECID_DIGITS = 38


_ECID_LOW = 10 ** (_ECID_DIGITS - 1)


def new_ecid() -> str:
    """A fresh Experience Cloud ID: 38 decimal digits (no leading zero), as Adobe's edge mints."""
    return str(_ECID_LOW + int.from_bytes(os.urandom(20), "big") % (9 * _ECID_LOW))


def is_ecid(value: str) -> bool:
    """True for a well-formed ECID (38 decimal digits)."""
    return len(value) == _ECID_DIGITS and value.isdigit()


def new_uuid() -> str:
    """A random UUID4 string."""
    return str(uuid.uuid4())


def new_hex_id(nbytes: int = 12) -> str:
    """A random lowercase hex id (24 characters by default, like AEP catalog ids)."""
    return secrets.token_hex(nbytes)


def derived_uuid(*parts: bytes | str) -> str:
    """A UUID derived from `parts` (SHA-256 based): the same parts always give the same id.

    Used for event `_id`s so that a retried request names its events as the first try did.
    """
    return derived_uuid_under((), *parts)


def derived_uuid_under(prefix: tuple[str, ...], *parts: bytes | str) -> str:
    """`derived_uuid(*prefix, *parts)`, hashing `prefix` once per process.

    For callers deriving many ids under a few fixed leading parts (the connector derives
    several ids per order, each under one of a handful of prefixes).
    """
    digest = _prefix_hash(prefix).copy()
    for part in parts:
        _feed(digest, part)
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=256)
def _prefix_hash(prefix: tuple[str, ...]) -> Any:
    """The SHA-256 state after `prefix` (copied by each caller, never updated in place)."""
    digest = hashlib.sha256()
    for part in prefix:
        _feed(digest, part)
    return digest


def _feed(digest: Any, part: bytes | str) -> None:
    """Hash one part, length first, so `("ab", "c")` and `("a", "bc")` differ."""
    data = part.encode() if isinstance(part, str) else part
    digest.update(len(data).to_bytes(4, "big"))
    digest.update(data)


def new_token() -> str:
    """A new secret API token (URL-safe, 256 bits)."""
    return "kpl_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of an API token: its SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
