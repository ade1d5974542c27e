"""Merge policies: AEP's `/ups/config/mergePolicies`, kept in the profile store.

There is always a default policy for the profile class: on first use Koppla creates one,
timestamp-ordered with identity stitching (`pdg`), since a profile that stitches nothing is not
what a merchant connects a shop for. Making another policy the default unsets the old one (one
default per class, as in AEP); the default cannot be deleted while it is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from koppla.core import clock, ids
from koppla.core.errors import Conflict, NotFound
from koppla.platform.profiles.merge import (
    PROFILE_CLASS,
    MergePolicy,
    policy_from_api,
    policy_to_api,
)
from koppla.platform.profiles.store import ProfileStore

BUILTIN_ID = ids.derived_uuid("koppla", "merge-policy", "default-timestamp-ordered")


class PolicyBook:
    """Reads and changes the merge policies of one profile store."""

    def __init__(self, store: ProfileStore) -> None:
        self._store = store

    def all(self) -> list[MergePolicy]:
        """Every merge policy, oldest first (the built-in default is made on first use)."""
        policies = [
            _policy(policy_id, default, body)
            for policy_id, _, default, body, _ in self._store.policy_rows()
        ]
        if not policies:
            self.save(
                MergePolicy(
                    id=BUILTIN_ID,
                    name="Default timestamp-ordered",
                    default=True,
                    updated_ms=clock.now_ms(),
                )
            )
            return self.all()
        return policies

    def get(self, policy_id: str) -> MergePolicy:
        """The policy `policy_id`; `NotFound` otherwise."""
        for policy in self.all():
            if policy.id == policy_id:
                return policy
        raise NotFound(f"no merge policy {policy_id!r}")

    def default(self, schema_class: str = PROFILE_CLASS) -> MergePolicy:
        """The default policy of a class (the first one if, oddly, none is marked)."""
        policies = [p for p in self.all() if p.schema_class == schema_class]
        if not policies:
            raise NotFound(f"no merge policy for {schema_class!r}")
        return next((p for p in policies if p.default), policies[0])

    def create(self, body: Mapping[str, Any]) -> MergePolicy:
        """A new policy from an AEP request body (validated, naming the field at fault)."""
        policy = replace(policy_from_api(body), id=ids.new_uuid(), updated_ms=clock.now_ms())
        self.save(policy)
        return self.get(policy.id)

    def change(self, policy_id: str, body: Mapping[str, Any]) -> MergePolicy:
        """Replace a policy's settings (PUT); its version goes up by one."""
        old = self.get(policy_id)
        new = policy_from_api({**policy_to_api(old), **body})
        if old.default and not new.default:
            raise Conflict("make another merge policy the default instead of unsetting this one")
        policy = replace(new, id=old.id, version=old.version + 1, updated_ms=clock.now_ms())
        self.save(policy)
        return self.get(policy.id)

    def delete(self, policy_id: str) -> None:
        """Remove a policy; the default of its class cannot be removed."""
        policy = self.get(policy_id)
        if policy.default:
            raise Conflict("the default merge policy cannot be deleted; make another the default")
        self._store.delete_policy(policy_id)

    def save(self, policy: MergePolicy) -> None:
        """Store `policy` (a new default unsets the old default of its class)."""
        self._store.save_policy(
            policy.id, policy.schema_class, policy.default, policy_to_api(policy), policy.updated_ms
        )


def _policy(policy_id: str, default: bool, body: Mapping[str, Any]) -> MergePolicy:
    """A stored policy; its `default` flag comes from the store's column, not the body."""
    return replace(policy_from_api(body), id=policy_id, default=default)
