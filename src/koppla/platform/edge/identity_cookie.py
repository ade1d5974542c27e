"""The `kndctr_<org>_identity` cookie: base64url protobuf whose field 1 is the ECID string.

The Web SDK decodes this cookie itself; any other shape makes it ask the edge for the identity
again on every event (`/identity/acquire`).
"""

from __future__ import annotations

import base64
import binascii
import functools


@functools.lru_cache(maxsize=4096)
def cookie_name(org_id: str, kind: str = "identity") -> str:
    """`kndctr_<org with @ replaced by _>_<kind>`, as the SDK names its cookies."""
    return f"kndctr_{org_id.replace('@', '_')}_{kind}"


def encode(ecid: str) -> str:
    """The cookie value carrying `ecid`."""
    data = ecid.encode()
    message = b"\x0a" + _varint(len(data)) + data
    return base64.urlsafe_b64encode(message).rstrip(b"=").decode()


def decode(value: str) -> str | None:
    """The ECID in a cookie value, or None when it holds none."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    offset = 0
    while offset < len(raw):
        key, offset = _read_varint(raw, offset)
        if key < 0:
            return None
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, offset = _read_varint(raw, offset)
            if length < 0 or offset + length > len(raw):
                return None
            if field == 1:
                try:
                    return raw[offset : offset + length].decode()
                except UnicodeDecodeError:
                    return None
            offset += length
        elif wire == 0:
            _, offset = _read_varint(raw, offset)
        else:
            return None
    return None


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, offset: int) -> tuple[int, int]:
    result = shift = 0
    while offset < len(raw):
        byte = raw[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, offset
        shift += 7
        if shift > 63:
            break
    return -1, len(raw)
