"""Tokens and service credentials: organizations, expiry, revocation, older catalogs."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from koppla.core import clock, codec, ids
from koppla.core.errors import InvalidInput, NotFound
from koppla.platform.catalog.access import TokenRefused
from koppla.platform.catalog.models import DEFAULT_ORG_ID
from koppla.platform.catalog.store import Catalog
from koppla.platform.catalog.workspace import parse_workspace, workspace_json

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_a_token_acts_for_its_organization_until_it_expires_or_is_revoked(
    open_catalog: Callable[[], Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = open_catalog()
    forever = catalog.add_token("ops")
    brief = catalog.add_token("debug", org_id=ORG, expires_s=60)
    holder = catalog.principal(brief)
    assert holder is not None and (holder.name, holder.org_id) == ("debug", ORG)
    default = catalog.principal(forever)
    assert default is not None and default.org_id == DEFAULT_ORG_ID == catalog.default_org()
    listed = {t.name: t for t in catalog.tokens()}
    assert set(listed) == {"ops", "debug"} and listed["debug"].expires_ms is not None
    assert [t.name for t in catalog.tokens(ORG)] == ["debug"]

    later = clock.now_ms() + 61_000
    monkeypatch.setattr(clock, "now_ms", lambda: later)
    assert catalog.principal(brief) is None
    assert [t.name for t in catalog.tokens()] == ["ops"]
    assert catalog.revoke_token(listed["ops"].id)
    assert catalog.principal(forever) is None
    assert not catalog.revoke_token(listed["ops"].id)


def test_credentials_trade_for_scoped_access_tokens(open_catalog: Callable[[], Catalog]) -> None:
    catalog = open_catalog()
    credential, secret = catalog.create_credential("connector", org_id=ORG)
    token, expires_in, _ = catalog.access.exchange(credential.client_id, secret, "openid AdobeID")
    holder = catalog.principal(token)
    assert holder is not None
    assert (holder.kind, holder.org_id, holder.client_id) == ("access", ORG, credential.client_id)
    assert holder.scopes == ("openid", "AdobeID") and expires_in == 86_399
    with pytest.raises(TokenRefused, match="invalid scope: write_everything"):
        catalog.access.exchange(credential.client_id, secret, "openid,write_everything")
    with pytest.raises(TokenRefused) as wrong:
        catalog.access.exchange(credential.client_id, secret + "x", "")
    assert (wrong.value.error, wrong.value.status) == ("invalid_client", 401)
    with pytest.raises(InvalidInput):
        catalog.create_credential("bad", org_id="not-an-org")


def test_the_workspace_file_round_trips_and_refusals_name_the_field(
    open_catalog: Callable[[], Catalog],
) -> None:
    catalog = open_catalog()
    credential, secret = catalog.create_credential("shop", org_id=ORG)
    document = workspace_json(credential, secret)
    parsed = parse_workspace(_json(document))
    assert (parsed.client_id, parsed.client_secret, parsed.org_id) == (
        credential.client_id,
        secret,
        ORG,
    )
    assert parsed.auth_type == "oauth_server_to_server"
    for text, field in [
        ("not json", "workspace"),
        ("{}", "project"),
        ('{"project": {"org": {"ims_org_id": "x"}}}', "project.org.ims_org_id"),
        (
            f'{{"project": {{"org": {{"ims_org_id": "{ORG}"}}, "workspace": {{"details": '
            '{"credentials": []}}}}',
            "project.workspace.details.credentials",
        ),
    ]:
        with pytest.raises(InvalidInput) as refused:
            parse_workspace(text)
        assert refused.value.field == field, text
    document["project"]["workspace"]["details"]["credentials"][0]["oauth_server_to_server"].pop(
        "client_secrets"
    )
    with pytest.raises(InvalidInput, match="client_secrets"):
        parse_workspace(_json(document))


OLD_TABLES = """
CREATE TABLE datasets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  schema_id TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);
CREATE TABLE datastreams (id TEXT PRIMARY KEY, org_id TEXT NOT NULL,
  name TEXT NOT NULL, event_dataset_id TEXT NOT NULL, profile_dataset_id TEXT,
  allowed_origins TEXT NOT NULL DEFAULT '[]', created_ms INTEGER NOT NULL);
CREATE TABLE api_tokens (digest TEXT PRIMARY KEY, name TEXT NOT NULL, created_ms INTEGER NOT NULL);
"""
"""The tables as the release before organizations made them."""


def _older_catalog(path: Path, token: str, *orgs: str) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(OLD_TABLES)
        for n, org in enumerate(orgs):
            db.execute("INSERT INTO datasets VALUES (?, ?, 's', '', 1)", (f"d{n}", f"events_{n}"))
            db.execute(
                "INSERT INTO datastreams VALUES (?, ?, 'shop', ?, NULL, '[]', 1)",
                (f"s{n}", org, f"d{n}"),
            )
        db.execute("INSERT INTO datasets VALUES ('loose', 'loose', 's', '', 1)")
        db.execute("INSERT INTO api_tokens VALUES (?, 'ops', 1)", (ids.token_digest(token),))


def test_an_older_shops_tokens_keep_reaching_its_data(tmp_path: Path) -> None:
    """A home of the previous release with the shop's own datastream (and the demo's): its
    datasets take their datastreams' organizations, and its tokens act for the shop's."""
    token = ids.new_token()
    _older_catalog(tmp_path / "c.sqlite", token, ORG, DEFAULT_ORG_ID)
    catalog = Catalog(tmp_path / "c.sqlite")
    assert catalog.default_org() == ORG
    holder = catalog.principal(token)
    assert holder is not None and holder.org_id == ORG
    assert catalog.dataset("events_0").org_id == ORG
    assert catalog.dataset("events_1").org_id == DEFAULT_ORG_ID  # the demo's stays the demo's
    assert catalog.dataset("loose").org_id == ORG
    assert catalog.dataset("events_0", ORG, "prod").id == "d0"
    with pytest.raises(NotFound):
        catalog.dataset("events_0", DEFAULT_ORG_ID)
    with pytest.raises(NotFound):
        catalog.dataset("events_0", ORG, "dev")
    catalog.close()
    assert Catalog(tmp_path / "c.sqlite").default_org() == ORG  # decided once, kept


def test_an_older_home_of_several_organizations_keeps_the_demos_as_its_own(
    tmp_path: Path,
) -> None:
    token = ids.new_token()
    other = "ZYXWVUTSRQPONMLKJIHGFEDC@AdobeOrg"
    _older_catalog(tmp_path / "c.sqlite", token, ORG, other)
    catalog = Catalog(tmp_path / "c.sqlite")
    assert catalog.default_org() == DEFAULT_ORG_ID
    assert {catalog.dataset(f"events_{n}").org_id for n in (0, 1)} == {ORG, other}


def _json(value: object) -> str:
    return codec.dumps(value).decode()
