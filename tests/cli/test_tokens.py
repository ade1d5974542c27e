"""`koppla token ...`: API tokens are shown once, listed without their value, and revoked."""

from __future__ import annotations

from pathlib import Path

from koppla.core import codec
from koppla.core.layout import Layout
from koppla.platform.catalog.store import Catalog
from tests.cli.conftest import Koppla

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def _catalog(home: Path) -> Catalog:
    return Catalog(Layout(home).catalog)


def test_token_create_prints_the_token_alone(koppla: Koppla, home: Path) -> None:
    result = koppla("token", "create", "--name", "ci")
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert token.startswith("kpl_") and result.stdout == token + "\n"
    catalog = _catalog(home)
    holder = catalog.principal(token)
    catalog.close()
    assert holder is not None
    assert (holder.name, holder.org_id) == ("ci", "KOPPLADEMO00000000000000@AdobeOrg")


def test_a_token_of_another_organization_that_expires(koppla: Koppla, home: Path) -> None:
    token = koppla("token", "create", "--org", ORG, "--expires-in", "600").stdout.strip()
    listed = codec.loads(koppla("token", "list", "--json").stdout)
    assert [(t["orgId"], t["sandbox"], t["kind"]) for t in listed] == [(ORG, "prod", "token")]
    assert listed[0]["expires"] is not None and listed[0]["expires"] > listed[0]["created"]
    catalog = _catalog(home)
    holder = catalog.principal(token)
    catalog.close()
    assert holder is not None and holder.org_id == ORG


def test_a_malformed_org_or_lifetime_is_refused(koppla: Koppla) -> None:
    bad_org = koppla("token", "create", "--org", "ACME@AdobeOrg")
    assert bad_org.exit_code == 2 and "24 letters or digits" in bad_org.stderr
    assert bad_org.stdout == ""
    assert koppla("token", "create", "--expires-in", "0").exit_code == 2
    assert codec.loads(koppla("token", "list", "--json").stdout) == []


def test_the_list_shows_each_token_but_never_its_value(koppla: Koppla) -> None:
    first = koppla("token", "create", "--name", "ci").stdout.strip()
    second = koppla("token", "create", "--name", "ops").stdout.strip()
    table = koppla("token", "list")
    assert table.exit_code == 0
    listed = codec.loads(koppla("token", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["ci", "ops"]
    assert all(t["expires"] is None for t in listed)
    for token in (first, second):
        assert token not in table.stdout and token not in codec.dumps(listed).decode()
        assert token[4:16] not in table.stdout  # not even a piece of it
    for t in listed:
        assert t["id"] in table.stdout and t["name"] in table.stdout


def test_a_revoked_token_is_refused_and_gone_from_the_list(koppla: Koppla, home: Path) -> None:
    token = koppla("token", "create", "--name", "ci").stdout.strip()
    token_id = codec.loads(koppla("token", "list", "--json").stdout)[0]["id"]
    revoked = koppla("token", "revoke", token_id)
    assert revoked.exit_code == 0 and revoked.stdout.strip() == f"token {token_id} revoked"
    catalog = _catalog(home)
    assert catalog.principal(token) is None
    catalog.close()
    assert codec.loads(koppla("token", "list", "--json").stdout) == []
    again = koppla("token", "revoke", token_id)
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: no token with id '{token_id}' (see koppla token list)"
