"""Unpacking a spooled request: ids, identities, dataset overrides."""

from __future__ import annotations

from typing import Any

from koppla.core import codec
from koppla.core.envelope import EdgeRecord, RequestKind
from koppla.platform.pipeline.incoming import unpack

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
