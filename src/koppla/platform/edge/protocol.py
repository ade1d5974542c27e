"""The Edge Network wire format: request checks, response handles and error bodies.

Shapes follow what `@adobe/alloy` sends and accepts (see domain.md §10): requests are JSON sent as
`text/plain`; a response is `{"requestId", "handle": [...]}` and must hold a `state:store` handle
that sets the identity cookie; fatal errors are problem documents with an `EXEG-` type.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from koppla.core import codec
from koppla.core.nesting import json_deeper_than
from koppla.platform.edge import identity_cookie

IDENTITY_MAX_AGE = 34_128_000  # about 13 months, as Adobe's edge sets it
CLUSTER_MAX_AGE = 1_800
CONSENT_MAX_AGE = 15_552_000


class EdgeError(Exception):
    """A request the edge refuses; becomes an Adobe-style problem response."""

    def __init__(
        self, status: int, code: str, title: str, detail: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.retry_after = retry_after

    def body(self, request_id: str, config_id: str) -> dict[str, Any]:
        """The problem document sent to the client."""
        return {
            "type": f"https://ns.adobe.com/aep/errors/{self.code}-{self.status}",
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "report": {"requestId": request_id, "configId": config_id},
        }


def malformed(detail: str) -> EdgeError:
    """The error for a body that is not a valid Edge request."""
    return EdgeError(400, "EXEG-0003", "Invalid request", detail)


def too_many_requests(seconds: int, detail: str) -> EdgeError:
    """The 429 for a client or datastream over its rate limit; retry after `seconds`."""
    return EdgeError(429, "EXEG-0010", "Too many requests", detail, retry_after=seconds)


@dataclass(frozen=True, slots=True)
class EdgeRequest:
    """The parts of a parsed request body the edge itself needs."""

    body: dict[str, Any]
    event_count: int
    state_entries: dict[str, str]
    ecid_hint: str | None
    events: list[dict[str, Any]]


def parse_events_body(
    raw: bytes, *, max_depth: int, max_events: int, single_event: bool = False
) -> EdgeRequest:
    """Check an interact/collect body: a JSON object with a non-empty `events` list of objects.

    `single_event` accepts the server API's `{"event": {...}}` form instead. A body nested
    deeper than `max_depth` is refused with 400, one of more than `max_events` events with 413.
    """
    body = _json_object(raw, max_depth)
    if single_event and "event" in body:
        events: Any = [body["event"]]
    else:
        events = body.get("events")
    if not isinstance(events, list) or not events:
        raise malformed("the body must hold a non-empty 'events' array")
    if len(events) > max_events:
        raise EdgeError(
            413,
            "EXEG-0004",
            "Too many events",
            f"the request holds {len(events)} events; at most {max_events} are allowed per "
            "request (edge_max_events)",
        )
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise malformed(f"events[{index}] must be an object")
        if not isinstance(event.get("xdm"), dict):
            raise malformed(f"events[{index}].xdm must be an object")
    return EdgeRequest(body, len(events), state_entries(body), ecid_hint(body, events), events)


def parse_consent_body(raw: bytes, *, max_depth: int) -> tuple[EdgeRequest, str]:
    """Check a set-consent body; returns it and the `general` consent value (`in`/`out`)."""
    body = _json_object(raw, max_depth)
    consent = body.get("consent")
    if not isinstance(consent, list) or not consent:
        raise malformed("the body must hold a non-empty 'consent' array")
    general = "in"
    for index, item in enumerate(consent):
        if not isinstance(item, dict):
            raise malformed(f"consent[{index}] must be an object")
        value = item.get("value")
        if item.get("standard") == "Adobe" and isinstance(value, dict):
            chosen = value.get("general")
            if chosen not in ("in", "out"):
                raise malformed(f"consent[{index}].value.general must be 'in' or 'out'")
            general = str(chosen)
    return EdgeRequest(body, 0, state_entries(body), None, []), general


def _json_object(raw: bytes, max_depth: int) -> dict[str, Any]:
    if not raw:
        raise malformed("the request body is empty")
    try:
        body = codec.loads(raw)
    except codec.JSONDecodeError as error:
        raise malformed(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise malformed("the request body must be a JSON object")
    if json_deeper_than(raw, max_depth):
        raise malformed(
            f"the request body nests deeper than {max_depth} levels of objects and arrays "
            "(edge_max_depth)"
        )
    return body


def state_entries(body: Mapping[str, Any]) -> dict[str, str]:
    meta = body.get("meta")
    state = meta.get("state") if isinstance(meta, dict) else None
    entries = state.get("entries") if isinstance(state, dict) else None
    found: dict[str, str] = {}
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                found[entry["key"]] = str(entry.get("value", ""))
    return found


def _ecid_in(identity_map: Any) -> str | None:
    if isinstance(identity_map, dict):
        items = identity_map.get("ECID")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            value = items[0].get("id")
            if isinstance(value, str) and value:
                return value
    return None


def ecid_hint(body: Mapping[str, Any], events: list[Any]) -> str | None:
    xdm = body.get("xdm")
    found = _ecid_in(xdm.get("identityMap")) if isinstance(xdm, dict) else None
    for event in events:
        found = found or _ecid_in(event["xdm"].get("identityMap"))
    return found


def identity_handles(org_id: str, ecid: str, location_hint: str) -> list[dict[str, Any]]:
    """The handles every identity-establishing response carries."""
    return [
        {"payload": [{"id": ecid, "namespace": {"code": "ECID"}}], "type": "identity:result"},
        {
            "payload": [
                {"scope": "EdgeNetwork", "hint": location_hint, "ttlSeconds": CLUSTER_MAX_AGE}
            ],
            "type": "locationHint:result",
        },
        {
            "payload": [
                _cookie(
                    identity_cookie.cookie_name(org_id),
                    identity_cookie.encode(ecid),
                    IDENTITY_MAX_AGE,
                ),
                _cookie(
                    identity_cookie.cookie_name(org_id, "cluster"), location_hint, CLUSTER_MAX_AGE
                ),
            ],
            "type": "state:store",
        },
    ]


@functools.lru_cache(maxsize=4096)
def _identity_template(org_id: str, location_hint: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The identity response cut around its three varying parts: request id, ECID, cookie."""
    marks = ("@@REQUEST@@", "@@ECID@@", "@@COOKIE@@")
    handles = identity_handles(org_id, marks[1], location_hint)
    handles[2]["payload"][0]["value"] = marks[2]
    text = response_body(marks[0], handles)
    head, rest = text.split(marks[0].encode())
    middle, rest = rest.split(marks[1].encode())
    tail_a, tail_b = rest.split(marks[2].encode())
    return head, middle, tail_a, tail_b


def identity_response(request_id: str, org_id: str, ecid: str, location_hint: str) -> bytes:
    """`response_body(request_id, identity_handles(...))`, built from a cached template.

    This is the answer to nearly every Edge request, so it skips building and serializing the
    handle dictionaries each time. Ids are plain ASCII without quotes, so no escaping is needed.
    """
    if not (_plain(request_id) and _plain(ecid)):
        return response_body(request_id, identity_handles(org_id, ecid, location_hint))
    head, middle, tail_a, tail_b = _identity_template(org_id, location_hint)
    cookie = identity_cookie.encode(ecid).encode()
    return head + request_id.encode() + middle + ecid.encode() + tail_a + cookie + tail_b


def _plain(text: str) -> bool:
    return text.isascii() and '"' not in text and "\\" not in text


def consent_handles(org_id: str, general: str) -> list[dict[str, Any]]:
    """The handle that stores the visitor's consent cookie, which the SDK waits for."""
    return [
        {
            "payload": [
                _cookie(
                    identity_cookie.cookie_name(org_id, "consent"),
                    f"general={general}",
                    CONSENT_MAX_AGE,
                )
            ],
            "type": "state:store",
        }
    ]


def _cookie(key: str, value: str, max_age: int) -> dict[str, Any]:
    return {"key": key, "value": value, "maxAge": max_age, "attrs": {"SameSite": "None"}}


def response_body(request_id: str, handles: list[dict[str, Any]]) -> bytes:
    """A successful Edge response."""
    return codec.dumps({"requestId": request_id, "handle": handles})
