"""The PostgreSQL server's TLS certificate: the configured one, else a self-signed one made once.

Without `tls_cert`/`tls_key` in the settings, an ECDSA P-256 certificate for `localhost` and
`127.0.0.1`, valid ten years, is written to `<home>/keys/pg-tls.crt` and `pg-tls.key` (key mode
0600) the first time and reused after, so `sslmode=require` works out of the box.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

CERT_NAME = "pg-tls.crt"
KEY_NAME = "pg-tls.key"


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) for `cert` and `key`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


def certificate_files(home: Path, cert: Path | None, key: Path | None) -> tuple[Path, Path]:
    """The configured certificate and key, else the home's self-signed pair (made if missing)."""
    if cert is not None and key is not None:
        return cert, key
    keys = home / "keys"
    cert_path, key_path = keys / CERT_NAME, keys / KEY_NAME
    if not (cert_path.exists() and key_path.exists()):
        _write_self_signed(cert_path, key_path)
    return cert_path, key_path


def _write_self_signed(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    alt = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(alt, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    partial = key_path.with_suffix(".key.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)
    os.replace(partial, key_path)
    cert_partial = cert_path.with_suffix(".crt.partial")
    cert_partial.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(cert_partial, cert_path)
