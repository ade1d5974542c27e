"""`koppla profile`: a customer's profile, identities and timeline in the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from koppla.core import codec
from koppla.core.settings import Settings
from koppla.web.services import build_services
from tests.cli.conftest import Koppla
from tests.web.test_profiles import ANN, seed


@pytest.fixture(autouse=True)
def ann(home: Path) -> None:
    """Ann's profile is stored in the home."""
    services = build_services(Settings.load(home=home))
    seed(services.profiles, ANN)
    services.close()


def test_a_profile_is_shown_with_identities_and_timeline(koppla: Koppla) -> None:
    result = koppla("profile", "email:Ann@Example.com")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "firstName: Ann" in out
    assert "CustomerId" in out and "111" in out
    assert "Timeline (3 events" in out
    assert "order 100000001" in out  # the summary of the order event (the terminal may wrap it)
    timeline = out.split("Timeline")[1]
    assert timeline.index("2026-01-03 00:00:00") < timeline.index("2026-01-01 00:00:00")


def test_json_holds_the_newest_events_asked_for(koppla: Koppla) -> None:
    result = koppla("profile", "ecid:111", "--json", "--events", "1")
    assert result.exit_code == 0, result.output
    profile = codec.loads(result.stdout)
    assert profile["attributes"]["person"]["name"]["lastName"] == "Example"
    assert [e["id"] for e in profile["events"]] == ["e3"]
    assert len(profile["identities"]) == 3


def test_an_unknown_identity_exits_1_and_a_malformed_one_2(koppla: Koppla) -> None:
    unknown = koppla("profile", "email:nobody@example.com")
    assert (unknown.exit_code, unknown.stderr.strip()) == (
        1,
        "no profile for Email:nobody@example.com",
    )
    malformed = koppla("profile", "ann@example.com")
    assert malformed.exit_code == 2 and "namespace:id" in malformed.stderr
    policy = koppla("profile", "email:ann@example.com", "--policy", "nope")
    assert policy.exit_code == 2 and "no merge policy 'nope'" in policy.stderr
