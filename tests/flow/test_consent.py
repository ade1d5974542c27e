"""Consent: `out` stores nothing for that visitor and counts what was dropped; `in` stores."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.edge import identity_cookie
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.app import create_app
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


def page_view(name: str) -> bytes:
    event = {
        "eventType": "web.webpagedetails.pageViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "web": {"webPageDetails": {"name": name}},
    }
    return codec.dumps({"events": [{"xdm": event}]})


async def set_consent(
    client: httpx.AsyncClient, stream: Datastream, general: str, cookie: str = ""
) -> dict[str, str]:
    body = {"consent": [{"standard": "Adobe", "version": "1.0", "value": {"general": general}}]}
    response = await client.post(
        f"/ee/v1/privacy/set-consent?configId={stream.id}",
        content=codec.dumps(body),
        headers={"cookie": cookie} if cookie else {},
    )
    assert response.status_code == 200
    return {
        c["key"]: c["value"]
        for h in response.json()["handle"]
        if h["type"] == "state:store"
        for c in h["payload"]
    }


def cookie_header(cookies: dict[str, Any]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def test_consent_out_stores_nothing_and_counts_the_drops(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    identity = identity_cookie.cookie_name(demo.org_id)
    consent = identity_cookie.cookie_name(demo.org_id, "consent")
    out_cookies = await set_consent(client, demo, "out")
    assert out_cookies[consent] == "general=out"
    in_cookies = await set_consent(client, demo, "in")
    assert in_cookies[consent] == "general=in"
    assert out_cookies[identity] != in_cookies[identity]  # two different new visitors

    # the opted-out visitor sends without the consent cookie: the edge remembers the choice
    for n in range(3):
        response = await client.post(
            f"/ee/v1/interact?configId={demo.id}",
            content=page_view(f"out-{n}"),
            headers={"cookie": f"{identity}={out_cookies[identity]}"},
        )
        assert response.status_code == 200
    # and with the cookie alone (another device's record unknown to the edge)
    await client.post(
        f"/ee/v1/interact?configId={demo.id}",
        content=page_view("out-cookie"),
        headers={"cookie": f"{consent}=general=out"},
    )
    opted_in = await client.post(
        f"/ee/v1/interact?configId={demo.id}",
        content=page_view("in-0"),
        headers={"cookie": cookie_header(in_cookies)},
    )
    assert opted_in.status_code == 200
    pipeline.step()

    rows = services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows
    assert rows == [("in-0",)]
    assert services.catalog.counters(demo.id) == {"droppedByConsent": 4}
    token = services.catalog.add_token("t")
    stats = await client.get(
        f"/api/v1/datastreams/{demo.id}/stats", headers={"authorization": f"Bearer {token}"}
    )
    assert stats.json()["counters"]["droppedByConsent"] == 4


async def test_a_visitor_who_opts_back_in_is_stored_again(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    identity = identity_cookie.cookie_name(demo.org_id)
    cookies = await set_consent(client, demo, "out")
    visitor = f"{identity}={cookies[identity]}"
    await client.post(
        f"/ee/v1/interact?configId={demo.id}", content=page_view("a"), headers={"cookie": visitor}
    )
    again = await set_consent(client, demo, "in", cookie=visitor)
    assert again[identity] == cookies[identity]
    await client.post(
        f"/ee/v1/interact?configId={demo.id}", content=page_view("b"), headers={"cookie": visitor}
    )
    pipeline.step()
    rows = services.query.run("SELECT web.webPageDetails.name FROM demo_events").rows
    assert rows == [("b",)]


async def test_anonymous_consent_requests_cannot_grow_the_consent_table(
    settings: Settings, demo: Datastream, services: Services
) -> None:
    app = create_app(Settings.load(home=settings.home, consent_max_opt_outs=2))
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            for _ in range(5):  # new visitors saying `in`: the default, nothing to store
                await set_consent(http, demo, "in")
            assert services.catalog.consents_out() == set()
            newest = [await set_consent(http, demo, "out") for _ in range(4)][-1]
    assert len(services.catalog.consents_out()) == 2  # the oldest opt-outs were forgotten
    consent = identity_cookie.cookie_name(demo.org_id, "consent")
    assert newest[consent] == "general=out"  # the visitor's cookie still holds the choice
