"""The running server a client command (`koppla debug`) talks to, found through its home."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from koppla.cli.common import fail
from koppla.core.settings import Settings
from koppla.web import listening


@dataclass(frozen=True, slots=True)
class Remote:
    """Where to send requests, and how to verify the server's certificate."""

    url: str
    verify: ssl.SSLContext | bool
    home: Path
    given: bool
    """True when the URL came from `--url`, not from the home's record."""


def remote(settings: Settings, url: str | None) -> Remote:
    """The server of `settings.home` (or at `url` when given); exits 1 with one line when no
    server is running for the home and no URL was given."""
    home = settings.home
    running = listening.find(home)
    if url is not None:
        return Remote(url.rstrip("/"), _verify_given(settings, running), home, given=True)
    if running is None:
        not_running(home)
    return Remote(running.url, running.verify(), home, given=False)


def not_running(home: Path) -> NoReturn:
    """Say no server runs for `home` and what to do, then exit 1."""
    where = str(home)
    fail(
        f"no Koppla server is running for home {where}; start one with "
        f"koppla up --home {where}, or pass --url"
    )


def unreachable(target: Remote, reason: str) -> NoReturn:
    """Say the server does not answer (and why), then exit 1."""
    if target.given:
        fail(f"the Koppla server at {target.url} does not answer: {reason}")
    where = str(target.home)
    fail(
        f"the Koppla server for home {where} at {target.url} does not answer: {reason}; "
        f"restart it with koppla up --home {where}, or pass --url"
    )


def _verify_given(settings: Settings, running: listening.Listening | None) -> ssl.SSLContext | bool:
    """For a URL given by hand: trust the home's server certificate too, if it has one."""
    cert = running.ca_file if running is not None else settings.tls_cert
    return listening.trust(cert) if cert else True
