"""Connector settings: file + environment, rules from the admin, clear messages, a secret token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from koppla.connector.settings import (
    SettingsInvalid,
    document_json,
    form_fields,
    load_settings,
    parse_document,
    reload_settings,
)
from koppla.core import codec
from koppla.core.errors import InvalidInput

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"
OTHER_ORG = "OTHERORG0000000000000000@AdobeOrg"


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
        ({"websites": [site(org_id="ABC@AdobeOrg")]}, "websites[0].org_id", "@AdobeOrg"),
        ({"websites": [site(org_id="ABCDEFGHIJKLMNOPQRSTUVWX")]}, "websites[0].org_id", "24"),
        ({"org_id": "ABC@AdobeOrg", "websites": [site()]}, "org_id", "24 letters or digits"),
        (
            {"websites": [site(dataset_id="")]},
            "websites[0].dataset_id",
            "a dataset id is required unless both storefront_events and back_office_events",
        ),
        (
            {"websites": [site(datastream_id="")]},
            "websites[0].datastream_id",
            "required unless the AEP Web SDK is already deployed",
        ),
        ({"websites": [site(), site()]}, "websites[1].website_code", "once"),
        (
            {"websites": [site(), site(website_code="eu", org_id=OTHER_ORG)]},
            "websites[1].org_id",
            "one organization per instance",
        ),
        (
            {"org_id": OTHER_ORG, "websites": [site()]},
            "websites[0].org_id",
            "one organization per instance",
        ),
        ({"websites": [site(own_web_sdk=True)]}, "websites[0].own_web_sdk", "AEP Web SDK Name"),
        ({"websites": [{**site(org_id=""), "website_code": "base"}]}, "org_id", "required"),
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
                        storefront_events=False,
                        customer_profiles=True,
                        profile_dataset_id="p",
                    ),
                ]
            },
            "websites[1].dataset_id",
            "a dataset id is required while customer_profiles is on",
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


def test_a_dataset_is_needed_unless_both_event_kinds_are_off(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"websites\[0\]\.dataset_id"):
        load_settings(tmp_path, websites=[site(dataset_id="", back_office_events=False)])
    both_off = {"dataset_id": "", "back_office_events": False, "storefront_events": False}
    settings = load_settings(tmp_path, websites=[site(**both_off)])
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

    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "connector.md").read_text()
    missing = [f"websites[].{name}" for name in WebsiteSettings.model_fields]
    missing += [
        name
        for name in ConnectorSettings.model_fields
        if name not in ("home", "token", "client_secret")
    ]
    assert [name for name in missing if f"`{name}`" not in text] == []


def cache(home: Path, settings: dict[str, Any] | None, version: int = 1) -> None:
    """The platform's settings as `RemoteSettings` caches them."""
    path = home / "connector" / "settings-cache.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        codec.dumps({"version": version, "etag": f'"v{version}"', "settings": settings})
    )


def test_older_settings_with_an_org_id_per_website_keep_working(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, websites=[site(), site(website_code="eu")])
    assert settings.org_id == ORG
    assert [w.org_id for w in settings.websites] == [ORG, ORG]


def test_the_global_org_id_is_every_websites(tmp_path: Path) -> None:
    settings = load_settings(
        tmp_path, org_id=ORG, websites=[{k: v for k, v in site().items() if k != "org_id"}]
    )
    assert settings.websites[0].org_id == ORG and settings.admin.org_id == ORG


def test_the_platforms_settings_apply_where_the_file_and_environment_are_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote_site = {"website_code": "base", "datastream_id": "ds-remote", "dataset_id": "d"}
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [remote_site]})
    from_platform = load_settings(tmp_path)
    assert from_platform.website("base") is not None
    assert from_platform.websites[0].datastream_id == "ds-remote"
    assert from_platform.websites[0].org_id == ORG

    (tmp_path / "connector.toml").write_text(
        f'org_id = "{ORG}"\n[[websites]]\nwebsite_code = "base"\ndatastream_id = "ds-local"\n'
        'dataset_id = "d"\n'
    )
    assert load_settings(tmp_path).websites[0].datastream_id == "ds-local"

    monkeypatch.setenv("KOPPLA_CONNECTOR_WEB_SDK_NAME", "mySdk")
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "alloy", "websites": []})
    assert load_settings(tmp_path).web_sdk_name == "mySdk"


def test_the_platforms_settings_can_be_turned_off(tmp_path: Path) -> None:
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [site()]})
    assert load_settings(tmp_path, settings_from_platform=False).websites == ()
    (tmp_path / "connector.toml").write_text("settings_from_platform = false\n")
    assert load_settings(tmp_path).websites == ()


def test_a_missing_or_empty_cache_leaves_the_local_settings(tmp_path: Path) -> None:
    assert load_settings(tmp_path).websites == ()
    cache(tmp_path, None, version=0)
    assert load_settings(tmp_path, websites=[site()]).websites[0].datastream_id == "ds"
    (tmp_path / "connector" / "settings-cache.json").write_text("{not json")
    assert load_settings(tmp_path).websites == ()


def test_a_reload_keeps_the_overrides_and_reads_the_fresh_cache(tmp_path: Path) -> None:
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [site()]})
    first = load_settings(tmp_path, poll_interval_s=0.5)
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [site(datastream_id="new")]})
    again = reload_settings(first)
    assert again.poll_interval_s == 0.5 and again.websites[0].datastream_id == "new"


def test_a_document_names_each_problem_by_website_code() -> None:
    with pytest.raises(SettingsInvalid) as caught:
        parse_document(
            {
                "org_id": ORG,
                "websites": [
                    {"website_code": "base", "datastream_id": "", "dataset_id": ""},
                    {"website_code": "eu", "customer_profiles": True, "datastream_id": "x"},
                ],
            }
        )
    fields = [p.field for p in caught.value.problems]
    assert fields == [
        "websites[base].datastream_id",
        "websites[base].dataset_id",
        "websites[eu].dataset_id",
        "websites[eu].profile_dataset_id",
    ]
    assert caught.value.field == "websites[base].datastream_id"


def test_the_stored_form_of_a_document_leaves_out_the_websites_org_ids() -> None:
    stored = document_json(parse_document({"websites": [site()]}))
    assert stored["org_id"] == ORG and "org_id" not in stored["websites"][0]
    assert parse_document(stored) == parse_document({"websites": [site()]})


def test_every_form_field_has_a_label_a_section_and_help() -> None:
    fields = form_fields()
    names = {(f.scope, f.name) for f in fields}
    assert ("global", "org_id") in names and ("website", "own_web_sdk") in names
    assert ("website", "org_id") not in names  # kept only for older settings
    assert all(f.label and f.description for f in fields)
    checkboxes = {f.name for f in fields if f.kind == "checkbox"}
    assert {"storefront_events", "back_office_events", "customer_profiles"} <= checkboxes


def test_a_malformed_field_does_not_hide_the_rules_between_the_others() -> None:
    with pytest.raises(SettingsInvalid) as caught:
        parse_document(
            {
                "org_id": ORG,
                "websites": [
                    {
                        "website_code": "base",
                        "datastream_id": "",
                        "dataset_id": "has space",
                        "customer_profiles": "perhaps",
                    }
                ],
            }
        )
    found = {p.field: p.message for p in caught.value.problems}
    assert set(found) == {
        "websites[base].dataset_id",
        "websites[base].customer_profiles",
        "websites[base].datastream_id",
    }
    assert found["websites[base].dataset_id"] == "must be letters, digits, _ and - only"


DEMO_ORG = "KOPPLADEMO00000000000000@AdobeOrg"
FILE_ORG = "ABCDEFGHIJKL123456789012@AdobeOrg"


def test_websites_in_the_file_take_neither_websites_nor_the_org_id_from_the_platform(
    tmp_path: Path,
) -> None:
    """`koppla up --demo` cached the demo organization's settings; a connector.toml with its
    own websites (each naming its organization, as older files do) is what applies."""
    demo_site = {"website_code": "base", "datastream_id": "ds-demo", "dataset_id": "d"}
    cache(tmp_path, {"org_id": DEMO_ORG, "web_sdk_name": "", "websites": [demo_site]})
    (tmp_path / "connector.toml").write_text(
        f'[[websites]]\nwebsite_code = "base"\norg_id = "{FILE_ORG}"\n'
        'datastream_id = "ds-local"\ndataset_id = "d"\n'
    )
    settings = load_settings(tmp_path)
    assert settings.org_id == FILE_ORG
    assert [(w.website_code, w.datastream_id, w.org_id) for w in settings.websites] == [
        ("base", "ds-local", FILE_ORG)
    ]


def test_platform_settings_that_break_a_rule_are_logged_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "connector.toml").write_text(f'org_id = "{FILE_ORG}"\npoll_interval_s = 2\n')
    legacy = {**site(datastream_id="ds-platform"), "org_id": DEMO_ORG}  # clashes with the file
    cache(tmp_path, {"org_id": DEMO_ORG, "web_sdk_name": "", "websites": [legacy]})
    caplog.set_level("WARNING", logger="koppla.connector.settings")
    settings = load_settings(tmp_path)
    assert settings.org_id == FILE_ORG and settings.websites == ()
    assert settings.poll_interval_s == 2.0
    assert "not applied" in caplog.text and "websites[0].org_id" in caplog.text

    caplog.clear()
    broken = {"website_code": "base", "dataset_id": "d"}  # no datastream id
    cache(tmp_path, {"org_id": FILE_ORG, "web_sdk_name": "", "websites": [broken]})
    assert load_settings(tmp_path).websites == ()
    assert "websites[0].datastream_id" in caplog.text


def test_a_reload_refuses_platform_settings_that_break_a_rule(tmp_path: Path) -> None:
    """The running connector keeps the settings it has (`Connector.refresh_settings`)."""
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [site()]})
    first = load_settings(tmp_path)
    cache(tmp_path, {"org_id": ORG, "web_sdk_name": "", "websites": [site(datastream_id="")]})
    with pytest.raises(SettingsInvalid) as caught:
        reload_settings(first)
    assert caught.value.problems[0].field == "websites[0].datastream_id"


def test_custom_columns_and_the_tenant_id_are_checked_with_the_other_global_settings() -> None:
    with pytest.raises(SettingsInvalid) as caught:
        parse_document(
            {
                "org_id": ORG,
                "tenant_id": "Acme-Corp",
                "custom_order_columns": ["gift_note", "1st_choice"],
                "custom_item_columns": ["engraving", "x; DROP TABLE sales_order"],
                "websites": [site()],
            }
        )
    problems = {p.field: p.message for p in caught.value.problems}
    assert set(problems) == {"tenant_id", "custom_order_columns", "custom_item_columns"}
    assert "lower-case letters or digits" in problems["tenant_id"]
    assert "'1st_choice' is not a column name" in problems["custom_order_columns"]
    assert "is not a column name" in problems["custom_item_columns"]
    with pytest.raises(SettingsInvalid) as twice:
        parse_document({"custom_order_columns": ["gift_note", "GIFT_NOTE"]})
    assert twice.value.problems[0].field == "custom_order_columns"
    assert "named twice" in twice.value.problems[0].message
    with pytest.raises(SettingsInvalid):
        parse_document({"tenant_id": "a" * 33})


def test_custom_columns_may_be_given_as_one_text_and_round_trip_the_stored_form() -> None:
    given = parse_document(
        {
            "org_id": ORG,
            "tenant_id": "acme",
            "custom_order_columns": "gift_note, delivery_date",
            "custom_item_columns": "engraving",
            "websites": [site()],
        }
    )
    assert given.custom_order_columns == ("gift_note", "delivery_date")
    assert given.custom_item_columns == ("engraving",)
    stored = document_json(given)
    assert stored["custom_order_columns"] == ["gift_note", "delivery_date"]
    assert parse_document(stored) == given
    assert parse_document({}).custom_order_columns == () and parse_document({}).tenant_id == ""


def test_the_tenant_is_derived_from_the_organization_unless_set(tmp_path: Path) -> None:
    demo = "KOPPLADEMO00000000000000@AdobeOrg"
    derived = load_settings(tmp_path, org_id=demo, settings_from_platform=False)
    assert derived.tenant_id == "" and derived.tenant == "kopplademo"
    named = load_settings(tmp_path, org_id=demo, tenant_id="acme", settings_from_platform=False)
    assert named.tenant == "acme"
    assert load_settings(tmp_path, settings_from_platform=False).tenant == ""


def test_custom_attribute_settings_come_from_the_file_the_environment_or_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache(
        tmp_path,
        {
            "org_id": ORG,
            "web_sdk_name": "",
            "tenant_id": "fromplatform",
            "custom_order_columns": ["gift_note"],
            "custom_item_columns": ["engraving"],
            "websites": [site()],
        },
    )
    from_platform = load_settings(tmp_path)
    assert from_platform.tenant == "fromplatform"
    assert from_platform.custom_columns.order == ("gift_note",)
    assert from_platform.custom_columns.item == ("engraving",)
    (tmp_path / "connector.toml").write_text('custom_order_columns = ["delivery_date"]\n')
    monkeypatch.setenv("KOPPLA_CONNECTOR_TENANT_ID", "fromenv")
    local = load_settings(tmp_path)
    assert local.tenant == "fromenv"
    assert local.custom_columns.order == ("delivery_date",)
    assert local.custom_columns.item == ("engraving",)  # not set locally: the platform's
    monkeypatch.setenv("KOPPLA_CONNECTOR_CUSTOM_ITEM_COLUMNS", '["bad name"]')
    with pytest.raises(SettingsInvalid) as caught:
        load_settings(tmp_path)
    assert caught.value.problems[0].field == "custom_item_columns"
