"""Unpacking a spooled request: ids, identities, dataset overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from koppla.core import codec
from koppla.core.envelope import EdgeRecord, RequestKind
from koppla.platform.pipeline.incoming import MAX_RAW_CHARS, unpack, unreadable

ECID = "12345678901234567890123456789012345678"


def record(body: dict[str, Any], kind: RequestKind = "interact", ecid: str = ECID) -> EdgeRecord:
    return EdgeRecord(
        received_ms=1_796_000_000_000,
        datastream_id="ds",
        org_id="o",
        ecid=ecid,
        request_id="r",
        origin="",
        kind=kind,
        body=codec.dumps(body),
    )


def test_ids_are_derived_from_content_and_kept_when_given() -> None:
    body = {"events": [{"xdm": {"eventType": "a"}}, {"xdm": {"eventType": "a", "_id": "mine"}}]}
    first, given = unpack(record(body))
    again, _ = unpack(record(body))
    other, _ = unpack(record({"events": [{"xdm": {"eventType": "b"}}, body["events"][1]]}))
    assert first.event_id == again.event_id == first.xdm["_id"]
    assert other.event_id != first.event_id
    assert given.event_id == "mine"


def test_the_edge_ecid_becomes_the_primary_identity_unless_one_is_given() -> None:
    (plain,) = unpack(record({"events": [{"xdm": {}}]}))
    assert plain.xdm["identityMap"]["ECID"] == [
        {"id": ECID, "authenticatedState": "ambiguous", "primary": True}
    ]
    own = {"identityMap": {"ECID": [{"id": "999", "primary": True}]}}
    (kept,) = unpack(record({"events": [{"xdm": own}]}))
    assert kept.xdm["identityMap"] == own["identityMap"]
    crm = {"identityMap": {"CRMID": [{"id": "c1", "primary": True}]}}
    (secondary,) = unpack(record({"events": [{"xdm": crm}]}))
    assert secondary.xdm["identityMap"]["ECID"][0]["primary"] is False


def test_an_email_becomes_a_secondary_identity() -> None:
    xdm = {"personalEmail": {"address": "a@example.com"}}
    (event,) = unpack(record({"events": [{"xdm": xdm}]}))
    assert event.xdm["identityMap"]["Email"] == [{"id": "a@example.com", "primary": False}]
    assert event.xdm["identityMap"]["ECID"][0]["primary"] is True


def test_server_records_carry_no_ecid() -> None:
    body = {"messages": [{"header": {"datasetId": "d1"}, "body": {"xdmEntity": {"_id": "x"}}}]}
    (event,) = unpack(record(body, kind="streaming", ecid=""))
    assert "identityMap" not in event.xdm
    assert event.dataset_override == "d1"
    assert event.authenticated


def test_a_dataset_override_in_meta_is_read() -> None:
    meta = {
        "configOverrides": {
            "com_adobe_experience_platform": {"datasets": {"event": {"datasetId": "other"}}}
        }
    }
    (event,) = unpack(record({"events": [{"xdm": {}}], "meta": meta}))
    assert event.dataset_override == "other"
    assert not event.authenticated


def test_standard_namespaces_are_spelled_one_way() -> None:
    xdm = {
        "identityMap": {"email": [{"id": "a@x"}], "EMAIL": [{"id": "b@x"}], "crm": [{"id": "c"}]}
    }
    (event,) = unpack(record({"events": [{"xdm": xdm}]}))
    identity_map = event.xdm["identityMap"]
    assert identity_map["Email"] == [{"id": "a@x"}, {"id": "b@x"}]
    assert identity_map["crm"] == [{"id": "c"}]
    assert "email" not in identity_map


def raw_record(body: bytes) -> EdgeRecord:
    return EdgeRecord(
        received_ms=1_796_000_000_000,
        datastream_id="ds",
        org_id="o",
        ecid=ECID,
        request_id="r",
        origin="",
        kind="interact",
        body=body,
    )


def test_an_event_too_deep_to_serialize_is_held_with_its_depth_and_the_request_text() -> None:
    deep = b'{"a":' * 299 + b"{}" + b"}" * 299
    body = b'{"events":[{"xdm":{"eventType":"x"}},{"xdm":{"deep":' + deep + b"}}]}"
    first, second = unpack(raw_record(body))
    again = unpack(raw_record(body))[1]
    assert not first.problems
    assert second.problems[0] == (
        "events[1]",
        "unserializable",
        "the event is nested 302 levels deep; at most 254 can be stored",
    )
    assert second.raw == body.decode()
    assert second.event_id == again.event_id != first.event_id


def test_bodies_that_are_not_edge_requests_become_one_held_record_each() -> None:
    for body, reason in [
        (b"{not json", "unreadable request: "),
        (b'{"events": 3}', "unreadable request: no events array"),
        (b"[" * 1100 + b"]" * 1100, "unreadable request: depth limit exceeded"),
    ]:
        (held,) = unpack(raw_record(body))
        assert held.problems[0][1] == "unreadable"
        assert held.problems[0][2].startswith(reason)
        assert held.raw == body.decode()


def test_events_of_the_wrong_shape_are_held_and_their_neighbours_go_on() -> None:
    body = {"events": [3, {"xdm": "text"}, {"xdm": {"eventType": "ok"}}]}
    number, text, fine = unpack(record(body))
    assert number.problems[0] == ("events[0]", "shape", "the event has no xdm object")
    assert text.problems[0] == ("events[1]", "shape", "the event has no xdm object")
    assert not fine.problems and fine.xdm["eventType"] == "ok"


def test_a_huge_unreadable_request_is_kept_in_part_and_says_so() -> None:
    body = b"x" * (MAX_RAW_CHARS + 10)
    (held,) = unpack(raw_record(body))
    assert held.raw == "x" * MAX_RAW_CHARS
    assert held.problems[1] == (
        "",
        "record",
        f"the record is the first {MAX_RAW_CHARS} of {MAX_RAW_CHARS + 10} characters of the "
        "request as sent",
    )


def test_garbage_in_the_spool_becomes_a_record_for_the_quarantine() -> None:
    held = unreadable(b"\xff\x00garbage", "DecodeError: bad", datetime(2026, 12, 1, tzinfo=UTC))
    assert held.problems[0] == ("", "unreadable", "unreadable spool record: DecodeError: bad")
    assert held.raw == "\ufffd\x00garbage"
    assert held.event_id == unreadable(b"\xff\x00garbage", "other", held.received_at).event_id
