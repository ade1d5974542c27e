"""Status: what is stored, what waits in the spool, what was refused or dropped."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from koppla.cli import build
from koppla.core import clock, codec
from koppla.core.settings import Settings
from koppla.platform.catalog.models import Datastream
from koppla.platform.pipeline import health
from koppla.platform.pipeline.health import PipelineHealth
from koppla.platform.pipeline.runner import Pipeline
from koppla.web.services import Services
from tests.web.asgi import running_app

pytestmark = pytest.mark.anyio


async def test_status_shows_the_backlog_until_the_pipeline_stores_it(
    client: httpx.AsyncClient, demo: Datastream, pipeline: Pipeline, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    good = {"eventType": "web.webpagedetails.pageViews", "timestamp": "2026-12-01T10:00:00Z"}
    body = codec.dumps({"events": [{"xdm": good}, {"xdm": {"eventType": "x"}}]})
    await client.post(f"/ee/v1/interact?configId={demo.id}", content=body)

    before = (await client.get("/api/v1/status", headers=auth)).json()
    assert sum(s["backlogBytes"] for s in before["spool"]) > 0
    assert all(d["lastBatch"] is None for d in before["datasets"])

    pipeline.step()
    after = (await client.get("/api/v1/status", headers=auth)).json()
    assert sum(s["backlogBytes"] for s in after["spool"]) == 0
    datasets = {d["name"]: d for d in after["datasets"]}
    assert sorted(datasets) == ["demo_events", "demo_profiles"]
    dataset = datasets["demo_events"]
    assert dataset["rows"] == 1
    assert dataset["lastBatch"]["status"] == "success"
    assert dataset["lastBatch"]["failedRecords"] == 1
    assert after["quarantinedRecords"] == 1
    assert dataset["profileEnabled"] is True
    profiles = after["profiles"]
    assert profiles["commitsWaiting"]["demo_events"] >= 1  # no profile stage ran in this test
    assert (profiles["profiles"], profiles["guardrailHits"]) == (0, 0)
    assert profiles["lastPassAt"] is None
    assert (await client.get("/api/v1/status")).status_code == 401


def _heartbeat(services: Services, *, age_ms: int, error: str | None, restarts: int) -> None:
    now = clock.now_ms()
    health.write(
        services.layout.pipeline_health,
        PipelineHealth(
            pid=4242,
            started_ms=now - 600_000,
            heartbeat_ms=now - age_ms,
            progress_ms=now - age_ms,
            last_error=error,
            last_error_ms=None if error is None else now - 60_000,
            restarts=restarts,
        ),
    )


async def test_status_shows_whether_the_pipeline_runs_its_last_error_and_restarts(
    settings: Settings, services: Services
) -> None:
    auth = {"authorization": f"Bearer {services.catalog.add_token('t')}"}
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            before = (await http.get("/api/v1/status", headers=auth)).json()["pipeline"]
            assert before["running"] is False and before["heartbeatAt"] is None

            _heartbeat(services, age_ms=500, error="OSError: [Errno 28] disk full", restarts=2)
            running = (await http.get("/api/v1/status", headers=auth)).json()["pipeline"]
            assert running["running"] is True
            assert (running["pid"], running["restarts"]) == (4242, 2)
            assert running["lastError"] == "OSError: [Errno 28] disk full"
            assert running["lastErrorAt"].endswith("Z")

            _heartbeat(services, age_ms=42_000, error=None, restarts=3)
            gone = (await http.get("/api/v1/status", headers=auth)).json()["pipeline"]
            assert gone["running"] is False
            assert gone["heartbeatAgeS"] >= 42


def test_koppla_status_prints_the_pipeline_state(settings: Settings, services: Services) -> None:
    runner = CliRunner()
    command = ["status", "--home", str(settings.home)]
    assert "pipeline: no heartbeat yet" in runner.invoke(build(), command).output

    _heartbeat(services, age_ms=42_000, error="RuntimeError: commit failed", restarts=5)
    out = runner.invoke(build(), command).output
    assert "pipeline: NOT RUNNING (pid 4242, last heartbeat 42 s ago, restarted 5 times)" in out
    assert "RuntimeError: commit failed" in out
