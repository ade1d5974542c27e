"""`koppla credentials ...`: service credentials, their workspace file, and revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.platform.catalog.access import DEFAULT_SCOPES, TokenRefused
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.workspace import parse_workspace
from tests.cli.conftest import Koppla

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def _catalog(home: Path) -> Catalog:
    return Catalog(Layout(home).catalog)


def test_create_prints_a_workspace_file_whose_secret_buys_tokens(
    koppla: Koppla, home: Path
) -> None:
    result = koppla("credentials", "create", "--name", "shop", "--org", ORG)
    assert result.exit_code == 0, result.output
    workspace = parse_workspace(result.stdout)
    assert (workspace.org_id, workspace.auth_type) == (ORG, "oauth_server_to_server")
    assert workspace.scopes == DEFAULT_SCOPES
    assert workspace.client_secret not in result.stderr
    assert "not shown again" in result.stderr
    catalog = _catalog(home)
    token, _, credential = catalog.access.exchange(
        workspace.client_id, workspace.client_secret, "openid AdobeID"
    )
    holder = catalog.principal(token)
    catalog.close()
    assert credential.name == "shop"
    assert holder is not None and (holder.org_id, holder.client_id) == (ORG, workspace.client_id)


def test_scopes_asked_for_are_the_credentials(koppla: Koppla) -> None:
    result = koppla("credentials", "create", "--scope", "openid", "--scope", "AdobeID")
    assert parse_workspace(result.stdout).scopes == ("openid", "AdobeID")


def test_the_list_never_shows_a_secret(koppla: Koppla) -> None:
    workspace = parse_workspace(koppla("credentials", "create").stdout)
    table = koppla("credentials", "list")
    listed = codec.loads(koppla("credentials", "list", "--json").stdout)
    assert [(c["clientId"], c["revoked"]) for c in listed] == [(workspace.client_id, False)]
    assert listed[0]["name"] == "OAuth Server-to-Server"
    assert workspace.client_id in table.stdout and "active" in table.stdout
    assert workspace.client_secret not in table.stdout + codec.dumps(listed).decode()


def test_a_revoked_credential_buys_no_more_tokens(koppla: Koppla, home: Path) -> None:
    workspace = parse_workspace(koppla("credentials", "create").stdout)
    catalog = _catalog(home)
    token, _, _ = catalog.access.exchange(workspace.client_id, workspace.client_secret, "")
    catalog.close()
    revoked = koppla("credentials", "revoke", workspace.client_id)
    assert revoked.exit_code == 0, revoked.output
    catalog = _catalog(home)
    assert catalog.principal(token) is None
    with pytest.raises(TokenRefused):
        catalog.access.exchange(workspace.client_id, workspace.client_secret, "")
    catalog.close()
    listed = codec.loads(koppla("credentials", "list", "--json").stdout)
    assert listed[0]["revoked"] is True
    again = koppla("credentials", "revoke", workspace.client_id)
    assert again.exit_code == 1 and "no active credential" in again.stderr


def test_jwt_needs_a_public_key_and_is_deprecated(koppla: Koppla, tmp_path: Path) -> None:
    missing = koppla("credentials", "create", "--jwt")
    assert missing.exit_code == 2 and "--public-key" in missing.stderr
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("hello")
    refused = koppla("credentials", "create", "--jwt", "--public-key", str(not_pem))
    assert refused.exit_code == 2 and "not a PEM file" in refused.stderr
    certificate = tmp_path / "certificate.pem"
    trustme.CA().issue_cert("koppla.test").cert_chain_pems[0].write_to_path(str(certificate))
    created = koppla("credentials", "create", "--jwt", "--public-key", str(certificate))
    assert created.exit_code == 0, created.output
    assert "deprecated" in created.stderr
    workspace = parse_workspace(created.stdout)
    assert workspace.auth_type == "jwt"
    listed = codec.loads(koppla("credentials", "list", "--json").stdout)
    assert listed[0]["authType"] == "jwt"


def test_a_public_key_without_jwt_is_refused(koppla: Koppla, tmp_path: Path) -> None:
    certificate = tmp_path / "certificate.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    result = koppla("credentials", "create", "--public-key", str(certificate))
    assert result.exit_code == 2 and "--jwt" in result.stderr
    assert codec.loads(koppla("credentials", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    "given",
    [
        ["openid,AdobeID"],
        ["openid, AdobeID"],
        ["openid AdobeID"],
        ["openid,", ",AdobeID"],
        ["openid", "AdobeID,openid"],
    ],
)
def test_comma_separated_scopes_are_separate_scopes_that_buy_tokens(
    koppla: Koppla, home: Path, given: list[str]
) -> None:
    args = [arg for value in given for arg in ("--scope", value)]
    result = koppla("credentials", "create", *args)

    assert result.exit_code == 0, result.output
    workspace = parse_workspace(result.stdout)
    assert workspace.scopes == ("openid", "AdobeID")
    catalog = _catalog(home)
    try:
        _, _, credential = catalog.access.exchange(
            workspace.client_id, workspace.client_secret, "openid,AdobeID"
        )
    finally:
        catalog.close()
    assert credential.scopes == ("openid", "AdobeID")


@pytest.mark.parametrize("given", ["", " ", ",", " , "])
def test_a_scope_option_naming_no_scope_is_refused(koppla: Koppla, given: str) -> None:
    result = koppla("credentials", "create", "--scope", given)

    assert result.exit_code == 2
    assert "--scope names no scope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert codec.loads(koppla("credentials", "list", "--json").stdout) == []
