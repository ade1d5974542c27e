"""The `koppla connector` commands: each documented, the demo store and status work offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from koppla.connector.commands import connector_app
from koppla.core import codec

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
