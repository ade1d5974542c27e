"""The terminal rendering of a profile, and its JSON twin."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.console import Console

from koppla.platform.profiles.computed import Computed
from koppla.platform.profiles.graph import GuardrailHit
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.lookup import ProfileView
from koppla.platform.profiles.merge import MergePolicy
from koppla.platform.profiles.render import profile_json, render_profile, summary
from koppla.platform.profiles.stored import Member, StoredEvent

JAN_1 = 1_767_225_600_000
EMAIL = Identity("Email", "ann@example.com")
ECID = Identity("ECID", "111")


def _event(event_id: str, at_ms: int, event_type: str, **body: Any) -> StoredEvent:
    return StoredEvent(event_id, 1, "ds-1", at_ms, event_type, {"eventType": event_type, **body})


ORDER = _event(
    "e2",
    JAN_1 + 60_000,
    "commerce.backofficeOrderPlaced",
    commerce={"order": {"purchaseID": "100000001", "priceTotal": 50.0, "currencyCode": "EUR"}},
)
VIEW = _event(
    "e1",
    JAN_1,
    "commerce.productViews",
    productListItems=[{"SKU": f"SKU{n}", "quantity": 1} for n in range(4)],
    web={"webPageDetails": {"name": "Jackets"}},
)


def _view(hits: list[GuardrailHit] | None = None) -> ProfileView:
    return ProfileView(
        graph_id="g1",
        asked=EMAIL,
        members=[
            Member(EMAIL, 1, "g1", JAN_1, JAN_1 + 60_000),
            Member(ECID, 2, "g1", JAN_1, JAN_1),
        ],
        attributes={
            "person": {"name": {"firstName": "Ann", "lastName": "Example"}},
            "addresses": [{"city": f"City{n}"} for n in range(7)],
            "identityMap": {"Email": [{"id": "ann@example.com"}]},
        },
        sources=["ds-profiles"],
        policy=MergePolicy(id="p1", name="Default timestamp-ordered", default=True),
        computed=Computed(JAN_1, JAN_1 + 60_000, 1, 50.0, None),
        last_modified_ms=JAN_1 + 60_000,
        hits=hits or [],
    )


def _text(view: ProfileView, events: list[StoredEvent]) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render_profile(view, events, {"ds-1": "demo_events"}))
    return console.export_text()


def test_the_profile_shows_attributes_computed_identities_and_timeline() -> None:
    text = _text(_view(), [ORDER, VIEW])
    assert "firstName: Ann" in text
    assert "addresses [7]" in text and "… 2 more" in text and "City6" not in text
    assert "identityMap" not in text
    assert "lifetime value │ 50.00" in text
    assert "ann@example.com" in text and "2026-01-01 00:01:00" in text
    order_row = next(line for line in text.splitlines() if "backofficeOrderPlaced" in line)
    assert "demo_events" in order_row and "order 100000001 50.0 EUR" in order_row
    assert text.index("backofficeOrderPlaced") < text.index("productViews")  # order as given
    assert "Guardrail hits" not in text


def test_guardrail_hits_are_shown_when_there_are_some() -> None:
    hit = GuardrailHit("namespace_limit", "g1", ECID, "2 CustomerId identities ...", JAN_1)
    text = _text(_view([hit]), [])
    assert "Guardrail hits (1)" in text and "namespace_limit" in text and "ECID:111" in text
    assert "no events" in text


def test_an_event_summary_names_order_products_and_page() -> None:
    assert summary(VIEW) == "SKU0 x1, SKU1 x1, SKU2 x1 +1; Jackets"
    assert summary(ORDER) == "order 100000001 50.0 EUR"
    assert summary(_event("e3", JAN_1, "web.webpagedetails.pageViews")) == ""
    long_page = _event("e4", JAN_1, "x", web={"webPageDetails": {"URL": "https://x/" + "a" * 200}})
    assert len(summary(long_page)) == 80 and summary(long_page).endswith("…")


def test_the_json_twin_holds_what_the_terminal_shows() -> None:
    cart = {"cartID": "c1", "items": [{"SKU": "MJ01"}], "at_ms": JAN_1}
    view = replace(_view(), computed=Computed(JAN_1, JAN_1, 0, 0.0, cart))
    out = profile_json(view, [ORDER])
    assert out["profileId"] == "g1"
    assert out["requestedIdentity"] == {"namespace": "Email", "id": "ann@example.com"}
    assert out["identities"][0] == {
        "namespace": "Email",
        "id": "ann@example.com",
        "firstSeen": "2026-01-01T00:00:00.000Z",
        "lastSeen": "2026-01-01T00:01:00.000Z",
    }
    assert out["computedAttributes"]["lastCart"] == {
        "cartID": "c1",
        "items": [{"SKU": "MJ01"}],
        "at": "2026-01-01T00:00:00.000Z",
    }
    (event,) = out["events"]
    assert (event["id"], event["datasetId"], event["timestamp"]) == (
        "e2",
        "ds-1",
        "2026-01-01T00:01:00.000Z",
    )
