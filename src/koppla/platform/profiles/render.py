"""A profile for people: Rich renderables for the terminal, and their JSON twin.

`render_profile(view, events)` is what `koppla profile` prints: the merged attributes as a tree
with the computed attributes beside them, the profile's identities (namespace, id, first and
last seen), its timeline (time, event type, dataset, a short summary) and its guardrail hits.
`profile_json(view, events)` holds the same facts for `--json` and `GET /api/v1/profiles/...`.
Pure: values in, renderables or dicts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from koppla.core import clock
from koppla.platform.profiles.computed import Computed
from koppla.platform.profiles.graph import GuardrailHit
from koppla.platform.profiles.lookup import ProfileView
from koppla.platform.profiles.stored import Member, StoredEvent

MAX_LIST_ITEMS = 5
"""Items of a list attribute shown in the tree before `… N more`."""

SUMMARY_CHARS = 80


# ---- JSON


def computed_json(numbers: Computed) -> dict[str, Any]:
    """The computed attributes as the APIs show them (`computedAttributes`)."""
    cart = None
    if numbers.last_cart is not None:
        cart = {k: v for k, v in numbers.last_cart.items() if k != "at_ms"}
        cart["at"] = clock.iso_ms(numbers.last_cart.get("at_ms"))
    return {
        "firstSeen": clock.iso_ms(numbers.first_seen_ms),
        "lastSeen": clock.iso_ms(numbers.last_seen_ms),
        "orders": numbers.orders,
        "lifetimeValue": numbers.lifetime_value,
        "lastCart": cart,
    }


def member_json(member: Member) -> dict[str, Any]:
    """One identity of a profile, with when it was first and last seen."""
    return {
        "namespace": member.identity.namespace,
        "id": member.identity.id,
        "firstSeen": clock.iso_ms(member.first_ms),
        "lastSeen": clock.iso_ms(member.last_ms),
    }


def event_json(event: StoredEvent) -> dict[str, Any]:
    """One event of a timeline, with its stored XDM body."""
    return {
        "id": event.event_id,
        "timestamp": clock.iso_ms(event.ts_ms),
        "eventType": event.event_type,
        "datasetId": event.dataset_id,
        "summary": summary(event),
        "xdm": event.body,
    }


def hit_json(hit: GuardrailHit) -> dict[str, Any]:
    """One guardrail hit."""
    return {
        "kind": hit.kind,
        "profileId": hit.graph_id,
        "identity": {"namespace": hit.identity.namespace, "id": hit.identity.id},
        "detail": hit.detail,
        "at": clock.iso_ms(hit.at_ms),
    }


def profile_json(view: ProfileView, events: Sequence[StoredEvent]) -> dict[str, Any]:
    """Everything `render_profile` shows, as JSON (Koppla's own shape, not AEP's)."""
    return {
        "profileId": view.graph_id,
        "requestedIdentity": {"namespace": view.asked.namespace, "id": view.asked.id},
        "mergePolicy": {"id": view.policy.id, "name": view.policy.name},
        "attributes": view.attributes,
        "computedAttributes": computed_json(view.computed),
        "sources": view.sources,
        "lastModifiedAt": clock.iso_ms(view.last_modified_ms),
        "identities": [member_json(m) for m in view.members],
        "events": [event_json(e) for e in events],
        "guardrailHits": [hit_json(h) for h in view.hits],
    }


# ---- the terminal


def short(epoch_ms: int | None) -> str:
    """A time for a table cell: `2026-01-03 09:30:00` (UTC), or `never`."""
    if epoch_ms is None:
        return "never"
    return clock.from_ms(epoch_ms).strftime("%Y-%m-%d %H:%M:%S")


def render_profile(
    view: ProfileView,
    events: Sequence[StoredEvent],
    dataset_names: Mapping[str, str] | None = None,
) -> RenderableType:
    """The whole profile for the terminal: attributes, identities, timeline, guardrail hits."""
    names = dataset_names or {}
    parts: list[RenderableType] = [
        Text.assemble(
            ("Profile ", "bold"),
            (view.graph_id, "bold cyan"),
            f"  (merge policy {view.policy.name!r}, "
            f"last modified {short(view.last_modified_ms)} UTC)",
        ),
        attributes_tree(view.attributes),
        computed_table(view.computed),
        identities_table(view.members),
        timeline_table(events, names),
    ]
    if view.hits:
        parts.append(hits_table(view.hits))
    return Group(*parts)


def attributes_tree(attributes: Mapping[str, Any]) -> Tree:
    """The merged attributes as a tree (`identityMap` left out: the identities table shows it)."""
    tree = Tree(Text("Attributes", style="bold"))
    shown = {k: v for k, v in attributes.items() if k != "identityMap"}
    if not shown:
        tree.add(Text("no record data yet (only events)", style="dim"))
    _branch(tree, shown)
    return tree


def _branch(tree: Tree, node: Mapping[str, Any]) -> None:
    for key in sorted(node):
        value = node[key]
        if isinstance(value, Mapping):
            _branch(tree.add(Text(str(key), style="bold")), value)
        elif isinstance(value, list):
            branch = tree.add(Text(f"{key} [{len(value)}]", style="bold"))
            for n, item in enumerate(value[:MAX_LIST_ITEMS]):
                if isinstance(item, Mapping):
                    _branch(branch.add(Text(f"[{n}]")), item)
                else:
                    branch.add(Text(str(item)))
            if len(value) > MAX_LIST_ITEMS:
                branch.add(Text(f"… {len(value) - MAX_LIST_ITEMS} more", style="dim"))
        else:
            tree.add(Text.assemble((f"{key}: ", "bold"), str(value)))


def computed_table(numbers: Computed) -> Table:
    """The computed attributes: first and last seen, orders, lifetime value, last cart."""
    table = Table(title="Computed attributes", title_justify="left", show_header=False)
    table.add_column("attribute", style="bold")
    table.add_column("value")
    cart = numbers.last_cart
    items = cart.get("items") if cart else None
    cart_text = "none"
    if cart is not None:
        count = len(items) if isinstance(items, list) else 0
        cart_text = f"{cart.get('cartID') or 'cart'}: {count} items at {short(cart.get('at_ms'))}"
    table.add_row("first seen", short(numbers.first_seen_ms))
    table.add_row("last seen", short(numbers.last_seen_ms))
    table.add_row("orders", str(numbers.orders))
    table.add_row("lifetime value", f"{numbers.lifetime_value:.2f}")
    table.add_row("last cart", cart_text)
    return table


def identities_table(members: Sequence[Member]) -> Table:
    """The identities of a profile, oldest first."""
    table = Table(title=f"Identities ({len(members)}, times in UTC)", title_justify="left")
    table.add_column("namespace")
    table.add_column("id", overflow="fold")
    table.add_column("first seen", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    for m in members:
        table.add_row(m.identity.namespace, m.identity.id, short(m.first_ms), short(m.last_ms))
    return table


def timeline_table(events: Sequence[StoredEvent], dataset_names: Mapping[str, str]) -> Table:
    """A timeline in the order given: time, event type, dataset (by name when known), summary."""
    table = Table(title=f"Timeline ({len(events)} events, times in UTC)", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("event type", overflow="fold")
    table.add_column("dataset", overflow="fold")
    table.add_column("summary")
    for e in events:
        dataset = dataset_names.get(e.dataset_id, e.dataset_id)
        table.add_row(short(e.ts_ms), e.event_type or "", dataset, summary(e))
    if not events:
        table.add_row("", Text("no events", style="dim"), "", "")
    return table


def hits_table(hits: Sequence[GuardrailHit]) -> Table:
    """Guardrail hits, newest first: when, which guardrail, the identity kept out, and why."""
    table = Table(title=f"Guardrail hits ({len(hits)})", title_justify="left")
    table.add_column("time", no_wrap=True)
    for column in ("guardrail", "identity kept out", "detail"):
        table.add_column(column, overflow="fold")
    for h in hits:
        table.add_row(short(h.at_ms), h.kind, str(h.identity), h.detail)
    return table


# ---- one line per event


def summary(event: StoredEvent) -> str:
    """A short line about an event: its order, its products, or the page it was on."""
    body = event.body
    parts = [_order(body), _products(body), _page(body)]
    text = "; ".join(p for p in parts if p)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _order(body: Mapping[str, Any]) -> str:
    commerce = body.get("commerce")
    order = commerce.get("order") if isinstance(commerce, Mapping) else None
    if not isinstance(order, Mapping) or not order.get("purchaseID"):
        return ""
    total = order.get("priceTotal")
    currency = order.get("currencyCode") or ""
    amount = f" {total} {currency}".rstrip() if total is not None else ""
    return f"order {order['purchaseID']}{amount}"


def _products(body: Mapping[str, Any]) -> str:
    items = body.get("productListItems")
    if not isinstance(items, list) or not items:
        return ""
    names = []
    for item in items[:3]:
        if isinstance(item, Mapping):
            label = item.get("SKU") or item.get("name") or "?"
            quantity = item.get("quantity")
            names.append(f"{label} x{quantity}" if quantity is not None else str(label))
    more = f" +{len(items) - 3}" if len(items) > 3 else ""
    return ", ".join(names) + more


def _page(body: Mapping[str, Any]) -> str:
    web = body.get("web")
    page = web.get("webPageDetails") if isinstance(web, Mapping) else None
    if not isinstance(page, Mapping):
        return ""
    return str(page.get("name") or page.get("URL") or "")
