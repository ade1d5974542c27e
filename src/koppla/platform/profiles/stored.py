"""What the profile store holds, as the stage writes it and readers get it back.

Plain data: the identity graph's members, record fragments, timeline events, per-identity
activity and order facts, merged profile rows, and `Write`, the changes of one chunk that the
store applies in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from koppla.platform.profiles.graph import GuardrailHit, Link
from koppla.platform.profiles.identity import Identity


@dataclass(frozen=True, slots=True)
class Member:
    """One identity of a graph, with its node id and when it was first and last seen."""

    identity: Identity
    node: int
    graph_id: str
    first_ms: int
    last_ms: int


@dataclass(slots=True)
class GraphSlice:
    """The stored graph around some identities: their graphs' members and links among them."""

    members: dict[Identity, Member] = field(default_factory=dict)
    links: dict[tuple[Identity, Identity], Link] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredFragment:
    """A stored profile record: its dataset, primary identity, record and time."""

    dataset_id: str
    identity: Identity
    record_id: str
    record: dict[str, Any]
    updated_ms: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event of a profile's timeline."""

    event_id: str
    node: int
    dataset_id: str
    ts_ms: int
    event_type: str | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """A graph's merged profile under the default policy, and its computed attributes."""

    graph_id: str
    attributes: dict[str, Any]
    identities: list[str]
    sources: list[str]
    first_seen_ms: int | None
    last_seen_ms: int | None
    orders: int
    lifetime_value: float
    last_cart: dict[str, Any] | None
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Activity:
    """One identity's events in the store: first and last time, count kept, newest cart."""

    first_ms: int
    last_ms: int
    events: int
    cart: dict[str, Any] | None
    cart_ms: int | None


@dataclass(frozen=True, slots=True)
class Fact:
    """One order fact: an order placed, refunded or cancelled, filed under one identity."""

    event_id: str
    node: int
    purchase_id: str
    kind: str
    amount: float
    currency: str | None
    at_ms: int


@dataclass(slots=True)
class Write:
    """Everything one chunk changes, applied by `ProfileStore.write` in one transaction."""

    members: dict[Identity, Member] = field(default_factory=dict)
    new_nodes: set[int] = field(default_factory=set)
    links: dict[tuple[int, int], Link] = field(default_factory=dict)
    hits: list[GuardrailHit] = field(default_factory=list)
    fragments: dict[tuple[str, Identity], StoredFragment] = field(default_factory=dict)
    tombstones: dict[Identity, int] = field(default_factory=dict)
    events: list[StoredEvent] = field(default_factory=list)
    order_facts: list[Fact] = field(default_factory=list)
    activity: dict[int, Activity] = field(default_factory=dict)
    """Per node: what this chunk adds (times are merged with min/max, `events` is added)."""
    event_counts: dict[int, int] = field(default_factory=dict)
    """Per node: the timeline's size to store after pruning (replaces the added count)."""
    profiles: list[ProfileRow] = field(default_factory=list)
    removed_graphs: set[str] = field(default_factory=set)
    cursors: dict[str, int] = field(default_factory=dict)
