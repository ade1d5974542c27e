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
        (
            {"websites": [site(customer_profiles=True)]},
            "websites[0].profile_dataset_id",
            "required while customer_profiles is on",
        ),
        (
            {"websites": [site(customer_profiles=True, profile_dataset_id="d")]},
            "websites[0].profile_dataset_id",
            "must differ from dataset_id",
        ),
        (
            {
                "websites": [
                    site(
                        customer_profiles=True,
                        profile_dataset_id="p",
                        profiles_same_datastream=False,
                    )
                ]
            },
            "websites[0].profile_datastream_id",
            "required while profiles_same_datastream is off",
        ),
        (
            {
                "websites": [
                    site(),
                    site(
                        website_code="eu",
                        dataset_id="",
                        back_office_events=False,
                        customer_profiles=True,
                        profile_dataset_id="p",
                    ),
                ]
            },
            "websites[1]",
            "dataset_id is required while customer_profiles is on",
        ),
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


def test_customer_profiles_are_off_by_default_and_stream_through_the_same_datastream(
    tmp_path: Path,
) -> None:
    plain = load_settings(tmp_path, websites=[site()]).websites[0]
    assert not plain.customer_profiles and plain.profiles_same_datastream
    on = load_settings(
        tmp_path, websites=[site(customer_profiles=True, profile_dataset_id="p")]
    ).websites[0]
    assert on.profile_stream == "ds"
    separate = load_settings(
        tmp_path,
        websites=[
            site(
                customer_profiles=True,
                profile_dataset_id="p",
                profiles_same_datastream=False,
                profile_datastream_id="ds-profiles",
            )
        ],
    ).websites[0]
    assert separate.profile_stream == "ds-profiles"


def test_every_website_setting_is_documented() -> None:
    from koppla.connector.settings import ConnectorSettings, WebsiteSettings

    text = (Path(__file__).resolve().parents[2] / "docs" / "connector.md").read_text()
    missing = [f"websites[].{name}" for name in WebsiteSettings.model_fields]
    missing += [name for name in ConnectorSettings.model_fields if name not in ("home", "token")]
    assert [name for name in missing if f"`{name}`" not in text] == []
