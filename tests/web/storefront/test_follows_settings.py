"""The demo shop follows the Data Connection settings saved for its website."""

from __future__ import annotations

import httpx
import pytest

from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.connector_settings import ConnectorSettingsStore
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, DEMO_ORG_ID
from koppla.platform.catalog.models import Datastream
from koppla.web.routes.storefront import STOREFRONT_OFF
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


def _save(settings: Settings, **site: object) -> None:
    store = ConnectorSettingsStore(Layout(settings.home).catalog)
    try:
        website = {"website_code": "base", "dataset_id": "demo_events", **site}
        document = {"org_id": DEMO_ORG_ID, "web_sdk_name": "", "websites": [website]}
        store.put(DEMO_ORG_ID, document, by="test")
    finally:
        store.close()


async def test_the_shop_sends_to_the_saved_datastream(
    client: httpx.AsyncClient, demo: Datastream, services: Services, settings: Settings
) -> None:
    before = (await client.get("/demo/shop/")).text
    assert DEMO_DATASTREAM_ID in before
    other = services.catalog.create_datastream(org_id=DEMO_ORG_ID, event_dataset="demo_events")
    _save(settings, datastream_id=other.id)
    after = (await client.get("/demo/shop/")).text
    assert other.id in after and DEMO_DATASTREAM_ID not in after


async def test_storefront_events_off_means_the_shop_sends_nothing_and_says_why(
    client: httpx.AsyncClient, demo: Datastream, settings: Settings
) -> None:
    _save(settings, datastream_id=DEMO_DATASTREAM_ID, storefront_events=False)
    page = (await client.get("/demo/shop/")).text
    assert "Storefront events are off for website base" in page
    assert STOREFRONT_OFF.startswith("Storefront events are off")
    assert '"edgeConfigId"' not in page and '"datastreamId"' not in page


async def test_a_saved_datastream_of_another_organization_is_not_followed(
    client: httpx.AsyncClient, demo: Datastream, services: Services, settings: Settings
) -> None:
    _save(settings, datastream_id="not-a-demo-datastream")
    assert DEMO_DATASTREAM_ID in (await client.get("/demo/shop/")).text
