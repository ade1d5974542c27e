"""An in-memory identity-graph store for tests: builds regions exactly as `graph.Region` says."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from koppla.platform.profiles.graph import GuardrailHit, Limits, Link, Region, RegionUpdate, link
from koppla.platform.profiles.identity import Identity


class MemoryGraph:
    """Graphs, links and hits in dicts; `observe()` loads a region, links, and writes back."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.graphs: dict[str, set[Identity]] = {}
        self.owner: dict[Identity, str] = {}
        self.links: dict[tuple[Identity, Identity], Link] = {}
        self.hits: list[GuardrailHit] = []
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        """Graph ids g1, g2, ... in the order they are asked for."""
        return f"g{next(self._ids)}"

    def region(self, observed: Sequence[Identity]) -> Region:
        """Every graph holding one of `observed`, and every link with both ends inside them."""
        gids = {self.owner[i] for i in observed if i in self.owner}
        graphs = {gid: set(self.graphs[gid]) for gid in gids}
        inside = set().union(*graphs.values()) if graphs else set()
        links = {
            key: Link(found.a, found.b, found.first_ms, found.last_ms, found.active)
            for key, found in self.links.items()
            if key[0] in inside and key[1] in inside
        }
        return Region(graphs, links)

    def observe(self, observed: Sequence[Identity], at_ms: int) -> RegionUpdate:
        """Link one observation and store what changed."""
        update = link(self.region(observed), observed, at_ms, self.limits, self.new_id)
        for gid in update.removed:
            del self.graphs[gid]
        for gid, members in update.graphs.items():
            self.graphs[gid] = set(members)
            for member in members:
                self.owner[member] = gid
        for changed in update.links:
            self.links[(changed.a, changed.b)] = changed
        self.hits.extend(update.hits)
        return update

    def graph_of(self, identity: Identity) -> set[Identity]:
        """The members of `identity`'s graph."""
        return self.graphs[self.owner[identity]]

    def partition(self) -> set[frozenset[Identity]]:
        """The graphs as a set of member sets, ids left out."""
        return {frozenset(members) for members in self.graphs.values()}
