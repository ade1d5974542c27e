"""A shopper from anonymous browsing to one profile, in process: edge, pipeline, profiles."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.runner import ProfileRunner
from koppla.web.services import Services
from koppla.xdm.profile import PROFILE_SCHEMA_ID
from koppla.xdm.registry import builtin_registry
from tests.flow.test_edge_to_sql import alloy_sample, post

pytestmark = pytest.mark.anyio


def _message(
    stream: Datastream, dataset: str, entity: dict[str, Any], schema: str
) -> dict[str, Any]:
    ref = {"id": schema, "contentType": "application/vnd.adobe.xed-full+json;version=1"}
    return {
        "header": {"schemaRef": ref, "imsOrgId": stream.org_id, "datasetId": dataset},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": entity},
    }


def _sign_in(ecid_cookie: str) -> dict[str, Any]:
    body = alloy_sample()
    event = copy.deepcopy(body["events"][0])
    event["xdm"] = {
        "eventType": "userAccount.login",
        "timestamp": "2026-12-04T10:01:00.000Z",
        "userAccount": {"login": 1},
        "personalEmail": {"address": "Ann@Example.com"},
    }
    body["events"] = [event]
    body["meta"]["state"]["entries"] = [{"key": ecid_cookie[0], "value": ecid_cookie[1]}]
    return body


async def test_browse_sign_in_order_and_shop_record_make_one_profile(
    client: httpx.AsyncClient,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    settings: Settings,
) -> None:
    token = services.catalog.add_token("connector")
    auth = {"authorization": f"Bearer {token}"}
    browsed = (await post(client, demo, alloy_sample())).json()
    ecid = next(h for h in browsed["handle"] if h["type"] == "identity:result")["payload"][0]["id"]
    cookie = (identity_cookie.cookie_name(demo.org_id), identity_cookie.encode(ecid))
    assert (await post(client, demo, _sign_in(cookie))).status_code == 200
    order = {
        "_id": "order-1",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2026-12-04T10:05:00.000Z",
        "identityMap": {"Email": [{"id": "ann@example.com", "primary": True}]},
        "commerce": {"order": {"purchaseID": "000000042", "priceTotal": 64.0}},
    }
    record = {
        "identityMap": {
            "CustomerId": [{"id": "42", "primary": True}],
            "Email": [{"id": "ann@example.com", "primary": False}],
        },
        "person": {"name": {"firstName": "Ann", "lastName": "Lee"}},
        "personalEmail": {"address": "ann@example.com"},
        "userAccount": {"startDate": "2025-01-02T03:04:05.000Z"},
    }
    events_id = services.catalog.dataset("demo_events").id
    batch = {"messages": [_message(demo, events_id, order, "x")]}
    assert (
        await client.post(f"/collection/batch/{demo.id}", json=batch, headers=auth)
    ).status_code == 207
    one = _message(demo, "demo_profiles", record, PROFILE_SCHEMA_ID)
    assert (await client.post(f"/collection/{demo.id}", json=one, headers=auth)).status_code == 200
    pipeline.step()

    runner = ProfileRunner(
        Layout(settings.home), services.catalog, builtin_registry(), services.profiles
    )
    report = runner.step()

    assert report.observations == 4
    view = services.lookup.profile(Identity("ECID", ecid))
    assert view is not None
    assert {str(m.identity) for m in view.members} == {
        f"ECID:{ecid}",
        "Email:ann@example.com",
        "CustomerId:42",
    }
    assert view.attributes["person"] == {"name": {"firstName": "Ann", "lastName": "Lee"}}
    assert view.attributes["userAccount"] == {"startDate": "2025-01-02T03:04:05.000Z"}
    assert (view.computed.orders, view.computed.lifetime_value) == (1, 64.0)
    timeline = [e.event_type for e in services.lookup.events(Identity("CustomerId", "42"))]
    assert sorted(timeline) == [
        "commerce.backofficeOrderPlaced",
        "userAccount.login",
        "web.webpagedetails.pageViews",
    ]
    assert runner.step().observations == 0
    rows = services.query.run(
        "SELECT len(identities), orders, "
        "json_extract_string(attributes, '$.person.name.firstName') FROM profiles"
    ).rows
    assert rows == [(3, 1, "Ann")]
    ids = services.query.run("SELECT namespace, id FROM identities ORDER BY namespace").rows
    assert ids == [("CustomerId", "42"), ("ECID", ecid), ("Email", "ann@example.com")]
    assert codec.loads(codec.dumps(view.attributes)) == view.attributes
