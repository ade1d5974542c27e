"""docs/commerce-reports.md, generated from the report registry.

Regenerate after changing a report:  .venv/bin/python tests/platform/query/commerce_doc.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "commerce-reports.md"
EXAMPLE = {"until": "2026-03-09T00:00:00Z"}
"""The `until` the SQL in the doc is shown with (every other parameter at its default)."""

INTRO = """# Commerce reports

Ready-made queries over the storefront and back-office events, for the questions merchants ask
first. Each runs through the query engine like any query (read-only, time limit, row cap, only
the caller's datasets), so its SQL below can be copied into `koppla query`, the SQL page or
psql and adapted.

```sh
koppla report                                   # list the reports
koppla report funnel -p days=30                 # run one (a table; --json for JSON)
koppla report abandoned_carts -p hours=48 --events shop_events --orders backoffice_events
koppla report tracking_coverage --sql           # print its SQL instead
curl -H "Authorization: Bearer $TOKEN" "$KOPPLA/api/v1/reports"            # the list, as JSON
curl -H "Authorization: Bearer $TOKEN" "$KOPPLA/api/v1/reports/funnel?days=30"
```

**Tables.** `--events` (HTTP: `events=`) names the dataset of the storefront events, `--orders`
(`orders=`) the dataset of the back-office events; by default both are the one dataset of
commerce ExperienceEvents (`demo_events` when there are several), as the demo datastream lands
both kinds of events in `demo_events`.

**Definitions.**

- *Shopper*: the ECID of a storefront event: `personID`, which Adobe's storefront collector sets
  to the ECID on every event (`identity=personID`, the default, and fast), or `personID` else
  `identityMap['ECID'][1].id` (`identity=ecid`, for tags that do not set `personID`; reading the
  identity map makes a report several times slower). The all-zero ECID is nobody.
- *Order*: a `commerce.backofficeOrderPlaced` event; *storefront purchase*: a
  `commerce.purchases` event. Both name the order by `commerce.order.purchaseID`, and the
  reconciliation matches them on it. The back office sends the order increment id (Magento's
  `increment_id`, e.g. `000000123`); the storefront sends what its `orderContext.orderId` holds,
  so make the storefront send the increment id too, or the reports see no match at all.
- *Windows* are `[since, until)` in UTC; `until` defaults to now, `since` to `until` less `days`.
  Days are UTC days. Timestamps take ISO 8601 (`2026-03-02`, `2026-03-02T10:00:00Z`,
  `2026-03-02T12:00:00+02:00`).
- Each purchase ID counts once, however often its event was sent.

Parameters are validated (whole numbers within their bounds, timestamps parsed, choices from
their list) and reach the SQL only as literals Koppla formats; a bad one is refused naming it
(HTTP 400 with `field`, exit status 2 on the command line).
"""


def render() -> str:
    """The whole document."""
    from koppla.platform.query.commerce import REPORTS, CommerceTables

    tables = CommerceTables("demo_events", "demo_events")
    parts = [INTRO]
    for report in REPORTS:
        names = {p.name for p in report.parameters}
        example = {k: v for k, v in EXAMPLE.items() if k in names}
        parts.append(f"## `{report.name}`: {report.title}\n\n{report.description}\n")
        parts.append("| parameter | kind | default | meaning |\n|---|---|---|---|")
        for p in report.parameters:
            default = "" if p.default is None else f"`{p.default}`"
            kind = p.kind if not p.choices else " / ".join(f"`{c}`" for c in p.choices)
            if p.kind == "int":
                kind = f"int, {p.low} to {p.high}"
            parts.append(f"| `{p.name}` | {kind} | {default} | {p.description} |")
        shown = ", ".join(f"{k}={v}" for k, v in example.items())
        parts.append(f"\nSQL (`{shown}`, other parameters at their defaults):\n")
        parts.append(f"```sql\n{report.sql(tables, example)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
