"""The profile stage: observations in, identity graph and profiles updated, in one write.

`ProfileStage.apply(observations, cursors)` takes what a chunk of profile-enabled datasets holds
(records and events, see `observation.observe`) and:
1. links the identities of each observation into the graph (`graph.link`, with the guardrails),
   on an in-memory slice of the stored graph around the chunk's identities;
2. keeps each record as the fragment of its dataset and primary identity (the newest wins; a
   deleted account's older records stay out), and each new event on its primary identity's
   timeline, with the activity and order facts the computed attributes come from;
3. re-merges the profile of every graph the chunk touched, under the default merge policy;
4. writes all of it, and the cursors the chunk reached, in one transaction of the store.
A crash before the write loses nothing (the chunk is read again); replays change nothing (events
are keyed by `_id`, fragments keep the newest, links and times merge by max and min).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from koppla.core import clock, ids
from koppla.platform.profiles.computed import computed
from koppla.platform.profiles.graph import Limits, Link, Region, link
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.merge import Fragment, MergePolicy, merged
from koppla.platform.profiles.observation import Observation
from koppla.platform.profiles.store import ProfileStore
from koppla.platform.profiles.stored import (
    Activity,
    Fact,
    Member,
    ProfileRow,
    StoredEvent,
    StoredFragment,
    Write,
)

log = logging.getLogger(__name__)

MERGES_HELD = 100_000
"""Most merge results the stage keeps between chunks (then it starts afresh)."""

PRUNE_SLACK = 1.5
"""A timeline is cut back to `events_kept` once it holds this many times as many events."""


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one `apply` did."""

    observations: int
    links: int
    hits: int
    profiles: int


@dataclass(slots=True)
class _Graph:
    """The in-memory slice of the graph one chunk works on."""

    members: dict[Identity, Member] = field(default_factory=dict)
    links: dict[tuple[Identity, Identity], Link] = field(default_factory=dict)
    graphs: dict[str, set[Identity]] = field(default_factory=dict)
    adjacent: dict[Identity, set[tuple[Identity, Identity]]] = field(default_factory=dict)
    nodes: dict[int, Identity] = field(default_factory=dict)

    def absorb(
        self, members: Mapping[Identity, Member], links: Mapping[tuple[Identity, Identity], Link]
    ) -> None:
        """Add whole graphs loaded from the store (and links to identities already held)."""
        for identity, member in members.items():
            self.members[identity] = member
            self.nodes[member.node] = identity
            self.graphs.setdefault(member.graph_id, set()).add(identity)
        for key, one in links.items():
            self.links[key] = one
            self.adjacent.setdefault(key[0], set()).add(key)
            self.adjacent.setdefault(key[1], set()).add(key)

    def region(self, observed: Sequence[Identity]) -> Region:
        """The graphs of `observed` and the links among their members."""
        graph_ids = {self.members[i].graph_id for i in observed if i in self.members}
        graphs = {g: self.graphs[g] for g in graph_ids}
        if len(graphs) == 1:
            (inside,) = graphs.values()
        else:
            inside = set().union(*graphs.values()) if graphs else set()
        links: dict[tuple[Identity, Identity], Link] = {}
        for identity in inside:
            for key in self.adjacent.get(identity, ()):
                if key[0] in inside and key[1] in inside:
                    links[key] = self.links[key]
        return Region(graphs, links)


@dataclass(slots=True)
class _Cache:
    """What the stage holds between chunks: whole graphs, profile rows, activity and facts.

    The stage is the store's only writer, so what it wrote is what the store holds; the cache
    is dropped when a write fails or it grows past its limit, and is then read again.
    """

    graph: _Graph = field(default_factory=_Graph)
    rows: dict[str, ProfileRow] = field(default_factory=dict)
    activity: dict[int, Activity] = field(default_factory=dict)
    facts: dict[int, list[Fact]] = field(default_factory=dict)
    loaded: set[int] = field(default_factory=set)
    """Nodes whose activity and facts are held (absent from `activity`: none stored)."""
    records: dict[Identity, dict[str, StoredFragment]] = field(default_factory=dict)
    """Record fragments by identity and dataset, for the identities loaded (empty: none)."""
    merges: dict[tuple[object, ...], tuple[dict[str, Any], list[str]]] = field(default_factory=dict)
    """Merge results by policy and fragments: a graph that gained an identity but no record
    merges to what it did before, so the merge is not done again."""


class ProfileStage:
    """Turns observations into graph, fragment, timeline and profile changes; one per store."""

    def __init__(
        self,
        store: ProfileStore,
        *,
        limits: Limits | None = None,
        events_kept: int = 100,
        policy: Callable[[], MergePolicy],
        cache_identities: int = 500_000,
    ) -> None:
        self._store = store
        self._limits = limits or Limits()
        self._events_kept = events_kept
        self._policy = policy
        self._next_node = store.max_node() + 1
        self._cache_identities = cache_identities
        self._cache: _Cache | None = None

    def apply(self, observations: Sequence[Observation], cursors: Mapping[str, int]) -> ApplyReport:
        """Apply a chunk's observations and record `cursors`, all in one store transaction."""
        cache = self._cache or _Cache()
        self._cache = None
        report = self._apply(cache, observations, cursors)
        if len(cache.graph.members) <= self._cache_identities:
            self._cache = cache
        return report

    def _apply(
        self, cache: _Cache, observations: Sequence[Observation], cursors: Mapping[str, int]
    ) -> ApplyReport:
        change = Write(cursors=dict(cursors))
        graph = cache.graph
        missing = {i for o in observations for i in o.identities if i not in graph.members}
        if missing:
            found = self._store.graph_slice(missing, known=graph.nodes)
            graph.absorb(found.members, found.links)
        touched: set[str] = set()
        dirty: set[str] = set()
        known = self._store.known_events([o.record_id for o in observations if o.kind == "event"])
        tombstones = self._store.tombstones(
            {o.primary for o in observations if o.kind == "record"}
            | {i for o in observations for i in o.deletes}
        )
        for obs in observations:
            regrouped = self._link(graph, obs, change)
            dirty |= regrouped
            touched |= regrouped
            home = graph.members[obs.primary].graph_id
            touched.add(home)
            if obs.kind == "record":
                dirty.add(home)
                self._record(obs, change, tombstones)
            elif obs.record_id not in known:
                known.add(obs.record_id)
                self._event(obs, graph.members[obs.primary].node, change, tombstones)
                dirty.update(graph.members[i].graph_id for i in obs.deletes if i in graph.members)
        touched.update(g for g in {m.graph_id for m in change.members.values()})
        touched -= change.removed_graphs
        touched &= graph.graphs.keys()
        cache.loaded |= change.new_nodes  # nothing stored for them yet: no need to ask
        for member in change.members.values():
            if member.node in change.new_nodes:
                cache.records.setdefault(member.identity, {})
        change.profiles = self._profiles(cache, touched, dirty, change)
        self._store.write(change)
        self._remember(cache, change)
        return ApplyReport(len(observations), len(change.links), len(change.hits), len(touched))

    def remerge_all(self, batch: int = 2000) -> int:
        """Merge every stored profile again under the current default policy; returns how many.

        For a change of the default merge policy: the profiles kept for SQL were merged under
        the old one (lookups merge on read and need nothing). Computed attributes stay as they
        are.
        """
        policy = self._policy()
        done = 0
        for graph_ids in list(self._store.graph_ids(batch)):
            members = self._store.graph_members(graph_ids)
            identities = [m.identity for ms in members.values() for m in ms]
            by_identity: dict[Identity, list[Fragment]] = {}
            for f in self._store.fragments(identities):
                by_identity.setdefault(f.identity, []).append(
                    Fragment(f.dataset_id, f.identity, f.record, f.updated_ms)
                )
            rows = []
            for graph_id, ms in members.items():
                parts = [f for m in ms for f in by_identity.get(m.identity, ())]
                attributes, winners = merged(parts, policy)
                rows.append((graph_id, attributes, winners))
            self._store.set_attributes(rows)
            done += len(rows)
        self._cache = None
        return done

    def _link(self, graph: _Graph, obs: Observation, change: Write) -> set[str]:
        """Link one observation's identities into the in-memory graph; note what changed.

        Returns the graphs whose members changed (each must be merged again), including one
        that only lost members to a guardrail.
        """
        update = link(graph.region(obs.identities), obs.identities, obs.at_ms, self._limits, _gid)
        for graph_id in update.removed:
            graph.graphs.pop(graph_id, None)
            change.removed_graphs.add(graph_id)
        for graph_id, members in update.graphs.items():
            change.removed_graphs.discard(graph_id)
            graph.graphs[graph_id] = set(members)
            for identity in members:
                self._place(graph, identity, graph_id, change, obs.at_ms)
        for identity in obs.identities:
            member = graph.members.get(identity)
            if member is not None and not (member.first_ms <= obs.at_ms <= member.last_ms):
                seen = replace(
                    member,
                    first_ms=min(member.first_ms, obs.at_ms),
                    last_ms=max(member.last_ms, obs.at_ms),
                )
                graph.members[identity] = change.members[identity] = seen
        for one in update.links:
            key = (one.a, one.b)
            graph.links[key] = one
            graph.adjacent.setdefault(one.a, set()).add(key)
            graph.adjacent.setdefault(one.b, set()).add(key)
            a, b = graph.members[one.a].node, graph.members[one.b].node
            change.links[(min(a, b), max(a, b))] = one
        change.hits.extend(update.hits)
        return set(update.graphs) if update.graphs_changed else set()

    def _place(
        self, graph: _Graph, identity: Identity, graph_id: str, change: Write, at_ms: int
    ) -> None:
        member = graph.members.get(identity)
        if member is None:
            member = Member(identity, self._next_node, graph_id, at_ms, at_ms)
            self._next_node += 1
            change.new_nodes.add(member.node)
            graph.nodes[member.node] = identity
        elif member.graph_id == graph_id:
            return
        else:
            member = replace(member, graph_id=graph_id)
        graph.members[identity] = change.members[identity] = member

    def _record(self, obs: Observation, change: Write, tombstones: dict[Identity, int]) -> None:
        """Keep a record as its dataset's fragment of its primary identity, unless outdated."""
        deleted = tombstones.get(obs.primary)
        if deleted is not None and obs.at_ms <= deleted:
            return
        key = (obs.dataset_id, obs.primary)
        held = change.fragments.get(key)
        if held is not None and held.updated_ms > obs.at_ms:
            return
        change.fragments[key] = StoredFragment(
            obs.dataset_id, obs.primary, obs.record_id, dict(obs.body), obs.at_ms
        )

    def _event(
        self, obs: Observation, node: int, change: Write, tombstones: dict[Identity, int]
    ) -> None:
        """File a new event on its primary identity: timeline, activity, order facts, deletes."""
        change.events.append(
            StoredEvent(
                obs.record_id, node, obs.dataset_id, obs.at_ms, obs.event_type, dict(obs.body)
            )
        )
        held = change.activity.get(node)
        cart_ms = obs.at_ms if obs.cart is not None else None
        if held is None:
            cart = None if obs.cart is None else dict(obs.cart)
            change.activity[node] = Activity(obs.at_ms, obs.at_ms, 1, cart, cart_ms)
        else:
            newer = cart_ms is not None and cart_ms > (held.cart_ms or -1)
            change.activity[node] = Activity(
                min(held.first_ms, obs.at_ms),
                max(held.last_ms, obs.at_ms),
                held.events + 1,
                dict(obs.cart) if newer and obs.cart is not None else held.cart,
                cart_ms if newer else held.cart_ms,
            )
        if obs.order is not None:
            fact = obs.order
            change.order_facts.append(
                Fact(
                    obs.record_id,
                    node,
                    fact.purchase_id,
                    fact.kind,
                    fact.amount,
                    fact.currency,
                    obs.at_ms,
                )
            )
        for identity in obs.deletes:
            when = max(tombstones.get(identity, obs.at_ms), obs.at_ms)
            tombstones[identity] = change.tombstones[identity] = when
            for key, fragment in list(change.fragments.items()):
                if fragment.identity == identity and fragment.updated_ms <= when:
                    del change.fragments[key]

    def _profiles(
        self, cache: _Cache, touched: Iterable[str], dirty: set[str], change: Write
    ) -> list[ProfileRow]:
        """The profile of every touched graph: merged again where `dirty`, else re-counted.

        A graph whose members and records did not change keeps its merged attributes; only
        its computed attributes (times, orders, cart) are brought up to date.
        """
        graph = cache.graph
        graph_ids = sorted(touched)
        unknown = [g for g in graph_ids if g not in dirty and g not in cache.rows]
        if unknown:
            cache.rows.update(self._store.profile_rows(unknown))
        kept = {g: cache.rows[g] for g in graph_ids if g not in dirty and g in cache.rows}
        remerge = [g for g in graph_ids if g not in kept]
        fragments = self._fragments(cache, remerge, change)
        nodes = [graph.members[i].node for g in graph_ids for i in graph.graphs[g]]
        self._load_inputs(cache, nodes)
        self._overlay(cache.activity, change)
        pending: dict[int, list[Fact]] = {}
        for fact in change.order_facts:
            pending.setdefault(fact.node, []).append(fact)
        policy = self._policy()
        now = clock.now_ms()
        rows = []
        for graph_id in graph_ids:
            members = sorted(graph.graphs[graph_id], key=lambda i: graph.members[i].node)
            member_nodes = [graph.members[i].node for i in members]
            old = kept.get(graph_id)
            if old is not None:
                attributes, winners = old.attributes, old.sources
            else:
                parts = [f for i in members for f in fragments.get(i, ())]
                attributes, winners = self._merged(cache, parts, policy)
            numbers = computed(
                [cache.activity[n] for n in member_nodes if n in cache.activity],
                [f for n in member_nodes for f in (*cache.facts.get(n, ()), *pending.get(n, ()))],
            )
            rows.append(
                ProfileRow(
                    graph_id=graph_id,
                    attributes=attributes,
                    identities=[str(i) for i in members],
                    sources=winners,
                    first_seen_ms=numbers.first_seen_ms,
                    last_seen_ms=numbers.last_seen_ms,
                    orders=numbers.orders,
                    lifetime_value=numbers.lifetime_value,
                    last_cart=numbers.last_cart,
                    updated_ms=now,
                )
            )
        return rows

    def _merged(
        self, cache: _Cache, parts: Sequence[StoredFragment], policy: MergePolicy
    ) -> tuple[dict[str, Any], list[str]]:
        """`merged()` of `parts`, or the answer it gave before for the very same fragments."""
        if not parts:
            return {}, []
        key = (
            policy.id,
            policy.version,
            policy.updated_ms,
            *sorted((f.dataset_id, f.identity, f.record_id, f.updated_ms) for f in parts),
        )
        held = cache.merges.get(key)
        if held is None:
            held = merged(
                [Fragment(f.dataset_id, f.identity, f.record, f.updated_ms) for f in parts],
                policy,
            )
            if len(cache.merges) >= MERGES_HELD:
                cache.merges.clear()
            cache.merges[key] = held
        return held

    def _load_inputs(self, cache: _Cache, nodes: Iterable[int]) -> None:
        """Make sure the activity and order facts of `nodes` are held in the cache."""
        missing = [n for n in nodes if n not in cache.loaded]
        if not missing:
            return
        activity, facts = self._store.computed_inputs(missing)
        cache.activity.update(activity)
        for fact in facts:
            cache.facts.setdefault(fact.node, []).append(fact)
        cache.loaded.update(missing)

    def _remember(self, cache: _Cache, change: Write) -> None:
        """After a write: hold what was written (profiles, facts, cut-back timelines)."""
        for graph_id in change.removed_graphs:
            cache.rows.pop(graph_id, None)
        cache.rows.update((row.graph_id, row) for row in change.profiles)
        for fact in change.order_facts:
            cache.facts.setdefault(fact.node, []).append(fact)
        for node, count in change.event_counts.items():
            cache.activity[node] = replace(cache.activity[node], events=count)
        for (dataset_id, identity), fragment in change.fragments.items():
            held = cache.records.get(identity)
            if held is not None:
                old = held.get(dataset_id)
                if old is None or old.updated_ms <= fragment.updated_ms:
                    held[dataset_id] = fragment
        for identity, deleted in change.tombstones.items():
            held = cache.records.get(identity)
            if held is not None:
                for dataset_id, fragment in list(held.items()):
                    if fragment.updated_ms <= deleted:
                        del held[dataset_id]

    def _fragments(
        self, cache: _Cache, graph_ids: Sequence[str], change: Write
    ) -> dict[Identity, list[StoredFragment]]:
        """The record fragments of the graphs' members: stored, overlaid by this chunk's."""
        identities = {i for g in graph_ids for i in cache.graph.graphs[g]}
        if not identities:
            return {}
        missing = identities - cache.records.keys()
        if missing:
            for identity in missing:
                cache.records[identity] = {}
            for f in self._store.fragments(missing):
                cache.records[f.identity][f.dataset_id] = f
        pending: dict[Identity, list[StoredFragment]] = {}
        for (_, who), fragment in change.fragments.items():
            if who in identities:
                pending.setdefault(who, []).append(fragment)
        by_identity: dict[Identity, list[StoredFragment]] = {}
        for identity in identities:
            held = dict(cache.records[identity])
            for fragment in pending.get(identity, ()):
                old = held.get(fragment.dataset_id)
                if old is None or old.updated_ms <= fragment.updated_ms:
                    held[fragment.dataset_id] = fragment
            deleted = change.tombstones.get(identity)
            kept = [f for f in held.values() if deleted is None or f.updated_ms > deleted]
            if kept:
                by_identity[identity] = kept
        return by_identity

    def _overlay(self, activity: dict[int, Activity], change: Write) -> None:
        """Combine stored activity with this chunk's, and decide which timelines to cut back."""
        for node, added in change.activity.items():
            held = activity.get(node)
            if held is None:
                activity[node] = added
                total = added.events
            else:
                newer = added.cart_ms is not None and added.cart_ms > (held.cart_ms or -1)
                total = held.events + added.events
                activity[node] = Activity(
                    min(held.first_ms, added.first_ms),
                    max(held.last_ms, added.last_ms),
                    total,
                    added.cart if newer else held.cart,
                    added.cart_ms if newer else held.cart_ms,
                )
            if total > self._events_kept * PRUNE_SLACK:
                change.event_counts[node] = self._events_kept


def _gid() -> str:
    return ids.new_hex_id()
