"""API tokens never rest in plain text: not in the catalog, its WAL, the spool, nor any dataset."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from koppla.cli import build
from koppla.core import ids
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services

pytestmark = pytest.mark.anyio

SCHEMA_REF = {
    "id": "https://ns.koppla.dev/xdm/commerce-experienceevent",
    "contentType": "application/vnd.adobe.xed-full+json;version=1",
}


def _files_holding(home: Path, needle: bytes) -> list[str]:
    """Every file under `home` whose raw bytes contain `needle`, relative to `home`."""
    return sorted(
        str(path.relative_to(home))
        for path in home.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    )


def _cli_token(home: Path) -> str:
    result = CliRunner().invoke(build(), ["token", "create", "--name", "cli", "--home", str(home)])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("kpl_"), result.output
    return token


def _streamed_event(stream: Datastream, dataset_id: str) -> dict[str, object]:
    entity = {
        "_id": "at-rest-1",
        "eventType": "commerce.backofficeOrderPlaced",
        "timestamp": "2026-12-01T10:00:00Z",
    }
    return {
        "header": {
            "schemaRef": SCHEMA_REF,
            "imsOrgId": stream.org_id,
            "datasetId": dataset_id,
            "flowId": "f1",
            "source": {"name": "test"},
        },
        "body": {"xdmMeta": {"schemaRef": SCHEMA_REF}, "xdmEntity": entity},
    }


async def test_tokens_are_stored_only_as_digests_in_every_file_of_the_home(
    client: httpx.AsyncClient,
    demo: Datastream,
    settings: Settings,
    services: Services,
    pipeline: Pipeline,
) -> None:
    home = settings.home
    tokens = [services.catalog.add_token("ops"), _cli_token(home)]
    assert services.catalog.token_name(tokens[1]) == "cli"
    dataset_id = services.catalog.dataset("demo_events").id
    for token in tokens:  # use each token as a sender would: ingest, then query
        auth = {"authorization": f"Bearer {token}"}
        streamed = await client.post(
            f"/collection/{demo.id}", json=_streamed_event(demo, dataset_id), headers=auth
        )
        assert streamed.status_code < 300, streamed.text
        queried = await client.post("/api/v1/query", json={"sql": "SELECT 1"}, headers=auth)
        assert queried.status_code == 200
    pipeline.step()

    # While the catalog is open its newest pages live in catalog.sqlite-wal: read it too.
    files = {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()}
    assert {"catalog.sqlite", "catalog.sqlite-wal"} <= files
    assert any(name.startswith("spool/") for name in files)
    assert any(name.startswith("datasets/") for name in files)
    for token in tokens:
        assert _files_holding(home, token.encode()) == []
        # The scan does see the catalog's token rows: their digests are there.
        assert _files_holding(home, ids.token_digest(token).encode())
