"""`koppla credentials ...`: service credentials (OAuth server-to-server) for API clients.

A credential is traded for short-lived access tokens at `POST /ims/token/v3`, as with Adobe's
IMS; `create` prints the client secret once, inside a Developer Console workspace file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from koppla.cli.common import HomeOption, OrgOption, catalog, console, err, fail, run, settings
from koppla.core import clock, codec
from koppla.platform.catalog.access import DEFAULT_SCOPES, AuthType, Credential
from koppla.platform.catalog.models import check_org_id

DEFAULT_NAME = "OAuth Server-to-Server"
"""The name Adobe's Developer Console gives a new credential."""


def group() -> typer.Typer:
    """The `koppla credentials` commands."""
    app = typer.Typer(
        no_args_is_help=True,
        help="Service credentials (OAuth server-to-server) that API clients trade for tokens.",
    )
    app.command("create")(create)
    app.command("list")(list_credentials)
    app.command("revoke")(revoke)
    return app


def create(
    home: HomeOption = None,
    name: Annotated[str, typer.Option(help="What the credential is for.")] = DEFAULT_NAME,
    org: OrgOption = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="Scopes the credential may ask for: comma-separated (openid,AdobeID) or repeated.",
            show_default=", ".join(DEFAULT_SCOPES),
        ),
    ] = None,
    jwt: Annotated[
        bool,
        typer.Option(
            "--jwt", help="A service account (JWT) credential: deprecated, needs --public-key."
        ),
    ] = False,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            exists=True,
            dir_okay=False,
            help="With --jwt: the PEM certificate whose private key signs the JWTs.",
            show_default="none",
        ),
    ] = None,
) -> None:
    """Create a credential and print its workspace JSON (the secret is shown only there, once)."""
    from koppla.platform.catalog.workspace import workspace_json

    auth_type, public_key_pem = _kind(jwt, public_key)
    if org is not None:
        run(lambda: check_org_id(org))
    scopes = DEFAULT_SCOPES if scope is None else scope_names(scope)
    opened = catalog(settings(home))
    try:
        credential, secret = run(
            lambda: opened.create_credential(
                name,
                org_id=org,
                scopes=scopes,
                auth_type=auth_type,
                public_key_pem=public_key_pem,
            )
        )
    finally:
        opened.close()
    sys.stdout.write(codec.dumps_pretty(workspace_json(credential, secret)) + "\n")
    err.print(
        f"credential {credential.client_id} created; its client secret is in the JSON above "
        "and is not shown again (save it, e.g. koppla credentials create > workspace.json)",
        markup=False,
        highlight=False,
    )


def scope_names(values: list[str]) -> tuple[str, ...]:
    """The scopes named by `--scope` values, each split on commas and whitespace, in order,
    once each; exits 2 with one line when they name none."""
    names = dict.fromkeys(name for value in values for name in value.replace(",", " ").split())
    if not names:
        fail("--scope names no scope: give one or more, e.g. --scope openid,AdobeID", 2)
    return tuple(names)


def _kind(jwt: bool, public_key: Path | None) -> tuple[AuthType, str | None]:
    """The credential's authentication type and public key, from `--jwt` and `--public-key`."""
    if not jwt:
        if public_key is not None:
            fail("--public-key goes with --jwt", 2)
        return "oauth_server_to_server", None
    if public_key is None:
        fail("--jwt needs --public-key FILE (a PEM certificate)", 2)
    pem = public_key.read_text()
    if "-----BEGIN" not in pem:
        fail(f"{public_key} is not a PEM file", 2)
    err.print(
        "warning: JWT credentials are deprecated (Adobe retired them); "
        "use OAuth server-to-server (without --jwt)",
        markup=False,
        highlight=False,
    )
    return "jwt", pem


def list_credentials(
    home: HomeOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List credentials, revoked ones included: client id, name, organization, type, state,
    created, scopes (never their secrets)."""
    opened = catalog(settings(home))
    try:
        found = opened.credentials()
    finally:
        opened.close()
    if json:
        sys.stdout.write(codec.dumps([credential_json(c) for c in found]).decode() + "\n")
        return
    for c in found:
        state = "revoked" if c.revoked else "active"
        console.print(
            f"{c.client_id}  {c.name}  {c.org_id}  {c.auth_type}  {state}  "
            f"created {clock.iso_ms(c.created_ms)}  scopes {','.join(c.scopes)}",
            markup=False,
            highlight=False,
        )


def revoke(
    client_id: Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The credential's id.")],
    home: HomeOption = None,
) -> None:
    """Revoke a credential and every access token it bought."""
    opened = catalog(settings(home))
    try:
        revoked = opened.revoke_credential(client_id)
    finally:
        opened.close()
    if not revoked:
        fail(f"no active credential with client id {client_id!r} (see koppla credentials list)")
    console.print(f"credential {client_id} revoked", markup=False, highlight=False)


def credential_json(credential: Credential) -> dict[str, Any]:
    """What `koppla credentials list --json` shows of a credential."""
    return {
        "clientId": credential.client_id,
        "name": credential.name,
        "orgId": credential.org_id,
        "technicalAccountId": credential.technical_account_id,
        "scopes": list(credential.scopes),
        "authType": credential.auth_type,
        "created": clock.iso_ms(credential.created_ms),
        "revoked": credential.revoked,
    }
