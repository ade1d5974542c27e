"""`/api/v1/connector/history`: the Order History tab's rules and progress over HTTP."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from koppla.core import clock
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.connector_settings import ConnectorSettingsStore, ServiceAccount
from koppla.platform.catalog.models import Datastream
from koppla.web.services import Services

pytestmark = pytest.mark.anyio
PATH = "/api/v1/connector/history"
OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"


def configure(settings: Settings, dataset_id: str) -> None:
    (settings.home / "connector.toml").write_text(
        '[[websites]]\nwebsite_code = "base"\norg_id = "KOPPLADEMO00000000000000@AdobeOrg"\n'
        f'datastream_id = "ds"\ndataset_id = "{dataset_id}"\n'
    )


def save_service_account(settings: Settings, org_id: str) -> None:
    store = ConnectorSettingsStore(Layout(settings.home).catalog)
    try:
        store.save_service_account(
            ServiceAccount(
                org_id=org_id,
                auth_type="oauth_server_to_server",
                client_id="c1",
                credential_org_id=org_id,
                technical_account_id="TA@techacct.adobe.com",
                scopes=("openid", "AdobeID"),
                platform_url="http://edge.test",
                sandbox="prod",
                updated_ms=clock.now_ms(),
                updated_by="test",
            ),
            {"client_secret": "p8e-secret"},
        )
    finally:
        store.close()


def save_settings(settings: Settings, org_id: str, dataset_id: str) -> None:
    store = ConnectorSettingsStore(Layout(settings.home).catalog)
    try:
        site = {"website_code": "base", "datastream_id": "ds", "dataset_id": dataset_id}
        store.put(org_id, {"org_id": org_id, "web_sdk_name": "", "websites": [site]}, by="t")
    finally:
        store.close()


async def test_without_a_connector_the_api_says_so(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    response = await client.get(PATH, headers=auth)
    assert response.status_code == 404 and "connector.toml" in response.json()["detail"]


async def test_a_sync_is_refused_with_its_field_or_recorded(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    demo: Datastream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    today = clock.now().date()
    body = {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
    configure(settings, "no-such-dataset")
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    refused = await client.post(PATH, json=body, headers=auth)
    assert refused.status_code == 400 and refused.json()["field"] == "service_account"
    assert "Service account page" in refused.json()["detail"]

    save_service_account(settings, demo.org_id)
    refused = await client.post(PATH, json=body, headers=auth)
    assert refused.status_code == 400 and refused.json()["field"] == "dataset"

    configure(settings, demo.event_dataset_id)
    late = {"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()}
    refused = await client.post(PATH, json=late, headers=auth)
    assert refused.status_code == 400 and refused.json()["field"] == "from"
    long = {"from": (today - timedelta(days=6 * 365)).isoformat(), "to": today.isoformat()}
    refused = await client.post(PATH, json=long, headers=auth)
    assert refused.status_code == 400 and "five years" in refused.json()["detail"]

    started = await client.post(PATH, json=body, headers=auth)
    assert started.status_code == 202, started.text
    shown = started.json()
    assert shown["status"] == "producing" and shown["datasets"] == {"base": demo.event_dataset_id}
    listed = (await client.get(PATH, headers=auth)).json()["syncs"]
    assert [s["id"] for s in listed] == [shown["id"]]
    one = (await client.get(f"{PATH}/{shown['id']}", headers=auth)).json()
    assert one["orders"] == {"found": 0, "done": 0, "failed": 0} and one["failedOrders"] == []
    assert (await client.get(f"{PATH}/nope", headers=auth)).status_code == 404
    assert (await client.get(PATH)).status_code == 401


async def test_the_settings_saved_in_the_admin_apply_where_the_file_is_silent(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    demo: Datastream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    today = clock.now().date()
    body = {"from": (today - timedelta(days=3)).isoformat(), "to": today.isoformat()}
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_connector")
    save_settings(settings, demo.org_id, demo.event_dataset_id)
    save_service_account(settings, demo.org_id)
    started = await client.post(PATH, json=body, headers=auth)
    assert started.status_code == 202, started.text
    assert started.json()["datasets"] == {"base": demo.event_dataset_id}

    configure(settings, "no-such-dataset")  # connector.toml overrides, as for the connector
    refused = await client.post(PATH, json=body, headers=auth)
    assert refused.status_code == 400 and refused.json()["field"] == "dataset"


async def test_start_sync_needs_no_connector_token_on_the_server(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    demo: Datastream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`koppla up --demo`: the server has no KOPPLA_CONNECTOR_TOKEN; the running connector
    sends the sync's batches with its own credentials, so Start Sync is accepted."""
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    monkeypatch.delenv("KOPPLA_CONNECTOR_CLIENT_SECRET", raising=False)
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    today = clock.now().date()
    body = {"from": (today - timedelta(days=3)).isoformat(), "to": today.isoformat()}
    save_settings(settings, demo.org_id, demo.event_dataset_id)
    save_service_account(settings, demo.org_id)
    started = await client.post(PATH, json=body, headers=auth)
    assert started.status_code == 202, started.text
    assert started.json()["datasets"] == {"base": demo.event_dataset_id}


async def test_another_organization_has_no_connector_here(
    client: httpx.AsyncClient,
    services: Services,
    settings: Settings,
    demo: Datastream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_connector")
    configure(settings, demo.event_dataset_id)
    save_settings(settings, OTHER_ORG, "their-dataset")
    save_service_account(settings, OTHER_ORG)
    theirs = {"authorization": f"Bearer {services.catalog.add_token('t', org_id=OTHER_ORG)}"}
    today = clock.now().date()
    body = {"from": today.isoformat(), "to": today.isoformat()}
    listed = await client.get(PATH, headers=theirs)
    started = await client.post(PATH, json=body, headers=theirs)
    assert listed.status_code == 404 and demo.org_id in listed.json()["detail"]
    assert started.status_code == 404
