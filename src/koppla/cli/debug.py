"""`koppla debug`: tail what the edge receives for a datastream, live, from the running server."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, NoReturn

import httpx
import typer

from koppla.cli.common import HomeOption, catalog, console, fail, settings
from koppla.cli.remote import Remote, remote, unreachable
from koppla.core.errors import NotFound
from koppla.core.settings import Settings
from koppla.web.debug_client import DebuggerRefused, tail

TEMPORARY_TOKEN_S = 3600
"""Lifetime of the token `koppla debug` makes for itself (it is revoked when it ends)."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end `koppla debug` the way Ctrl+C does: Ctrl+C, a kill, `timeout` or systemd
stopping it (SIGTERM), the terminal closing (SIGHUP)."""


def debug(
    datastream: Annotated[str, typer.Option(help="Datastream id to watch.")],
    home: HomeOption = None,
    url: Annotated[
        str | None,
        typer.Option(help="Koppla's URL.", show_default="where the server of --home listens"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="KOPPLA_TOKEN",
            help="API token.",
            show_default="a temporary one, revoked on exit",
        ),
    ] = None,
    full: Annotated[bool, typer.Option(help="Print each event's whole XDM.")] = False,
) -> None:
    """Tail what the edge receives for a datastream, each event with its validation result.

    It finds the server of --home through <home>/server.json (written by koppla up).
    """
    loaded = settings(home)
    target = remote(loaded, url)
    with _interrupted_by_stop_signals(), _token(loaded, datastream, token) as bearer:
        try:
            tail(target.url, datastream, bearer, console=console, full=full, verify=target.verify)
        except KeyboardInterrupt:
            pass
        except DebuggerRefused as refused:
            _refused(target, datastream, refused)
        except httpx.TransportError as error:
            unreachable(target, _reason(error))


@contextmanager
def _token(loaded: Settings, datastream: str, given: str | None) -> Iterator[str]:
    """`given`, or a token of the datastream's organization made for this run and revoked after
    it, however it ends (Ctrl+C, SIGTERM, SIGHUP; a signal that arrives while the token is
    made or revoked waits until that is done)."""
    if given is not None:
        yield given
        return
    temporary: str | None = None
    try:
        with _stop_signals_held():
            temporary = _new_token(loaded, datastream)
        yield temporary
    finally:
        if temporary is not None:
            with _stop_signals_held():
                opened = catalog(loaded)
                try:
                    opened.revoke_token(temporary)
                finally:
                    opened.close()


def _new_token(loaded: Settings, datastream: str) -> str:
    """A token of the datastream's organization (of the home's when there is no such
    datastream: the server will say so), valid for `TEMPORARY_TOKEN_S`."""
    opened = catalog(loaded)
    try:
        try:
            stream = opened.datastream(datastream)
            org_id, sandbox = stream.org_id, stream.sandbox
        except NotFound:
            org_id, sandbox = opened.default_org(), "prod"
        return opened.add_token(
            "koppla debug", org_id=org_id, sandbox=sandbox, expires_s=TEMPORARY_TOKEN_S
        )
    finally:
        opened.close()


@contextmanager
def _interrupted_by_stop_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise `KeyboardInterrupt` as Ctrl+C does, so the
    temporary token is revoked however the command is stopped (handlers restored after). A
    signal the command was started ignoring (`nohup`) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (and receives the signals)
        return
    previous = {
        sig: signal.signal(sig, _interrupt)
        for sig in STOP_SIGNALS[1:]
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold the stop signals while inside; one that arrives meanwhile is delivered after."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _refused(target: Remote, datastream: str, refused: DebuggerRefused) -> NoReturn:
    if refused.status == 404:
        fail(f"no datastream {datastream!r} on the Koppla server at {target.url}")
    if refused.status in (401, 403):
        fail(
            f"the Koppla server at {target.url} refused the token ({refused.status}: "
            f"{refused.detail}); pass a token of the datastream's organization with --token"
        )
    fail(f"the Koppla server at {target.url} answered {refused.status}: {refused.detail}")


def _reason(error: httpx.TransportError) -> str:
    """What went wrong, in one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"its TLS certificate is not trusted here ({text})"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({text})"
    return text
