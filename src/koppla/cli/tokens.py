"""`koppla token ...`: API tokens for the HTTP APIs (only their SHA-256 is stored)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from koppla.cli.common import HomeOption, OrgOption, catalog, console, fail, run, settings
from koppla.core import clock, codec
from koppla.platform.catalog.access import TokenInfo
from koppla.platform.catalog.models import check_org_id


def group() -> typer.Typer:
    """The `koppla token` commands."""
    app = typer.Typer(no_args_is_help=True, help="API tokens for the HTTP APIs.")
    app.command("create")(create)
    app.command("list")(list_tokens)
    app.command("revoke")(revoke)
    return app


def create(
    home: HomeOption = None,
    name: Annotated[str, typer.Option(help="Who the token is for.")] = "admin",
    org: OrgOption = None,
    expires_in: Annotated[
        int | None,
        typer.Option(
            "--expires-in", min=1, help="Seconds the token is valid.", show_default="never expires"
        ),
    ] = None,
) -> None:
    """Create an API token and print it (only its hash is stored: it is shown this once)."""
    if org is not None:
        run(lambda: check_org_id(org))
    opened = catalog(settings(home))
    try:
        token = opened.add_token(name, org_id=org, expires_s=expires_in)
    finally:
        opened.close()
    sys.stdout.write(token + "\n")


def list_tokens(
    home: HomeOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the tokens still valid: id, name, organization, sandbox, kind, created, expires
    (never the tokens themselves)."""
    opened = catalog(settings(home))
    try:
        tokens = opened.tokens()
    finally:
        opened.close()
    if json:
        sys.stdout.write(codec.dumps([token_json(t) for t in tokens]).decode() + "\n")
        return
    for t in tokens:
        expires = clock.iso_ms(t.expires_ms) or "never"
        console.print(
            f"{t.id}  {t.name}  {t.org_id}  {t.sandbox}  {t.kind}  "
            f"created {clock.iso_ms(t.created_ms)}  expires {expires}",
            markup=False,
            highlight=False,
        )


def revoke(
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (from koppla token list).")
    ],
    home: HomeOption = None,
) -> None:
    """Revoke a token: requests bearing it are refused from now on."""
    opened = catalog(settings(home))
    try:
        revoked = opened.revoke_token(token_id)
    finally:
        opened.close()
    if not revoked:
        fail(f"no token with id {token_id!r} (see koppla token list)")
    console.print(f"token {token_id} revoked", markup=False, highlight=False)


def token_json(token: TokenInfo) -> dict[str, Any]:
    """What `koppla token list --json` shows of a token."""
    return {
        "id": token.id,
        "name": token.name,
        "orgId": token.org_id,
        "sandbox": token.sandbox,
        "kind": token.kind,
        "clientId": token.client_id or None,
        "created": clock.iso_ms(token.created_ms),
        "expires": clock.iso_ms(token.expires_ms),
    }
