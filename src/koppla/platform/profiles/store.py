"""The profile store: the identity graph, record fragments, timelines and merged profiles.

One interface over SQLAlchemy Core for two back-ends: SQLite under `<home>/profiles/` (the
embedded default) and PostgreSQL (`postgresql+psycopg://...`) for a server deployment. The
profile stage is its only writer (`write()` applies one chunk's changes, cursors included, in one
transaction, so a crash replays the chunk); the API and the CLI read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from koppla.core import codec
from koppla.core.ddl import create_all
from koppla.platform.profiles import tables as t
from koppla.platform.profiles.graph import GuardrailHit, Link
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.stored import (
    Activity,
    Fact,
    GraphSlice,
    Member,
    ProfileRow,
    StoredEvent,
    StoredFragment,
    Write,
)

CHUNK = 500
"""Most values in one SQL `IN (...)` list."""

SQLITE_CACHE_KIB = 65_536
"""Page cache per SQLite connection (64 MiB): the graph's indexes stay in memory as they grow."""

_IDENTITY = (
    "INSERT INTO identities (node, ns, id, graph_id, first_ms, last_ms) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (node) DO UPDATE SET graph_id = excluded.graph_id, "
    "first_ms = excluded.first_ms, last_ms = excluded.last_ms"
)
_LINK = (
    "INSERT INTO links (a, b, first_ms, last_ms, active) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (a, b) DO UPDATE SET first_ms = excluded.first_ms, "
    "last_ms = excluded.last_ms, active = excluded.active"
)
_HIT = "INSERT INTO hits (graph_id, kind, ns, id, detail, at_ms) VALUES (?, ?, ?, ?, ?, ?)"
_TOMBSTONE = (
    "INSERT INTO tombstones (ns, id, deleted_ms) VALUES (?, ?, ?) ON CONFLICT (ns, id) DO UPDATE "
    "SET deleted_ms = CASE WHEN excluded.deleted_ms > tombstones.deleted_ms "
    "THEN excluded.deleted_ms ELSE tombstones.deleted_ms END"
)
_FORGET = "DELETE FROM fragments WHERE updated_ms <= ? AND ns = ? AND id = ?"
_FRAGMENT = (
    "INSERT INTO fragments (dataset_id, ns, id, record_id, record, updated_ms) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset_id, ns, id) DO UPDATE SET "
    "record_id = excluded.record_id, record = excluded.record, updated_ms = excluded.updated_ms "
    "WHERE excluded.updated_ms >= fragments.updated_ms"
)
_EVENT = (
    "INSERT INTO events (event_id, node, dataset_id, ts_ms, event_type, body) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)
_FACT = (
    "INSERT INTO order_facts (event_id, node, purchase_id, kind, amount, currency, at_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
)
_ACTIVITY = (
    "INSERT INTO activity (node, first_ms, last_ms, events, cart, cart_ms) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node) DO UPDATE SET "
    "first_ms = CASE WHEN excluded.first_ms < activity.first_ms "
    "THEN excluded.first_ms ELSE activity.first_ms END, "
    "last_ms = CASE WHEN excluded.last_ms > activity.last_ms "
    "THEN excluded.last_ms ELSE activity.last_ms END, "
    "events = activity.events + excluded.events, "
    "cart = CASE WHEN excluded.cart_ms > COALESCE(activity.cart_ms, -1) "
    "THEN excluded.cart ELSE activity.cart END, "
    "cart_ms = CASE WHEN excluded.cart_ms > COALESCE(activity.cart_ms, -1) "
    "THEN excluded.cart_ms ELSE activity.cart_ms END"
)
_COUNT = "UPDATE activity SET events = ? WHERE node = ?"
_PROFILE = (
    "INSERT INTO profiles (graph_id, attributes, identities, sources, first_seen_ms, "
    "last_seen_ms, orders, lifetime_value, last_cart, updated_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (graph_id) DO UPDATE SET "
    "attributes = excluded.attributes, identities = excluded.identities, "
    "sources = excluded.sources, first_seen_ms = excluded.first_seen_ms, "
    "last_seen_ms = excluded.last_seen_ms, orders = excluded.orders, "
    "lifetime_value = excluded.lifetime_value, last_cart = excluded.last_cart, "
    "updated_ms = excluded.updated_ms"
)
_CURSOR = (
    "INSERT INTO cursors (dataset_id, version) VALUES (?, ?) "
    "ON CONFLICT (dataset_id) DO UPDATE SET version = excluded.version"
)


def store_url(setting: str, home: Path) -> str:
    """The store's SQLAlchemy URL: the setting, or SQLite under `<home>/profiles/`."""
    if setting:
        return setting
    path = (home / "profiles" / "profiles.sqlite").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_engine(url: str) -> Engine:
    """An engine for the store: SQLite in WAL mode with a busy timeout, or PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=4,
            max_overflow=8,
            connect_args={"timeout": 30, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.execute("PRAGMA wal_autocheckpoint=20000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)


class ProfileStore:
    """Reads and writes the profile store at one SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self.dialect = self.engine.dialect.name
        create_all(t.metadata, self.engine)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # ---- the graph
    def max_node(self) -> int:
        """The highest node id in use (0 when empty)."""
        with self._read() as conn:
            return int(conn.execute(select(func.max(t.identities.c.node))).scalar() or 0)

    def graph_slice(
        self, identities: Iterable[Identity], known: Mapping[int, Identity] | None = None
    ) -> GraphSlice:
        """The graphs holding any of `identities`: every member, and the links among them.

        `known`: identities already held by node id; links from the loaded graphs to them are
        returned too (so a caller holding other graphs sees the links between).
        """
        keys = list(set(identities))
        out = GraphSlice()
        with self._read() as conn:
            graph_ids = {
                str(row[0])
                for row in self._rows_in(
                    conn, "SELECT graph_id FROM identities WHERE", keys, pairs=True
                )
            }
            by_node: dict[int, Identity] = {}
            query = (
                "SELECT node, ns, id, graph_id, first_ms, last_ms FROM identities "
                "WHERE graph_id IN "
            )
            for node, ns, ident, graph_id, first, last in self._rows_in(
                conn, query, sorted(graph_ids)
            ):
                identity = Identity(ns, ident)
                out.members[identity] = Member(identity, int(node), graph_id, int(first), int(last))
                by_node[int(node)] = identity
            out.links = self._links(conn, by_node, known or {})
        return out

    def _rows_in(
        self, conn: Connection, sql: str, values: Sequence[Any], *, pairs: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql` followed by an `IN` list of `values`, a chunk at a time.

        With `pairs`, `values` are identities and `sql` ends in `WHERE`: the query asks
        `ns = ? AND id IN (...)` per namespace, which uses the `(ns, id)` index on both
        back-ends (a row-value `IN` does not on SQLite).
        """
        mark = "%s" if self.dialect == "postgresql" else "?"
        sql = sql.replace("?", mark)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if not pairs:
                for part in _chunks(values):
                    marks = "(" + ", ".join(mark for _ in part) + ")"
                    cursor.execute(sql + marks, tuple(part))
                    yield from cursor.fetchall()
                return
            by_namespace: dict[str, list[str]] = {}
            for namespace, ident in values:
                by_namespace.setdefault(namespace, []).append(ident)
            for namespace, idents in sorted(by_namespace.items()):
                for part in _chunks(idents):
                    marks = "(" + ", ".join(mark for _ in part) + ")"
                    cursor.execute(f"{sql} ns = {mark} AND id IN {marks}", (namespace, *part))
                    yield from cursor.fetchall()
        finally:
            cursor.close()

    def _links(
        self,
        conn: Connection,
        by_node: Mapping[int, Identity],
        known: Mapping[int, Identity] | None = None,
    ) -> dict[tuple[Identity, Identity], Link]:
        found: dict[tuple[Identity, Identity], Link] = {}
        nodes = sorted(by_node)
        other = known or {}
        for column in ("a", "b"):
            query = f"SELECT a, b, first_ms, last_ms, active FROM links WHERE {column} IN "
            for a_node, b_node, first, last, active in self._rows_in(conn, query, nodes):
                a = by_node.get(int(a_node)) or other.get(int(a_node))
                b = by_node.get(int(b_node)) or other.get(int(b_node))
                if a is None or b is None:
                    continue
                low, high = (a, b) if a < b else (b, a)
                found[(low, high)] = Link(low, high, int(first), int(last), bool(active))
        return found

    def member(self, identity: Identity) -> Member | None:
        """The stored identity, or None when it was never seen."""
        with self._read() as conn:
            row = conn.execute(
                select(t.identities).where(
                    t.identities.c.ns == identity.namespace, t.identities.c.id == identity.id
                )
            ).first()
        return None if row is None else _member(row)

    def members(self, graph_id: str) -> list[Member]:
        """Every identity of a graph, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.identities)
                .where(t.identities.c.graph_id == graph_id)
                .order_by(t.identities.c.first_ms, t.identities.c.node)
            )
            return [_member(r) for r in rows]

    def graph_links(self, members: Sequence[Member]) -> list[Link]:
        """The links among `members` (active and inactive), newest first."""
        with self._read() as conn:
            found = self._links(conn, {m.node: m.identity for m in members})
        return sorted(found.values(), key=lambda link: (-link.last_ms, link.a, link.b))

    def hits(self, graph_id: str | None = None, limit: int = 100) -> list[GuardrailHit]:
        """Guardrail hits, newest first, of one graph or of all."""
        query = select(t.hits).order_by(t.hits.c.seq.desc()).limit(limit)
        if graph_id is not None:
            query = query.where(t.hits.c.graph_id == graph_id)
        with self._read() as conn:
            return [
                GuardrailHit(r.kind, r.graph_id, Identity(r.ns, r.id), r.detail, int(r.at_ms))
                for r in conn.execute(query)
            ]

    # ---- records, events, computed attributes
    def fragments(self, identities: Iterable[Identity]) -> list[StoredFragment]:
        """The stored records of `identities`."""
        query = "SELECT dataset_id, ns, id, record_id, record, updated_ms FROM fragments WHERE"
        with self._read() as conn:
            return [
                StoredFragment(d, Identity(ns, ident), r, codec.loads(body), int(ms))
                for d, ns, ident, r, body, ms in self._rows_in(
                    conn, query, list(set(identities)), pairs=True
                )
            ]

    def events(
        self,
        nodes: Sequence[int],
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[StoredEvent]:
        """The stored events of `nodes` in `[start_ms, end_ms)`, by time."""
        query = select(t.events).where(t.events.c.node.in_(list(nodes)))
        if start_ms is not None:
            query = query.where(t.events.c.ts_ms >= start_ms)
        if end_ms is not None:
            query = query.where(t.events.c.ts_ms < end_ms)
        order = t.events.c.ts_ms.desc() if newest_first else t.events.c.ts_ms
        query = query.order_by(order, t.events.c.event_id).limit(limit)
        with self._read() as conn:
            return [
                StoredEvent(
                    r.event_id,
                    int(r.node),
                    r.dataset_id,
                    int(r.ts_ms),
                    r.event_type,
                    codec.loads(r.body),
                )
                for r in conn.execute(query)
            ]

    def profile(self, graph_id: str) -> ProfileRow | None:
        """The merged profile of a graph under the default policy."""
        return self.profile_rows([graph_id]).get(graph_id)

    def graph_members(self, graph_ids: Sequence[str]) -> dict[str, list[Member]]:
        """The members of each of `graph_ids`, by node id."""
        query = (
            "SELECT node, ns, id, graph_id, first_ms, last_ms FROM identities WHERE graph_id IN "
        )
        out: dict[str, list[Member]] = {}
        with self._read() as conn:
            for node, ns, ident, graph_id, first, last in self._rows_in(conn, query, graph_ids):
                member = Member(Identity(ns, ident), int(node), graph_id, int(first), int(last))
                out.setdefault(graph_id, []).append(member)
        for members in out.values():
            members.sort(key=lambda m: m.node)
        return out

    def set_attributes(self, rows: Sequence[tuple[str, dict[str, Any], list[str]]]) -> None:
        """Replace profiles' merged attributes and sources: `(graph id, attributes, sources)`."""
        dump = codec.dumps
        with self.engine.begin() as conn:
            self._many(
                conn,
                "UPDATE profiles SET attributes = ?, sources = ? WHERE graph_id = ?",
                [(dump(a).decode(), dump(s).decode(), g) for g, a, s in rows],
            )

    def graph_ids(self, batch: int = 2000) -> Iterator[list[str]]:
        """Every profile's graph id, `batch` at a time."""
        for part in self.rows("profiles", ["graph_id"], batch):
            yield [str(row[0]) for row in part]

    def profile_rows(self, graph_ids: Sequence[str]) -> dict[str, ProfileRow]:
        """The stored profiles of `graph_ids` that exist."""
        query = (
            "SELECT graph_id, attributes, identities, sources, first_seen_ms, last_seen_ms, "
            "orders, lifetime_value, last_cart, updated_ms FROM profiles WHERE graph_id IN "
        )
        with self._read() as conn:
            return {
                row[0]: _profile_tuple(row) for row in self._rows_in(conn, query, list(graph_ids))
            }

    def known_events(self, event_ids: Sequence[str]) -> set[str]:
        """The subset of `event_ids` already stored (on a timeline or as an order fact)."""
        found: set[str] = set()
        with self._read() as conn:
            for table in ("events", "order_facts"):
                query = f"SELECT event_id FROM {table} WHERE event_id IN "
                found.update(str(r[0]) for r in self._rows_in(conn, query, list(event_ids)))
        return found

    def tombstones(self, identities: Iterable[Identity]) -> dict[Identity, int]:
        """When the record data of each of `identities` was last deleted, if ever."""
        query = "SELECT ns, id, deleted_ms FROM tombstones WHERE"
        with self._read() as conn:
            return {
                Identity(ns, ident): int(ms)
                for ns, ident, ms in self._rows_in(conn, query, list(set(identities)), pairs=True)
            }

    def computed_inputs(self, nodes: Sequence[int]) -> tuple[dict[int, Activity], list[Fact]]:
        """The activity of each of `nodes` that has any, and their order facts."""
        activity: dict[int, Activity] = {}
        facts: list[Fact] = []
        values = list(nodes)
        with self._read() as conn:
            query = (
                "SELECT node, first_ms, last_ms, events, cart, cart_ms FROM activity WHERE node IN "
            )
            for node, first, last, count, cart, cart_ms in self._rows_in(conn, query, values):
                activity[int(node)] = Activity(
                    int(first),
                    int(last),
                    int(count),
                    None if cart is None else codec.loads(cart),
                    None if cart_ms is None else int(cart_ms),
                )
            query = (
                "SELECT event_id, node, purchase_id, kind, amount, currency, at_ms "
                "FROM order_facts WHERE node IN "
            )
            for event_id, node, purchase, kind, amount, currency, at_ms in self._rows_in(
                conn, query, values
            ):
                facts.append(
                    Fact(event_id, int(node), purchase, kind, float(amount), currency, int(at_ms))
                )
        return activity, facts

    def cursors(self) -> dict[str, int]:
        """How far each dataset has been read (Delta version)."""
        with self._read() as conn:
            return {r.dataset_id: int(r.version) for r in conn.execute(select(t.cursors))}

    # ---- merge policies
    def policy_rows(self) -> list[tuple[str, str, bool, dict[str, Any], int]]:
        """Every merge policy: (id, class, default, body, created), oldest first."""
        with self._read() as conn:
            rows = conn.execute(select(t.merge_policies).order_by(t.merge_policies.c.created_ms))
            return [
                (r.id, r.schema_class, bool(r.is_default), codec.loads(r.body), int(r.created_ms))
                for r in rows
            ]

    def save_policy(
        self, policy_id: str, schema_class: str, default: bool, body: Mapping[str, Any], at_ms: int
    ) -> None:
        """Create or replace a merge policy; a new default unsets the old one of its class."""
        policies = t.merge_policies
        with self.engine.begin() as conn:
            if default:
                conn.execute(
                    update(policies)
                    .where(policies.c.schema_class == schema_class, policies.c.id != policy_id)
                    .values(is_default=0)
                )
            values = {
                "id": policy_id,
                "schema_class": schema_class,
                "is_default": int(default),
                "body": codec.dumps(dict(body)).decode(),
                "created_ms": at_ms,
            }
            stmt = self._insert(policies).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[policies.c.id],
                    set_={"is_default": stmt.excluded.is_default, "body": stmt.excluded.body},
                )
            )

    def delete_policy(self, policy_id: str) -> bool:
        """Remove a merge policy; False when there was none."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(t.merge_policies).where(t.merge_policies.c.id == policy_id))
        return bool(done.rowcount)

    # ---- statistics and SQL
    def counts(self) -> dict[str, int]:
        """Rows per table."""
        out = {}
        with self._read() as conn:
            for table in t.metadata.sorted_tables:
                out[table.name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
        return out

    def summary(self) -> dict[str, int]:
        """How many profiles, identities and guardrail hits the store holds."""
        with self._read() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (
                    ("profiles", t.profiles),
                    ("identities", t.identities),
                    ("guardrailHits", t.hits),
                )
            }

    def rows(
        self, table: str, columns: Sequence[str], batch: int = 50_000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Every row of one store table, `batch` at a time (for SQL over profiles).

        Read through the driver's own cursor (a server-side one on PostgreSQL), so a million
        rows neither pass through SQLAlchemy's row objects nor sit in memory at once.
        """
        source = t.metadata.tables[table]
        names = ", ".join(source.c[c].name for c in columns)  # only the table's own columns
        with self._read() as conn:
            raw = conn.connection.dbapi_connection
            if raw is None:
                raise RuntimeError("the store's connection is closed")
            cursor = (
                raw.cursor(name="koppla_rows") if self.dialect == "postgresql" else raw.cursor()
            )
            try:
                cursor.execute(f"SELECT {names} FROM {source.name}")
                while True:
                    part = cursor.fetchmany(batch)
                    if not part:
                        return
                    yield [tuple(row) for row in part]
            finally:
                cursor.close()

    # ---- the one writer
    def write(self, change: Write) -> None:
        """Apply one chunk's changes and cursors in one transaction.

        Written with plain SQL through the driver (`executemany`): the upserts are the same
        text on SQLite and PostgreSQL, and a chunk writes tens of thousands of rows.
        """
        with self.engine.begin() as conn:
            self._write_graph(conn, change)
            self._write_data(conn, change)
            self._prune_events(conn, change)
            self._write_profiles(conn, change)
            self._many(conn, _CURSOR, list(change.cursors.items()))

    def _many(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            text = sql.replace("?", "%s") if self.dialect == "postgresql" else sql
            conn.exec_driver_sql(text, list(rows))

    def _write_graph(self, conn: Connection, change: Write) -> None:
        members = [
            (m.node, m.identity.namespace, m.identity.id, m.graph_id, m.first_ms, m.last_ms)
            for m in change.members.values()
        ]
        self._many(conn, _IDENTITY, members)
        links = [
            (a, b, link.first_ms, link.last_ms, int(link.active))
            for (a, b), link in change.links.items()
        ]
        self._many(conn, _LINK, links)
        hits = [
            (h.graph_id, h.kind, h.identity.namespace, h.identity.id, h.detail, h.at_ms)
            for h in change.hits
        ]
        self._many(conn, _HIT, hits)

    def _write_data(self, conn: Connection, change: Write) -> None:
        dump = codec.dumps
        tombstones = [(i.namespace, i.id, ms) for i, ms in change.tombstones.items()]
        self._many(conn, _TOMBSTONE, tombstones)
        self._many(conn, _FORGET, [(ms, ns, ident) for ns, ident, ms in tombstones])
        fragments = [
            (
                f.dataset_id,
                f.identity.namespace,
                f.identity.id,
                f.record_id,
                dump(f.record).decode(),
                f.updated_ms,
            )
            for f in change.fragments.values()
        ]
        self._many(conn, _FRAGMENT, fragments)
        events = [
            (e.event_id, e.node, e.dataset_id, e.ts_ms, e.event_type, dump(e.body).decode())
            for e in change.events
        ]
        self._many(conn, _EVENT, events)
        facts = [
            (f.event_id, f.node, f.purchase_id, f.kind, f.amount, f.currency, f.at_ms)
            for f in change.order_facts
        ]
        self._many(conn, _FACT, facts)
        activity = [
            (
                node,
                a.first_ms,
                a.last_ms,
                a.events,
                None if a.cart is None else dump(a.cart).decode(),
                a.cart_ms,
            )
            for node, a in change.activity.items()
        ]
        self._many(conn, _ACTIVITY, activity)
        self._many(conn, _COUNT, [(count, node) for node, count in change.event_counts.items()])

    def _write_profiles(self, conn: Connection, change: Write) -> None:
        gone = [(graph_id,) for graph_id in sorted(change.removed_graphs)]
        self._many(conn, "DELETE FROM profiles WHERE graph_id = ?", gone)
        dump = codec.dumps
        rows = [
            (
                p.graph_id,
                dump(p.attributes).decode(),
                dump(p.identities).decode(),
                dump(p.sources).decode(),
                p.first_seen_ms,
                p.last_seen_ms,
                p.orders,
                p.lifetime_value,
                None if p.last_cart is None else dump(p.last_cart).decode(),
                p.updated_ms,
            )
            for p in change.profiles
        ]
        self._many(conn, _PROFILE, rows)

    def _prune_events(self, conn: Connection, change: Write) -> None:
        """Keep only the newest `event_counts[node]` events of each node named there."""
        ev = t.events
        for node, keep in change.event_counts.items():
            newest = (
                select(ev.c.event_id)
                .where(ev.c.node == node)
                .order_by(ev.c.ts_ms.desc(), ev.c.event_id.desc())
                .limit(keep)
            )
            conn.execute(
                delete(ev).where(ev.c.node == node, ev.c.event_id.not_in(newest.scalar_subquery()))
            )

    def _insert(self, table: Table) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _member(row: Any) -> Member:
    return Member(
        Identity(row.ns, row.id), int(row.node), row.graph_id, int(row.first_ms), int(row.last_ms)
    )


def _profile_tuple(row: tuple[Any, ...]) -> ProfileRow:
    graph_id, attributes, identities, sources, first, last, orders, value, cart, updated = row
    return ProfileRow(
        graph_id=graph_id,
        attributes=codec.loads(attributes),
        identities=codec.loads(identities),
        sources=codec.loads(sources),
        first_seen_ms=first,
        last_seen_ms=last,
        orders=int(orders),
        lifetime_value=float(value),
        last_cart=None if cart is None else codec.loads(cart),
        updated_ms=int(updated),
    )
