"""The live debugger page: the organization's datastreams, and the stream its script follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.web.app import KopplaApp
from tests.web.pages.signin import add_user, admin_app, sign_in

pytestmark = pytest.mark.anyio

OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"
EVE = "eve@other.example"
EVE_PASSWORD = "another long password"


@pytest.fixture
async def http(settings: Settings, demo: Datastream) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as a person of the demo organization."""
    async with admin_app(settings) as client:
        await sign_in(client)
        yield client


async def test_the_page_watches_the_organizations_first_datastream(
    http: httpx.AsyncClient, demo: Datastream
) -> None:
    page = await http.get("/admin/debugger")

    assert page.status_code == 200
    assert f'<option value="{demo.id}" selected>' in page.text
    assert f'data-stream="/api/v1/datastreams/{demo.id}/debug"' in page.text
    assert f"/ee/v1/interact?configId={demo.id}" in page.text  # how to send one
    assert '<script src="/admin/static/debugger.js" defer></script>' in page.text
    script = await http.get("/admin/static/debugger.js")
    assert script.status_code == 200 and "EventSource" in script.text


async def test_a_datastream_not_of_the_organization_is_not_found(
    settings: Settings, http: httpx.AsyncClient, demo: Datastream
) -> None:
    unknown = await http.get("/admin/debugger?datastream=nope")
    add_user(settings, EVE, EVE_PASSWORD, org_id=OTHER_ORG)
    http.cookies.clear()
    await sign_in(http, EVE, EVE_PASSWORD)

    own = await http.get("/admin/debugger")
    others = await http.get(f"/admin/debugger?datastream={demo.id}")
    stream = await http.get(f"/api/v1/datastreams/{demo.id}/debug")

    assert unknown.status_code == 404
    assert "No datastream <code>nope</code> in your organization" in unknown.text
    assert own.status_code == 200
    assert 'id="no-datastreams"' in own.text and demo.id not in own.text
    assert others.status_code == 404
    assert 'id="debugger"' not in others.text
    assert stream.status_code == 404


async def test_without_a_session_the_page_sends_to_the_login_form(http: httpx.AsyncClient) -> None:
    http.cookies.clear()
    answer = await http.get("/admin/debugger")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/login?next=")


async def test_the_stream_the_page_follows_shows_a_sent_event_with_its_problems(
    settings: Settings, demo: Datastream
) -> None:
    """What the page's EventSource gets, with the session cookie alone: each event and its
    validation result."""
    async with admin_app(settings) as http:
        await sign_in(http)
        cookie = http.cookies["koppla_session"]
        app = transport_app(http)
        bad = {"eventType": "commerce.purchases", "timestamp": "2026-12-01T10:00:00Z"}
        events = []
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tasks:
                listening = anyio.Event()

                async def watch() -> None:
                    events.extend(await first_events(app, demo.id, cookie, listening))

                tasks.start_soon(watch)
                await listening.wait()
                body = codec.dumps({"events": [{"xdm": bad}]})
                sent = await http.post(f"/ee/v1/interact?configId={demo.id}", content=body)
                assert sent.status_code == 200

    (event,) = events
    assert (event["eventType"], event["valid"], event["dataset"]) == (
        "commerce.purchases",
        False,
        "demo_events",
    )
    assert ("commerce.order.purchaseID", "required") in {
        (i["path"], i["code"]) for i in event["issues"]
    }


def transport_app(http: httpx.AsyncClient) -> KopplaApp:
    """The app behind an in-process client."""
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: KopplaApp = transport.app  # type: ignore[assignment]
    return app


async def first_events(
    app: KopplaApp, datastream_id: str, cookie: str, listening: anyio.Event
) -> list[dict[str, Any]]:
    """Follow the debug stream as a browser would until its first `data:` line, then leave."""
    seen = anyio.Event()
    body = bytearray()
    status: list[int] = []

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await seen.wait()  # the browser stays until it has seen an event, then leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if b"watching datastream" in body:
                listening.set()
            if b"\ndata: " in body or body.startswith(b"data: "):
                seen.set()

    path = f"/api/v1/datastreams/{datastream_id}/debug"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"accept", b"text/event-stream"),
            (b"cookie", f"koppla_session={cookie}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("admin.test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert status == [200], bytes(body)
    lines = bytes(body).decode().splitlines()
    return [codec.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
