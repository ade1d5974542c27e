"""A platform serving HTTPS with a CA-issued certificate (not self-signed): the connector, given
the server's own certificate as `platform_ca_file` (the file `koppla up --tls-cert` serves),
reads its settings, checks datasets and delivers; Test connection reaches it too."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from koppla.connector.demo_store import DemoShop
from koppla.connector.history.batch_client import PlatformBatches
from koppla.connector.remote_settings import RemoteSettings
from koppla.connector.runner import run_connector
from koppla.connector.settings import load_settings, reload_settings
from koppla.connector.source import connect
from koppla.core import codec
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, wait_for
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow


class TlsPlatform:
    """`koppla up --demo` over HTTPS, and a client that trusts its CA (as a browser would)."""

    def __init__(self, server: Koppla, cert_file: Path, ca_file: Path) -> None:
        self.server, self.cert_file = server, cert_file
        self.url = server.url
        self.token = server.token()
        self.http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(ca_file)),
            timeout=30,
        )

    def rows(self, dataset: str) -> int:
        """How many rows `dataset` holds (0 before anything was written)."""
        answer = self.http.post("/api/v1/query", json={"sql": f"SELECT count(*) FROM {dataset}"})
        if answer.status_code == 400 and "no data written yet" in answer.text:
            return 0
        assert answer.status_code == 200, answer.text
        return int(answer.json()["rows"][0][0])


@pytest.fixture
def tls_platform(tmp_path: Path) -> Iterator[TlsPlatform]:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    issued.cert_chain_pems[0].write_to_path(str(cert_file))  # the leaf only, as --tls-cert
    issued.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    server = Koppla(
        tmp_path / "platform",
        free_port(),
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        scheme="https",
        verify=ssl.create_default_context(cafile=str(ca_file)),
    )
    (tmp_path / "platform").mkdir()
    server.start()
    platform = TlsPlatform(server, cert_file, ca_file)
    try:
        yield platform
    finally:
        platform.http.close()
        server.stop()


def test_the_connector_trusts_the_servers_ca_issued_certificate(
    tmp_path: Path, tls_platform: TlsPlatform, sqlite_shop: str
) -> None:
    dataset = tls_platform.http.get("/api/v1/datasets/demo_events").json()["id"]
    site = {"website_code": "base", "datastream_id": DEMO_DATASTREAM, "dataset_id": dataset}
    saved = tls_platform.http.put(
        "/api/v1/connector/settings",
        json={"org_id": DEMO_ORG, "web_sdk_name": "", "websites": [site]},
    )
    assert saved.status_code == 200, saved.text
    settings = load_settings(
        tmp_path / "shop",
        token=tls_platform.token,
        platform_url=tls_platform.url,
        platform_ca_file=tls_platform.cert_file,
        source_dsn=sqlite_shop,
        poll_interval_s=0.2,
    )
    remote = RemoteSettings(settings)
    try:
        assert remote.refresh() is True  # the settings, read over HTTPS
    finally:
        remote.close()
    batches = PlatformBatches(settings, patience_s=1)
    try:
        assert batches.dataset_exists(dataset) is True  # the history sync's client
    finally:
        batches.close()

    engine = connect(sqlite_shop)
    stop = threading.Event()
    settings = reload_settings(settings)  # with the websites just read
    assert [w.dataset_id for w in settings.websites] == [dataset]
    runner = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    try:
        DemoShop(engine, seed=5).place()
        runner.start()
        wait_for(lambda: tls_platform.rows("demo_events") > 0)  # delivered over HTTPS
    finally:
        stop.set()
        runner.join(timeout=60)
        engine.dispose()


def test_test_connection_reaches_the_platform_over_tls(tls_platform: TlsPlatform) -> None:
    """The server calls itself at its https address, trusting its own certificate."""
    home = str(tls_platform.server.home)
    made = subprocess.run(
        [sys.executable, "-m", "koppla", "credentials", "create", "--home", home],
        check=True,
        capture_output=True,
    )
    workspace = codec.loads(made.stdout)
    report = tls_platform.http.post(
        "/api/v1/connector/service-account/test", json={"workspace": workspace}
    )
    assert report.status_code == 200, report.text
    assert report.json()["ok"] is True, report.json()["message"]
