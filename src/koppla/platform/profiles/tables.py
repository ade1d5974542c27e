"""The profile store's tables, one definition for SQLite (embedded) and PostgreSQL (server).

- `identities`: every identity seen, its integer node id, its graph and when it was seen.
- `links`: identities seen together (`a < b` by node id), when, and whether a guardrail keeps
  the link out of the graph (`active = 0`).
- `hits`: each time a guardrail kept a link out.
- `fragments`: the latest profile record per dataset and primary identity (record data).
- `tombstones`: identities whose record data was deleted, and when (older records stay out).
- `events`: the newest events of each identity, for the profile's timeline.
- `order_facts`: placed, refunded and cancelled amounts per order, from back-office events.
- `activity`: per identity, first and last event time and the last cart.
- `profiles`: per graph, the merged attributes under the default merge policy and the computed
  attributes, kept current as data arrives.
- `merge_policies`, `cursors`: configuration and how far each dataset has been read.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

identities = Table(
    "identities",
    metadata,
    Column("node", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("ns", String(64), nullable=False),
    Column("id", String(256), nullable=False),
    Column("graph_id", String(40), nullable=False),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Index("identities_by_key", "ns", "id", unique=True),
    Index("identities_by_graph", "graph_id"),
)

links = Table(
    "links",
    metadata,
    Column("a", BigInteger, primary_key=True),
    Column("b", BigInteger, primary_key=True),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("active", SmallInteger, nullable=False),
    Index("links_by_b", "b"),
)

hits = Table(
    "hits",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("graph_id", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ns", String(64), nullable=False),
    Column("id", String(256), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("hits_by_graph", "graph_id"),
)

fragments = Table(
    "fragments",
    metadata,
    Column("dataset_id", String(64), primary_key=True),
    Column("ns", String(64), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("record_id", String(256), nullable=False),
    Column("record", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Index("fragments_by_identity", "ns", "id"),
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("ns", String(64), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("deleted_ms", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(256), primary_key=True),
    Column("node", BigInteger, nullable=False),
    Column("dataset_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("event_type", String(128)),
    Column("body", Text, nullable=False),
    Index("events_by_node", "node", "ts_ms"),
)

order_facts = Table(
    "order_facts",
    metadata,
    Column("event_id", String(256), primary_key=True),
    Column("node", BigInteger, nullable=False),
    Column("purchase_id", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", Float, nullable=False),
    Column("currency", String(8)),
    Column("at_ms", BigInteger, nullable=False),
    Index("order_facts_by_node", "node"),
)

activity = Table(
    "activity",
    metadata,
    Column("node", BigInteger, primary_key=True),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("cart", Text),
    Column("cart_ms", BigInteger),
)

profiles = Table(
    "profiles",
    metadata,
    Column("graph_id", String(40), primary_key=True),
    Column("attributes", Text, nullable=False),
    Column("identities", Text, nullable=False),
    Column("sources", Text, nullable=False),
    Column("first_seen_ms", BigInteger),
    Column("last_seen_ms", BigInteger),
    Column("orders", Integer, nullable=False),
    Column("lifetime_value", Float, nullable=False),
    Column("last_cart", Text),
    Column("updated_ms", BigInteger, nullable=False),
)

merge_policies = Table(
    "merge_policies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("schema_class", String(64), nullable=False),
    Column("is_default", SmallInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

cursors = Table(
    "cursors",
    metadata,
    Column("dataset_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
