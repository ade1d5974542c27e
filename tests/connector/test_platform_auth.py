"""The connector authenticates as Adobe's API clients do: a service account's access tokens from
the IMS token endpoint, and the `x-gw-ims-org-id`, `x-sandbox-name`, `x-api-key` headers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from koppla.connector.demo_store import DemoShop
from koppla.connector.platform_auth import AuthRefused, PlatformAuth, platform_auth
from koppla.connector.runner import run_connector
from koppla.connector.settings import load_settings
from koppla.connector.source import connect
from koppla.core.errors import InvalidInput
from koppla.core.layout import Layout
from koppla.platform.catalog.store import Catalog
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, Platform, wait_for

pytestmark = pytest.mark.slow


def _credential(platform: Platform) -> tuple[str, str]:
    catalog = Catalog(Layout(platform.home).catalog)
    try:
        credential, secret = catalog.create_credential("shop connector", org_id=DEMO_ORG)
    finally:
        catalog.close()
    return credential.client_id, secret


def test_a_service_account_connector_delivers_with_ims_tokens(
    tmp_path: Path, platform: Platform, sqlite_shop: str
) -> None:
    client_id, secret = _credential(platform)
    settings = load_settings(
        tmp_path / "home",
        source_dsn=sqlite_shop,
        platform_url=platform.url,
        client_id=client_id,
        client_secret=secret,
        poll_interval_s=0.2,
        settings_from_platform=False,
        websites=[
            {
                "website_code": "base",
                "org_id": DEMO_ORG,
                "datastream_id": DEMO_DATASTREAM,
                "dataset_id": platform.dataset_id,
            }
        ],
    )
    assert settings.token is None
    auth = platform_auth(settings)
    headers = auth.headers()
    assert headers["x-api-key"] == client_id
    assert (headers["x-gw-ims-org-id"], headers["x-sandbox-name"]) == (DEMO_ORG, "prod")
    assert headers["authorization"].startswith("Bearer kpl_")
    assert auth.headers()["authorization"] == headers["authorization"]  # kept, not refetched

    engine = connect(sqlite_shop)
    stop = threading.Event()
    runner = threading.Thread(target=run_connector, args=(settings.home, stop, settings))
    try:
        DemoShop(engine, seed=3).place()
        runner.start()
        placed = (
            "SELECT count(*) FROM demo_events WHERE eventType = 'commerce.backofficeOrderPlaced'"
        )
        wait_for(lambda: platform.query(placed) == [[1]])
    finally:
        stop.set()
        runner.join(timeout=30)
        engine.dispose()

    catalog = Catalog(Layout(platform.home).catalog)
    try:
        bought = [t for t in catalog.tokens() if t.kind == "access"]
        assert {t.client_id for t in bought} == {client_id}
        catalog.revoke_credential(client_id)
    finally:
        catalog.close()
    auth.refused()  # as after the 401 the revoked token now gets
    with pytest.raises(AuthRefused, match="invalid client_id or client_secret"):
        auth.headers()


def test_a_wrong_secret_is_refused_in_words_and_never_shown(platform: Platform) -> None:
    client_id, _ = _credential(platform)
    auth = PlatformAuth(
        org_id=DEMO_ORG, client_id=client_id, client_secret="p8e-wrong", ims_url=platform.url
    )
    with pytest.raises(AuthRefused) as refused:
        auth.headers()
    assert "p8e-wrong" not in str(refused.value)
    assert "401" in str(refused.value)


def test_the_client_secret_may_not_live_in_the_settings_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "connector.toml").write_text('client_id = "abc"\nclient_secret = "p8e-x"\n')
    with pytest.raises(InvalidInput, match="KOPPLA_CONNECTOR_CLIENT_SECRET"):
        load_settings(home)
