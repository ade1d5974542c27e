"""Unpack a spooled Edge request into its events, each named and tied to the visitor.

Pure: the same spooled bytes always give the same events with the same `_id`s, which is what makes
a replay after a crash, or a client's retry, land each event once.

No spooled record can raise out of here: a body that cannot be read, an event of the wrong shape
or one that cannot be serialized becomes an `Incoming` that carries its `problems` (and the
request's text as sent), and the pipeline puts it in the quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from koppla.core import codec, ids, nesting
from koppla.core.envelope import EdgeRecord
from koppla.platform.catalog.routing import dataset_override

Problem = tuple[str, str, str]
"""One problem with a record: (path, code, message), as the quarantine stores it."""

MAX_RAW_CHARS = 64 * 1024
"""The most of a request's text kept in the quarantine for a record that cannot be re-serialized."""

MAX_DEPTH = 254
"""The deepest nesting the JSON codec writes (orjson reads 1024 levels but writes only 254)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One event of a request, ready to validate (or, when it has `problems`, to quarantine)."""

    xdm: dict[str, Any]
    event_id: str
    datastream_id: str
    request_id: str
    received_at: datetime
    dataset_override: str | None
    authenticated: bool
    problems: tuple[Problem, ...] = ()
    """Why the event cannot be handled at all; such an event goes to the quarantine as is."""
    raw: str | None = None
    """The text the quarantine keeps instead of `xdm` (the request as sent), when set."""


class Unreadable(ValueError):
    """A spooled body that is not an Edge request (should not happen: the edge checked it)."""


def unpack(record: EdgeRecord) -> list[Incoming]:
    """The events of `record`, with `_id` assigned and the visitor's ECID in `identityMap`.

    A body that is not an Edge request gives one `Incoming` with problems; so does each event
    that cannot be handled. Never raises.
    """
    received = datetime.fromtimestamp(record.received_ms / 1000, UTC)
    try:
        body = codec.loads(record.body)
        events = _events(record, body)
    except (codec.JSONDecodeError, Unreadable) as error:
        return [_failed(record, -1, received, ("", "unreadable", f"unreadable request: {error}"))]
    request_override = dataset_override(body.get("meta"))
    out: list[Incoming] = []
    for index, event in enumerate(events):
        try:
            out.append(_incoming(record, index, event, received, request_override))
        except Exception as error:  # one event must never stop the others
            message = f"{type(error).__name__}: {error}"
            out.append(_failed(record, index, received, (f"events[{index}]", "internal", message)))
    return out


def unreadable(payload: bytes, reason: str, received_at: datetime) -> Incoming:
    """A spooled record whose envelope cannot be decoded, as one `Incoming` for the quarantine."""
    text, note = _raw_text(payload)
    return Incoming(
        xdm={},
        event_id=ids.derived_uuid("unreadable", payload),
        datastream_id="",
        request_id="",
        received_at=received_at,
        dataset_override=None,
        authenticated=False,
        problems=(("", "unreadable", f"unreadable spool record: {reason}"), note),
        raw=text,
    )


def _incoming(
    record: EdgeRecord, index: int, event: Any, received: datetime, request_override: str | None
) -> Incoming:
    """One event of a readable request, or one with problems when it has the wrong shape."""
    where = f"events[{index}]"
    if not isinstance(event, dict) or not isinstance(event.get("xdm"), dict):
        return _failed(record, index, received, (where, "shape", "the event has no xdm object"))
    xdm = dict(event["xdm"])
    event_id = xdm.get("_id")
    if not isinstance(event_id, str) or not event_id:
        # Without an `_id` the event's content names it. An event that cannot be serialized
        # (one with an `_id` is caught later, when its unknown fields are) has no stable name.
        try:
            canonical = codec.dumps(event, sort_keys=True)
        except TypeError as error:
            return _failed(record, index, received, (where, "unserializable", _why(event, error)))
        event_id = ids.derived_uuid(record.datastream_id, str(index), canonical)
        xdm["_id"] = event_id
    _canonical_namespaces(xdm)
    if record.ecid:
        _attach_ecid(xdm, record.ecid)
    _attach_email(xdm)
    return Incoming(
        xdm=xdm,
        event_id=event_id,
        datastream_id=record.datastream_id,
        request_id=record.request_id,
        received_at=received,
        dataset_override=dataset_override(event.get("meta")) or request_override,
        authenticated=record.kind == "streaming",
    )


def _failed(record: EdgeRecord, index: int, received: datetime, problem: Problem) -> Incoming:
    """An event (or, for `index` -1, a whole request) that goes to the quarantine as sent."""
    text, note = _raw_text(record.body)
    return Incoming(
        xdm={},
        event_id=ids.derived_uuid(record.datastream_id, str(index), "raw", record.body),
        datastream_id=record.datastream_id,
        request_id=record.request_id,
        received_at=received,
        dataset_override=None,
        authenticated=record.kind == "streaming",
        problems=(problem, note),
        raw=text,
    )


def _raw_text(data: bytes) -> tuple[str, Problem]:
    """The text of `data` as sent (at most `MAX_RAW_CHARS`), and a note saying what was kept."""
    text = data.decode("utf-8", "replace")
    if len(text) <= MAX_RAW_CHARS:
        return text, ("", "record", "the record is the whole request as sent")
    kept = f"the first {MAX_RAW_CHARS} of {len(text)} characters of the request as sent"
    return text[:MAX_RAW_CHARS], ("", "record", f"the record is {kept}")


def _why(event: Any, error: TypeError) -> str:
    """Why an event could not be serialized, naming its depth when that is the reason."""
    depth = nesting.depth(event)
    if depth > MAX_DEPTH:
        return f"the event is nested {depth} levels deep; at most {MAX_DEPTH} can be stored"
    return f"the event cannot be serialized: {error}"


def _events(record: EdgeRecord, body: Any) -> list[Any]:
    """The events of a body: Edge `events`/`event`, or streaming-ingestion `messages`."""
    if record.kind == "streaming":
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise Unreadable("no messages array")
        return [_message_event(message) for message in messages]
    events = body.get("events") if isinstance(body, dict) else None
    if events is None and isinstance(body, dict) and isinstance(body.get("event"), dict):
        events = [body["event"]]
    if not isinstance(events, list):
        raise Unreadable("no events array")
    return events


def _message_event(message: Any) -> Any:
    """A streaming message as an Edge-style event: `xdmEntity` as `xdm`, `datasetId` as override."""
    if not isinstance(message, dict):
        return None
    header, body = message.get("header"), message.get("body")
    if not isinstance(header, dict) or not isinstance(body, dict):
        return None
    dataset = header.get("datasetId")
    override = {"com_adobe_experience_platform": {"datasets": {"event": {"datasetId": dataset}}}}
    return {"xdm": body.get("xdmEntity"), "meta": {"configOverrides": override}}


def _attach_ecid(xdm: dict[str, Any], ecid: str) -> None:
    """Add the edge's ECID to `identityMap` unless the event already names an ECID."""
    identity_map = xdm.get("identityMap")
    if identity_map is None:
        identity_map = {}
    if not isinstance(identity_map, dict) or "ECID" in identity_map:
        return
    has_primary = any(
        isinstance(items, list)
        and any(isinstance(i, dict) and i.get("primary") is True for i in items)
        for items in identity_map.values()
    )
    identity_map = dict(identity_map)
    identity_map["ECID"] = [
        {"id": ecid, "authenticatedState": "ambiguous", "primary": not has_primary}
    ]
    xdm["identityMap"] = identity_map


# AEP's standard identity namespace symbols; senders spell them in any case (the storefront
# collector writes `email`, back-office senders `Email`) and AEP matches them case-insensitively.
STANDARD_NAMESPACES = {
    name.lower(): name
    for name in ("ECID", "Email", "Phone", "Email_LC_SHA256", "Phone_SHA256", "CustomerId")
}


def _canonical_namespaces(xdm: dict[str, Any]) -> None:
    """Spell standard namespaces in `identityMap` one way (`email` → `Email`), merging lists."""
    identity_map = xdm.get("identityMap")
    if not isinstance(identity_map, dict):
        return
    if all(STANDARD_NAMESPACES.get(k.lower(), k) == k for k in identity_map):
        return
    merged: dict[str, Any] = {}
    for key, items in identity_map.items():
        name: str = STANDARD_NAMESPACES.get(str(key).lower(), str(key))
        if name in merged and isinstance(merged[name], list) and isinstance(items, list):
            merged[name] = merged[name] + items
        else:
            merged[name] = items
    xdm["identityMap"] = merged


def _attach_email(xdm: dict[str, Any]) -> None:
    """Add `personalEmail.address` to `identityMap` as a non-primary `email` identity (§3.3).

    The storefront collector does this itself; events from other clients get the same identity,
    so that profiles stitch the same way whoever sent the event.
    """
    personal = xdm.get("personalEmail")
    address = personal.get("address") if isinstance(personal, dict) else None
    identity_map = xdm.get("identityMap", {})
    if not isinstance(address, str) or not address or not isinstance(identity_map, dict):
        return
    if "Email" in identity_map or "Email_LC_SHA256" in identity_map:
        return
    xdm["identityMap"] = {**identity_map, "Email": [{"id": address, "primary": False}]}
