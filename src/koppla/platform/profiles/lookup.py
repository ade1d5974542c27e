"""Looking up a profile: by any of its identities, under any merge policy.

The read side of the profile store, for the API (`/data/core/ups/access/entities`, the identity
endpoints) and `koppla profile`. A profile is merged on read from its graph's fragments under the
policy asked for (the default when none is named), so a policy change shows at once; with
`identityGraph: none` only the fragments of the identity asked about take part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from koppla.platform.profiles.computed import Computed, computed
from koppla.platform.profiles.graph import GuardrailHit, Link
from koppla.platform.profiles.identity import Identity
from koppla.platform.profiles.merge import Fragment, MergePolicy, merged
from koppla.platform.profiles.policies import PolicyBook
from koppla.platform.profiles.store import ProfileStore
from koppla.platform.profiles.stored import Member, StoredEvent


@dataclass(frozen=True, slots=True)
class ProfileView:
    """One merged profile as a reader sees it."""

    graph_id: str
    asked: Identity
    members: list[Member]
    attributes: dict[str, object]
    sources: list[str]
    policy: MergePolicy
    computed: Computed
    last_modified_ms: int
    hits: list[GuardrailHit]


class ProfileLookup:
    """Finds profiles, their events and their identity graphs in one store."""

    def __init__(self, store: ProfileStore) -> None:
        self._store = store
        self.policies = PolicyBook(store)

    def members_of(self, identity: Identity, *, stitched: bool = True) -> list[Member]:
        """The identities of `identity`'s graph (only itself unless `stitched`); [] if unknown."""
        member = self._store.member(identity)
        if member is None:
            return []
        return self._store.members(member.graph_id) if stitched else [member]

    def profile(
        self, identity: Identity, policy: MergePolicy | str | None = None
    ) -> ProfileView | None:
        """The profile holding `identity`, merged by `policy` (a policy or its id; the default
        policy when None)."""
        if not isinstance(policy, MergePolicy):
            policy = self.policies.get(policy) if policy else self.policies.default()
        members = self.members_of(identity, stitched=policy.identity_graph == "pdg")
        if not members:
            return None
        stored = self._store.fragments(m.identity for m in members)
        fragments = [Fragment(f.dataset_id, f.identity, f.record, f.updated_ms) for f in stored]
        activity, facts = self._store.computed_inputs([m.node for m in members])
        numbers = computed(activity.values(), facts)
        modified = max([f.updated_ms for f in fragments] + [m.last_ms for m in members] + [0])
        attributes, winners = merged(fragments, policy)
        return ProfileView(
            graph_id=members[0].graph_id,
            asked=identity,
            members=members,
            attributes=attributes,
            sources=winners,
            policy=policy,
            computed=numbers,
            last_modified_ms=modified,
            hits=self._store.hits(members[0].graph_id, limit=20),
        )

    def events(
        self,
        identity: Identity,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[StoredEvent]:
        """The timeline of the profile holding `identity` (events of all its identities)."""
        members = self.members_of(identity)
        if not members:
            return []
        return self._store.events(
            [m.node for m in members],
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            newest_first=newest_first,
        )

    def links(self, members: Sequence[Member]) -> list[Link]:
        """The links among a graph's `members` (inactive ones too), newest first."""
        return self._store.graph_links(members) if members else []
