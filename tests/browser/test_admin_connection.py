"""A merchant sets up the Data Connection in headless Chromium against a real `koppla up`: pastes
a workspace file and tests the connection, meets every Settings rule next to its field, saves a
valid configuration and finds it in effect (the storefront tag and the running connector use the
new datastream). Screenshots go to the artifacts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from koppla.connector.demo_store import DemoShop, create_demo_schema
from koppla.connector.runner import run_connector
from koppla.connector.settings import load_settings
from koppla.connector.source import connect
from koppla.core import codec
from koppla.core.layout import Layout
from koppla.platform.catalog.demo import DEMO_ORG_ID
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.workspace import workspace_json
from tests.browser.admin import (
    PHONE_VIEWPORT,
    AdminServer,
    admin_browser,
    admin_server,
    missing_requirement,
    save_screenshot,
    signed_in_page,
)
from tests.connector.conftest import wait_for
from tests.require import require

pytestmark = pytest.mark.slow

BASE = "/admin/connection"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    require(missing_requirement())
    with admin_server(tmp_path_factory.mktemp("connection")) as running:
        yield running


@pytest.fixture
def context() -> Iterator[BrowserContext]:
    with admin_browser() as browser_context:
        yield browser_context


def new_workspace(server: AdminServer) -> tuple[str, str]:
    """A service credential of the server's organization, as its workspace file and secret."""
    catalog = Catalog(Layout(server.home).catalog)
    try:
        credential, secret = catalog.create_credential("shop connector")
    finally:
        catalog.close()
    return codec.dumps_pretty(workspace_json(credential, secret)), secret


def test_a_pasted_workspace_is_tested_and_saved(
    server: AdminServer, context: BrowserContext
) -> None:
    page = signed_in_page(context, server)
    page.goto(f"{server.url}{BASE}/service-account")
    expect(page.locator("#no-account")).to_be_visible()
    expect(page.get_by_text("JWT (deprecated)")).to_be_visible()
    expect(page.locator("#private_key")).to_be_hidden()  # the JWT kind's field only
    page.get_by_label("JWT (deprecated)").check()
    expect(page.locator("#private_key")).to_be_visible()
    page.get_by_label("OAuth Server-to-Server (recommended)").check()
    text, secret = new_workspace(server)

    page.locator("#workspace").fill(text.replace(secret, "p8e-not-the-secret"))
    page.locator("#test-connection").click()
    expect(page.locator("#test-outcome")).to_contain_text("wrong client secret")
    expect(page.locator("#test-problem")).to_have_text("wrong_secret")
    save_screenshot(page, "connection-test-wrong-secret")

    page.locator("#workspace").fill(text)
    page.locator("#test-connection").click()
    expect(page.locator("#test-outcome")).to_have_text("Connection works.")
    expect(page.locator("#test-result")).to_contain_text("access token fetched")
    save_screenshot(page, "connection-test-success")

    page.locator("#save-account").click()
    expect(page.locator("#notice")).to_have_text("Service account saved.")
    expect(page.locator("#saved-client-id")).to_be_visible()
    assert secret not in page.content()
    page.locator("#test-saved").click()
    expect(page.locator("#test-outcome")).to_have_text("Connection works.")
    save_screenshot(page, "connection-service-account")


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"datastream_id": ""}, "datastream_id", "required unless the AEP Web SDK"),
    ({"dataset_id": ""}, "dataset_id", "unless both storefront_events and back_office_events"),
    ({"dataset_id": "", "back_office_events": False}, "dataset_id", "unless both"),
    ({"own_web_sdk": True}, "own_web_sdk", "AEP Web SDK Name"),
    ({"customer_profiles": True}, "profile_dataset_id", "required while customer_profiles"),
    (
        {"customer_profiles": True, "profile_dataset_id": "same-dataset"},
        "profile_dataset_id",
        "must differ from dataset_id",
    ),
    (
        {
            "customer_profiles": True,
            "profile_dataset_id": "profiles",
            "profiles_same_datastream": False,
        },
        "profile_datastream_id",
        "required while profiles_same_datastream is off",
    ),
    (
        {
            "dataset_id": "",
            "storefront_events": False,
            "back_office_events": False,
            "customer_profiles": True,
            "profile_dataset_id": "profiles",
        },
        "dataset_id",
        "required while customer_profiles is on",
    ),
]


def fill_website(page: Page, values: dict[str, Any]) -> None:
    """Fill the website form: text fields typed, checkboxes set."""
    for name, value in values.items():
        field = page.locator(f"#{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(value)


def test_each_invalid_combination_shows_its_message_next_to_the_field(
    server: AdminServer, context: BrowserContext
) -> None:
    page = signed_in_page(context, server)
    page.goto(f"{server.url}{BASE}/settings")
    expect(page.locator("#help-org_id")).to_contain_text("24 letters or digits")
    page.locator("#org_id").fill("ABC@AdobeOrg")
    page.locator("#save-settings").click()
    expect(page.locator("#error-org_id")).to_contain_text("24 letters or digits followed by")
    page.locator("#org_id").fill("OTHERORG0000000000000000@AdobeOrg")
    page.locator("#save-settings").click()
    expect(page.locator("#error-org_id")).to_contain_text("one organization per instance")
    save_screenshot(page, "connection-settings-org-id")

    page.locator("#scope").select_option("new")
    page.wait_for_url("**/settings?scope=new")
    valid = {"website_code": "base", "datastream_id": "a-datastream", "dataset_id": "same-dataset"}
    for changes, field, words in INVALID:
        page.goto(f"{server.url}{BASE}/settings?scope=new")
        fill_website(page, {**valid, **changes})
        page.locator("#save-settings").click()
        error = page.locator(f"#field-{field} .field-error")
        expect(error).to_contain_text(words)
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        if field == "profile_datastream_id":
            save_screenshot(page, "connection-settings-invalid")
    page.set_viewport_size({"width": PHONE_VIEWPORT["width"], "height": PHONE_VIEWPORT["height"]})
    save_screenshot(page, "connection-settings-phone")


def test_a_saved_configuration_is_in_effect_for_the_tag_and_the_connector(
    server: AdminServer, context: BrowserContext, tmp_path: Path
) -> None:
    with server.api() as api:
        dataset = api.post("/api/v1/datasets", json={"name": "shop_events"}).json()
        body = {"orgId": DEMO_ORG_ID, "eventDataset": dataset["id"], "name": "shop"}
        stream = api.post("/api/v1/datastreams", json=body).json()
    page = signed_in_page(context, server)
    page.goto(f"{server.url}{BASE}/settings?scope=new")
    fill_website(
        page, {"website_code": "base", "datastream_id": stream["id"], "dataset_id": dataset["id"]}
    )
    page.locator("#save-settings").click()
    page.wait_for_url("**/settings?scope=website:base&saved=1")
    expect(page.locator("#notice")).to_contain_text("Saved")
    expect(page.locator("#effect-datastream")).to_have_text(stream["id"])
    save_screenshot(page, "connection-settings-saved")

    tag = page.request.get(f"{server.url}/api/v1/datastreams/{stream['id']}/tag")
    assert tag.ok, tag.text()
    assert tag.json()["datastreamId"] == stream["id"]
    assert f'"datastreamId": "{stream["id"]}"' in tag.json()["html"]

    shop = f"sqlite:///{tmp_path / 'demo-shop.sqlite'}"
    engine = connect(shop)
    create_demo_schema(engine)
    settings = load_settings(
        tmp_path / "connector",
        token=server.token,
        source_dsn=shop,
        platform_url=server.url,
        poll_interval_s=0.2,
        change_tracking="poll",
    )
    stop = threading.Event()
    runner = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    try:
        DemoShop(engine, seed=21).place()
        runner.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            auth = {"authorization": f"Bearer {server.token}"}
            sql = {"sql": "SELECT count(*) AS n FROM shop_events"}

            def landed() -> bool:
                answer = client.post("/api/v1/query", json=sql, headers=auth)
                return answer.status_code == 200 and answer.json()["rows"][0][0] > 0

            wait_for(landed, timeout=60, every=0.5)
    finally:
        stop.set()
        runner.join(timeout=30)
        engine.dispose()

    page.goto(f"{server.url}{BASE}/history")
    expect(page.locator("#history-dataset")).to_have_text(dataset["id"])
    save_screenshot(page, "connection-history")
    page.goto(f"{server.url}{BASE}/customization")
    # the demo shop's payments carry their method's title as a custom order attribute, which
    # the dataset's (built-in) schema does not define
    row = page.locator('#custom-attributes tr[data-level="order"][data-commerce="method_title"]')
    expect(row).to_have_class("mismatch")
    save_screenshot(page, "connection-customization")
