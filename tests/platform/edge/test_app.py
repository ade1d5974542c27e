"""The edge app's guards, through ASGI: nesting, event count, rate limits, CORS, quarantine budget.

Each guard refuses before anything is spooled, with an Adobe-style problem naming the limit.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import ensure_demo
from koppla.platform.catalog.models import Datastream
from koppla.platform.catalog.store import Catalog
from koppla.platform.edge.budget import QUARANTINED
from koppla.platform.edge.limits import EdgeLimits, networks
from koppla.web.app import create_app
from tests.platform.edge.conftest import EdgeClient
from tests.platform.edge.fakes import FakeClock, MemorySpool, page_view

pytestmark = pytest.mark.anyio

SHOP = "https://shop.example"
CONSENT_OUT = {"consent": [{"standard": "Adobe", "version": "1.0", "value": {"general": "out"}}]}


@pytest.fixture
def stream(catalog: Catalog) -> Datastream:
    """The demo datastream, open to every origin."""
    return ensure_demo(catalog)


@pytest.fixture
def restricted(catalog: Catalog, stream: Datastream) -> Datastream:
    """A datastream that takes requests from the shop's origin only."""
    return catalog.create_datastream(
        org_id=stream.org_id, event_dataset=stream.event_dataset_id, allowed_origins=(SHOP,)
    )


async def interact(
    http: httpx.AsyncClient, stream: Datastream, body: Any, **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else codec.dumps(body)
    return await http.post(
        f"/ee/v1/interact?configId={stream.id}", content=content, headers=headers
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    found: dict[str, Any] = response.json()
    assert found["type"].startswith("https://ns.adobe.com/aep/errors/EXEG-")
    assert found["type"].endswith(f"-{status}")
    return found


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_a_deeply_nested_event_is_refused_and_nothing_is_spooled(
    edge_client: EdgeClient, stream: Datastream, spool: MemorySpool
) -> None:
    event = codec.dumps(page_view())[:-2]  # orjson cannot even write this body: by hand
    body = b'{"events":[' + event + b',"custom":' + b'{"a":' * 300 + b"{}" + b"}" * 300 + b"}}]}"
    assert len(body) < 4096  # the 3 KB request
    async with edge_client() as http:
        refused = problem(await interact(http, stream, body), 400)
        assert "32 levels" in refused["detail"] and "edge_max_depth" in refused["detail"]
        consent = {**CONSENT_OUT, "meta": deep(40)}
        response = await http.post(
            f"/ee/v1/privacy/set-consent?configId={stream.id}", content=codec.dumps(consent)
        )
        assert "edge_max_depth" in problem(response, 400)["detail"]
        assert (await interact(http, stream, {"events": [page_view(custom=deep(20))]})).is_success
    assert len(spool.payloads) == 1


async def test_more_events_than_the_cap_are_refused_with_413(
    edge_client: EdgeClient, stream: Datastream, spool: MemorySpool
) -> None:
    async with edge_client(EdgeLimits(max_events=3)) as http:
        refused = problem(await interact(http, stream, {"events": [page_view()] * 4}), 413)
        assert "4 events" in refused["detail"] and "at most 3" in refused["detail"]
        assert (await interact(http, stream, {"events": [page_view()] * 3})).status_code == 200
    assert len(spool.payloads) == 1


async def test_a_body_over_the_size_limit_is_refused(
    edge_client: EdgeClient, stream: Datastream
) -> None:
    async with edge_client(EdgeLimits(max_body=2048)) as http:
        body = {"events": [page_view("x" * 3000)]}
        assert "2048 bytes" in problem(await interact(http, stream, body), 413)["detail"]


async def test_a_client_over_its_rate_gets_429_with_retry_after(
    edge_client: EdgeClient, stream: Datastream, spool: MemorySpool, fake_clock: FakeClock
) -> None:
    async with edge_client(EdgeLimits(client_rate=1)) as http:
        body = {"events": [page_view()]}
        assert [(await interact(http, stream, body)).status_code for _ in range(2)] == [200, 200]
        response = await interact(http, stream, body)
        refused = problem(response, 429)
        assert refused["title"] == "Too many requests"
        assert "edge_client_rate" in refused["detail"]
        assert int(response.headers["retry-after"]) >= 1
        fake_clock.advance(int(response.headers["retry-after"]))
        assert (await interact(http, stream, body)).status_code == 200
    assert len(spool.payloads) == 3


async def test_set_consent_is_rate_limited_too(
    edge_client: EdgeClient, stream: Datastream, catalog: Catalog, fake_clock: FakeClock
) -> None:
    async with edge_client(EdgeLimits(client_rate=1)) as http:
        url = f"/ee/v1/privacy/set-consent?configId={stream.id}"
        statuses = [
            (await http.post(url, content=codec.dumps(CONSENT_OUT))).status_code for _ in range(3)
        ]
    assert statuses == [200, 200, 429]
    assert len(catalog.consents_out()) == 2


async def test_exempt_networks_skip_the_client_limit_only(
    edge_client: EdgeClient, stream: Datastream, fake_clock: FakeClock
) -> None:
    limits = EdgeLimits(client_rate=1, datastream_rate=2, rate_exempt=networks(["127.0.0.0/8"]))
    async with edge_client(limits, client=("127.0.0.1", 4000)) as http:
        body = {"events": [page_view()]}
        statuses = [(await interact(http, stream, body)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # four events: the datastream's burst


async def test_a_datastream_over_its_event_rate_gets_429(
    edge_client: EdgeClient, stream: Datastream, restricted: Datastream, fake_clock: FakeClock
) -> None:
    async with edge_client(EdgeLimits(datastream_rate=5)) as http:
        assert (await interact(http, stream, {"events": [page_view()] * 8})).status_code == 200
        response = await interact(http, stream, {"events": [page_view()] * 4})
        assert "edge_datastream_rate" in problem(response, 429)["detail"]
        assert response.headers["retry-after"] == "1"
        other = await interact(http, restricted, {"events": [page_view()]}, origin=SHOP)
        assert other.status_code == 200


async def test_a_preflight_gets_allow_headers_only_for_the_datastreams_origins(
    edge_client: EdgeClient, stream: Datastream, restricted: Datastream
) -> None:
    preflight = {"origin": SHOP, "access-control-request-method": "POST"}
    async with edge_client() as http:
        allowed = await http.options(f"/ee/v1/interact?configId={restricted.id}", headers=preflight)
        foreign = await http.options(
            f"/ee/v1/interact?configId={restricted.id}",
            headers={**preflight, "origin": "https://evil.example"},
        )
        unknown = await http.options("/ee/v1/interact?configId=nope", headers=preflight)
        open_stream = await http.options(
            f"/ee/v1/interact?configId={stream.id}",
            headers={**preflight, "origin": "https://anyone.example"},
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    for refused in (foreign, unknown):
        assert refused.status_code == 403
        assert not [h for h in refused.headers if h.startswith("access-control-")]
    assert open_stream.headers["access-control-allow-origin"] == "https://anyone.example"


async def test_refusals_carry_no_cors_headers_for_a_refused_origin(
    edge_client: EdgeClient, restricted: Datastream, spool: MemorySpool, fake_clock: FakeClock
) -> None:
    body = {"events": [page_view()]}
    async with edge_client(EdgeLimits(client_rate=1.5)) as http:  # a burst of three
        foreign = await interact(http, restricted, body, origin="https://evil.example")
        unknown = await http.post(
            "/ee/v1/interact?configId=nope", content=codec.dumps(body), headers={"origin": SHOP}
        )
        allowed = await interact(http, restricted, body, origin=SHOP)
        limited = await interact(http, restricted, body, origin=SHOP)
    assert "not allowed" in problem(foreign, 403)["detail"]
    problem(unknown, 400)
    for refused in (foreign, unknown):
        assert "access-control-allow-origin" not in refused.headers
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    problem(limited, 429)  # alloy reads Retry-After, so the shop's origin may see it
    assert limited.headers["access-control-allow-origin"] == SHOP
    assert limited.headers["access-control-expose-headers"] == "Retry-After"
    assert len(spool.payloads) == 1


async def test_over_its_quarantine_budget_a_datastream_takes_only_valid_events(
    edge_client: EdgeClient,
    stream: Datastream,
    catalog: Catalog,
    spool: MemorySpool,
    fake_clock: FakeClock,
) -> None:
    bad = page_view()
    bad["xdm"]["timestamp"] = "yesterday"
    async with edge_client(EdgeLimits(quarantine_hourly_limit=5)) as http:
        assert (await interact(http, stream, {"events": [bad]})).status_code == 200
        catalog.add_to_counter(stream.id, QUARANTINED, 6)  # what the pipeline counts
        fake_clock.advance(3)
        response = await interact(http, stream, {"events": [page_view(), bad]})
        refused = problem(response, 400)
        assert "events[1].xdm.timestamp" in refused["detail"]
        assert "quarantine_hourly_limit" in refused["detail"]
        assert (await interact(http, stream, {"events": [page_view()]})).status_code == 200
    assert len(spool.payloads) == 2
    assert catalog.counters(stream.id)["refusedByQuarantineLimit"] == 2


async def test_the_settings_reach_the_edge_of_the_whole_app(
    settings: Settings, stream: Datastream, fake_clock: FakeClock
) -> None:
    limited = Settings.load(home=settings.home, edge_client_rate=1, edge_rate_exempt=[])
    app = create_app(limited)
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            body = {"events": [page_view()]}
            statuses = [(await interact(http, stream, body)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
