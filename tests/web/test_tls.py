"""Koppla serves the edge over HTTPS when given a certificate and key (the Web SDK needs it)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from koppla.core import codec
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from tests.server import Koppla, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def tls_koppla(tmp_path: Path) -> Iterator[tuple[Koppla, str]]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "edge.shop.test")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    server = Koppla(
        tmp_path / "home",
        free_port(),
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        scheme="https",
        verify=ssl.create_default_context(cafile=str(ca_file)),
    )
    server.start()
    yield server, str(ca_file)
    server.stop()


def test_the_edge_answers_over_https(tls_koppla: tuple[Koppla, str]) -> None:
    server, ca_file = tls_koppla
    body = {
        "events": [
            {
                "xdm": {
                    "eventType": "web.webpagedetails.pageViews",
                    "timestamp": "2026-12-01T10:00:00Z",
                }
            }
        ]
    }
    response = httpx.post(
        f"{server.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=codec.dumps(body),
        headers={"origin": "https://shop.test"},
        verify=ssl.create_default_context(cafile=ca_file),
    )
    assert response.status_code == 200
    assert any(h["type"] == "state:store" for h in response.json()["handle"])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/v1/health", verify=True)  # not trusted by the system
