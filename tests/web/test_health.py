"""Health tells the truth: 503 with a reason when the pipeline is down or stuck, else 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest

from koppla.core import clock
from koppla.core.layout import Layout
from koppla.core.settings import Settings
from koppla.platform.pipeline import health
from koppla.platform.pipeline.health import PipelineHealth
from koppla.platform.spool.writer import SpoolWriter
from koppla.web.app import KopplaApp
from koppla.web.liveness import STARTUP_GRACE_S, Verdict, Watch, verdict
from tests.web.asgi import running_app

NOW = 1_800_000_000_000
STALL_S = 60.0


def beat(
    *, heartbeat_s_ago: float, progress_s_ago: float, error: str | None = None
) -> PipelineHealth:
    """A heartbeat written `heartbeat_s_ago` seconds before `NOW`."""
    return PipelineHealth(
        pid=42,
        started_ms=NOW - 3_600_000,
        heartbeat_ms=NOW - int(heartbeat_s_ago * 1000),
        progress_ms=NOW - int(progress_s_ago * 1000),
        last_error=error,
        last_error_ms=None if error is None else NOW - 5_000,
    )


def judge(found: PipelineHealth | None, backlog: int = 0, watch: Watch | None = None) -> Verdict:
    return verdict(
        found,
        lambda: backlog,
        watch or Watch(since_ms=NOW - 3_600_000, supervised=True),
        now_ms=NOW,
        stall_s=STALL_S,
    )


def test_a_fresh_heartbeat_with_progress_is_healthy() -> None:
    assert judge(beat(heartbeat_s_ago=1, progress_s_ago=2), backlog=500) == Verdict(True, "running")


def test_an_idle_pipeline_with_nothing_waiting_is_healthy() -> None:
    assert judge(beat(heartbeat_s_ago=1, progress_s_ago=600), backlog=0).healthy


def test_an_old_heartbeat_means_the_pipeline_is_not_running() -> None:
    found = judge(beat(heartbeat_s_ago=42, progress_s_ago=42, error="OSError: disk full"))
    assert found == Verdict(
        False,
        "down",
        "pipeline not running (last heartbeat 42 s ago); last error 5 s ago: OSError: disk full",
    )


def test_a_backlog_that_does_not_move_is_a_stall() -> None:
    found = judge(beat(heartbeat_s_ago=1, progress_s_ago=75, error="ValueError: bad"), 1234)
    assert found == Verdict(
        False,
        "stalled",
        "backlog of 1234 bytes has not moved for 75 s; last error 5 s ago: ValueError: bad",
    )


def test_a_server_without_a_pipeline_of_its_own_is_healthy_until_a_heartbeat_says_otherwise() -> (
    None
):
    alone = Watch(since_ms=NOW - 3_600_000, supervised=False)
    assert judge(None, watch=alone) == Verdict(True, "unsupervised")
    assert not judge(beat(heartbeat_s_ago=300, progress_s_ago=300), watch=alone).healthy


def test_a_supervised_pipeline_gets_a_grace_period_for_its_first_heartbeat() -> None:
    just_started = Watch(since_ms=NOW - 2_000, supervised=True)
    assert judge(None, watch=just_started) == Verdict(True, "starting")
    previous_run = beat(heartbeat_s_ago=3_000, progress_s_ago=3_000)
    assert judge(previous_run, watch=just_started) == Verdict(True, "starting")

    long_ago = Watch(since_ms=NOW - int(STARTUP_GRACE_S * 1000) - 5_000, supervised=True)
    silent = judge(None, watch=long_ago)
    assert not silent.healthy
    assert silent.reason == "pipeline not running (no heartbeat since the server started 35 s ago)"
    assert not judge(previous_run, watch=long_ago).healthy


@pytest.fixture
async def started(settings: Settings) -> AsyncIterator[tuple[KopplaApp, httpx.AsyncClient]]:
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            yield app, http


def write_beat(home: Path, *, heartbeat_s_ago: float, progress_s_ago: float) -> None:
    now = clock.now_ms()
    health.write(
        Layout(home).pipeline_health,
        PipelineHealth(
            pid=42,
            started_ms=now - 600_000,
            heartbeat_ms=now - int(heartbeat_s_ago * 1000),
            progress_ms=now - int(progress_s_ago * 1000),
            last_error="RuntimeError: delta commit failed",
            last_error_ms=now - 30_000,
            restarts=3,
        ),
    )


@pytest.mark.anyio
async def test_health_answers_503_with_the_reason_when_the_pipeline_is_gone(
    started: tuple[KopplaApp, httpx.AsyncClient], settings: Settings
) -> None:
    _, http = started
    write_beat(settings.home, heartbeat_s_ago=1, progress_s_ago=1)
    ok = await http.get("/api/v1/health")
    assert (ok.status_code, ok.json()["status"], ok.json()["pipeline"]) == (200, "ok", "running")

    write_beat(settings.home, heartbeat_s_ago=42, progress_s_ago=42)
    down = await http.get("/api/v1/health")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert "pipeline not running (last heartbeat 42 s ago)" in down.json()["reason"]
    assert "delta commit failed" in down.json()["reason"]


@pytest.mark.anyio
async def test_health_answers_503_when_the_backlog_has_not_moved_for_the_stall_time(
    tmp_path: Path,
) -> None:
    settings = Settings.load(home=tmp_path / "home", pipeline_stall_s=30)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as http:
            write_beat(settings.home, heartbeat_s_ago=1, progress_s_ago=45)
            assert (await http.get("/api/v1/health")).status_code == 200  # nothing waits

            spool: SpoolWriter = app.api.state.spool
            await spool.append(b"a record nobody stores")
            stuck = await http.get("/api/v1/health")
            assert stuck.status_code == 503
            assert "has not moved for 45 s" in stuck.json()["reason"]

            write_beat(settings.home, heartbeat_s_ago=1, progress_s_ago=10)
            assert (await http.get("/api/v1/health")).status_code == 200


@pytest.mark.anyio
async def test_health_of_koppla_up_waits_for_the_pipeline_only_during_start_up(
    started: tuple[KopplaApp, httpx.AsyncClient],
) -> None:
    app, http = started
    app.watch_pipeline()
    starting = await http.get("/api/v1/health")
    assert (starting.status_code, starting.json()["pipeline"]) == (200, "starting")


@pytest.mark.anyio
async def test_health_answers_while_every_shared_worker_thread_is_busy(
    started: tuple[KopplaApp, httpx.AsyncClient], settings: Settings
) -> None:
    """Health needs nothing of the thread pool that sync routes, the token gate and slow
    work share: it answers even when another load holds every worker thread."""
    _, http = started
    write_beat(settings.home, heartbeat_s_ago=1, progress_s_ago=1)
    shared = anyio.to_thread.current_default_thread_limiter()
    holders = [object() for _ in range(int(shared.total_tokens))]
    for holder in holders:
        await shared.acquire_on_behalf_of(holder)
    try:
        with anyio.fail_after(30):  # a guard against hanging, not a measurement
            answer = await http.get("/api/v1/health")
    finally:
        for holder in holders:
            shared.release_on_behalf_of(holder)

    assert (answer.status_code, answer.json()["pipeline"]) == (200, "running")
