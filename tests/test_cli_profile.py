"""`koppla profile`: a customer's profile, identities and timeline in the terminal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from koppla.cli import build
from koppla.core import codec
from koppla.core.settings import Settings
from koppla.web.services import build_services
from tests.web.test_profiles import ANN, seed

Invoke = Callable[..., tuple[int, str]]


@pytest.fixture
def run(tmp_path: Path) -> Invoke:
    """`koppla ...` over a home where Ann's profile is stored."""
    home = tmp_path / "home"
    services = build_services(Settings.load(home=home))
    seed(services.profiles, ANN)
    services.profiles.close()
    services.query.close()
    services.catalog.close()
    runner = CliRunner()
    app = build()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--home", str(home)])
        return result.exit_code, result.output

    return invoke


def test_a_profile_is_shown_with_identities_and_timeline(run: Invoke) -> None:
    code, out = run("profile", "email:Ann@Example.com")
    assert code == 0, out
    assert "firstName: Ann" in out
    assert "CustomerId" in out and "111" in out
    assert "Timeline (3 events" in out
    assert "order 100000001" in out  # the summary of the order event (the terminal may wrap it)
    timeline = out.split("Timeline")[1]
    assert timeline.index("2026-01-03 00:00:00") < timeline.index("2026-01-01 00:00:00")


def test_json_holds_the_newest_events_asked_for(run: Invoke) -> None:
    code, out = run("profile", "ecid:111", "--json", "--events", "1")
    assert code == 0, out
    profile = codec.loads(out)
    assert profile["attributes"]["person"]["name"]["lastName"] == "Example"
    assert [e["id"] for e in profile["events"]] == ["e3"]
    assert len(profile["identities"]) == 3


def test_an_unknown_identity_exits_1_and_a_malformed_one_2(run: Invoke) -> None:
    code, out = run("profile", "email:nobody@example.com")
    assert (code, out.strip()) == (1, "no profile for Email:nobody@example.com")
    code, out = run("profile", "ann@example.com")
    assert code == 2 and "namespace:id" in out
    code, out = run("profile", "email:ann@example.com", "--policy", "nope")
    assert code == 2 and "no merge policy 'nope'" in out
