"""The Data Connection pages in-process: service account with Test connection, Settings with the
scope switcher and every rule's message next to its field, Order History, Data Customization."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from koppla.core import clock, codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.workspace import workspace_json
from koppla.web.app import create_app
from koppla.web.routes import connector_settings
from koppla.web.routes.connector_settings import connection_client
from tests.web.pages.signin import EMAIL, add_user, csrf_field, sign_in

pytestmark = pytest.mark.anyio

BASE = "/admin/connection"
OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
EVE = "eve@other.example"


@asynccontextmanager
async def connection_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Catalog]]:
    """The app (started) with a person who may sign in, a cookie-keeping client that does not
    follow redirects, and the catalog; Test connection calls the app itself."""
    add_user(settings)
    app = create_app(settings)
    if "/api/v1/connector/settings" not in {getattr(r, "path", None) for r in app.api.routes}:
        app.api.include_router(connector_settings.router)

    async def itself() -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            yield client

    app.api.dependency_overrides[connection_client] = itself
    catalog = Catalog(Layout(settings.home).catalog)
    try:
        async with app.api.router.lifespan_context(app.api):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
                yield http, catalog
    finally:
        catalog.close()


def field_block(page: str, name: str) -> str:
    """The HTML of one form field (from its wrapper to the next field's)."""
    start = page.index(f'id="field-{name}"')
    following = page.find('id="field-', start + 1)
    return page[start : following if following > 0 else len(page)]


def error_at(page: str, name: str) -> str:
    """The error message shown next to field `name` ('' when none)."""
    found = re.search(
        r'class="field-error"[^>]*>(.*?)</p>', field_block(page, name), flags=re.DOTALL
    )
    return html.unescape(found.group(1)).strip() if found else ""


def workspace(catalog: Catalog, org_id: str | None = None) -> tuple[str, str]:
    credential, secret = catalog.create_credential("connector", org_id=org_id)
    return codec.dumps(workspace_json(credential, secret)).decode(), secret


async def form_post(
    http: httpx.AsyncClient, path: str, page_path: str, fields: dict[str, Any]
) -> httpx.Response:
    """Open `page_path` and send its form to `path` with `fields` (and the page's CSRF)."""
    opened = await http.get(page_path)
    return await http.post(path, data={"csrf": csrf_field(opened.text), **fields})


async def test_every_tab_needs_a_signed_in_person(settings: Settings, demo: Datastream) -> None:
    async with connection_app(settings) as (http, _):
        for tab in ("", "/service-account", "/settings", "/history", "/customization"):
            answer = await http.get(BASE + tab)
            assert answer.status_code == 303, tab
            assert answer.headers["location"].startswith("/admin/login"), tab
        posted = await http.post(f"{BASE}/settings", data={"scope": "default"})
        assert posted.status_code in (303, 403)


async def test_a_workspace_is_tested_then_saved_and_its_secret_never_shown(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, catalog):
        await sign_in(http)
        empty = await http.get(f"{BASE}/service-account")
        assert 'id="no-account"' in empty.text and "JWT" in empty.text
        assert "deprecated" in empty.text
        text, secret = workspace(catalog)
        page = f"{BASE}/service-account"
        tested = await form_post(http, page, page, {"action": "test", "workspace": text})
        assert tested.status_code == 200
        assert 'id="test-outcome">Connection works.' in tested.text
        assert "access token fetched" in tested.text
        assert tested.headers["cache-control"] == "no-store"

        wrong = text.replace(secret, "p8e-wrong")
        refused = await form_post(http, page, page, {"action": "test", "workspace": wrong})
        assert "Connection failed: wrong client secret" in html.unescape(refused.text)
        assert '<code id="test-problem">wrong_secret</code>' in refused.text

        saved = await form_post(http, page, page, {"action": "save", "workspace": text})
        assert saved.status_code == 303
        shown = await http.get(saved.headers["location"])
        assert "Service account saved." in shown.text
        assert 'id="saved-client-id"' in shown.text and secret not in shown.text

        again = await form_post(http, page, page, {"action": "test"})
        assert 'id="test-outcome">Connection works.' in again.text


async def test_a_bad_paste_is_shown_next_to_its_field(settings: Settings, demo: Datastream) -> None:
    async with connection_app(settings) as (http, catalog):
        await sign_in(http)
        page = f"{BASE}/service-account"
        nothing = await form_post(http, page, page, {"action": "save", "workspace": ""})
        broken = await form_post(http, page, page, {"action": "save", "workspace": "{oops"})
        jwt = await form_post(
            http,
            page,
            page,
            {"action": "save", "workspace": workspace(catalog)[0], "auth_type": "jwt"},
        )
    assert nothing.status_code == 400 and "paste the workspace file" in error_at(
        nothing.text, "workspace"
    )
    assert "not JSON" in error_at(broken.text, "workspace")
    assert "OAuth server-to-server credential" in error_at(jwt.text, "auth_type")


async def test_a_form_without_its_csrf_token_is_refused(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        answer = await http.post(f"{BASE}/settings", data={"scope": "default", "org_id": "x"})
    assert answer.status_code == 403


async def test_the_default_scope_shows_the_global_fields_with_their_help(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = (await http.get(f"{BASE}/settings")).text
    assert f'value="{demo.org_id}"' in field_block(page, "org_id")
    assert "24 letters or digits followed by @AdobeOrg" in field_block(page, "org_id")
    assert "AEP Web SDK Name" in field_block(page, "web_sdk_name")
    assert 'id="field-dataset_id"' not in page  # a website's field
    assert '<option value="new">Add a website' in page


WEBSITE = {"website_code": "base", "datastream_id": "ds-1", "dataset_id": "d-1"}
CHECKED = ("storefront_events", "back_office_events", "profiles_same_datastream")


def website_form(**changes: Any) -> dict[str, Any]:
    """A new-website form: checkboxes as a browser sends them (present when checked)."""
    fields: dict[str, Any] = {"scope": "new", **WEBSITE}
    for name in CHECKED:
        fields[name] = "1"
    for name, value in changes.items():
        if value is False:
            fields.pop(name, None)
        elif value is True:
            fields[name] = "1"
        else:
            fields[name] = value
    return fields


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"datastream_id": ""}, "datastream_id", "required unless the AEP Web SDK"),
        ({"dataset_id": ""}, "dataset_id", "unless both storefront_events and back_office"),
        (
            {"dataset_id": "", "back_office_events": False},
            "dataset_id",
            "unless both storefront_events",
        ),
        ({"own_web_sdk": True}, "own_web_sdk", "AEP Web SDK Name"),
        ({"customer_profiles": True}, "profile_dataset_id", "required while customer_profiles"),
        (
            {"customer_profiles": True, "profile_dataset_id": "d-1"},
            "profile_dataset_id",
            "must differ from dataset_id",
        ),
        (
            {
                "customer_profiles": True,
                "profile_dataset_id": "p-1",
                "profiles_same_datastream": False,
            },
            "profile_datastream_id",
            "required while profiles_same_datastream is off",
        ),
        ({"dataset_id": "has space"}, "dataset_id", "letters, digits, _ and - only"),
        ({"website_code": "Base!"}, "website_code", "lower-case letters"),
    ],
)
async def test_each_invalid_combination_shows_its_message_next_to_the_field(
    settings: Settings, demo: Datastream, changes: dict[str, Any], field: str, words: str
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = f"{BASE}/settings?scope=new"
        answer = await form_post(http, f"{BASE}/settings", page, website_form(**changes))
    assert answer.status_code == 400
    assert words in error_at(answer.text, field), answer.text


async def test_the_org_id_rules_show_next_to_the_org_id(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = f"{BASE}/settings"
        short = await form_post(http, page, page, {"scope": "default", "org_id": "ABC@AdobeOrg"})
        other = await form_post(http, page, page, {"scope": "default", "org_id": OTHER_ORG})
    assert "24 letters or digits followed by @AdobeOrg" in error_at(short.text, "org_id")
    assert "one organization per instance" in error_at(other.text, "org_id")


async def test_a_valid_website_is_saved_and_its_effect_shown(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        fields = website_form(datastream_id=demo.id, dataset_id=demo.event_dataset_id)
        saved = await form_post(http, f"{BASE}/settings", f"{BASE}/settings?scope=new", fields)
        assert saved.status_code == 303
        assert saved.headers["location"] == f"{BASE}/settings?scope=website:base&saved=1"
        page = (await http.get(saved.headers["location"])).text
        api = await http.get("/api/v1/connector/settings")
    assert "Saved (version 1)." in page
    assert f'<code id="effect-datastream">{demo.id}</code>' in page
    assert f'href="/api/v1/datastreams/{demo.id}/tag"' in page
    assert '<option value="website:base" selected>' in page
    assert api.json()["settings"]["websites"][0]["datastream_id"] == demo.id


async def test_own_web_sdk_puts_the_deployed_sdk_in_effect(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = f"{BASE}/settings"
        await form_post(http, page, page, {"scope": "default", "web_sdk_name": "mySdk"})
        fields = website_form(own_web_sdk=True, datastream_id="", back_office_events=False)
        saved = await form_post(http, page, f"{page}?scope=new", fields)
        assert saved.status_code == 303, saved.text
        shown = (await http.get(saved.headers["location"])).text
    assert "window.mySdk" in shown and "the Datastream ID is ignored" in shown


async def test_a_save_on_an_old_page_is_refused(settings: Settings, demo: Datastream) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        opened = await http.get(f"{BASE}/settings")
        csrf = csrf_field(opened.text)
        first = {"csrf": csrf, "scope": "default", "org_id": demo.org_id, "version": "0"}
        assert (await http.post(f"{BASE}/settings", data=first)).status_code == 303
        late = await http.post(f"{BASE}/settings", data=first)
    assert late.status_code == 409 and "reload them and save again" in html.unescape(late.text)


@pytest.mark.parametrize("version", ["²", "٣", "9" * 4400, "-1", "1.0"])
async def test_a_version_that_is_no_number_is_refused(
    settings: Settings, demo: Datastream, version: str
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        opened = await http.get(f"{BASE}/settings")
        form = {"csrf": csrf_field(opened.text), "scope": "default", "org_id": demo.org_id}
        refused = await http.post(f"{BASE}/settings", data={**form, "version": version})
        unsaved = await http.get(f"{BASE}/settings")
    assert refused.status_code == 400
    assert "must be a whole number" in html.unescape(refused.text)
    assert "Saved (version" not in unsaved.text


async def test_each_person_sees_their_own_organizations_settings(
    settings: Settings, demo: Datastream
) -> None:
    add_user(settings, EVE, "another long password", org_id=OTHER_ORG)
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        fields = website_form(datastream_id=demo.id, dataset_id=demo.event_dataset_id)
        await form_post(http, f"{BASE}/settings", f"{BASE}/settings?scope=new", fields)
        await http.post(
            "/admin/logout", data={"csrf": csrf_field((await http.get(BASE + "/settings")).text)}
        )
        await sign_in(http, EVE, "another long password")
        theirs = (await http.get(f"{BASE}/settings")).text
    assert f'value="{OTHER_ORG}"' in field_block(theirs, "org_id")
    assert "website:base" not in theirs


async def test_start_sync_is_disabled_until_there_is_a_service_account_and_a_dataset(
    settings: Settings, demo: Datastream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as under `koppla up --demo`: the server has no connector token (the connector sends)
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    async with connection_app(settings) as (http, catalog):
        await sign_in(http)
        nothing = (await http.get(f"{BASE}/history")).text
        assert 'id="start-sync" disabled' in nothing
        assert "Start Sync needs service account credentials" in nothing
        assert "No website is configured" in nothing

        fields = website_form(datastream_id=demo.id, dataset_id="not-a-dataset")
        await form_post(http, f"{BASE}/settings", f"{BASE}/settings?scope=new", fields)
        page = f"{BASE}/service-account"
        await form_post(http, page, page, {"action": "save", "workspace": workspace(catalog)[0]})
        invalid = (await http.get(f"{BASE}/history")).text
        assert 'id="start-sync" disabled' in invalid
        assert "The dataset ID not-a-dataset is invalid" in invalid
        assert "service account" not in invalid.split('id="blockers"')[1].split("</ul>")[0]

        history = f"{BASE}/history"
        copy_off = {
            "website": "base",
            "history_dataset_id": demo.event_dataset_id,
        }
        saved = await form_post(http, f"{history}/dataset", history, copy_off)
        assert saved.status_code == 303
        ready = (await http.get(saved.headers["location"])).text
        assert 'id="start-sync" disabled' not in ready and 'id="blockers"' not in ready
        assert f'<code id="history-dataset">{demo.event_dataset_id}</code>' in ready

        today = clock.now().date()
        start = {"website": "base", "from": (today - timedelta(days=7)).isoformat()}
        started = await form_post(http, history, history, {**start, "to": today.isoformat()})
        assert started.status_code == 303, started.text
        shown = (await http.get(started.headers["location"])).text
        syncs = (await http.get(f"{history}/syncs")).text
        too_long = {**start, "from": (today - timedelta(days=6 * 365)).isoformat()}
        refused = await form_post(http, history, history, {**too_long, "to": today.isoformat()})
    assert 'id="sync-table"' in shown and "producing" in shown
    assert 'hx-get="/admin/connection/history/syncs"' in syncs
    assert refused.status_code == 400 and "five years" in error_at(refused.text, "to")


async def test_the_customization_tab_shows_its_empty_table(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = (await http.get(f"{BASE}/customization")).text
        refreshed = (await http.get(f"{BASE}/customization?refreshed=1")).text
    assert "No custom order attributes found." in page
    for column in ("Dataset", "Adobe Commerce", "Experience Platform"):
        assert f"<th>{column}</th>" in page
    assert 'id="refreshed"' in refreshed and 'id="refreshed"' not in page


async def test_the_tabs_mark_the_current_one(settings: Settings, demo: Datastream) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = (await http.get(f"{BASE}/history")).text
    assert '<a href="/admin/connection/history" aria-current="page">Order History</a>' in page
    assert EMAIL in page


async def test_custom_columns_are_saved_from_the_form_and_shown_on_the_customization_tab(
    settings: Settings, demo: Datastream
) -> None:
    async with connection_app(settings) as (http, _):
        await sign_in(http)
        page = f"{BASE}/settings"
        fields = {
            "scope": "default",
            "org_id": demo.org_id,
            "custom_order_columns": "gift_note, delivery_date",
        }
        saved = await form_post(http, page, page, fields)
        assert saved.status_code == 303, saved.text
        form = (await http.get(f"{page}?scope=default")).text
        tab = (await http.get(f"{BASE}/customization")).text
        refused = await form_post(http, page, page, {**fields, "tenant_id": "acme"})
        api = (await http.get("/api/v1/connector/settings")).json()["settings"]
    assert 'value="gift_note, delivery_date"' in form  # a list shows as it is typed
    assert "<code>gift_note, delivery_date</code>" in tab
    assert api["custom_order_columns"] == ["gift_note", "delivery_date"]
    assert "kopplademo" in error_at(refused.text, "tenant_id")
