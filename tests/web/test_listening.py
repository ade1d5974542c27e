"""`<home>/server.json`: where a home's server listens, found only while its process runs."""

from __future__ import annotations

import datetime
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.web import listening
from koppla.web.listening import Listening
from tests.core.test_tls import handshake


def _settings(tmp_path: Path, **given: object) -> Settings:
    return Settings.load(home=tmp_path / "home", **given)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("::", "http://[::1]:8080"),
        ("::1", "http://[::1]:8080"),
        ("shop.test", "http://shop.test:8080"),
    ],
)
def test_the_url_a_local_client_uses(tmp_path: Path, host: str, url: str) -> None:
    assert listening.local_url(_settings(tmp_path, host=host)) == url


def test_a_record_is_written_whole_and_found_while_its_process_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path, port=9443, tls_cert=tmp_path / "cert.pem")
    record = listening.describe(settings)
    listening.write(settings.home, record)
    on_disk = codec.loads((settings.home / "server.json").read_bytes())
    assert on_disk["url"] == "https://127.0.0.1:9443"
    assert (on_disk["pid"], on_disk["tls"]) == (os.getpid(), True)
    assert on_disk["ca_file"] == str((tmp_path / "cert.pem").resolve())
    assert isinstance(on_disk["started_ms"], int)
    assert [p.name for p in settings.home.iterdir()] == ["server.json"]  # no temporary left
    assert listening.find(settings.home) == record


def test_a_record_of_a_process_that_is_gone_finds_no_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listening.write(home, Listening("http://127.0.0.1:1", _dead_pid(), False, 0))
    assert listening.read(home) is not None
    assert listening.find(home) is None


def test_a_pid_reused_by_another_process_finds_no_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listening.write(home, Listening("http://127.0.0.1:1", os.getpid(), False, 0, None, "1"))
    assert listening.find(home) is None


def test_no_record_or_an_unreadable_one_finds_no_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert listening.find(home) is None
    home.mkdir()
    (home / "server.json").write_text('{"url": ')
    assert listening.find(home) is None


def test_a_server_removes_only_its_own_record(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with listening.recorded(settings) as record:
        assert listening.find(settings.home) == record
        listening.forget(settings.home, record.pid + 1)  # another server's exit
        assert listening.find(settings.home) == record
    assert not (settings.home / "server.json").exists()


def test_a_record_is_removed_after_an_error_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(OSError, match="address in use"), listening.recorded(settings):
        raise OSError("address in use")
    assert listening.read(settings.home) is None


def test_sigterm_removes_the_record_then_ends_the_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = (
        "import sys, time\n"
        "from koppla.core.settings import Settings\n"
        "from koppla.web.listening import recorded\n"
        f"with recorded(Settings.load(home={str(home)!r})):\n"
        "    print('up', flush=True)\n"
        "    time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        assert listening.find(home) is not None
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == -signal.SIGTERM  # ended by the signal, as before
    assert not (home / "server.json").exists()


def test_a_self_signed_certificate_is_trusted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "koppla")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    handshake(server, listening.trust(cert_file), "localhost")
