"""A Koppla killed with SIGKILL right after acknowledging loses nothing and doubles nothing.

Each test checks, from the home directory the killed server left, that work was pending at the
moment of the kill (acknowledged requests still in the spool), so a pipeline that had already
stored everything cannot make it pass.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def koppla(tmp_path: Path) -> Iterator[Koppla]:
    server = Koppla(tmp_path / "home", free_port())
    yield server
    server.stop()


def event(marker: str, n: int) -> dict[str, Any]:
    return {
        "xdm": {
            "eventType": "web.webpagedetails.pageViews",
            "timestamp": f"2026-12-01T10:00:{n % 60:02d}.{n % 1000:03d}Z",
            "web": {
                "webPageDetails": {
                    "name": marker,
                    "URL": f"https://shop.test/p/{n}",
                    "pageViews": {"value": 1},
                }
            },
        }
    }


async def send_all(url: str, count: int) -> set[str]:
    """Send `count` requests of two events each; return the markers acknowledged."""
    acked: set[str] = set()
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(n: int) -> None:
            markers = [f"m-{n}-a", f"m-{n}-b"]
            body = {"events": [event(markers[0], n), event(markers[1], n + 1)]}
            response = await client.post(
                f"/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
                content=codec.dumps(body),
                headers={"content-type": "text/plain"},
            )
            if response.status_code == 200:
                acked.update(markers)

        await asyncio.gather(*(one(n) for n in range(count)))
    return acked


def stored_markers(url: str, token: str) -> list[str]:
    response = httpx.post(
        f"{url}/api/v1/query",
        headers={"authorization": f"Bearer {token}"},
        json={"sql": "SELECT web.webPageDetails.name FROM demo_events", "max_rows": 100000},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [row[0] for row in response.json()["rows"]]


def backlog(koppla: Koppla) -> int:
    """Bytes acknowledged but not yet stored, per `koppla status` on the (stopped) server's home."""
    out = subprocess.run(
        [sys.executable, "-m", "koppla", "status", "--json", "--home", str(koppla.home)],
        check=True,
        capture_output=True,
    )
    return sum(stream["backlogBytes"] for stream in codec.loads(out.stdout)["spool"])


def test_sigkill_after_acknowledgement_loses_and_doubles_nothing(
    koppla: Koppla, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPPLA_PIPELINE_FLUSH_MS", "3000")  # the pipeline lags behind the acks
    koppla.start()
    acked = asyncio.run(send_all(koppla.url, 400))
    koppla.kill()
    assert len(acked) == 800
    assert backlog(koppla) > 0, "the pipeline had stored everything before the kill"

    koppla.start()
    token = koppla.token()
    deadline = time.monotonic() + 60
    stored: list[str] = []
    while time.monotonic() < deadline:
        stored = stored_markers(koppla.url, token)
        if len(stored) >= len(acked):
            break
        time.sleep(0.2)
    assert set(stored) == acked
    assert len(stored) == len(set(stored)), "an event was stored twice"


def test_sigkill_during_the_pipeline_commit_replays_exactly_once(koppla: Koppla) -> None:
    koppla.start()
    acked: set[str] = set()
    for round_ in range(3):  # kill at different moments of the pipeline's work
        acked |= asyncio.run(send_all(koppla.url, 150 + round_ * 7))
        time.sleep(0.02 * round_)
        koppla.kill()
        assert backlog(koppla) > 0, f"round {round_}: nothing was pending at the kill"
        koppla.start()
    token = koppla.token()
    deadline = time.monotonic() + 60
    stored: list[str] = []
    while time.monotonic() < deadline:
        stored = stored_markers(koppla.url, token)
        if len(set(stored)) >= len(acked):
            break
        time.sleep(0.2)
    assert set(stored) == acked
    assert len(stored) == len(set(stored)), "an event was stored twice"
