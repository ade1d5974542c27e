"""`koppla up` runs the PostgreSQL server: psql reaches the events sent to the edge."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.server import Koppla, free_port

from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from koppla.platform.catalog.models import DEFAULT_ORG_ID

pytestmark = pytest.mark.slow


@pytest.fixture
def koppla(tmp_path: Path) -> Iterator[Koppla]:
    server = Koppla(tmp_path / "home", free_port(), pg_port=free_port())
    server.start()
    yield server
    server.stop()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _psql(koppla: Koppla, token: str, command: str) -> subprocess.CompletedProcess[str]:
    dsn = (
        f"host=127.0.0.1 port={koppla.pg_port} dbname=prod:all user={DEFAULT_ORG_ID} "
        "sslmode=require gssencmode=disable connect_timeout=10"
    )
    env = {**os.environ, "PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(
        ["psql", dsn, "-X", "-A", "-t", "-c", command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_psql_reads_an_event_sent_to_the_edge(koppla: Koppla) -> None:
    token = koppla.token()
    event = {
        "xdm": {
            "eventType": "web.webpagedetails.pageViews",
            "timestamp": "2026-12-05T10:00:00.000Z",
            "web": {"webPageDetails": {"name": "psql-home", "URL": "https://shop.example/"}},
        }
    }
    sent = httpx.post(
        f"{koppla.url}/ee/v2/interact?configId={DEMO_DATASTREAM_ID}",
        json={"events": [event]},
        timeout=10,
    )
    assert sent.status_code == 200
    deadline = time.monotonic() + 30
    names = ""
    while time.monotonic() < deadline:
        if _listening(koppla.pg_port):
            seed = _psql(koppla, token, "SELECT * from demo_events ORDER BY TIMESTAMP DESC")
            assert seed.returncode == 0, seed.stderr
            if "psql-home" in seed.stdout:
                names = seed.stdout
                break
        time.sleep(0.3)
    assert "psql-home" in names
    tables = _psql(koppla, token, r"\dt")
    assert tables.returncode == 0 and "demo_events" in tables.stdout
    refused = _psql(koppla, "not-a-token", "SELECT 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr
