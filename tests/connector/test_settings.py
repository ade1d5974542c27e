"""Connector settings: file + environment, rules from the admin, clear messages, a secret token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from koppla.connector.settings import load_settings
from koppla.core.errors import InvalidInput

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def site(**extra: Any) -> dict[str, Any]:
    return {
        "website_code": "base",
        "org_id": ORG,
        "datastream_id": "ds",
        "dataset_id": "d",
        **extra,
    }


def test_defaults_point_at_the_demo_store_under_the_home(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.dsn == f"sqlite:///{(tmp_path / 'demo-shop.sqlite').resolve()}"
    assert settings.poll_interval_s == 1.0
    assert settings.change_tracking == "triggers"
    assert settings.state_path == tmp_path / "connector" / "state.sqlite"
    assert not settings.redact


def test_the_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "connector.toml").write_text(
        'source_dsn = "mysql+pymysql://root@127.0.0.1:3306/magento"\npoll_interval_s = 5\n'
        "redact = true\n[[websites]]\n"
        f'website_code = "base"\norg_id = "{ORG}"\ndatastream_id = "ds"\ndataset_id = "d"\n'
    )
    monkeypatch.setenv("KOPPLA_CONNECTOR_POLL_INTERVAL_S", "2.5")
    settings = load_settings(tmp_path)
    assert settings.source_dsn.startswith("mysql+pymysql://")
    assert settings.poll_interval_s == 2.5
    assert settings.redact
    assert settings.website("base") is not None and settings.website("other") is None


def test_the_token_comes_from_the_environment_and_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPPLA_CONNECTOR_TOKEN", "kpl_very_secret")
    settings = load_settings(tmp_path)
    assert settings.token is not None
    assert settings.token.get_secret_value() == "kpl_very_secret"
    assert "kpl_very_secret" not in repr(settings) and "kpl_very_secret" not in str(settings)


def test_a_token_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "connector.toml").write_text('token = "kpl_on_disk"\n')
    with pytest.raises(InvalidInput) as caught:
        load_settings(tmp_path)
    assert caught.value.field == "token"
    assert "KOPPLA_CONNECTOR_TOKEN" in str(caught.value)
    assert "kpl_on_disk" not in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"websites": [site(org_id="ABC@AdobeOrg")]}, "websites[0].org_id", "pattern"),
        ({"websites": [site(org_id="ABCDEFGHIJKLMNOPQRSTUVWX")]}, "websites[0].org_id", "pattern"),
        ({"websites": [site(dataset_id="")]}, "websites[0]", "dataset_id is required"),
        ({"websites": [site(datastream_id="")]}, "websites[0].datastream_id", "at least 1"),
        ({"websites": [site(), site()]}, "websites", "once"),
        ({"websites": [site(environment_id="has space")]}, "websites[0].environment_id", ""),
        ({"poll_interval_s": 0}, "poll_interval_s", "greater than 0"),
        ({"change_tracking": "cdc"}, "change_tracking", "'triggers' or 'poll'"),
        ({"platform_url": "ftp://x"}, "platform_url", "pattern"),
        ({"batch_max_messages": 501}, "batch_max_messages", "500"),
        ({"websites": [site(colour="red")]}, "websites[0].colour", "Extra inputs"),
    ],
)
def test_bad_settings_name_the_field(
    tmp_path: Path, overrides: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_settings(tmp_path, **overrides)
    assert f"{field}:" in str(caught.value) or str(caught.value).startswith(
        f"invalid connector settings: {field}"
    )
    assert words in str(caught.value)


def test_back_office_events_off_needs_no_dataset(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, websites=[site(dataset_id="", back_office_events=False)])
    assert not settings.websites[0].back_office_events
