"""Connector fixtures: a Magento schema on the real MariaDB, a SQLite demo shop, the platform."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from koppla.connector import schema
from koppla.connector.changelog import CHANGELOGS, install_triggers
from koppla.connector.demo_store import create_demo_schema
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.connector.source import connect
from tests.connector.magento_ddl import create_table, load_tables
from tests.reference import reference_dir
from tests.require import unavailable
from tests.server import Koppla, free_port

MARIADB_URL = os.environ.get("KOPPLA_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
DEMO_ORG = "KOPPLADEMO00000000000000@AdobeOrg"
DEMO_DATASTREAM = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"


@pytest.fixture(scope="session")
def magento_url() -> Iterator[str]:
    """A fresh database `koppla_test_<random>` with tables built from Magento's db_schema.xml.

    The `Eav` module's tables are not in the reference: `eav_entity_type` and `eav_attribute`
    come from Koppla's own minimal definitions (`schema.eav_metadata`).
    """
    tables = load_tables(reference_dir())
    admin = create_engine(MARIADB_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as error:
        admin.dispose()
        unavailable(f"MariaDB unreachable at {MARIADB_URL}: {error.orig}")
    name = f"koppla_test_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        for table in schema.metadata.sorted_tables:
            conn.execute(text(create_table(tables[table.name])))
    schema.eav_metadata.create_all(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def magento(magento_url: str) -> Iterator[str]:
    """The MariaDB Magento database, emptied of orders and customers, with stores and triggers."""
    engine = connect(magento_url)
    with engine.begin() as conn:
        for table in schema.metadata.sorted_tables:
            if table.name.startswith(("sales_", "customer_")):
                conn.execute(text(f"DELETE FROM `{table.name}`"))
        for log in CHANGELOGS:
            conn.execute(text(f"DROP TABLE IF EXISTS {log.name}"))
    create_demo_schema(engine)
    install_triggers(engine)
    engine.dispose()
    yield magento_url


@pytest.fixture
def sqlite_shop(tmp_path: Path) -> str:
    """A SQLite demo shop (empty of orders) with triggers."""
    dsn = f"sqlite:///{tmp_path / 'demo-shop.sqlite'}"
    engine = connect(dsn)
    create_demo_schema(engine)
    install_triggers(engine)
    engine.dispose()
    return dsn


@pytest.fixture(params=["sqlite", "mariadb"])
def shop_dsn(request: pytest.FixtureRequest) -> str:
    """The shop database URL: the SQLite demo store, then Magento's schema on MariaDB."""
    fixture = "sqlite_shop" if request.param == "sqlite" else "magento"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def shop_engine(shop_dsn: str) -> Iterator[Engine]:
    """An engine on the shop database (for writing orders as Magento does)."""
    engine = connect(shop_dsn)
    yield engine
    engine.dispose()


class Platform:
    """`koppla up --demo --no-demo-shop` as a child process, with the calls the tests make."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self._server = Koppla(home, port)
        self.url = self._server.url
        self._token: str | None = None
        self._dataset: str | None = None

    def start(self) -> None:
        """Start it and wait until healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._server.start()

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        self._server.stop()

    @property
    def token(self) -> str:
        """An API token (created once)."""
        if self._token is None:
            self._token = self._server.token()
        return self._token

    @property
    def dataset_id(self) -> str:
        """The id of `demo_events`."""
        if self._dataset is None:
            self._dataset = self.dataset("demo_events")
        return self._dataset

    def dataset(self, name: str) -> str:
        """The id of the dataset `name` (e.g. `demo_profiles`)."""
        response = httpx.get(
            f"{self.url}/api/v1/datasets/{name}",
            headers={"authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def query(self, sql: str) -> list[list[Any]]:
        """Rows of a SQL query over the datasets."""
        response = httpx.post(
            f"{self.url}/api/v1/query",
            headers={"authorization": f"Bearer {self.token}"},
            json={"sql": sql, "max_rows": 100000},
            timeout=30,
        )
        if response.status_code == 400 and "no data written yet" in response.text:
            return []
        assert response.status_code == 200, response.text
        rows: list[list[Any]] = response.json()["rows"]
        return rows


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """A running platform with the demo datastream."""
    server = Platform(tmp_path / "platform", free_port())
    server.start()
    yield server
    server.stop()


def settings_for(
    home: Path,
    dsn: str,
    platform: Platform,
    site: dict[str, Any] | None = None,
    **extra: Any,
) -> ConnectorSettings:
    """Connector settings delivering the shop's `base` website (plus `site` settings) to the
    demo datastream."""
    return load_settings(
        home,
        token=platform.token,
        source_dsn=dsn,
        platform_url=platform.url,
        poll_interval_s=0.2,
        websites=[
            {
                "website_code": "base",
                "org_id": DEMO_ORG,
                "datastream_id": DEMO_DATASTREAM,
                "dataset_id": platform.dataset_id,
                "environment_id": "test-env",
                **(site or {}),
            }
        ],
        **extra,
    )


def wait_for(check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(every)
