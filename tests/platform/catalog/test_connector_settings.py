"""The connector settings store: one versioned document per organization, and a service account
whose secrets are encrypted at rest under a key file of its own."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from koppla.platform.catalog.connector_settings import (
    ConnectorSettingsStore,
    SecretUnreadable,
    ServiceAccount,
    VersionConflict,
)

ORG = "KOPPLADEMO00000000000000@AdobeOrg"
OTHER = "OTHERORG0000000000000000@AdobeOrg"
SECRET = "p8e-very-secret-value-0123456789"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConnectorSettingsStore]:
    found = ConnectorSettingsStore(tmp_path / "catalog.sqlite")
    yield found
    found.close()


def account(org_id: str = ORG, client_id: str = "c1") -> ServiceAccount:
    return ServiceAccount(
        org_id=org_id,
        auth_type="oauth_server_to_server",
        client_id=client_id,
        credential_org_id=org_id,
        technical_account_id="TA@techacct.adobe.com",
        scopes=("openid", "AdobeID"),
        platform_url="http://127.0.0.1:8080",
        sandbox="prod",
        updated_ms=1,
        updated_by="ann@shop.example",
    )


def test_nothing_saved_is_version_zero(store: ConnectorSettingsStore) -> None:
    found = store.get(ORG)
    assert (found.version, found.document, found.updated_ms, found.etag) == (0, {}, None, '"v0"')


def test_each_save_is_one_version_up_and_per_organization(store: ConnectorSettingsStore) -> None:
    first = store.put(ORG, {"org_id": ORG, "websites": []}, by="ann")
    second = store.put(ORG, {"org_id": ORG, "websites": [{"website_code": "base"}]}, by="bob")
    other = store.put(OTHER, {"org_id": OTHER}, by="eve")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    found = store.get(ORG)
    assert found.document["websites"] == [{"website_code": "base"}]
    assert found.updated_by == "bob" and found.updated_ms is not None
    assert store.get(OTHER).document == {"org_id": OTHER}


def test_a_save_based_on_another_version_is_refused(store: ConnectorSettingsStore) -> None:
    store.put(ORG, {"n": 1}, by="ann", expect_version=0)
    with pytest.raises(VersionConflict) as caught:
        store.put(ORG, {"n": 2}, by="bob", expect_version=0)
    assert caught.value.current == 1
    assert store.get(ORG).document == {"n": 1}
    assert store.put(ORG, {"n": 3}, by="bob", expect_version=1).version == 2


def test_a_second_store_on_the_same_file_sees_the_saves(tmp_path: Path) -> None:
    one = ConnectorSettingsStore(tmp_path / "catalog.sqlite")
    two = ConnectorSettingsStore(tmp_path / "catalog.sqlite")
    try:
        one.put(ORG, {"n": 1}, by="ann")
        assert two.get(ORG).version == 1
        two.save_service_account(account(), {"client_secret": SECRET})
        assert one.secrets(ORG) == {"client_secret": SECRET}
    finally:
        one.close()
        two.close()


def test_a_service_account_keeps_its_secret_encrypted(
    store: ConnectorSettingsStore, tmp_path: Path
) -> None:
    store.save_service_account(account(), {"client_secret": SECRET})
    shown = store.service_account(ORG)
    assert shown == account()
    assert SECRET not in repr(shown)
    assert shown.as_json()["clientSecret"] == "••••" and SECRET not in str(shown.as_json())
    assert store.secrets(ORG) == {"client_secret": SECRET}
    for path in tmp_path.glob("catalog.sqlite*"):
        assert SECRET.encode() not in path.read_bytes(), path
    key = tmp_path / "keys" / "settings.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key.parent).st_mode) == 0o700
    assert store.service_account(OTHER) is None and store.secrets(OTHER) is None


def test_a_service_account_is_replaced_and_removed(store: ConnectorSettingsStore) -> None:
    store.save_service_account(account(client_id="c1"), {"client_secret": "one"})
    store.save_service_account(account(client_id="c2"), {"client_secret": "two"})
    shown = store.service_account(ORG)
    assert shown is not None and shown.client_id == "c2"
    assert store.secrets(ORG) == {"client_secret": "two"}
    assert store.remove_service_account(ORG) is True
    assert store.remove_service_account(ORG) is False
    assert store.service_account(ORG) is None


def test_a_replaced_key_file_makes_the_secret_unreadable_not_wrong(tmp_path: Path) -> None:
    store = ConnectorSettingsStore(tmp_path / "catalog.sqlite")
    try:
        store.save_service_account(account(), {"client_secret": SECRET})
    finally:
        store.close()
    (tmp_path / "keys" / "settings.key").unlink()
    again = ConnectorSettingsStore(tmp_path / "catalog.sqlite")
    try:
        with pytest.raises(SecretUnreadable, match="paste the workspace file again"):
            again.secrets(ORG)
    finally:
        again.close()
