"""The edge's lean read of an interact body answers exactly as the full parse does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from koppla.platform.edge import protocol
from koppla.platform.edge.app import parse_interact
from koppla.platform.edge.protocol import EdgeError

ECID = "12345678901234567890123456789012345678"
EVENT = {"xdm": {"eventType": "web.webpagedetails.pageViews", "web": {"name": "home"}}}
STATE = {"state": {"entries": [{"key": "kndctr_X_identity", "value": "abc"}, {"key": 5}]}}


def _body(**fields: Any) -> bytes:
    return orjson.dumps({"events": [EVENT], **fields})


BODIES = {
    "plain": _body(),
    "many events": orjson.dumps({"events": [EVENT] * 30}),
    "state entries": _body(meta=STATE),
    "meta not an object": _body(meta=[1]),
    "ecid in an event": orjson.dumps(
        {"events": [EVENT, {"xdm": {"identityMap": {"ECID": [{"id": ECID}]}}}]}
    ),
    "ecid at the top": _body(xdm={"identityMap": {"ECID": [{"id": ECID}]}}),
    "identityMap of the wrong shape": orjson.dumps({"events": [{"xdm": {"identityMap": [1]}}]}),
    "unicode": orjson.dumps({"events": [{"xdm": {"name": "Kö 🛒 \u2028"}}]}),
    "escapes": b'{"events":[{"xdm":{"a":"\\"\\\\\\/\\u00e9\\n"}}]}',
    "duplicate keys, last wins": b'{"events":[{"xdm":5}],"events":[{"xdm":{}},{"xdm":{}}]}',
    "duplicate xdm, last wins": b'{"events":[{"xdm":5,"xdm":{}}]}',
    "duplicate xdm, last not an object": b'{"events":[{"xdm":{},"xdm":5}]}',
    "empty": b"",
    "not json": b"{nope",
    "trailing garbage": _body() + b" x",
    "not an object": b"[1]",
    "no events": b'{"event":{"xdm":{}}}',
    "empty events": b'{"events":[]}',
    "event not an object": b'{"events":[1]}',
    "xdm missing": b'{"events":[{"data":{}}]}',
    "xdm not an object": b'{"events":[{"xdm":[]}]}',
    "too many events": orjson.dumps({"events": [EVENT] * 11}),
    "too deep": orjson.dumps({"events": [{"xdm": {"a": [[[[[[[[[[[[1]]]]]]]]]]]]}}]}),
    "far too deep": b'{"events":[{"xdm":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}]}",
    "invalid utf-8": b'{"events":[{"xdm":{"a":"\xff\xfe"}}]}',
    "lone surrogate": b'{"events":[{"xdm":{"a":"\\ud800"}}]}',
    "number too large": b'{"events":[{"xdm":{"a":1e400}}]}',
    "number too large, signed exponent": b'{"events":[{"xdm":{"a":-1.5E+309}}]}',
    "integer too long": b'{"events":[{"xdm":{"a":' + b"9" * 400 + b"}}]}",
    "small numbers": b'{"events":[{"xdm":{"a":1e-400,"b":-12.5e10,"c":123456789012345678}}]}',
    "NaN": b'{"events":[{"xdm":{"a":NaN}}]}',
    "control character": b'{"events":[{"xdm":{"a":"\x01"}}]}',
}


def _outcome(parse: Any, raw: bytes) -> tuple[Any, ...]:
    try:
        request = parse(raw, max_depth=10, max_events=10)
    except EdgeError as error:
        return ("refused", error.status, error.code, error.detail)
    return ("accepted", request.event_count, request.state_entries, request.ecid_hint)


@pytest.mark.parametrize("raw", BODIES.values(), ids=BODIES.keys())
def test_the_lean_read_accepts_and_refuses_like_the_full_parse(raw: bytes) -> None:
    assert _outcome(parse_interact, raw) == _outcome(protocol.parse_events_body, raw)


def test_the_lean_read_finds_the_state_and_the_ecid() -> None:
    raw = orjson.dumps(
        {
            "events": [EVENT, {"xdm": {"identityMap": {"ECID": [{"id": ECID}]}}}],
            "meta": STATE,
        }
    )
    request = parse_interact(raw, max_depth=10, max_events=10)
    assert (request.event_count, request.ecid_hint) == (2, ECID)
    assert request.state_entries == {"kndctr_X_identity": "abc"}
