"""The profiles page: look a customer up by any identity; their attributes, identities, timeline."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.profiles.observation import Kind, observe
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.stage import ProfileStage
from koppla.web.services import Services
from tests.web.pages.signin import add_user, admin_app, sign_in

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
JAN_1 = 1_767_225_600_000
"""2026-01-01T00:00:00Z in epoch milliseconds."""


def event(event_id: str, day: int, event_type: str, ids: Mapping[str, str], **xdm: Any) -> Any:
    """An ExperienceEvent on 2026-01-(1 + day) with these identities."""
    identity_map = {ns: [{"id": value}] for ns, value in ids.items()}
    stamp = f"2026-01-{1 + day:02d}T00:00:00.000Z"
    return {"_id": event_id, "timestamp": stamp, "eventType": event_type, **xdm} | {
        "identityMap": identity_map
    }


@pytest.fixture
def ann(services: Services, demo: Datastream) -> None:
    """Ann: a browser's events, an order under her customer id, and her profile record."""
    assert demo.profile_dataset_id is not None
    rows: list[tuple[str, Kind, dict[str, Any]]] = [
        (
            demo.event_dataset_id,
            "event",
            event(
                "e1",
                0,
                "commerce.productViews",
                {"ECID": "111", "Email": "Ann@Example.com"},
                productListItems=[{"SKU": "MJ01", "quantity": 1}],
            ),
        ),
        (
            demo.event_dataset_id,
            "event",
            event(
                "e2",
                1,
                "commerce.backofficeOrderPlaced",
                {"CustomerId": "42", "Email": "ann@example.com"},
                commerce={
                    "order": {"purchaseID": "100000001", "priceTotal": 50.0, "currencyCode": "EUR"}
                },
            ),
        ),
        (
            demo.profile_dataset_id,
            "record",
            {
                "_id": "r1",
                "identityMap": {"CustomerId": [{"id": "42", "primary": True}]},
                "person": {"name": {"firstName": "Ann", "lastName": "<Example>"}},
                "personalEmail": {"address": "ann@example.com"},
            },
        ),
    ]
    stage = ProfileStage(services.profiles, policy=PolicyBook(services.profiles).default)
    found = [observe(dataset, kind, body, stored_ms=JAN_1) for dataset, kind, body in rows]
    stage.apply([o for o in found if o is not None], {})
    services.close()


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a person of the demo organization."""
    async with admin_app(settings) as client:
        await sign_in(client)
        yield client


async def test_a_profile_shows_its_attributes_identities_and_timeline(
    ann: None, http: httpx.AsyncClient
) -> None:
    page = await http.get("/admin/profiles", params={"identity": "email:ANN@example.com"})
    api = await http.get("/api/v1/profiles/email:ann@example.com")

    assert page.status_code == 200
    text = page.text
    assert "Ann &lt;Example&gt;" in text  # the name, escaped
    assert api.json()["profileId"] in text
    for namespace, value in (("ECID", "111"), ("Email", "ann@example.com"), ("CustomerId", "42")):
        assert f"<td>{namespace}</td>" in text, namespace
        assert value in text
    timeline = text[text.index('id="timeline"') :]
    assert timeline.index("commerce.backofficeOrderPlaced") < timeline.index(
        "commerce.productViews"
    )  # newest first
    assert "order 100000001 50.0 EUR" in timeline
    assert "<td>demo_events</td>" in timeline  # the dataset by name
    assert "<dt>Orders</dt><dd>1</dd>" in text
    assert "<dt>Lifetime value</dt><dd>50.00</dd>" in text
    assert '"purchaseID": "100000001"' in html.unescape(timeline)  # each event's XDM


async def test_an_unknown_identity_has_a_clear_empty_state(
    ann: None, http: httpx.AsyncClient
) -> None:
    page = await http.get("/admin/profiles", params={"identity": "email:nobody@example.com"})

    assert page.status_code == 404
    assert "No profile for <code>Email:nobody@example.com</code>" in page.text
    assert 'value="email:nobody@example.com"' in page.text  # kept in the search box


async def test_a_person_of_another_organization_does_not_see_the_profile(
    ann: None, settings: Settings, http: httpx.AsyncClient
) -> None:
    add_user(settings, "eve@other.example", "another long password", org_id=OTHER_ORG)
    http.cookies.clear()
    await sign_in(http, "eve@other.example", "another long password")

    page = await http.get("/admin/profiles", params={"identity": "email:ann@example.com"})

    assert page.status_code == 404
    assert "No profile for <code>Email:ann@example.com</code>" in page.text
    assert "Ann" not in page.text


async def test_a_malformed_identity_is_explained_next_to_the_field(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/admin/profiles", params={"identity": "ann@example.com"})

    assert page.status_code == 400
    assert 'id="identity-problem"' in page.text
    assert "must look like namespace:id" in page.text


async def test_the_search_form_comes_first(http: httpx.AsyncClient) -> None:
    page = await http.get("/admin/profiles")

    assert page.status_code == 200
    assert '<form method="get" action="/admin/profiles"' in page.text
    assert "email:ann@example.com" in page.text
    http.cookies.clear()
    assert (await http.get("/admin/profiles")).status_code == 303
