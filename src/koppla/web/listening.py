"""Where a home's running server listens: `<home>/server.json`, so client commands can find it.

`koppla up` records its URL, process id and TLS trust when it starts (written atomically) and
removes the record when it stops; a SIGTERM still removes it. A record whose process is gone
(killed with `kill -9`, or its pid now used by another program) means no server is running.
When the server serves HTTPS, the record names its certificate file: clients trust that very
certificate (so a self-signed one works) besides the system's authorities.
"""

from __future__ import annotations

import os
import signal
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import msgspec

from koppla.bus.liveness import holder_alive, process_start
from koppla.core import clock, codec
from koppla.core.settings import Settings
from koppla.core.tls import trust as trust  # re-exported: `listening.trust` stays

SERVER_FILE = "server.json"
ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
"""Bind addresses that mean every interface, and the address a local client uses instead."""


@dataclass(frozen=True, slots=True)
class Listening:
    """A running server: its URL, its process, and how a client verifies its certificate."""

    url: str
    pid: int
    tls: bool
    started_ms: int
    ca_file: str | None = None
    """The server's certificate file (`--tls-cert`), trusted by local clients; None for http."""
    pid_start: str = ""
    """The process's start time (from `/proc`), telling it apart from a later one with its pid."""

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx's `verify` should be to reach this server."""
        return trust(self.ca_file) if self.ca_file else True


def server_file(home: Path) -> Path:
    """The record of the server of `home`."""
    return home / SERVER_FILE


def local_url(settings: Settings) -> str:
    """The URL a client on this machine reaches a server with these settings at."""
    host = ANY_ADDRESS.get(settings.host, settings.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{settings.scheme}://{host}:{settings.port}"


def describe(settings: Settings, pid: int | None = None) -> Listening:
    """The record of a server with `settings` run by process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    cert = settings.tls_cert
    return Listening(
        url=local_url(settings),
        pid=pid,
        tls=cert is not None,
        started_ms=clock.now_ms(),
        ca_file=str(cert.resolve()) if cert is not None else None,
        pid_start=process_start(pid) or "",
    )


def write(home: Path, listening: Listening) -> None:
    """Replace the record of `home`'s server with `listening`, atomically."""
    path = server_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        file.write(codec.dumps(asdict(listening)))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def read(home: Path) -> Listening | None:
    """The record of `home`'s server as written, alive or not; None when absent or unreadable."""
    try:
        return msgspec.convert(codec.loads(server_file(home).read_bytes()), Listening)
    except (OSError, ValueError, msgspec.ValidationError):
        return None


def find(home: Path) -> Listening | None:
    """The server running for `home`: its record, when the process that wrote it still runs."""
    found = read(home)
    if found is None or not holder_alive(found.pid, found.pid_start):
        return None
    return found


def forget(home: Path, pid: int) -> None:
    """Remove the record of `home`'s server if process `pid` wrote it (not a later server's)."""
    found = read(home)
    if found is not None and found.pid == pid:
        server_file(home).unlink(missing_ok=True)


@contextmanager
def recorded(settings: Settings) -> Iterator[Listening]:
    """Record where this process serves `settings.home` for as long as the block runs.

    The record is removed when the block ends, and on SIGTERM (then the signal is passed on to
    the handler that was there before, so the process ends as it would have).
    """
    listening = describe(settings)
    write(settings.home, listening)
    restore = _forget_on_sigterm(settings.home, listening.pid)
    try:
        yield listening
    finally:
        restore()
        forget(settings.home, listening.pid)


def _forget_on_sigterm(home: Path, pid: int) -> Callable[[], None]:
    """Make SIGTERM remove the record first; returns what puts the old handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # a handler not set from Python: the default is the nearest
        previous = signal.SIG_DFL

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        forget(home, pid)
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signum)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    return restore
