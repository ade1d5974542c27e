"""The record envelope: what the edge hands to the pipeline through the spool, one per request."""

from __future__ import annotations

from typing import Literal

import msgspec

RequestKind = Literal["interact", "collect", "server", "streaming"]


class EdgeRecord(msgspec.Struct, array_like=True, frozen=True):
    """One accepted Edge Network request, as spooled.

    The body is kept as the client sent it (JSON bytes); the edge adds only what it resolved:
    the datastream and organization, the visitor's ECID and the time of receipt.
    """

    received_ms: int
    datastream_id: str
    org_id: str
    ecid: str
    request_id: str
    origin: str
    kind: RequestKind
    body: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(EdgeRecord)


def encode(record: EdgeRecord) -> bytes:
    """The spooled bytes of `record`."""
    return _encoder.encode(record)


def decode(data: bytes) -> EdgeRecord:
    """An `EdgeRecord` from spooled bytes; raises `msgspec.DecodeError` on garbage."""
    return _decoder.decode(data)
