"""`POST /api/v1/query` whose answer would be huge: a 400 naming `query_max_result_bytes`."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import pytest

from koppla.core.settings import Settings
from koppla.platform.query.engine import QueryEngine
from koppla.web import services as services_module
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home whose query engine keeps results to 1 MiB (as `query_max_result_bytes = 1048576`
    would, once the services pass the setting on)."""
    monkeypatch.setattr(
        services_module, "QueryEngine", functools.partial(QueryEngine, max_result_bytes=2**20)
    )
    return Settings.load(home=tmp_path / "home", query_max_result_bytes=2**20)


async def test_a_result_past_the_byte_cap_is_a_400_naming_the_setting(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}

    huge = await client.post(
        "/api/v1/query",
        json={"sql": "SELECT repeat('x', 100000) AS s FROM range(200)"},
        headers=auth,
    )
    small = await client.post(
        "/api/v1/query", json={"sql": "SELECT repeat('x', 100) AS s FROM range(200)"}, headers=auth
    )

    assert huge.status_code == 400
    assert "larger than query_max_result_bytes (1 MiB)" in huge.json()["detail"]
    assert (small.status_code, small.json()["rowCount"], small.json()["truncated"]) == (
        200,
        200,
        False,
    )
