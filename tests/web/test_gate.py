"""Auth before the body: a credentialed route without a valid token answers 401 unread."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn

from koppla.core.settings import Settings
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, ensure_demo
from koppla.web.app import KopplaApp, create_app
from koppla.web.auth import UNAUTHORIZED_DETAIL
from koppla.web.gate import is_public
from koppla.web.services import Services
from tests.server import free_port
from tests.web.asgi import call, pieces, running_app

pytestmark = pytest.mark.anyio

HUGE = 200 * 1024 * 1024


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[KopplaApp]:
    async with running_app(settings) as started:
        yield started


def test_only_the_edge_health_demo_docs_and_preflights_are_public() -> None:
    for path in ("/ee/v1/interact", "/api/v1/health", "/demo/shop/", "/openapi.json", "/docs"):
        assert is_public("POST", path), path
    assert is_public("OPTIONS", "/api/v1/query")
    for path in ("/api/v1/query", "/api/v1/status", "/collection/x", "/data/foundation/x", "/"):
        assert not is_public("POST", path), path


@pytest.mark.parametrize("path", ["/api/v1/query", f"/collection/{DEMO_DATASTREAM_ID}"])
async def test_an_anonymous_upload_is_refused_before_a_byte_is_read(
    app: KopplaApp, services: Services, path: str
) -> None:
    ensure_demo(services.catalog)
    for authorization in ([], [("authorization", "Bearer forged")], [("authorization", "Basic x")]):
        answer = await call(
            app,
            "POST",
            path,
            headers=[("content-length", str(HUGE)), *authorization],
            chunks=pieces(HUGE, 1024 * 1024),
        )
        assert answer.status == 401
        assert answer.json() == {"detail": UNAUTHORIZED_DETAIL}
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["connection"] == "close"
        assert answer.receive_calls == 0


async def test_a_valid_token_passes_the_gate(app: KopplaApp, services: Services) -> None:
    token = services.catalog.add_token("ops")
    answer = await call(
        app, "GET", "/api/v1/datasets", headers=[("authorization", f"Bearer {token}")]
    )
    assert answer.status == 200
    assert answer.json() == []


async def test_unknown_paths_answer_404_only_to_token_holders(
    app: KopplaApp, services: Services
) -> None:
    token = services.catalog.add_token("ops")
    assert (await call(app, "GET", "/api/v2/secret")).status == 401
    known = await call(app, "GET", "/api/v2/secret", headers=[("authorization", f"Bearer {token}")])
    assert known.status == 404


async def test_public_routes_need_no_token(app: KopplaApp) -> None:
    assert (await call(app, "GET", "/api/v1/health")).status == 200
    assert (await call(app, "GET", "/openapi.json")).status == 200
    preflight = await call(app, "OPTIONS", "/api/v1/query")
    assert preflight.status == 405  # the API has no CORS; what matters is no 401


@pytest.fixture
def http_server(settings: Settings) -> Iterator[int]:
    """The app served by uvicorn over real HTTP in a thread; yields its port."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def upload_until_answered(port: int, head: bytes, total: int) -> tuple[bytes, int]:
    """Send `head` and up to `total` body bytes, stopping once the server answers or stops
    reading; returns the answer's head and how many body bytes were sent.

    The server may close the connection mid-upload: sending stops there, and what it answered
    is still read.
    """
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        while sent < total:
            poller = select.poll()  # not select(): a long test run may hold fds past 1023
            poller.register(sock, select.POLLIN | select.POLLOUT)
            events = dict(poller.poll(10_000)).get(sock.fileno(), 0)
            if events & select.POLLIN or not events & select.POLLOUT:
                break
            try:
                sent += sock.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer, sent


def test_a_200_mb_anonymous_upload_over_http_is_answered_401(http_server: int) -> None:
    head = (
        b"POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % HUGE
    )
    answer, sent = upload_until_answered(http_server, head, HUGE)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert sent < HUGE  # answered without waiting for the body (nobody read it)
    assert b"www-authenticate: bearer" in answer.lower()
