"""Organizations are boundaries: a token of one cannot read or write another's data (API, SQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.datasets.tables import provision
from koppla.platform.pipeline.runner import Pipeline
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.runner import ProfileRunner
from koppla.web.services import Services
from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.profile import PROFILE_SCHEMA_ID
from koppla.xdm.registry import builtin_registry

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"


def _page_view(name: str) -> dict[str, Any]:
    return {
        "events": [
            {
                "xdm": {
                    "eventType": "web.webpagedetails.pageViews",
                    "timestamp": "2026-12-01T10:00:00Z",
                    "web": {"webPageDetails": {"name": name, "URL": "https://shop.test/"}},
                }
            },
            {"xdm": {"eventType": "web.webpagedetails.pageViews", "timestamp": "not a time"}},
        ]
    }


async def _send(client: httpx.AsyncClient, stream: Datastream, name: str) -> None:
    answer = await client.post(
        f"/ee/v1/interact?configId={stream.id}",
        content=codec.dumps(_page_view(name)),
        headers={"content-type": "text/plain"},
    )
    assert answer.status_code == 200


@pytest.fixture
def other(services: Services) -> Datastream:
    """A second organization with its own dataset and datastream."""
    dataset = services.catalog.create_dataset(
        "other_events", schema_id=commerce_experience_event().id, org_id=OTHER_ORG
    )
    provision(services.layout, services.registry, dataset)
    return services.catalog.create_datastream(org_id=OTHER_ORG, event_dataset="other_events")


async def test_each_organization_sees_only_its_own_datasets_rows_and_quarantine(
    client: httpx.AsyncClient,
    demo: Datastream,
    other: Datastream,
    pipeline: Pipeline,
    services: Services,
) -> None:
    await _send(client, demo, "demo home")
    await _send(client, other, "other home")
    while pipeline.step():
        pass
    mine = {"authorization": f"Bearer {services.catalog.add_token('demo')}"}
    theirs = {"authorization": f"Bearer {services.catalog.add_token('o', org_id=OTHER_ORG)}"}

    listed = (await client.get("/api/v1/datasets", headers=theirs)).json()
    assert [d["name"] for d in listed] == ["other_events"]
    assert (await client.get("/api/v1/datasets/demo_events", headers=theirs)).status_code == 404
    aep = (await client.get("/data/foundation/catalog/dataSets", headers=theirs)).json()
    assert [d["name"] for d in aep.values()] == ["other_events"]
    streams = (await client.get("/api/v1/datastreams", headers=theirs)).json()
    assert [s["id"] for s in streams] == [other.id]
    demo_batches = (await client.get("/api/v1/batches", headers=mine)).json()
    assert demo_batches
    for batch in demo_batches:
        answer = await client.get(f"/api/v1/batches/{batch['id']}", headers=theirs)
        assert answer.status_code == 404
    assert (await client.get("/api/v1/batches", headers=theirs)).json()
    assert all(
        b["dataset_id"] == other.event_dataset_id
        for b in (await client.get("/api/v1/batches", headers=theirs)).json()
    )

    sql = {"sql": "SELECT web.webPageDetails.name AS name FROM demo_events"}
    refused = await client.post("/api/v1/query", json=sql, headers=theirs)
    assert refused.status_code == 400
    assert "demo_events" in refused.json()["detail"]
    own = await client.post(
        "/api/v1/query",
        json={"sql": "SELECT web.webPageDetails.name AS name FROM other_events"},
        headers=theirs,
    )
    assert own.json()["rows"] == [["other home"]]
    quarantined = {"sql": "SELECT datastream_id FROM quarantine"}
    theirs_bad = (await client.post("/api/v1/query", json=quarantined, headers=theirs)).json()
    mine_bad = (await client.post("/api/v1/query", json=quarantined, headers=mine)).json()
    assert theirs_bad["rows"] == [[other.id]]
    assert mine_bad["rows"] == [[demo.id]]
    profiles = {"sql": "SELECT count(*) FROM profiles"}
    assert (await client.post("/api/v1/query", json=profiles, headers=theirs)).status_code == 400


async def test_a_token_cannot_write_into_another_organization(
    client: httpx.AsyncClient, demo: Datastream, other: Datastream, services: Services
) -> None:
    theirs = {"authorization": f"Bearer {services.catalog.add_token('o', org_id=OTHER_ORG)}"}
    message = {
        "header": {"datasetId": demo.event_dataset_id, "imsOrgId": OTHER_ORG},
        "body": {"xdmEntity": {"eventType": "web.webpagedetails.pageViews"}},
    }
    into_demo = await client.post(f"/collection/{demo.id}", json=message, headers=theirs)
    assert into_demo.status_code == 404
    through_own = await client.post(f"/collection/{other.id}", json=message, headers=theirs)
    assert through_own.status_code == 400
    assert "datasetId" in through_own.json()["detail"]
    batch = await client.post(
        "/data/foundation/import/batches",
        json={"datasetId": demo.event_dataset_id, "inputFormat": {"format": "json"}},
        headers=theirs,
    )
    assert batch.status_code == 400
    stream = await client.post(
        "/api/v1/datastreams", json={"eventDataset": "demo_events"}, headers=theirs
    )
    assert stream.status_code == 400
    elsewhere = await client.post(
        "/api/v1/datastreams",
        json={"eventDataset": "other_events", "orgId": demo.org_id},
        headers=theirs,
    )
    assert elsewhere.status_code == 403
    debug = await client.get(f"/api/v1/datastreams/{demo.id}/stats", headers=theirs)
    assert debug.status_code == 404
    profile = await client.get("/api/v1/profiles/email:ann@example.com", headers=theirs)
    assert profile.status_code == 404
    assert "home's organization" in profile.json()["detail"]


async def test_adobe_headers_must_match_the_token(
    client: httpx.AsyncClient, demo: Datastream, other: Datastream, services: Services
) -> None:
    token = services.catalog.add_token("o", org_id=OTHER_ORG)
    auth = {"authorization": f"Bearer {token}"}
    same = await client.get(
        "/api/v1/datasets", headers={**auth, "x-gw-ims-org-id": OTHER_ORG, "x-api-key": "any"}
    )
    assert same.status_code == 200
    wrong = await client.get("/api/v1/datasets", headers={**auth, "x-gw-ims-org-id": demo.org_id})
    assert wrong.status_code == 403
    assert "x-gw-ims-org-id" in wrong.json()["detail"]
    dev = await client.get("/api/v1/datasets", headers={**auth, "x-sandbox-name": "dev"})
    assert dev.json() == []
    bad = await client.get("/api/v1/datasets", headers={**auth, "x-sandbox-name": "../prod"})
    assert bad.status_code == 400
    created = await client.post(
        "/api/v1/datasets",
        json={"name": "dev_events"},
        headers={**auth, "x-sandbox-name": "dev"},
    )
    assert created.status_code == 201
    assert (created.json()["org_id"], created.json()["sandbox"]) == (OTHER_ORG, "dev")
    prod = (await client.get("/api/v1/datasets", headers=auth)).json()
    assert [d["name"] for d in prod] == ["other_events"]


async def test_another_organizations_profile_records_never_reach_the_homes_profiles(
    client: httpx.AsyncClient,
    demo: Datastream,
    pipeline: Pipeline,
    services: Services,
    settings: Settings,
) -> None:
    """The profile store is the home's organization's: a record another organization sends,
    claiming one of its customers' emails, must not join or change that customer's profile."""
    dataset = services.catalog.create_dataset(
        "other_profiles", schema_id=PROFILE_SCHEMA_ID, org_id=OTHER_ORG, profile_enabled=True
    )
    provision(services.layout, services.registry, dataset)
    other = services.catalog.create_dataset(
        "other_events", schema_id=commerce_experience_event().id, org_id=OTHER_ORG
    )
    provision(services.layout, services.registry, other)
    stream = services.catalog.create_datastream(
        org_id=OTHER_ORG, event_dataset="other_events", profile_dataset="other_profiles"
    )
    theirs = {"authorization": f"Bearer {services.catalog.add_token('o', org_id=OTHER_ORG)}"}
    record = {
        "identityMap": {"Email": [{"id": "victim@shop.example", "primary": True}]},
        "person": {"name": {"firstName": "HACKED"}},
    }
    ref = {"id": PROFILE_SCHEMA_ID, "contentType": "application/vnd.adobe.xed-full+json"}
    message = {
        "header": {"schemaRef": ref, "imsOrgId": OTHER_ORG, "datasetId": dataset.id},
        "body": {"xdmMeta": {"schemaRef": ref}, "xdmEntity": record},
    }
    sent = await client.post(f"/collection/{stream.id}", json=message, headers=theirs)
    assert sent.status_code == 200
    while pipeline.step():
        pass
    assert services.query.run("SELECT count(*) FROM other_profiles").rows == [(1,)]

    runner = ProfileRunner(
        Layout(settings.home), services.catalog, builtin_registry(), services.profiles
    )
    runner.step()
    assert services.lookup.profile(Identity("Email", "victim@shop.example")) is None
