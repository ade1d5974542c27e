"""`POST /api/v1/datasets`: the schema a dataset follows is one Koppla knows."""

from __future__ import annotations

import httpx
import pytest

from koppla.platform.catalog.models import Datastream
from koppla.web.services import Services

pytestmark = pytest.mark.anyio


async def test_a_schema_id_must_name_a_known_schema_even_when_empty(
    client: httpx.AsyncClient, demo: Datastream, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    for given in ("", "https://ns.example/unknown"):
        body = {"name": "refused_events", "schemaId": given}
        refused = await client.post("/api/v1/datasets", json=body, headers=auth)
        assert refused.status_code == 400, given
        assert "unknown schema" in refused.json()["detail"]
    made = await client.post("/api/v1/datasets", json={"name": "made_events"}, headers=auth)
    assert made.status_code == 201  # no schemaId: Koppla's commerce ExperienceEvent
