"""`koppla datastream ...`: datastreams and their rules."""

from __future__ import annotations

from tests.cli.conftest import Koppla

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"


def test_datastreams_with_their_rules(koppla: Koppla) -> None:
    assert koppla("dataset", "create", "web_events", "--org", ORG).exit_code == 0
    bad_org = koppla("datastream", "create", "--org", "short@AdobeOrg", "--dataset", "web_events")
    assert bad_org.exit_code == 2 and "24 letters or digits" in bad_org.stderr
    created = koppla(
        "datastream",
        "create",
        "--org",
        ORG,
        "--dataset",
        "web_events",
        "--origin",
        "https://shop.example",
        "--id",
        "ds-1",
    )
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == f"datastream ds-1 created for {ORG}"
    listed = koppla("datastream", "list").stdout
    assert "ds-1" in listed and "https://shop.example" in listed


def test_a_datastream_cannot_land_in_another_organizations_dataset(koppla: Koppla) -> None:
    koppla("dataset", "create", "home_events")  # the home's organization
    refused = koppla("datastream", "create", "--org", ORG, "--dataset", "home_events")
    assert refused.exit_code == 2 and "home_events" in refused.stderr
    assert koppla("datastream", "list").stdout == ""
