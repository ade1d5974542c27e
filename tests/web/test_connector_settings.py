"""`/api/v1/connector/settings` and `/api/v1/connector/service-account`: every §2.1 rule over
HTTP, one document per organization with a version, and Test connection saying what failed."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.workspace import workspace_json
from koppla.web.app import KopplaApp, create_app
from koppla.web.routes import connector_settings
from koppla.web.routes.connector_settings import connection_client

pytestmark = pytest.mark.anyio

PATH = "/api/v1/connector/settings"
ACCOUNT = "/api/v1/connector/service-account"
OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
BASE_URL = "http://platform.test"


def with_routes(app: KopplaApp) -> KopplaApp:
    """`app`, with this module's routes when `create_app` does not register them yet."""
    have = {getattr(route, "path", None) for route in app.api.routes}
    if f"{PATH}" not in have:
        app.api.include_router(connector_settings.router)
    return app


@asynccontextmanager
async def platform(
    settings: Settings, transport: Callable[[KopplaApp], httpx.AsyncBaseTransport] | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Catalog]]:
    """The app (started), a client to it, and its catalog. Test connection's outgoing calls
    go through `transport(app)` (default: the app itself, at `BASE_URL`)."""
    app = with_routes(create_app(settings))
    made = transport(app) if transport else httpx.ASGITransport(app=app)

    async def client() -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=made) as outgoing:
            yield outgoing

    app.api.dependency_overrides[connection_client] = client
    catalog = Catalog(Layout(settings.home).catalog)
    try:
        async with app.api.router.lifespan_context(app.api):
            transport_in = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport_in, base_url=BASE_URL) as http:
                yield http, catalog
    finally:
        catalog.close()


def bearer(catalog: Catalog, org_id: str | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {catalog.add_token('t', org_id=org_id)}"}


def site(**extra: Any) -> dict[str, Any]:
    return {"website_code": "base", "datastream_id": "ds-1", "dataset_id": "d-1", **extra}


def document(org_id: str, *websites: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"org_id": org_id, "web_sdk_name": "", "websites": list(websites), **extra}


async def put(http: httpx.AsyncClient, auth: dict[str, str], body: Any) -> httpx.Response:
    return await http.put(PATH, json=body, headers=auth)


def errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


# the settings document -------------------------------------------------------------------------


async def test_an_organization_starts_with_an_empty_document_and_every_fields_help(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        answer = await http.get(PATH, headers=bearer(catalog))
    assert answer.status_code == 200
    body = answer.json()
    assert body["version"] == 0 and answer.headers["etag"] == '"v0"'
    assert body["settings"] == {"org_id": demo.org_id, "web_sdk_name": "", "websites": []}
    fields = {(f["scope"], f["name"]): f for f in body["fields"]}
    for name in ("org_id", "web_sdk_name"):
        assert fields[("global", name)]["description"]
    for name in (
        "own_web_sdk",
        "storefront_events",
        "back_office_events",
        "datastream_id",
        "dataset_id",
        "customer_profiles",
        "profile_dataset_id",
        "profiles_same_datastream",
        "profile_datastream_id",
        "history_copy_dataset_id",
        "history_dataset_id",
    ):
        assert fields[("website", name)]["description"], name
        assert fields[("website", name)]["label"], name
    assert fields[("website", "storefront_events")]["default"] is True


async def test_a_valid_document_is_saved_with_a_version_and_served_back(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        body = document(demo.org_id, site(datastream_id=demo.id, dataset_id=demo.event_dataset_id))
        saved = await put(http, auth, body)
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1 and saved.headers["etag"] == '"v1"'
        assert saved.json()["warnings"] == []
        served = (await http.get(PATH, headers=auth)).json()
    assert served["version"] == 1 and served["updatedBy"] == "t"
    websites = served["settings"]["websites"]
    assert [(w["website_code"], w["datastream_id"]) for w in websites] == [("base", demo.id)]
    assert websites[0]["storefront_events"] is True and "org_id" not in websites[0]


async def test_the_org_id_may_be_left_out_and_is_the_callers(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        saved = await put(http, bearer(catalog), {"websites": [site()]})
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["org_id"] == demo.org_id


@pytest.mark.parametrize(
    ("org_id", "words"),
    [
        ("ABC@AdobeOrg", "24 letters or digits followed by @AdobeOrg"),
        ("ABCDEFGHIJKLMNOPQRSTUVWX", "24 letters or digits followed by @AdobeOrg"),
        ("ABCDEFGHIJKLMNOPQRSTUVW!@AdobeOrg", "24 letters or digits followed by @AdobeOrg"),
        (OTHER_ORG, "one organization per instance"),
    ],
)
async def test_the_org_id_has_its_format_and_is_one_per_instance(
    settings: Settings, demo: Datastream, org_id: str, words: str
) -> None:
    async with platform(settings) as (http, catalog):
        found = errors(await put(http, bearer(catalog), document(org_id, site())))
    assert words in found["org_id"]


@pytest.mark.parametrize("org_id", [[], {}, None, 0, False])
async def test_an_org_id_that_is_not_text_is_refused(
    settings: Settings, demo: Datastream, org_id: object
) -> None:
    """Only a missing or empty org_id means the caller's organization."""
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        found = errors(await put(http, auth, {"org_id": org_id, "websites": [site()]}))
        stored = (await http.get(PATH, headers=auth)).json()
    assert list(found) == ["org_id"]
    assert stored["version"] == 0


async def test_a_website_org_id_other_than_the_global_one_is_refused(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        found = errors(await put(http, auth, document(demo.org_id, site(org_id=OTHER_ORG))))
        same = await put(http, auth, document(demo.org_id, site(org_id=demo.org_id)))
    assert "one organization per instance" in found["websites[base].org_id"]
    assert same.status_code == 200, same.text


async def test_own_web_sdk_needs_the_web_sdk_name(settings: Settings, demo: Datastream) -> None:
    sdk = site(own_web_sdk=True)
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        found = errors(await put(http, auth, document(demo.org_id, sdk)))
        named = await put(http, auth, document(demo.org_id, sdk, web_sdk_name="alloy"))
        bad_name = errors(await put(http, auth, document(demo.org_id, sdk, web_sdk_name="a b")))
    assert "AEP Web SDK Name" in found["websites[base].own_web_sdk"]
    assert named.status_code == 200, named.text
    assert "JavaScript name" in bad_name["web_sdk_name"]


async def test_own_web_sdk_makes_the_datastream_id_ignored_not_required(
    settings: Settings, demo: Datastream
) -> None:
    storefront_only = site(own_web_sdk=True, datastream_id="", back_office_events=False)
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        without_sdk = errors(
            await put(http, auth, document(demo.org_id, {**storefront_only, "own_web_sdk": False}))
        )
        saved = await put(http, auth, document(demo.org_id, storefront_only, web_sdk_name="alloy"))
        back_office = errors(
            await put(
                http,
                auth,
                document(
                    demo.org_id,
                    {**storefront_only, "back_office_events": True},
                    web_sdk_name="alloy",
                ),
            )
        )
    assert (
        "required unless the AEP Web SDK is already deployed"
        in without_sdk["websites[base].datastream_id"]
    )
    assert saved.status_code == 200, saved.text
    # The connector still streams back-office events through a datastream of its own.
    assert "back-office events" in back_office["websites[base].datastream_id"]


async def test_the_dataset_id_is_required_unless_both_event_kinds_are_off(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        refused = {}
        for storefront, back_office in ((True, True), (True, False), (False, True)):
            kinds = {"storefront_events": storefront, "back_office_events": back_office}
            refused[(storefront, back_office)] = errors(
                await put(http, auth, document(demo.org_id, site(dataset_id="", **kinds)))
            )
        both_off = await put(
            http,
            auth,
            document(
                demo.org_id, site(dataset_id="", storefront_events=False, back_office_events=False)
            ),
        )
    for found in refused.values():
        assert (
            "unless both storefront_events and back_office_events are off"
            in found["websites[base].dataset_id"]
        )
    assert both_off.status_code == 200, both_off.text


async def test_the_dataset_id_is_still_required_with_own_web_sdk(
    settings: Settings, demo: Datastream
) -> None:
    sdk = site(own_web_sdk=True, datastream_id="", back_office_events=False, dataset_id="")
    async with platform(settings) as (http, catalog):
        found = errors(
            await put(http, bearer(catalog), document(demo.org_id, sdk, web_sdk_name="alloy"))
        )
    assert "websites[base].dataset_id" in found and "websites[base].datastream_id" not in found


async def test_customer_profiles_need_a_profile_dataset_other_than_the_dataset(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        missing = errors(await put(http, auth, document(demo.org_id, site(customer_profiles=True))))
        same = errors(
            await put(
                http,
                auth,
                document(demo.org_id, site(customer_profiles=True, profile_dataset_id="d-1")),
            )
        )
        events_off = errors(
            await put(
                http,
                auth,
                document(
                    demo.org_id,
                    site(
                        dataset_id="",
                        storefront_events=False,
                        back_office_events=False,
                        customer_profiles=True,
                        profile_dataset_id="p-1",
                    ),
                ),
            )
        )
    assert "required while customer_profiles is on" in missing["websites[base].profile_dataset_id"]
    assert "must differ from dataset_id" in same["websites[base].profile_dataset_id"]
    assert "profile events go to it" in events_off["websites[base].dataset_id"]


async def test_a_separate_profile_datastream_is_required_when_not_streaming_through_the_same(
    settings: Settings, demo: Datastream
) -> None:
    profiles = site(
        customer_profiles=True, profile_dataset_id="p-1", profiles_same_datastream=False
    )
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        found = errors(await put(http, auth, document(demo.org_id, profiles)))
        given = await put(
            http, auth, document(demo.org_id, {**profiles, "profile_datastream_id": "ds-p"})
        )
    assert (
        "required while profiles_same_datastream is off"
        in found["websites[base].profile_datastream_id"]
    )
    assert given.status_code == 200, given.text


async def test_field_formats_and_unknown_fields_are_refused_with_their_field(
    settings: Settings, demo: Datastream
) -> None:
    bad = [
        site(website_code="Base!"),
        site(website_code="eu", dataset_id="has space"),
        site(website_code="us", colour="red"),
        site(website_code="uk", back_office_events="maybe"),
    ]
    async with platform(settings) as (http, catalog):
        found = errors(await put(http, bearer(catalog), document(demo.org_id, *bad)))
    assert "websites[0].website_code" in found
    assert "websites[eu].dataset_id" in found
    assert "websites[us].colour" in found
    assert "websites[uk].back_office_events" in found


async def test_each_website_code_appears_once(settings: Settings, demo: Datastream) -> None:
    async with platform(settings) as (http, catalog):
        found = errors(await put(http, bearer(catalog), document(demo.org_id, site(), site())))
    assert "once" in found["websites[base].website_code"]


async def test_every_problem_is_listed_at_once(settings: Settings, demo: Datastream) -> None:
    sites = [
        site(datastream_id="", dataset_id=""),
        site(website_code="eu", customer_profiles=True, profiles_same_datastream=False),
    ]
    async with platform(settings) as (http, catalog):
        answer = await put(http, bearer(catalog), document(demo.org_id, *sites))
    found = errors(answer)
    assert set(found) == {
        "websites[base].datastream_id",
        "websites[base].dataset_id",
        "websites[eu].profile_dataset_id",
        "websites[eu].profile_datastream_id",
    }
    assert "websites[eu].profile_datastream_id" in answer.json()["detail"]


async def test_names_the_organization_lacks_are_warnings(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        saved = await put(http, bearer(catalog), document(demo.org_id, site(datastream_id=demo.id)))
    assert saved.status_code == 200
    assert {w["field"] for w in saved.json()["warnings"]} == {"websites[base].dataset_id"}


async def test_a_save_based_on_an_old_version_is_refused(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        first = await put(http, auth, {**document(demo.org_id, site()), "version": 0})
        late = await put(http, auth, {**document(demo.org_id, site()), "version": 0})
        matched = await http.put(
            PATH, json=document(demo.org_id, site()), headers={**auth, "if-match": '"v1"'}
        )
        stale = await http.put(
            PATH, json=document(demo.org_id, site()), headers={**auth, "if-match": '"v1"'}
        )
    assert first.status_code == 200 and first.json()["version"] == 1
    assert late.status_code == 409 and late.json()["version"] == 1
    assert matched.status_code == 200 and matched.json()["version"] == 2
    assert stale.status_code == 409


@pytest.mark.parametrize(
    "if_match",
    [b'"v\xb2"', '"v²"'.encode(), b'"v' + b"9" * 4400 + b'"', b'"v1e3"', b'"v-1"', b'"1"'],
)
async def test_an_if_match_that_is_no_version_is_refused(
    settings: Settings, demo: Datastream, if_match: bytes
) -> None:
    async with platform(settings) as (http, catalog):
        auth: dict[str, str | bytes] = {**bearer(catalog), "if-match": if_match}
        whole = await http.put(PATH, json=document(demo.org_id, site()), headers=auth)
        one = await http.put(f"{PATH}/websites/base", json=site(), headers=auth)
        stored = (await http.get(PATH, headers=bearer(catalog))).json()
    assert list(errors(whole)) == ["version"] and list(errors(one)) == ["version"]
    assert stored["version"] == 0


async def test_an_if_match_of_any_version_saves_unconditionally(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = {**bearer(catalog), "if-match": "*"}
        saved = await http.put(PATH, json=document(demo.org_id, site()), headers=auth)
    assert saved.status_code == 200, saved.text


async def test_an_unchanged_document_answers_304_to_its_etag(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        await put(http, auth, document(demo.org_id, site()))
        same = await http.get(PATH, headers={**auth, "if-none-match": '"v1"'})
        await put(http, auth, document(demo.org_id, site(dataset_id="d-2")))
        changed = await http.get(PATH, headers={**auth, "if-none-match": '"v1"'})
    assert same.status_code == 304 and same.content == b""
    assert changed.status_code == 200 and changed.headers["etag"] == '"v2"'


async def test_one_website_is_replaced_added_or_removed_alone(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        await put(http, auth, document(demo.org_id, site()))
        added = await http.put(f"{PATH}/websites/eu", json=site(website_code="eu"), headers=auth)
        changed = await http.put(
            f"{PATH}/websites/base",
            json={"datastream_id": "ds-9", "dataset_id": "d-9"},
            headers=auth,
        )
        refused = await http.put(f"{PATH}/websites/eu", json={"dataset_id": ""}, headers=auth)
        wrong = await http.put(f"{PATH}/websites/eu", json=site(website_code="us"), headers=auth)
        removed = await http.delete(f"{PATH}/websites/eu", headers=auth)
        missing = await http.delete(f"{PATH}/websites/eu", headers=auth)
    assert added.status_code == 200, added.text
    assert [w["website_code"] for w in added.json()["settings"]["websites"]] == ["base", "eu"]
    sites = {w["website_code"]: w for w in changed.json()["settings"]["websites"]}
    assert sites["base"]["datastream_id"] == "ds-9" and sites["eu"]["datastream_id"] == "ds-1"
    assert set(errors(refused)) == {"websites[eu].datastream_id", "websites[eu].dataset_id"}
    assert "websites[eu].website_code" in errors(wrong)
    assert [w["website_code"] for w in removed.json()["settings"]["websites"]] == ["base"]
    assert missing.status_code == 404


async def test_each_organization_has_its_own_settings(settings: Settings, demo: Datastream) -> None:
    async with platform(settings) as (http, catalog):
        mine, theirs = bearer(catalog), bearer(catalog, OTHER_ORG)
        await put(http, mine, document(demo.org_id, site(datastream_id="mine")))
        other = (await http.get(PATH, headers=theirs)).json()
        saved = await put(http, theirs, document(OTHER_ORG, site(datastream_id="theirs")))
        foreign = await put(http, theirs, document(demo.org_id, site()))
        spoofed = await http.get(PATH, headers={**theirs, "x-gw-ims-org-id": demo.org_id})
        still_mine = (await http.get(PATH, headers=mine)).json()
    assert other["settings"] == {"org_id": OTHER_ORG, "web_sdk_name": "", "websites": []}
    assert saved.status_code == 200 and saved.json()["version"] == 1
    assert "one organization per instance" in errors(foreign)["org_id"]
    assert spoofed.status_code == 403
    assert still_mine["settings"]["websites"][0]["datastream_id"] == "mine"


async def test_without_a_token_every_settings_call_is_401(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, _):
        answers = [
            await http.get(PATH),
            await http.put(PATH, json={}),
            await http.put(f"{PATH}/websites/base", json={}),
            await http.delete(f"{PATH}/websites/base"),
            await http.get(ACCOUNT),
            await http.put(ACCOUNT, json={}),
            await http.post(f"{ACCOUNT}/test", json={}),
        ]
    assert [a.status_code for a in answers] == [401] * len(answers)


# the service account ----------------------------------------------------------------------------


def workspace(catalog: Catalog, org_id: str | None = None, **changes: Any) -> tuple[str, str]:
    """A new credential's workspace file (JSON text) and its client secret."""
    credential, secret = catalog.create_credential("connector", org_id=org_id)
    found = workspace_json(credential, secret)
    entry = found["project"]["workspace"]["details"]["credentials"][0]["oauth_server_to_server"]
    for key, value in changes.items():
        if key == "ims_org_id":
            found["project"]["org"]["ims_org_id"] = value
        else:
            entry[key] = value
    return codec.dumps(found).decode(), secret


async def test_a_pasted_workspace_is_saved_with_its_secret_encrypted(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        text, secret = workspace(catalog)
        saved = await http.put(ACCOUNT, json={"workspace": text}, headers=auth)
        shown = await http.get(ACCOUNT, headers=auth)
        other = await http.get(ACCOUNT, headers=bearer(catalog, OTHER_ORG))
    assert saved.status_code == 200, saved.text
    body = shown.json()
    assert body["clientSecret"] == "••••" and body["hasSecret"] is True
    assert body["orgId"] == demo.org_id
    assert body["platformUrl"] == f"http://127.0.0.1:{settings.port}"  # this server, by default
    assert secret not in saved.text and secret not in shown.text
    assert other.status_code == 404
    home = settings.home
    for path in home.glob("catalog.sqlite*"):
        assert secret.encode() not in path.read_bytes(), path
    key = home / "keys" / "settings.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workspace": ""}, "workspace"),
        ({"workspace": "{not json"}, "workspace"),
        ({"workspace": '{"project": {}}'}, "workspace"),
        ({"workspace": "VALID", "authType": "basic"}, "authType"),
        ({"workspace": "VALID", "authType": "jwt"}, "authType"),
        ({"workspace": "VALID", "platformUrl": "ftp://x"}, "platformUrl"),
        ({"workspace": "VALID", "sandbox": "Not A Sandbox!"}, "sandbox"),
    ],
)
async def test_a_bad_paste_is_refused_naming_the_field(
    settings: Settings, demo: Datastream, body: dict[str, str], field: str
) -> None:
    async with platform(settings) as (http, catalog):
        if body["workspace"] == "VALID":
            body = {**body, "workspace": workspace(catalog)[0]}
        refused = await http.put(ACCOUNT, json=body, headers=bearer(catalog))
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("workspace", b'{"workspace": "\\ud800"}'),
        ("workspace", b'{"workspace": {"project": "\\ud800"}}'),
        ("privateKey", b'{"workspace": "VALID", "privateKey": "\\udfff"}'),
        ("platformUrl", b'{"workspace": "VALID", "platformUrl": "OWN/\\ud800"}'),
        ("sandbox", b'{"workspace": "VALID", "sandbox": "prod\\ud800"}'),
        ("authType", b'{"workspace": "VALID", "authType": "\\ud800"}'),
    ],
)
async def test_text_that_is_not_unicode_is_refused_naming_the_field(
    settings: Settings, demo: Datastream, field: str, raw: bytes
) -> None:
    """A lone UTF-16 surrogate (`\\ud800`) is valid JSON but no text: 400, not a crash."""
    async with platform(settings) as (http, catalog):
        auth = {**bearer(catalog), "content-type": "application/json"}
        text = workspace(catalog)[0]
        own = f"http://127.0.0.1:{settings.port}".encode()
        content = raw.replace(b'"VALID"', codec.dumps(text)).replace(b"OWN", own)
        saved = await http.put(ACCOUNT, content=content, headers=auth)
        tested = await http.post(f"{ACCOUNT}/test", content=content, headers=auth)
        kept = await http.get(ACCOUNT, headers=auth)
    assert list(errors(saved)) == [field] and list(errors(tested)) == [field]
    assert kept.status_code == 404


async def test_a_service_account_can_be_removed(settings: Settings, demo: Datastream) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        await http.put(ACCOUNT, json={"workspace": workspace(catalog)[0]}, headers=auth)
        removed = await http.delete(ACCOUNT, headers=auth)
        again = await http.delete(ACCOUNT, headers=auth)
        gone = await http.get(ACCOUNT, headers=auth)
    assert (removed.status_code, again.status_code, gone.status_code) == (204, 404, 404)


async def test_test_connection_fetches_a_token_and_calls_the_platform(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        text, _ = workspace(catalog)
        report = await http.post(
            f"{ACCOUNT}/test", json={"workspace": text}, headers=bearer(catalog)
        )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["ok"] is True and body["problem"] is None
    assert [s["name"] for s in body["steps"]] == ["token", "platform"]
    assert "2 dataset(s)" in body["steps"][1]["message"]


async def test_test_connection_uses_the_saved_account_when_nothing_is_pasted(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        nothing = await http.post(f"{ACCOUNT}/test", json={}, headers=auth)
        await http.put(ACCOUNT, json={"workspace": workspace(catalog)[0]}, headers=auth)
        report = await http.post(f"{ACCOUNT}/test", headers=auth)
    assert nothing.status_code == 400 and nothing.json()["errors"][0]["field"] == "workspace"
    assert report.json()["ok"] is True, report.text


async def test_test_connection_says_the_secret_is_wrong(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        text, secret = workspace(catalog)
        wrong = text.replace(secret, "p8e-not-the-secret")
        report = (
            await http.post(f"{ACCOUNT}/test", json={"workspace": wrong}, headers=bearer(catalog))
        ).json()
    assert report["ok"] is False and report["problem"] == "wrong_secret"
    assert "wrong client secret" in report["message"]
    assert "p8e-not-the-secret" not in report["message"]


async def test_test_connection_says_the_organization_is_wrong(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        claimed, _ = workspace(catalog, ims_org_id=OTHER_ORG)
        foreign, _ = workspace(catalog, org_id=OTHER_ORG)
        edited = await http.post(f"{ACCOUNT}/test", json={"workspace": claimed}, headers=auth)
        other = await http.post(f"{ACCOUNT}/test", json={"workspace": foreign}, headers=auth)
    assert edited.json()["problem"] == "wrong_org", edited.text
    assert [s["ok"] for s in edited.json()["steps"]] == [True, False]
    assert other.json()["problem"] == "wrong_org", other.text
    assert f"the Data Connection settings name {demo.org_id}" in other.json()["message"]


async def test_test_connection_says_a_scope_is_missing(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        text, _ = workspace(catalog, scopes=["openid", "AdobeID", "not_granted"])
        report = (
            await http.post(f"{ACCOUNT}/test", json={"workspace": text}, headers=bearer(catalog))
        ).json()
    assert report["problem"] == "missing_scope" and "not_granted" in report["message"]


async def test_test_connection_says_the_platform_is_unreachable(
    settings: Settings, demo: Datastream
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def unreachable(_: KopplaApp) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(refuse)

    allowed = settings.model_copy(update={"connection_test_hosts": ("down.test",)})
    async with platform(allowed, unreachable) as (http, catalog):
        text, _ = workspace(catalog)
        body = {"workspace": text, "platformUrl": "http://down.test:9"}
        report = (await http.post(f"{ACCOUNT}/test", json=body, headers=bearer(catalog))).json()
    assert report["problem"] == "unreachable"
    assert "http://down.test:9/ims/token/v3" in report["message"]


async def test_test_connection_says_when_the_url_is_not_a_platform(
    settings: Settings, demo: Datastream
) -> None:
    def elsewhere(_: KopplaApp) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(lambda request: httpx.Response(404, text="<html>nope"))

    allowed = settings.model_copy(update={"connection_test_hosts": ("shop.test",)})
    async with platform(allowed, elsewhere) as (http, catalog):
        text, _ = workspace(catalog)
        body = {"workspace": text, "platformUrl": "http://shop.test"}
        report = (await http.post(f"{ACCOUNT}/test", json=body, headers=bearer(catalog))).json()
    assert report["problem"] == "not_a_platform"


async def test_test_connection_goes_only_to_this_platform_or_an_allowed_host(
    settings: Settings, demo: Datastream
) -> None:
    """Test connection makes the server send requests: it may not be aimed at internal
    addresses (a metadata service, another port of this machine) or smuggle a path."""
    sent: list[str] = []

    def record(_: KopplaApp) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(
            lambda request: sent.append(str(request.url)) or httpx.Response(500)
        )

    async with platform(settings, record) as (http, catalog):
        text, _ = workspace(catalog)
        for url in (
            "http://169.254.169.254",
            f"http://127.0.0.1:{settings.port + 1}",
            f"http://127.0.0.1:{settings.port}/admin?x=",
            "http://platform.adobe.io",
        ):
            body = {"workspace": text, "platformUrl": url}
            answer = await http.post(f"{ACCOUNT}/test", json=body, headers=bearer(catalog))
            assert answer.status_code == 400, url
            assert answer.json()["errors"][0]["field"] == "platformUrl", url
            saved = await http.put(ACCOUNT, json=body, headers=bearer(catalog))
            assert saved.status_code == 400, url
    assert sent == []


def test_the_key_file_is_made_once_and_kept(tmp_path: Path) -> None:
    from koppla.platform.catalog.connector_settings import SecretBox

    box = SecretBox(tmp_path / "keys" / "settings.key")
    sealed = box.seal("p8e-secret")
    again = SecretBox(tmp_path / "keys" / "settings.key")
    assert again.open(sealed) == "p8e-secret" and b"p8e-secret" not in sealed


async def test_the_tenant_id_is_this_platforms_or_empty(
    settings: Settings, demo: Datastream
) -> None:
    async with platform(settings) as (http, catalog):
        auth = bearer(catalog)
        found = errors(await put(http, auth, document(demo.org_id, site(), tenant_id="acme")))
        same = await put(http, auth, document(demo.org_id, site(), tenant_id="kopplademo"))
        empty = await put(http, auth, document(demo.org_id, site(), tenant_id=""))
    assert "tenant id for" in found["tenant_id"] and "kopplademo" in found["tenant_id"]
    assert same.status_code == 200, same.text
    assert empty.status_code == 200, empty.text
