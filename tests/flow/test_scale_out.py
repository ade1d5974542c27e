"""Koppla past one process: 2 edges + 2 pipeline workers + the API on RabbitMQ Streams and
PostgreSQL, one edge and one worker killed with SIGKILL mid-load and started again.

What a user checks afterwards, through the API's SQL: every event an edge acknowledged is stored
exactly once, including events that reached both edges (an SDK retry answered by the other
edge), and nothing is stored that was never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.require import unavailable
from tests.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

POSTGRES_URL = os.environ.get(
    "KOPPLA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
).replace("postgresql+psycopg://", "postgresql://")
STREAM_HOST = os.environ.get("KOPPLA_TEST_RABBITMQ_STREAM_HOST", "127.0.0.1:5552")


@dataclass
class Deployment:
    """The environment every process of one test deployment shares."""

    home: Path
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, role: str, *args: str) -> None:
        """Start `koppla up --role ROLE` as `name`, in its own process group."""
        command = [sys.executable, "-m", "koppla", "up", "--role", role, *args]
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def kill(self, name: str) -> None:
        """SIGKILL the process group of `name` (the role and any child it started)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        """Stop every process: SIGTERM, then SIGKILL after 20 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def koppla(self, *args: str) -> str:
        """Run a `koppla` command against the deployment; its standard output."""
        done = subprocess.run(
            [sys.executable, "-m", "koppla", *args],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()


def _vhost(name: str, *, create: bool) -> None:
    """Create (or delete) a RabbitMQ virtual host, so the test's streams are its own."""
    commands = (
        [["add_vhost", name], ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]]
        if create
        else [["delete_vhost", name]]
    )
    for args in commands:
        try:
            done = subprocess.run(
                ["rabbitmqctl", "-q", *args], capture_output=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            if create:
                unavailable(f"rabbitmqctl cannot manage the local RabbitMQ: {error!r}")
            return
        if create and done.returncode != 0:
            unavailable(f"rabbitmqctl {args[0]} failed: {done.stderr.decode().strip()}")
    if create:
        try:
            host, port = STREAM_HOST.rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            unavailable(f"RabbitMQ's stream port {STREAM_HOST} is closed: {error!r}")


def _pg_schema(name: str, *, create: bool) -> None:
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            verb = f"CREATE SCHEMA {name}" if create else f"DROP SCHEMA IF EXISTS {name} CASCADE"
            conn.execute(verb)
    except psycopg.OperationalError as error:
        if create:
            unavailable(f"PostgreSQL unreachable at {POSTGRES_URL}: {error}")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:10]
    vhost, schema = f"koppla-test-{tag}", f"koppla_test_{tag}"
    _vhost(vhost, create=True)
    _pg_schema(schema, create=True)
    joiner = "&" if "?" in POSTGRES_URL else "?"
    env = dict(os.environ)
    env.update(
        KOPPLA_HOME=str(tmp_path / "home"),
        KOPPLA_CATALOG_URL=f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}",
        KOPPLA_SPOOL_URL=f"rabbitmq-stream://guest:guest@{STREAM_HOST}/{vhost}",
        KOPPLA_SPOOL_PARTITIONS="4",
        KOPPLA_PROFILE_STORE_URL="",
        KOPPLA_QUERY_PG_PORT="0",
        KOPPLA_QUERY_MAX_ROWS="5000000",
    )
    found = Deployment(tmp_path / "home", env, tmp_path)
    try:
        yield found
    finally:
        found.stop_all()
        _vhost(vhost, create=False)
        _pg_schema(schema, create=False)


def _event(event_id: str, n: int) -> dict[str, Any]:
    return {
        "xdm": {
            "_id": event_id,
            "eventType": "web.webpagedetails.pageViews",
            "timestamp": f"2026-12-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
            "web": {"webPageDetails": {"name": "scale", "URL": f"https://shop.test/p/{n}"}},
        }
    }


@dataclass
class Load:
    """What was sent and what the edges acknowledged."""

    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    refused: int = 0


async def _send(edges: list[str], load: Load, stop: asyncio.Event, start: int) -> None:
    """Send two-event requests round robin over `edges` until `stop`; every tenth is sent
    again to the other edge, as an SDK retry that reached another edge would be."""
    path = f"/ee/v1/interact?configId={DEMO_DATASTREAM_ID}"

    async def post(client: httpx.AsyncClient, url: str, ids: list[str], n: int) -> None:
        body = codec.dumps({"events": [_event(i, n) for i in ids]})
        try:
            response = await client.post(url + path, content=body, timeout=15)
        except httpx.HTTPError:
            load.refused += 1
            return
        if response.status_code == 200:
            load.acked.update(ids)
        else:
            load.refused += 1

    async with httpx.AsyncClient() as client:
        n = start
        while not stop.is_set():
            batch = []
            for _ in range(16):
                ids = [str(uuid.uuid4()), str(uuid.uuid4())]
                load.sent.update(ids)
                batch.append(post(client, edges[n % 2], ids, n))
                if n % 10 == 0:
                    batch.append(post(client, edges[(n + 1) % 2], ids, n))
                n += 1
            await asyncio.gather(*batch)


def _wait_healthy(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=10).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def _stored_ids(api: str, token: str) -> list[str]:
    response = httpx.post(
        f"{api}/api/v1/query",
        json={"sql": "SELECT _id FROM demo_events", "max_rows": 5_000_000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return [str(row[0]) if isinstance(row, list) else str(row["_id"]) for row in body["rows"]]


def _live_workers(catalog_url: str) -> int:
    """How many pipeline workers beat in the last 5 s (0 before the first made its tables)."""
    try:
        with psycopg.connect(catalog_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pipeline_workers "
                "WHERE beat_ms > (extract(epoch from now()) * 1000)::bigint - 5000"
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return 0 if row is None else int(row[0])


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.2)


async def _grow(load: Load, by: int, seconds: float) -> None:
    """Wait until `by` more events were acknowledged (or `seconds` passed)."""
    target, deadline = len(load.acked) + by, time.monotonic() + seconds
    while len(load.acked) < target and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def test_two_edges_two_workers_survive_kill_9_exactly_once(deployment: Deployment) -> None:
    deployment.koppla("demo")
    token = deployment.koppla("token", "create", "--name", "scale-test").strip().split()[-1]
    edges = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    api = f"http://127.0.0.1:{free_port()}"
    for i, url in enumerate(edges):
        deployment.start(f"edge{i}", "edge", "--port", url.rsplit(":", 1)[1])
    deployment.start("worker0", "pipeline")
    deployment.start("worker1", "pipeline")
    deployment.start("api", "api", "--port", api.rsplit(":", 1)[1])
    for url in [*edges, api]:
        _wait_healthy(url)
    catalog_url = deployment.env["KOPPLA_CATALOG_URL"]
    _until(lambda: _live_workers(catalog_url) == 2, 120, "both workers beating")

    async def drive() -> tuple[Load, int]:
        load, stop = Load(), asyncio.Event()
        sender = asyncio.create_task(_send(edges, load, stop, 0))
        await _grow(load, 600, 60)
        before_kill = len(load.acked)
        deployment.kill("edge0")  # mid-load: requests in flight on it are never acknowledged
        deployment.kill("worker0")  # holding half the partitions, with records in flight
        await _grow(load, 100, 10)  # the other edge keeps acknowledging meanwhile
        deployment.start("edge0", "edge", "--port", edges[0].rsplit(":", 1)[1])
        deployment.start("worker0", "pipeline")
        await asyncio.to_thread(_wait_healthy, edges[0])
        await _grow(load, 600, 60)
        stop.set()
        await sender
        return load, before_kill

    load, before_kill = asyncio.run(drive())
    assert before_kill > 0, "nothing was acknowledged before the kills"
    assert len(load.acked) > before_kill, "nothing was acknowledged after the kills"

    stored: list[str] = []

    def all_stored() -> bool:
        stored[:] = _stored_ids(api, token)
        return load.acked <= set(stored)

    with contextlib.suppress(AssertionError):
        _until(all_stored, 180, "every acknowledged event stored")
    missing = load.acked - set(stored)
    assert not missing, f"{len(missing)} of {len(load.acked)} acknowledged events were not stored"
    assert len(stored) == len(set(stored)), f"{len(stored) - len(set(stored))} stored twice"
    assert set(stored) <= load.sent, "an event nobody sent was stored"

    def status() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        found: dict[str, Any] = httpx.get(
            f"{api}/api/v1/status", headers=headers, timeout=30
        ).json()
        return found

    def shared_fairly() -> bool:  # a worker just restarted takes its share within seconds
        live = [w for w in status()["pipeline"]["workers"] if w["live"]]
        held = sorted(p for w in live for p in w["partitions"])
        return len(live) == 2 and held == [f"koppla-spool-{i}" for i in range(4)]

    _until(shared_fairly, 60, "both workers live, sharing every partition")
    _until(lambda: sum(s["backlogRecords"] for s in status()["spool"]) == 0, 30, "no backlog")


def test_with_the_workers_stopped_the_edge_holds_back_and_loses_nothing(
    deployment: Deployment,
) -> None:
    deployment.env["KOPPLA_SPOOL_MAX_BACKLOG_RECORDS"] = "40"
    deployment.koppla("demo")
    token = deployment.koppla("token", "create", "--name", "scale-test").strip().split()[-1]
    edge, api = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    deployment.start("edge", "edge", "--port", edge.rsplit(":", 1)[1])
    _wait_healthy(edge)
    acked: set[str] = set()
    refusal: httpx.Response | None = None
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=edge, timeout=15) as client:
        n = 0
        while refusal is None and time.monotonic() < deadline:
            ids = [str(uuid.uuid4())]
            body = codec.dumps({"events": [_event(ids[0], n)]})
            answer = client.post(f"/ee/v1/interact?configId={DEMO_DATASTREAM_ID}", content=body)
            if answer.status_code == 200:
                acked.update(ids)
            elif answer.status_code == 503:
                refusal = answer
            n += 1
            time.sleep(0.02)
    assert refusal is not None, "the edge never held back"
    assert int(refusal.headers["Retry-After"]) > 0
    assert len(acked) >= 40  # the bound, then what came before the next measure

    deployment.start("worker", "pipeline")
    deployment.start("api", "api", "--port", api.rsplit(":", 1)[1])
    _wait_healthy(api)
    stored: list[str] = []

    def all_stored() -> bool:
        stored[:] = _stored_ids(api, token)
        return acked <= set(stored)

    with contextlib.suppress(AssertionError):
        _until(all_stored, 180, "every acknowledged event stored")
    assert acked <= set(stored)
    assert len(stored) == len(set(stored)) == len(acked)
