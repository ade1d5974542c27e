"""The connector follows the admin settings the platform keeps: a conditional GET at every poll,
a cache it starts from while the platform is down, and a saved datastream used at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from koppla.connector import schema as t
from koppla.connector.demo_store import DemoShop
from koppla.connector.remote_settings import RemoteSettings, cache_path, read_cached
from koppla.connector.runner import Connector
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import connect
from koppla.core import codec
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, Platform, wait_for

TOKEN = "kpl_connector_secret"


@dataclass
class FakePlatform:
    """The two calls the connector makes: its settings (versioned) and streaming ingestion."""

    document: dict[str, Any] | None = None
    version: int = 0
    status: int = 200
    down: bool = False
    settings_calls: list[httpx.Request] = field(default_factory=list)
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(datastream, datasetId of the message) of every message received."""

    def save(self, document: dict[str, Any]) -> None:
        self.document = document
        self.version += 1

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/api/v1/connector/settings":
            self.settings_calls.append(request)
            etag = f'"v{self.version}"'
            if self.status != 200:
                return httpx.Response(self.status, json={"detail": "platform trouble"})
            if request.headers.get("if-none-match") == etag:
                return httpx.Response(304, headers={"etag": etag})
            body = {"version": self.version, "settings": self.document or {}}
            return httpx.Response(200, json=body, headers={"etag": etag})
        if request.url.path.startswith("/collection/batch/"):
            stream = request.url.path.rsplit("/", 1)[-1]
            for message in codec.loads(request.content)["messages"]:
                self.sent.append((stream, message["header"]["datasetId"]))
            return httpx.Response(207, json={"responses": []})
        return httpx.Response(404, json={"detail": "no such path"})


def website(datastream: str, dataset: str = "events") -> dict[str, Any]:
    return {"website_code": "base", "datastream_id": datastream, "dataset_id": dataset}


def admin(*sites: dict[str, Any]) -> dict[str, Any]:
    return {"org_id": DEMO_ORG, "web_sdk_name": "", "websites": list(sites)}


def local(home: Path, dsn: str = "", **extra: Any) -> ConnectorSettings:
    return load_settings(
        home,
        token=TOKEN,
        platform_url="http://platform.test",
        source_dsn=dsn or None,
        poll_interval_s=0.05,
        change_tracking="poll",
        **extra,
    )


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def client(fake: FakePlatform) -> Iterator[httpx.Client]:
    made = httpx.Client(transport=httpx.MockTransport(fake))
    yield made
    made.close()


def test_a_new_version_is_cached_and_an_unchanged_one_costs_a_304(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client
) -> None:
    fake.save(admin(website("ds-a")))
    remote = RemoteSettings(local(tmp_path), client)
    assert remote.refresh() is True
    assert read_cached(tmp_path)["settings"] == admin(website("ds-a"))
    assert load_settings(tmp_path).websites[0].datastream_id == "ds-a"
    assert remote.refresh() is False
    first, second = fake.settings_calls
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert "if-none-match" not in first.headers and second.headers["if-none-match"] == '"v1"'

    fake.save(admin(website("ds-b")))
    assert remote.refresh() is True
    assert load_settings(tmp_path).websites[0].datastream_id == "ds-b"


def test_the_etag_survives_a_restart(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client
) -> None:
    fake.save(admin(website("ds-a")))
    RemoteSettings(local(tmp_path), client).refresh()
    again = RemoteSettings(local(tmp_path), client)
    assert again.refresh() is False
    assert fake.settings_calls[-1].headers["if-none-match"] == '"v1"'


def test_trouble_keeps_the_cached_settings_and_is_logged_once(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake.save(admin(website("ds-a")))
    remote = RemoteSettings(local(tmp_path), client)
    remote.refresh()
    caplog.set_level(logging.WARNING, logger="koppla.connector.settings")
    fake.down = True
    assert remote.refresh() is False and remote.refresh() is False
    fake.down, fake.status = False, 503
    assert remote.refresh() is False
    assert load_settings(tmp_path).websites[0].datastream_id == "ds-a"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "platform unreachable" in warnings[0] and "503" in warnings[1]
    assert TOKEN not in caplog.text


def test_an_organization_without_saved_settings_leaves_the_local_ones(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client
) -> None:
    remote = RemoteSettings(local(tmp_path), client)
    assert remote.refresh() is False
    assert read_cached(tmp_path)["settings"] is None
    own = local(tmp_path, websites=[{**website("ds-local"), "org_id": DEMO_ORG}])
    assert own.websites[0].datastream_id == "ds-local"


def test_the_connector_starts_from_the_cache_while_the_platform_is_down(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client, sqlite_shop: str
) -> None:
    fake.save(admin(website("ds-a")))
    RemoteSettings(local(tmp_path), client).refresh()
    fake.down = True
    connector = Connector(
        local(tmp_path, sqlite_shop), client, RemoteSettings(local(tmp_path), client)
    )
    try:
        assert connector.refresh_settings() is False
        assert connector.settings.websites[0].datastream_id == "ds-a"
    finally:
        connector.close()
    assert cache_path(tmp_path).is_file()


def test_a_saved_datastream_is_where_the_running_connector_sends_next(
    tmp_path: Path, fake: FakePlatform, client: httpx.Client, sqlite_shop: str
) -> None:
    fake.save(admin(website("ds-a", "events-a")))
    settings = local(tmp_path / "home", sqlite_shop)
    connector = Connector(settings, client, RemoteSettings(settings, client))
    engine = connect(sqlite_shop)
    shop = DemoShop(engine, seed=11)
    stop = threading.Event()
    loop = threading.Thread(target=connector.loop, args=(stop,), daemon=True)
    try:
        shop.place()
        loop.start()
        wait_for(lambda: fake.sent, timeout=30, every=0.05)
        assert set(fake.sent) == {("ds-a", "events-a")}

        fake.save(admin(website("ds-b", "events-b")))
        wait_for(lambda: connector.settings.websites[0].datastream_id == "ds-b", every=0.01)
        shop.place()
        wait_for(lambda: ("ds-b", "events-b") in fake.sent, timeout=30, every=0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
        connector.close()
        engine.dispose()
    after = fake.sent[fake.sent.index(("ds-b", "events-b")) :]
    assert set(after) == {("ds-b", "events-b")}
    assert connector.settings.websites[0].datastream_id == "ds-b"


def test_settings_that_break_a_rule_are_not_applied(
    tmp_path: Path,
    fake: FakePlatform,
    client: httpx.Client,
    sqlite_shop: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.save(admin(website("ds-a")))
    settings = local(tmp_path, sqlite_shop)
    connector = Connector(settings, client, RemoteSettings(settings, client))
    try:
        assert connector.refresh_settings() is True
        fake.save(admin(website("", "events")))  # no datastream: refused
        caplog.set_level(logging.ERROR, logger="koppla.connector")
        assert connector.refresh_settings() is False
        assert connector.settings.websites[0].datastream_id == "ds-a"
        assert "websites[0].datastream_id" in caplog.text
    finally:
        connector.close()


def test_the_real_platform_serves_what_the_admin_saved_to_the_connector(
    tmp_path: Path, platform: Platform, sqlite_shop: str
) -> None:
    """End to end: settings saved through the API, a second datastream made, the connector
    sending the shop's orders first to the demo datastream, then to the new one."""
    auth = {"authorization": f"Bearer {platform.token}"}
    api = httpx.Client(base_url=platform.url, headers=auth, timeout=30)
    engine = connect(sqlite_shop)
    stop = threading.Event()
    try:
        saved = api.put(
            "/api/v1/connector/settings",
            json=admin(website(DEMO_DATASTREAM, platform.dataset_id)),
        )
        assert saved.status_code == 200, saved.text
        other = api.post("/api/v1/datasets", json={"name": "other_events"}).json()
        stream = api.post(
            "/api/v1/datastreams", json={"orgId": DEMO_ORG, "eventDataset": other["id"]}
        ).json()
        settings = load_settings(
            tmp_path / "home",
            token=platform.token,
            source_dsn=sqlite_shop,
            platform_url=platform.url,
            poll_interval_s=0.2,
        )
        assert settings.websites == ()  # nothing yet: the first poll brings them
        from koppla.connector.runner import run_connector

        runner = threading.Thread(
            target=run_connector, args=(settings.home, stop, settings), daemon=True
        )
        shop = DemoShop(engine, seed=12)
        first = shop.place()
        runner.start()
        wait_for(lambda: platform.query("SELECT count(*) FROM demo_events") not in ([], [[0]]))

        changed = api.put(
            "/api/v1/connector/settings/websites/base",
            json=website(stream["id"], other["id"]),
        )
        assert changed.status_code == 200, changed.text

        def applied() -> bool:
            cached = read_cached(settings.home).get("settings") or {}
            return [w["datastream_id"] for w in cached.get("websites", [])] == [stream["id"]]

        wait_for(applied, every=0.05)  # written by the loop right before it applies them
        second = shop.place()
        sql = "SELECT DISTINCT commerce.order.purchaseID FROM other_events"
        rows = wait_for(lambda: platform.query(sql))
        with engine.connect() as conn:
            numbers = dict(
                conn.execute(
                    select(t.sales_order.c.entity_id, t.sales_order.c.increment_id).where(
                        t.sales_order.c.entity_id.in_([first, second])
                    )
                ).all()
            )
    finally:
        stop.set()
        api.close()
        engine.dispose()
    assert rows == [[numbers[second]]]
