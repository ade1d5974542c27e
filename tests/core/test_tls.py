"""`koppla.core.tls`: a client trusts the server's own certificate, even one a CA issued."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from koppla.core.tls import trust, verify_for


def handshake(server: ssl.SSLContext, client: ssl.SSLContext | bool, hostname: str) -> None:
    """A TLS handshake in memory; raises what the client's verification raises."""
    assert isinstance(client, ssl.SSLContext)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=hostname)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    for _ in range(10):
        finished = 0
        for side in (client_side, server_side):
            try:
                side.do_handshake()
                finished += 1
            except ssl.SSLWantReadError:
                pass
        if finished == 2:
            return
    raise AssertionError("the handshake did not finish")


def test_the_servers_ca_issued_certificate_alone_is_enough(tmp_path: Path) -> None:
    issued = trustme.CA().issue_cert("127.0.0.1")
    cert_file = tmp_path / "cert.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert_file))  # the leaf only, as --tls-cert
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issued.configure_cert(server)
    handshake(server, verify_for(cert_file), "127.0.0.1")
    handshake(server, trust(str(cert_file)), "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):  # what the connector used to build
        handshake(server, ssl.create_default_context(cafile=str(cert_file)), "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):  # the name is still checked
        handshake(server, verify_for(cert_file), "other.test")


def test_without_a_file_the_system_store_is_used() -> None:
    assert verify_for(None) is True
