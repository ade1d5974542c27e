"""The `koppla connector` commands: each documented, the demo store and status work offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from koppla.connector.commands import connector_app
from koppla.connector.remote_settings import write_cache
from koppla.core import codec
from tests.connector.conftest import DEMO_DATASTREAM, DEMO_ORG, Platform, wait_for

COMMANDS = (
    "index:reindex",
    "saas:resync",
    "run",
    "status",
    "install-triggers",
    "demo-store",
    "history:sync",
    "history:status",
    "history:work",
)


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(connector_app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--home" in result.output
    listed = runner.invoke(connector_app, ["--help"]).output
    for name in COMMANDS:
        assert name in listed


def test_demo_store_then_reindex_then_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    (tmp_path / "connector.toml").write_text(
        '[[websites]]\nwebsite_code = "base"\norg_id = "KOPPLADEMO00000000000000@AdobeOrg"\n'
        'datastream_id = "ds"\ndataset_id = "set"\n'
    )
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    made = runner.invoke(connector_app, ["demo-store", "--orders", "50", "--seed", "1", *home])
    assert made.exit_code == 0, made.output
    assert (tmp_path / "demo-shop.sqlite").is_file()
    again = runner.invoke(connector_app, ["index:reindex", "sales_order_data_exporter_v2", *home])
    assert again.exit_code == 0, again.output
    assert "50 orders read" in again.output
    status = runner.invoke(connector_app, ["status", "--json", *home])
    assert status.exit_code == 0, status.output
    report = codec.loads(status.stdout)
    assert report["pending"] > 50 and report["sent"] == 0 and report["initialSyncDone"]
    unknown = runner.invoke(connector_app, ["index:reindex", "catalog_data_exporter", *home])
    assert unknown.exit_code == 2


def test_bad_settings_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "connector.toml").write_text("poll_interval_s = -1\n")
    result = CliRunner().invoke(connector_app, ["status", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "poll_interval_s" in result.output


def test_run_refuses_without_triggers(tmp_path: Path) -> None:
    (tmp_path / "connector.toml").write_text(f'source_dsn = "sqlite:///{tmp_path}/empty.sqlite"\n')
    result = CliRunner().invoke(connector_app, ["run", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "install-triggers" in result.output


def test_customer_profiles_reindex_and_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    (tmp_path / "connector.toml").write_text(
        '[[websites]]\nwebsite_code = "base"\norg_id = "KOPPLADEMO00000000000000@AdobeOrg"\n'
        'datastream_id = "ds"\ndataset_id = "set"\ncustomer_profiles = true\n'
        'profile_dataset_id = "profiles"\n'
    )
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    made = runner.invoke(connector_app, ["demo-store", "--orders", "0", "--seed", "1", *home])
    assert made.exit_code == 0, made.output
    first = runner.invoke(connector_app, ["index:reindex", "customer_profiles", *home])
    assert first.exit_code == 0, first.output
    assert "499 customers read, 499 changed, 998 messages queued" in first.output
    again = runner.invoke(connector_app, ["index:reindex", "customer_profiles", *home])
    assert "499 customers read, 0 changed, 0 messages queued" in again.output
    status = runner.invoke(connector_app, ["status", "--json", *home])
    assert status.exit_code == 0, status.output
    customers = codec.loads(status.stdout)["customers"]
    assert customers["known"] == 499 and customers["messagesPending"] == 998
    assert customers["profileWebsites"] == ["base"] and customers["backfilledWebsites"] == ["base"]


def test_a_connector_toml_with_its_own_websites_wins_over_the_demo_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `koppla up --demo` cached the demo organization's settings, the docs' example
    connector.toml (another organization, named on its website) works for every command."""
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    demo_site = {"website_code": "base", "datastream_id": DEMO_DATASTREAM, "dataset_id": "d"}
    write_cache(
        tmp_path,
        {
            "version": 1,
            "etag": '"v1"',
            "settings": {"org_id": DEMO_ORG, "web_sdk_name": "", "websites": [demo_site]},
        },
    )
    (tmp_path / "connector.toml").write_text(
        'change_tracking = "poll"\n[[websites]]\nwebsite_code = "base"\n'
        'org_id = "ABCDEFGHIJKL123456789012@AdobeOrg"\n'
        'datastream_id = "6d3b1f0e-8c2a-4e7b-9a41-0d2f6a1c5e90"\n'
        'dataset_id = "4daaa20d6a116d329c60ad3d"\n'
    )
    result = CliRunner().invoke(connector_app, ["status", "--json", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert codec.loads(result.stdout)["pending"] == 0


def test_history_sync_accepts_a_service_account_instead_of_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connector with a service account (client_id + its secret in the environment) has no
    token but can send: the credentials check passes and the next rule speaks."""
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    monkeypatch.setenv("KOPPLA_CONNECTOR_CLIENT_SECRET", "p8e-secret")
    (tmp_path / "connector.toml").write_text(
        'client_id = "c1"\n[[websites]]\nwebsite_code = "base"\n'
        f'org_id = "{DEMO_ORG}"\ndatastream_id = "ds"\ndataset_id = "set"\n'
    )
    args = ["history:sync", "--from", "2026-02-02", "--to", "2026-02-01"]
    result = CliRunner().invoke(connector_app, [*args, "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "missing credentials" not in result.output
    assert "from: 2026-02-02 is after to" in result.output.replace("\n", " ")

    monkeypatch.delenv("KOPPLA_CONNECTOR_CLIENT_SECRET")
    again = CliRunner().invoke(connector_app, [*args, "--home", str(tmp_path)])
    assert again.exit_code == 2 and "missing credentials" in again.output


def test_without_websites_the_initial_sync_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders read while no website is configured would be none: the initial sync is neither
    run nor marked done, so the orders are sent once a website is set."""
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    made = runner.invoke(connector_app, ["demo-store", "--orders", "5", "--seed", "1", *home])
    assert made.exit_code == 0, made.output
    runner.invoke(connector_app, ["index:reindex", "sales_order_data_exporter_v2", *home])
    status = runner.invoke(connector_app, ["status", "--json", *home])
    assert codec.loads(status.stdout)["initialSyncDone"] is False

    (tmp_path / "connector.toml").write_text(
        f'[[websites]]\nwebsite_code = "base"\norg_id = "{DEMO_ORG}"\n'
        'datastream_id = "ds"\ndataset_id = "set"\n'
    )
    again = runner.invoke(connector_app, ["index:reindex", "sales_order_data_exporter_v2", *home])
    assert "5 orders read" in again.output
    status = runner.invoke(connector_app, ["status", "--json", *home])
    assert codec.loads(status.stdout)["initialSyncDone"] is True


def service_account(platform: Platform) -> tuple[str, str]:
    """A new service credential of the platform: its client id and client secret."""
    out = subprocess.run(
        [sys.executable, "-m", "koppla", "credentials", "create", "--home", str(platform.home)],
        check=True,
        capture_output=True,
    )
    entry = codec.loads(out.stdout)["project"]["workspace"]["details"]["credentials"][0]
    found = entry["oauth_server_to_server"]
    return str(found["client_id"]), str(found["client_secrets"][0])


@pytest.mark.slow
@pytest.mark.parametrize("credentials", ["token", "service account"])
def test_run_follows_the_settings_saved_on_the_platform(
    tmp_path: Path, platform: Platform, credentials: str
) -> None:
    """`koppla connector run` with a connector.toml holding only the platform's address (and,
    for a service account, its client id) picks up the websites saved in the admin and
    delivers the shop's orders."""
    site = {
        "website_code": "base",
        "datastream_id": DEMO_DATASTREAM,
        "dataset_id": platform.dataset_id,
    }
    saved = httpx.put(
        f"{platform.url}/api/v1/connector/settings",
        json={"org_id": DEMO_ORG, "web_sdk_name": "", "websites": [site]},
        headers={"authorization": f"Bearer {platform.token}"},
        timeout=30,
    )
    assert saved.status_code == 200, saved.text
    home = tmp_path / "shop"
    home.mkdir()
    toml = f'platform_url = "{platform.url}"\n'
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KOPPLA_CONNECTOR_")}
    if credentials == "token":
        env["KOPPLA_CONNECTOR_TOKEN"] = platform.token
    else:
        client_id, secret = service_account(platform)
        toml += f'client_id = "{client_id}"\n'
        env["KOPPLA_CONNECTOR_CLIENT_SECRET"] = secret
    (home / "connector.toml").write_text(toml)
    made = CliRunner().invoke(
        connector_app, ["demo-store", "--orders", "5", "--seed", "2", "--home", str(home)]
    )
    assert made.exit_code == 0, made.output
    log = (tmp_path / "connector.log").open("wb")
    command = [sys.executable, "-m", "koppla", "connector", "run", "--home", str(home)]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        delivered = wait_for(
            lambda: (
                platform.query("SELECT count(*) FROM demo_events") not in ([], [[0]])
                or proc.poll() is not None
            )
        )
        assert proc.poll() is None, (tmp_path / "connector.log").read_text()
        assert delivered is True
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "connector.log").read_text()


def test_status_names_the_custom_columns_the_shop_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    (tmp_path / "connector.toml").write_text(
        'org_id = "KOPPLADEMO00000000000000@AdobeOrg"\n'
        'custom_order_columns = ["coupon_code", "gift_note"]\n'
    )
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    made = runner.invoke(connector_app, ["demo-store", "--orders", "1", "--seed", "1", *home])
    assert made.exit_code == 0, made.output
    status = runner.invoke(connector_app, ["status", "--json", *home])
    assert status.exit_code == 0, status.output
    custom = codec.loads(status.stdout)["customAttributes"]
    assert custom["tenant"] == "kopplademo"
    assert custom["orderColumns"] == ["coupon_code", "gift_note"]
    assert custom["missingColumns"] == ["sales_order.gift_note"]
