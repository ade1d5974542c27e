"""Body limits hold before any route reads a body: declared sizes at once, streamed as they come."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID, ensure_demo
from koppla.platform.catalog.store import Catalog
from koppla.web.app import KopplaApp
from koppla.web.limits import route_class
from tests.web.asgi import call, pieces, running_app

pytestmark = pytest.mark.anyio

LIMIT = 4096
CHUNK = 1024
BIG = 64 * LIMIT


@pytest.fixture
def small(tmp_path: Path) -> Settings:
    """A home whose every route class takes at most `LIMIT` bytes."""
    return Settings.load(
        home=tmp_path / "home",
        max_body_edge_bytes=LIMIT,
        max_body_streaming_bytes=LIMIT,
        max_body_api_bytes=LIMIT,
    )


@pytest.fixture
async def app(small: Settings) -> AsyncIterator[KopplaApp]:
    async with running_app(small) as started:
        yield started


@pytest.fixture
def token(app: KopplaApp, small: Settings) -> str:
    """A valid API token, and the demo datastream (an edge `configId`, a streaming connection)."""
    catalog = Catalog(Layout(small.home).catalog)
    try:
        ensure_demo(catalog)
        return catalog.add_token("limits")
    finally:
        catalog.close()


def test_paths_fall_into_route_classes() -> None:
    assert route_class("/collection/batch/abc") == "streaming"
    assert route_class("/collection/abc") == "streaming"
    assert route_class("/api/v1/query") == "api"
    assert route_class("/data/foundation/catalog/batches") == "api"


async def test_a_declared_length_over_the_limit_is_refused_unread(
    app: KopplaApp, token: str
) -> None:
    answer = await call(
        app,
        "POST",
        "/api/v1/query",
        headers=[("authorization", f"Bearer {token}"), ("content-length", str(200 * 1024**2))],
        chunks=pieces(BIG, CHUNK),
    )
    assert answer.status == 413
    assert answer.json()["detail"].startswith(f"the body exceeds {LIMIT} bytes (max_body_")
    assert answer.receive_calls == 0
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize(
    "path", ["/api/v1/query", f"/collection/{DEMO_DATASTREAM_ID}", "/api/v1/datasets"]
)
async def test_a_streamed_body_is_cut_off_as_it_passes_the_limit(
    app: KopplaApp, token: str, path: str
) -> None:
    answer = await call(
        app,
        "POST",
        path,
        headers=[("authorization", f"Bearer {token}"), ("transfer-encoding", "chunked")],
        chunks=pieces(BIG, CHUNK),
    )
    assert answer.status == 413
    assert answer.json()["detail"].startswith(f"the body exceeds {LIMIT} bytes (max_body_")
    assert answer.bytes_read <= LIMIT + CHUNK


async def test_the_edge_refuses_in_adobe_problem_shape_readable_by_the_page(
    app: KopplaApp, token: str
) -> None:
    answer = await call(
        app,
        "POST",
        "/ee/v1/interact",
        query=f"configId={DEMO_DATASTREAM_ID}&requestId=r-1",
        headers=[("origin", "https://shop.test"), ("transfer-encoding", "chunked")],
        chunks=pieces(BIG, CHUNK),
    )
    assert answer.status == 413
    problem = answer.json()
    assert problem["type"] == "https://ns.adobe.com/aep/errors/EXEG-0004-413"
    assert problem["status"] == 413
    assert problem["report"] == {"requestId": "r-1", "configId": DEMO_DATASTREAM_ID}
    assert answer.headers["access-control-allow-origin"] == "https://shop.test"
    assert answer.bytes_read <= LIMIT + CHUNK


async def test_a_declared_edge_body_over_the_limit_is_refused_unread(app: KopplaApp) -> None:
    answer = await call(
        app,
        "POST",
        "/ee/v2/interact",
        query="datastreamId=abc",
        headers=[("content-length", str(LIMIT + 1))],
        chunks=[b"x" * (LIMIT + 1)],
    )
    assert (answer.status, answer.receive_calls) == (413, 0)
    assert answer.json()["report"]["configId"] == "abc"


async def test_bodies_within_the_limit_reach_the_route(app: KopplaApp, token: str) -> None:
    body = codec.dumps({"sql": "SELECT 1 AS one"})
    answer = await call(
        app,
        "POST",
        "/api/v1/query",
        headers=[
            ("authorization", f"Bearer {token}"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ],
        chunks=[body[:5], body[5:]],
    )
    assert answer.status == 200
    assert answer.json()["rows"] == [[1]]


async def test_a_body_of_exactly_the_limit_is_accepted(app: KopplaApp, token: str) -> None:
    answer = await call(
        app,
        "POST",
        "/api/v1/query",
        headers=[("authorization", f"Bearer {token}"), ("content-type", "application/json")],
        chunks=[b" " * (LIMIT - 20), codec.dumps({"sql": "SELECT 2"}).ljust(20)],
    )
    assert answer.status == 200
    assert answer.json()["rows"] == [[2]]
