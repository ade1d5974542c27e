"""The Order History rules: every refusal names the field and the problem."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from koppla.connector.history.request import (
    add_years,
    parse_day,
    plan_request,
    require_credentials,
)
from koppla.connector.settings import ConnectorSettings, load_settings
from koppla.core.errors import InvalidInput

ORG = "ABCDEFGHIJKLMNOPQRSTUVWX@AdobeOrg"
TODAY = date(2026, 12, 4)


def settings(tmp_path: Path, *sites: dict[str, Any], token: str | None = "t") -> ConnectorSettings:
    websites = [
        {"website_code": "base", "org_id": ORG, "datastream_id": "ds", "dataset_id": "events", **s}
        for s in (sites or ({},))
    ]
    return load_settings(tmp_path, token=token, websites=websites)


def refusal(tmp_path: Path, start: date, end: date, **kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        plan_request(kw.pop("given", None) or settings(tmp_path), start, end, TODAY, **kw)
    return caught.value


def test_a_range_within_five_years_goes_to_the_settings_dataset(tmp_path: Path) -> None:
    plan = plan_request(settings(tmp_path), date(2021, 12, 4), TODAY, TODAY)
    assert plan.datasets == {"base": "events"}
    assert plan.created_from.isoformat() == "2021-12-04T00:00:00"
    assert plan.created_before.isoformat() == "2026-12-05T00:00:00"  # To is inclusive


def test_a_range_over_five_years_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, date(2021, 12, 3), TODAY)
    assert error.field == "to" and "exceeds five years" in str(error)


def test_five_years_from_a_leap_day_ends_on_the_28th(tmp_path: Path) -> None:
    assert add_years(date(2020, 2, 29), 5) == date(2025, 2, 28)
    error = refusal(tmp_path, date(2020, 2, 29), date(2025, 3, 1))
    assert error.field == "to"


def test_from_after_to_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, date(2025, 6, 2), date(2025, 6, 1))
    assert error.field == "from" and "after" in str(error)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (date(2026, 12, 5), date(2026, 12, 6), "from"),
        (date(2026, 1, 1), date(2026, 12, 5), "to"),
    ],
)
def test_a_future_date_is_refused(tmp_path: Path, start: date, end: date, field: str) -> None:
    error = refusal(tmp_path, start, end)
    assert error.field == field and "future" in str(error)


def test_a_missing_dataset_is_refused(tmp_path: Path) -> None:
    given = settings(tmp_path, {"history_copy_dataset_id": False})
    error = refusal(tmp_path, date(2026, 1, 1), TODAY, given=given)
    assert error.field == "websites[0].history_dataset_id" and "no dataset id" in str(error)


def test_the_order_history_dataset_is_used_when_copy_is_off(tmp_path: Path) -> None:
    given = settings(tmp_path, {"history_copy_dataset_id": False, "history_dataset_id": "history"})
    assert plan_request(given, date(2026, 1, 1), TODAY, TODAY).datasets == {"base": "history"}


def test_missing_credentials_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOPPLA_CONNECTOR_TOKEN", raising=False)
    monkeypatch.delenv("KOPPLA_CONNECTOR_CLIENT_SECRET", raising=False)
    with pytest.raises(InvalidInput) as caught:
        require_credentials(settings(tmp_path, token=None))
    assert caught.value.field == "token" and "missing credentials" in str(caught.value)
    require_credentials(settings(tmp_path))  # the token
    service_account = load_settings(tmp_path, client_id="c1", client_secret="p8e-secret")
    require_credentials(service_account)


def test_a_plan_needs_no_credentials_of_its_own(tmp_path: Path) -> None:
    """A sync started on the admin pages is sent by the running connector, with its own
    credentials: the server planning it has none, and needs none."""
    plan = plan_request(settings(tmp_path, token=None), date(2026, 1, 1), TODAY, TODAY)
    assert plan.datasets == {"base": "events"}


def test_an_unknown_website_is_refused(tmp_path: Path) -> None:
    error = refusal(tmp_path, date(2026, 1, 1), TODAY, website="nope")
    assert error.field == "website" and "'nope'" in str(error)


def test_dates_are_read_strictly(tmp_path: Path) -> None:
    assert parse_day("2026-03-01", "from") == date(2026, 3, 1)
    assert parse_day("2026-03-01T23:30:00-02:00", "from") == date(2026, 3, 2)
    with pytest.raises(InvalidInput) as caught:
        parse_day("03/01/2026", "from")
    assert caught.value.field == "from"


def test_a_queue_url_with_a_password_never_sits_in_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "connector.toml").write_text('queue_url = "amqp://guest:secret@127.0.0.1/"\n')
    with pytest.raises(InvalidInput) as caught:
        load_settings(tmp_path)
    assert caught.value.field == "queue_url" and "KOPPLA_CONNECTOR_QUEUE_URL" in str(caught.value)
    (tmp_path / "connector.toml").write_text('queue_url = "ftp://x"\n')
    with pytest.raises(InvalidInput):
        load_settings(tmp_path)
