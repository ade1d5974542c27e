"""A historical order sync request and its rules (the Order History tab, domain.md §2.1, §7).

Pure: `plan_request(settings, start, end, today, website=None)` checks a From/To range and the
websites' Order History settings and returns what to sync, or raises `InvalidInput` naming the
field and the problem. Rules, as Adobe's admin applies them:

- From and To are dates (inclusive, UTC); From may not be after To, neither may be in the future;
- the range cannot exceed five years (To at most five calendar years after From);
- each website synced needs a dataset id: the Settings dataset id while "copy dataset ID from
  settings" is on (the default), else the Order History dataset id.

Whether each dataset exists on the platform is checked by the caller (it needs the network).
`require_credentials(settings)` is the CLI's own rule: `history:sync` sends the batches itself,
so it needs the platform token (`KOPPLA_CONNECTOR_TOKEN`) or a service account; a sync started
on the admin pages is sent by the running connector, with that connector's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from koppla.connector.settings import (
    CLIENT_SECRET_ENV,
    TOKEN_ENV,
    ConnectorSettings,
    WebsiteSettings,
    has_credentials,
)
from koppla.core.errors import InvalidInput

MAX_YEARS = 5


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What one history sync covers: a date range and each website's target dataset."""

    start: date
    end: date
    datasets: dict[str, str]
    """Website code → dataset id its historical orders go to."""

    @property
    def created_from(self) -> datetime:
        """The first instant (UTC, naive like Magento's columns) an order's created_at may have."""
        return datetime.combine(self.start, time.min)

    @property
    def created_before(self) -> datetime:
        """The instant (UTC, naive) every synced order was created before: the day after To."""
        return datetime.combine(self.end + timedelta(days=1), time.min)


def add_years(day: date, years: int) -> date:
    """`day` moved `years` calendar years on (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def parse_day(value: str, field: str) -> date:
    """A `YYYY-MM-DD` date (a full ISO date-time is accepted and cut to its UTC date)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field}: {value!r} is not a date (expected YYYY-MM-DD)", field=field
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def check_range(start: date, end: date, today: date) -> None:
    """Raise `InvalidInput` unless From ≤ To ≤ today and the range is at most five years."""
    if start > today:
        raise InvalidInput(f"from: {start} is in the future (today is {today})", field="from")
    if end > today:
        raise InvalidInput(f"to: {end} is in the future (today is {today})", field="to")
    if start > end:
        raise InvalidInput(f"from: {start} is after to ({end})", field="from")
    if end > add_years(start, MAX_YEARS):
        raise InvalidInput(
            f"to: the range {start} to {end} exceeds five years (the latest To for this From "
            f"is {add_years(start, MAX_YEARS)})",
            field="to",
        )


def require_credentials(settings: ConnectorSettings) -> None:
    """Raise `InvalidInput` (field `token`) unless `settings` can authenticate to the platform:
    the platform token, or a service account (`client_id` with its secret)."""
    if not has_credentials(settings):
        raise InvalidInput(
            "token: missing credentials: the history sync needs the platform token or a service "
            f"account; set {TOKEN_ENV} (or client_id and {CLIENT_SECRET_ENV})",
            field="token",
        )


def history_dataset(site: WebsiteSettings) -> str:
    """The dataset a website's historical orders go to (empty when none is set)."""
    return site.dataset_id if site.history_copy_dataset_id else site.history_dataset_id


def plan_request(
    settings: ConnectorSettings,
    start: date,
    end: date,
    today: date,
    website: str | None = None,
) -> SyncPlan:
    """The sync of `start`..`end` for `website` (default: every configured website), checked."""
    check_range(start, end, today)
    sites = list(settings.websites)
    if website is not None:
        site = settings.website(website)
        if site is None:
            known = ", ".join(w.website_code for w in sites) or "none"
            raise InvalidInput(
                f"website: {website!r} is not configured (configured: {known})", field="website"
            )
        sites = [site]
    if not sites:
        raise InvalidInput("websites: no website is configured", field="websites")
    datasets: dict[str, str] = {}
    for index, site in enumerate(settings.websites):
        if site not in sites:
            continue
        dataset = history_dataset(site)
        if not dataset:
            field = "dataset_id" if site.history_copy_dataset_id else "history_dataset_id"
            raise InvalidInput(
                f"websites[{index}].{field}: website {site.website_code!r} has no dataset id "
                "for historical orders (set the Settings dataset id, or turn off "
                "history_copy_dataset_id and set history_dataset_id)",
                field=f"websites[{index}].{field}",
            )
        datasets[site.website_code] = dataset
    return SyncPlan(start, end, datasets)
