"""The one rule for missing services and tools: skip locally, fail under CI."""

from __future__ import annotations

import pytest

from tests.require import require, unavailable, under_ci


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_ci_true_in_any_case_is_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert under_ci()


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_other_ci_values_are_local(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not under_ci()


def test_unavailable_skips_locally_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="MariaDB unreachable"):
        unavailable("MariaDB unreachable at mysql://db")


def test_unavailable_fails_under_ci_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"Chromium is absent \(CI=true"):
        unavailable("Chromium is absent")


def test_require_passes_when_nothing_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require(None)


def test_require_stops_on_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="run `npm ci`"):
        require("node_modules absent: run `npm ci`")
