"""The identity graph: which identities belong to one person, with the guardrails real graphs need.

Pure: `link(region, observed, at_ms, limits, new_id)` takes the part of the graph an observation
touches and returns what changes. The profile store loads regions and writes updates; nothing
here does I/O.

How an observation (the identities of one record or event, primary first) is linked:

1. Cap: only the first `limits.max_per_observation` identities take part; when more were given,
   one `identities_per_event` hit is recorded and the rest are ignored (they get no graph).
2. Every pair of the remaining identities is a link, keyed `(min, max)`. A stored link gets its
   `first_ms`/`last_ms` widened to `at_ms`; a new one starts at `at_ms`. Links are never deleted.
3. Fast path: when the identities already share one graph, every pair is an active link and no
   link of the region is inactive, only link times change (`graphs_changed` is False).
4. Otherwise the region is recomputed: its links, newest first by
   `(last_ms desc, first_ms desc, a, b)`, are added greedily to a union-find that counts, per
   component, its identities and its identities per limited namespace. A link inside one
   component stays active; a link that would make a component exceed `max_identities` or a
   `per_namespace` limit is set inactive (so the oldest link is the one dropped); any other
   link joins its two components.
5. A `GuardrailHit` is recorded for every link left inactive that was new or active before. The
   identity kept out is the end in the smaller component (ties: the link's `b` end).
6. Each resulting component keeps the old graph id contributing most of its members (ties: the
   smallest id; larger components choose first; each id once), else gets `new_id()`.

A single identity (nothing to link) only makes sure it has a graph.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from koppla.platform.profiles.identity import Identity

MAX_IDENTITIES = 50
"""AEP's limit of identities in one graph."""

HitKind = Literal["max_identities", "namespace_limit", "identities_per_event"]

Key = tuple[Identity, Identity]


@dataclass(frozen=True, slots=True)
class Limits:
    """The guardrails: identities per graph, identities of one namespace per graph, per event."""

    max_identities: int = MAX_IDENTITIES
    per_namespace: Mapping[str, int] = field(default_factory=lambda: {"CustomerId": 1})
    max_per_observation: int = 20

    def __post_init__(self) -> None:
        limits = [self.max_identities, self.max_per_observation, *self.per_namespace.values()]
        if any(limit < 1 for limit in limits):
            raise ValueError(f"identity graph limits must be at least 1, got {self}")


@dataclass(slots=True)
class Link:
    """An edge between two identities seen together (`a < b`), and when.

    `active` is False when a guardrail keeps the link out of the graph; the link is still
    stored, so a later change (a newer sighting) can bring it back.
    """

    a: Identity
    b: Identity
    first_ms: int
    last_ms: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class GuardrailHit:
    """One time a guardrail kept a link out of a graph."""

    kind: HitKind
    graph_id: str
    identity: Identity
    detail: str
    at_ms: int


@dataclass(slots=True)
class Region:
    """The part of the graph one observation touches, as stored.

    `graphs`: every graph holding one of the observed identities, by id, with all its members.
    `links`: every stored link whose two ends are both members of those graphs.
    """

    graphs: dict[str, set[Identity]] = field(default_factory=dict)
    links: dict[tuple[Identity, Identity], Link] = field(default_factory=dict)


@dataclass(slots=True)
class RegionUpdate:
    """What one observation changes in its region.

    `graphs`: the region's graphs afterwards, by id, covering every member of the region and
    every linked observed identity. `links`: links to store (new ones and changed ones).
    `removed`: graph ids of the region no longer in use. `hits`: guardrails hit by this
    observation. `graphs_changed`: False when every graph kept its id and members, so the
    store need not rewrite memberships (the hot path).
    """

    graphs: dict[str, set[Identity]] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    hits: list[GuardrailHit] = field(default_factory=list)
    graphs_changed: bool = True


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why the union-find refused a link, and which identity it kept out."""

    kind: HitKind
    outside: Identity
    limit: str


def link(
    region: Region,
    observed: Sequence[Identity],
    at_ms: int,
    limits: Limits,
    new_id: Callable[[], str],
) -> RegionUpdate:
    """Link the identities of one observation (seen together at `at_ms`) into `region`.

    Does not modify `region`: changed links are returned as new `Link` objects.
    """
    seen = list(dict.fromkeys(observed))
    kept = seen[: limits.max_per_observation]
    if not kept:
        return RegionUpdate(graphs=dict(region.graphs), graphs_changed=False)
    touched, changed = _touch(region.links, kept, at_ms)
    if _stays(region, kept, touched):
        update = RegionUpdate(graphs=dict(region.graphs), links=changed, graphs_changed=False)
    else:
        update = _grow(region, kept, changed, limits, new_id) or _recompute(
            region, kept, touched, limits, new_id, at_ms
        )
    if len(seen) > len(kept):
        update.hits.append(_cap_hit(update.graphs, seen, len(kept), at_ms))
    return update


def _touch(
    stored: Mapping[Key, Link], kept: Sequence[Identity], at_ms: int
) -> tuple[dict[Key, Link], list[Link]]:
    """Every pair of `kept` as a link with `at_ms` applied, and those that differ from storage."""
    ordered = sorted(kept)
    touched: dict[Key, Link] = {}
    changed: list[Link] = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            old = stored.get((a, b))
            if old is None:
                fresh = Link(a, b, at_ms, at_ms)
            elif old.first_ms <= at_ms <= old.last_ms:
                touched[(a, b)] = old
                continue
            else:
                fresh = replace(
                    old, first_ms=min(old.first_ms, at_ms), last_ms=max(old.last_ms, at_ms)
                )
            touched[(a, b)] = fresh
            changed.append(fresh)
    return touched, changed


def _stays(region: Region, kept: Sequence[Identity], touched: Mapping[Key, Link]) -> bool:
    """True when the observation cannot change any graph (the fast path)."""
    if len(region.graphs) != 1:
        return False
    (members,) = region.graphs.values()
    if kept[0] not in members:
        return False
    if any(identity not in members for identity in kept[1:]):
        return False
    if len(kept) == 1:
        return True
    stored = region.links
    if any(key not in stored or not stored[key].active for key in touched):
        return False
    return all(stored_link.active for stored_link in stored.values())


def _grow(
    region: Region,
    kept: Sequence[Identity],
    changed: list[Link],
    limits: Limits,
    new_id: Callable[[], str],
) -> RegionUpdate | None:
    """The observation's graphs and new identities as one graph, when nothing can be refused.

    With every stored link of the region active and the union within every limit, the newest-
    first rebuild would accept every link (counts only grow, so no step of it can exceed a
    limit the whole does not): the answer is the union, named after its largest old graph
    (ties: the smallest id), as `_name` would. None when a rebuild is needed.
    """
    if any(not stored.active for stored in region.links.values()):
        return None
    union: set[Identity] = set(kept)
    for members in region.graphs.values():
        union |= members
    if len(union) > limits.max_identities:
        return None
    if limits.per_namespace:
        counts = Counter(i.namespace for i in union if i.namespace in limits.per_namespace)
        if any(count > limits.per_namespace[ns] for ns, count in counts.items()):
            return None
    old = sorted(region.graphs.items(), key=lambda item: (-len(item[1]), item[0]))
    graph_id = old[0][0] if old else new_id()
    removed = {gid for gid, _ in old[1:]}
    return RegionUpdate({graph_id: union}, changed, removed, graphs_changed=True)


def _graph_of(graphs: Mapping[str, set[Identity]], identity: Identity) -> str | None:
    return next((gid for gid, members in graphs.items() if identity in members), None)


def _recompute(
    region: Region,
    kept: Sequence[Identity],
    touched: Mapping[Key, Link],
    limits: Limits,
    new_id: Callable[[], str],
    at_ms: int,
) -> RegionUpdate:
    """Rebuild the region's graphs from all its links, newest first, within the limits."""
    links = {**region.links, **touched}
    forest = _Forest(limits)
    for members in region.graphs.values():
        forest.add_all(members)
    forest.add_all(kept)
    refusals: dict[Key, _Refusal] = {}
    for candidate in sorted(links.values(), key=_newest_first):
        refusal = forest.join(candidate.a, candidate.b)
        if refusal is not None:
            refusals[(candidate.a, candidate.b)] = refusal
    graphs, removed = _name(forest.components(), region.graphs, new_id)
    changed = _settle(region.links, touched, refusals)
    hits = _hits(region.links, refusals, links, graphs, at_ms)
    return RegionUpdate(graphs, changed, removed, hits, graphs_changed=graphs != region.graphs)


def _newest_first(candidate: Link) -> tuple[int, int, str, str, str, str]:
    a, b = candidate.a, candidate.b
    return (-candidate.last_ms, -candidate.first_ms, a.namespace, a.id, b.namespace, b.id)


def _settle(
    stored: Mapping[Key, Link], touched: Mapping[Key, Link], refusals: Mapping[Key, _Refusal]
) -> list[Link]:
    """The links to store: new ones, re-timed ones and those whose `active` flipped."""
    changed: list[Link] = []
    for key, candidate in touched.items():
        old = stored.get(key)
        active = key not in refusals
        if old is None or candidate is not old or old.active != active:
            changed.append(replace(candidate, active=active))
    for key, old in stored.items():
        if key not in touched and old.active == (key in refusals):
            changed.append(replace(old, active=not old.active))
    return changed


def _hits(
    stored: Mapping[Key, Link],
    refusals: Mapping[Key, _Refusal],
    links: Mapping[Key, Link],
    graphs: Mapping[str, set[Identity]],
    at_ms: int,
) -> list[GuardrailHit]:
    """One hit per link refused now that was new or active before."""
    hits: list[GuardrailHit] = []
    for key, refusal in refusals.items():
        old = stored.get(key)
        if old is not None and not old.active:
            continue
        edge = links[key]
        detail = (
            f"{refusal.limit}: link {edge.a} - {edge.b} (last seen {edge.last_ms}) left out, "
            f"{refusal.outside} kept out of the graph"
        )
        gid = _graph_of(graphs, refusal.outside) or ""
        hits.append(GuardrailHit(refusal.kind, gid, refusal.outside, detail, at_ms))
    return hits


def _cap_hit(
    graphs: Mapping[str, set[Identity]], seen: Sequence[Identity], cap: int, at_ms: int
) -> GuardrailHit:
    detail = (
        f"at most {cap} identities are linked per record or event: "
        f"{len(seen)} were given, {len(seen) - cap} ignored from {seen[cap]} on"
    )
    gid = _graph_of(graphs, seen[0]) or ""
    return GuardrailHit("identities_per_event", gid, seen[cap], detail, at_ms)


def _name(
    components: list[set[Identity]],
    old: Mapping[str, set[Identity]],
    new_id: Callable[[], str],
) -> tuple[dict[str, set[Identity]], set[str]]:
    """Give each component an old graph id when it can, else a new one; and the ids let go."""
    owner = {member: gid for gid, members in old.items() for member in members}
    candidates: list[tuple[int, str, int]] = []
    for n, component in enumerate(components):
        counts = Counter(owner[m] for m in component if m in owner)
        candidates.extend((-count, gid, n) for gid, count in counts.items())
    named: dict[int, str] = {}
    used: set[str] = set()
    for _, gid, n in sorted(candidates):
        if n not in named and gid not in used:
            named[n] = gid
            used.add(gid)
    graphs = {named.get(n) or new_id(): component for n, component in enumerate(components)}
    return graphs, set(old) - set(graphs)


class _Forest:
    """A union-find that tracks, per component, its size and its count per limited namespace."""

    __slots__ = ("_counts", "_limits", "_parent", "_size")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._parent: dict[Identity, Identity] = {}
        self._size: dict[Identity, int] = {}
        self._counts: dict[Identity, Counter[str]] = {}

    def add_all(self, identities: Iterable[Identity]) -> None:
        for identity in identities:
            self._add(identity)

    def _add(self, identity: Identity) -> None:
        if identity not in self._parent:
            self._parent[identity] = identity
            self._size[identity] = 1
            limited = identity.namespace in self._limits.per_namespace
            self._counts[identity] = Counter([identity.namespace] if limited else [])

    def find(self, identity: Identity) -> Identity:
        """The root of `identity`'s component (added as a singleton when unknown)."""
        self._add(identity)
        parent = self._parent
        root = identity
        while parent[root] != root:
            root = parent[root]
        while parent[identity] != root:
            parent[identity], identity = root, parent[identity]
        return root

    def join(self, a: Identity, b: Identity) -> _Refusal | None:
        """Join the components of `a` and `b` unless a limit forbids it; say why if so."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        outside = a if self._size[ra] < self._size[rb] else b
        small, large = (ra, rb) if outside == a else (rb, ra)
        refusal = self._refusal(small, large, outside)
        if refusal is None:
            self._parent[small] = large
            self._size[large] += self._size.pop(small)
            self._counts[large].update(self._counts.pop(small))
        return refusal

    def _refusal(self, small: Identity, large: Identity, outside: Identity) -> _Refusal | None:
        size = self._size[small] + self._size[large]
        if size > self._limits.max_identities:
            limit = f"{size} identities in one graph exceed the limit of "
            return _Refusal("max_identities", outside, limit + str(self._limits.max_identities))
        together = self._counts[small] + self._counts[large]
        for namespace, count in sorted(together.items()):
            allowed = self._limits.per_namespace[namespace]
            if count > allowed:
                limit = f"{count} {namespace} identities in one graph exceed the limit of {allowed}"
                return _Refusal("namespace_limit", outside, limit)
        return None

    def components(self) -> list[set[Identity]]:
        """The components, largest first (ties: by smallest member), for deterministic naming."""
        groups: dict[Identity, set[Identity]] = {}
        for identity in self._parent:
            groups.setdefault(self.find(identity), set()).add(identity)
        return sorted(groups.values(), key=lambda group: (-len(group), min(group)))
