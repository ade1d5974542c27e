"""How a Koppla client trusts a server's TLS certificate: one door for every HTTPS client.

A server started with `--tls-cert` may hold a self-signed certificate or one issued by a CA the
system does not know; its clients (the connector, Test connection, `koppla debug`) are given
that PEM file and trust what is in it *on its own*, not only as the root of a full chain, so the
server's own leaf certificate is enough (OpenSSL's partial-chain verification). Host names are
still checked.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def trust(ca_file: str | Path) -> ssl.SSLContext:
    """A client TLS context that trusts the system's authorities and the certificates in
    `ca_file`, each on its own (so a server's own certificate, self-signed or not, is enough)."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_file))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def verify_for(ca_file: str | Path | None) -> ssl.SSLContext | bool:
    """What httpx's `verify` should be: `trust(ca_file)` when a file is given, else True (the
    system's trust store)."""
    return trust(ca_file) if ca_file else True
