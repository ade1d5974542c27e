"""`koppla debug` finds the home's server where it listens (any port, TLS), says in one line
when there is none, and revokes the token it made for itself when it ends."""

from __future__ import annotations

import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from koppla.core import clock, codec
from koppla.core.layout import Layout
from koppla.platform.catalog.demo import DEMO_DATASTREAM_ID
from koppla.platform.catalog.store import Catalog
from koppla.web import listening
from koppla.web.listening import Listening
from tests.cli.conftest import Koppla
from tests.server import Koppla as Server
from tests.server import free_port


def _token_names(home: Path) -> list[str]:
    catalog = Catalog(Layout(home).catalog)
    try:
        return [t.name for t in catalog.tokens()]
    finally:
        catalog.close()


def _no_server(home: Path) -> str:
    return (
        f"error: no Koppla server is running for home {home}; start one with "
        f"koppla up --home {home}, or pass --url\n"
    )


def test_without_a_server_one_line_says_what_to_do(koppla: Koppla, home: Path) -> None:
    result = koppla("debug", "--datastream", DEMO_DATASTREAM_ID)
    assert result.exit_code == 1
    assert result.stderr == _no_server(home)
    assert result.stdout == ""
    assert _token_names(home) == []


def test_a_server_that_was_killed_is_no_server(koppla: Koppla, home: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    listening.write(home, Listening("http://127.0.0.1:8080", child.pid, False, clock.now_ms()))
    result = koppla("debug", "--datastream", DEMO_DATASTREAM_ID)
    assert (result.exit_code, result.stderr) == (1, _no_server(home))


def test_a_server_that_does_not_answer_is_one_line_and_its_token_is_revoked(
    koppla: Koppla, home: Path
) -> None:
    koppla("demo")
    url = f"http://127.0.0.1:{free_port()}"
    listening.write(home, Listening(url, os.getpid(), False, clock.now_ms()))  # alive: us
    result = koppla("debug", "--datastream", DEMO_DATASTREAM_ID)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: the Koppla server for home {home} at {url} does not answer: cannot connect"
    )
    assert lines[0].endswith(f"restart it with koppla up --home {home}, or pass --url")
    assert _token_names(home) == []  # the temporary token was made, then revoked


def test_a_url_given_that_does_not_answer_is_one_line(koppla: Koppla, home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = koppla("debug", "--datastream", DEMO_DATASTREAM_ID, "--url", url + "/")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: the Koppla server at {url} does not answer")
    assert result.stderr.count("\n") == 1
    assert _token_names(home) == []


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`koppla up` over HTTPS on a port of its own, with the certificate alone as --tls-cert."""
    workdir = tmp_path_factory.mktemp("debug")
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    client = ssl.create_default_context()
    authority.configure_trust(client)
    server = Server(
        workdir / "home",
        free_port(),
        "--tls-cert",
        str(cert_file),
        "--tls-key",
        str(key_file),
        scheme="https",
        verify=client,
    )
    server.start()
    yield server
    server.stop()


class Debugger:
    """`koppla debug` as a child process, its output lines read as they come."""

    def __init__(self, home: Path, *extra: str) -> None:
        command = [sys.executable, "-m", "koppla", "debug", "--home", str(home), *extra]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def until(self, needle: str) -> str:
        """The first line holding `needle` (fails after 20 s without one)."""
        while True:
            try:
                line = self.lines.get(timeout=20)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"koppla debug printed no {needle!r}") from None
            if needle in line:
                return line

    def stop(self) -> tuple[int, str]:
        """Ctrl+C, then the exit code and standard error."""
        self.proc.send_signal(signal.SIGINT)
        _, stderr = self.proc.communicate(timeout=30)
        return self.proc.returncode, stderr


@pytest.mark.slow
def test_it_finds_a_tls_server_on_its_port_and_revokes_its_token_on_ctrl_c(
    tls_server: Server,
) -> None:
    home = tls_server.home
    record = codec.loads((home / "server.json").read_bytes())
    assert (record["url"], record["tls"]) == (tls_server.url, True)
    debugger = Debugger(home, "--datastream", DEMO_DATASTREAM_ID)
    assert tls_server.url in debugger.until("watching datastream")
    assert "koppla debug" in _token_names(home)
    event = {
        "eventType": "commerce.productViews",
        "timestamp": "2026-12-01T10:00:00Z",
        "productListItems": [{"SKU": "24-MB01", "quantity": 1}],
    }
    sent = httpx.post(
        f"{tls_server.url}/ee/v1/interact?configId={DEMO_DATASTREAM_ID}",
        content=codec.dumps({"events": [{"xdm": event}]}),
        verify=tls_server.verify,
    )
    assert sent.status_code == 200
    assert "  valid  " in debugger.until("commerce.productViews")
    code, stderr = debugger.stop()
    assert (code, stderr) == (0, "")
    assert "koppla debug" not in _token_names(home)


@pytest.mark.slow
def test_an_unknown_datastream_is_one_line(tls_server: Server) -> None:
    debugger = Debugger(tls_server.home, "--datastream", "nope")
    _, stderr = debugger.proc.communicate(timeout=30)
    assert debugger.proc.returncode == 1
    assert stderr == f"error: no datastream 'nope' on the Koppla server at {tls_server.url}\n"
    assert "koppla debug" not in _token_names(tls_server.home)


@pytest.mark.slow
def test_the_record_goes_when_the_server_stops(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", free_port())
    server.start()
    assert listening.find(server.home) is not None
    server.stop()
    assert not (server.home / "server.json").exists()


def _listed_token_names(home: Path) -> list[str]:
    """What `koppla token list --json` shows of the home's tokens: their names."""
    listed = subprocess.run(
        [sys.executable, "-m", "koppla", "token", "list", "--json", "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [token["name"] for token in codec.loads(listed.stdout)]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_kill_or_a_closed_terminal_also_revokes_its_token(
    tls_server: Server, stop: signal.Signals
) -> None:
    """`timeout`, systemd and `kill` send SIGTERM; a closed terminal sends SIGHUP: either ends
    `koppla debug` as Ctrl+C does, and its temporary token stops working at once."""
    home = tls_server.home
    debugger = Debugger(home, "--datastream", DEMO_DATASTREAM_ID)
    debugger.until("watching datastream")
    assert "koppla debug" in _listed_token_names(home)

    debugger.proc.send_signal(stop)
    _, stderr = debugger.proc.communicate(timeout=30)

    assert "koppla debug" not in _listed_token_names(home)
    assert (debugger.proc.returncode, stderr) == (0, "")
