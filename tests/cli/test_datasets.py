"""`koppla dataset ...`: datasets, their name rule and their organization."""

from __future__ import annotations

from tests.cli.conftest import Koppla

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_a_dataset_is_created_and_listed_with_its_organization(koppla: Koppla) -> None:
    created = koppla("dataset", "create", "web_events")
    assert created.exit_code == 0 and "web_events" in created.stdout
    other = koppla("dataset", "create", "their_events", "--org", ORG)
    assert other.exit_code == 0, other.output
    listed = koppla("dataset", "list").stdout.splitlines()
    web = next(line for line in listed if " web_events " in line)
    theirs = next(line for line in listed if " their_events " in line)
    assert "KOPPLADEMO00000000000000@AdobeOrg" in web
    assert ORG in theirs


def test_a_bad_name_or_org_is_refused_naming_the_rule(koppla: Koppla) -> None:
    bad_name = koppla("dataset", "create", "Bad-Name")
    assert bad_name.exit_code == 2 and "lowercase" in bad_name.stderr
    bad_org = koppla("dataset", "create", "fine", "--org", "short@AdobeOrg")
    assert bad_org.exit_code == 2 and "24 letters or digits" in bad_org.stderr


def test_profile_can_be_enabled_and_disabled(koppla: Koppla) -> None:
    koppla("dataset", "create", "web_events")
    on = koppla("dataset", "enable-profile", "web_events")
    assert on.stdout.strip() == "dataset web_events: profile enabled"
    assert "profile" in next(
        line for line in koppla("dataset", "list").stdout.splitlines() if "web_events" in line
    )
    off = koppla("dataset", "enable-profile", "web_events", "--off")
    assert off.stdout.strip() == "dataset web_events: profile disabled"
    missing = koppla("dataset", "enable-profile", "nope")
    assert missing.exit_code == 2 and "nope" in missing.stderr
