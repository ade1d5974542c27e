"""`koppla debug`: tail what the edge receives for a datastream, live, from the running server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    with _token(loaded, datastream, token) as bearer:
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
    it (also after Ctrl+C)."""
    if given is not None:
        yield given
        return
    opened = catalog(loaded)
    try:
        try:
            stream = opened.datastream(datastream)
            org_id, sandbox = stream.org_id, stream.sandbox
        except NotFound:  # the server will say so; the token is of the home's organization
            org_id, sandbox = opened.default_org(), "prod"
        temporary = opened.add_token(
            "koppla debug", org_id=org_id, sandbox=sandbox, expires_s=TEMPORARY_TOKEN_S
        )
    finally:
        opened.close()
    try:
        yield temporary
    finally:
        opened = catalog(loaded)
        try:
            opened.revoke_token(temporary)
        finally:
            opened.close()


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
