"""Merging a profile: the record fragments of one identity graph, by a merge policy.

Pure. `merge(fragments, policy)` gives the profile's attributes; `sources()` the datasets that
gave at least one of them. The rules:

- Objects merge field by field, recursively. A leaf (a scalar, an array, or an XDM map, whose
  dotted path the caller lists in `maps`) comes whole from one fragment: arrays are never
  concatenated. A null or absent value takes no part, so a fragment without a field never
  blanks out another fragment's value.
- The fragments are ranked, and each leaf comes from the highest-ranked fragment that has it.
  `timestampOrdered` (the default, "latest wins"): greater `updated_ms` first; ties go to the
  larger `dataset_id`, then the larger identity, so the answer never depends on input order
  (given one fragment per dataset and identity, as the profile store keeps them).
  `dataSetPrecedence`: datasets in `order` first, in that order; datasets not listed come after
  all listed ones; fragments of one dataset (or of unlisted ones) rank as `timestampOrdered`.
- Where fragments disagree on a field's shape, the highest-ranked one decides: an object there
  merges with the other fragments' objects at that path and ignores their non-object values; a
  leaf there is taken whole.
- The top-level `identityMap` is the union of every fragment's items, per namespace (spelled the
  one standard way), each identity once with its id as the identity graph keys it (emails
  lower-cased, ...). An item keeps the fields of the highest-ranked fragment that has it, and
  `primary` is true when any fragment marks it primary (so a profile may show one primary per
  kind of record, e.g. the ECID of events and the CustomerId of the account record). Items that
  cannot identify anyone (empty ids, the all-zero ECID) are left out.
- Values are shared with the fragments, not copied: treat the result as read-only or copy it.

`policy_from_api` reads an AEP merge-policy body (`POST/PUT /ups/config/mergePolicies`) and
`policy_to_api` writes AEP's `MergePolicy` shape.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from koppla.core.errors import InvalidInput
from koppla.platform.profiles.identity import Identity, namespace_symbol, normalise

PROFILE_CLASS = "_xdm.context.profile"
"""The one schema class profile merge policies are made for."""

AttributeMerge = Literal["timestampOrdered", "dataSetPrecedence"]
IdentityGraph = Literal["none", "pdg"]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One record's part of a profile: the dataset it is stored in and its primary identity."""

    dataset_id: str
    identity: Identity
    record: Mapping[str, Any]
    updated_ms: int


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """How the fragments of one profile merge (AEP's merge policy)."""

    id: str
    name: str
    schema_class: str = PROFILE_CLASS
    default: bool = False
    attribute_merge: AttributeMerge = "timestampOrdered"
    order: tuple[str, ...] = ()
    identity_graph: IdentityGraph = "pdg"
    active_on_edge: bool = False
    version: int = 1
    updated_ms: int = 0


def merge(
    fragments: Sequence[Fragment], policy: MergePolicy, *, maps: Collection[str] = ()
) -> dict[str, Any]:
    """The profile's attributes: `fragments` merged by `policy` (see the module docstring).

    `maps`: dotted paths (e.g. `_custom.preferences`) of XDM map fields, taken whole.
    """
    return merged(fragments, policy, maps=maps)[0]


def sources(
    fragments: Sequence[Fragment], policy: MergePolicy, *, maps: Collection[str] = ()
) -> list[str]:
    """The datasets that gave the merged profile at least one value, highest-ranked first."""
    return merged(fragments, policy, maps=maps)[1]


def merged(
    fragments: Sequence[Fragment], policy: MergePolicy, *, maps: Collection[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """`merge()` and `sources()` of `fragments` in one pass (what the profile stage needs)."""
    if not fragments:
        return {}, []
    merger = _Merger(fragments, policy, maps)
    winners = list(dict.fromkeys(merger.ranked[n].dataset_id for n in sorted(merger.winners)))
    return merger.result, winners


def ranked(fragments: Sequence[Fragment], policy: MergePolicy) -> list[Fragment]:
    """`fragments` from the one whose values win to the one whose values lose."""
    if policy.attribute_merge == "timestampOrdered":
        return sorted(fragments, key=_latest, reverse=True)
    place = {dataset: len(policy.order) - n for n, dataset in enumerate(policy.order)}
    return sorted(fragments, key=lambda f: (place.get(f.dataset_id, 0), *_latest(f)), reverse=True)


def _latest(fragment: Fragment) -> tuple[int, str, str, str]:
    identity = fragment.identity
    return (fragment.updated_ms, fragment.dataset_id, identity.namespace, identity.id)


class _Merger:
    """One merge: the ranked fragments, the result, and which fragments won a value."""

    def __init__(
        self, fragments: Sequence[Fragment], policy: MergePolicy, maps: Collection[str]
    ) -> None:
        self.ranked = ranked(fragments, policy)
        self.winners: set[int] = set()
        self._maps = frozenset(maps)
        records = [(f.record, n) for n, f in enumerate(self.ranked)]
        self.result = self._objects(records, "")
        identity_map = self._identity_map()
        if identity_map:
            self.result["identityMap"] = identity_map

    def _objects(self, objects: list[tuple[Mapping[str, Any], int]], path: str) -> dict[str, Any]:
        """Merge `objects` (highest-ranked first, with their fragment's rank) field by field."""
        out: dict[str, Any] = {}
        keys = dict.fromkeys(key for obj, _ in objects for key in obj)
        for key in keys:
            if not path and key == "identityMap":
                continue
            present = [(obj[key], n) for obj, n in objects if obj.get(key) is not None]
            if not present:
                continue
            where = f"{path}.{key}" if path else key
            top, n = present[0]
            if isinstance(top, Mapping) and where not in self._maps:
                inner = [(value, m) for value, m in present if isinstance(value, Mapping)]
                out[key] = self._objects(inner, where)
            else:
                out[key] = top
                self.winners.add(n)
        return out

    def _identity_map(self) -> dict[str, list[dict[str, Any]]]:
        """The union of every fragment's identityMap items (see the module docstring)."""
        out: dict[str, list[dict[str, Any]]] = {}
        held: dict[Identity, dict[str, Any]] = {}
        for n, fragment in enumerate(self.ranked):
            for identity, item in _items(fragment.record.get("identityMap")):
                kept = held.get(identity)
                if kept is None:
                    kept = held[identity] = {**item, "id": identity.id}
                    out.setdefault(identity.namespace, []).append(kept)
                    self.winners.add(n)
                elif item.get("primary") is True:
                    kept["primary"] = True
        return out


def _items(identity_map: Any) -> list[tuple[Identity, Mapping[str, Any]]]:
    """The usable items of one identityMap, each with the identity it names."""
    if not isinstance(identity_map, Mapping):
        return []
    found: list[tuple[Identity, Mapping[str, Any]]] = []
    for namespace, items in identity_map.items():
        if not isinstance(namespace, str) or not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                identity = normalise(namespace_symbol(namespace), item["id"])
                if identity is not None:
                    found.append((identity, item))
    return found


def policy_from_api(body: Mapping[str, Any]) -> MergePolicy:
    """A merge policy from an AEP request body; `InvalidInput` naming the field at fault.

    Reads `name` (required), `schema.name` (must be `_xdm.context.profile`),
    `identityGraph.type` (`none` | `pdg`), `attributeMerge.type` (`timestampOrdered` |
    `dataSetPrecedence`) and `attributeMerge.order` (dataset ids, required and non-empty for
    `dataSetPrecedence`, ignored otherwise), `default` and `isActiveOnEdge` (booleans, false
    when absent), and, when present, `id`, `version` and `updateEpoch` (seconds).
    """
    if not isinstance(body, Mapping):
        raise InvalidInput("a merge policy must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name is required: a non-empty string", field="name")
    schema_class = _choice(body, "schema", "name", (PROFILE_CLASS,))
    graph: IdentityGraph = _choice(body, "identityGraph", "type", get_args(IdentityGraph))
    attribute: AttributeMerge = _choice(body, "attributeMerge", "type", get_args(AttributeMerge))
    order = _order(body["attributeMerge"]) if attribute == "dataSetPrecedence" else ()
    return MergePolicy(
        id=_string(body, "id"),
        name=name.strip(),
        schema_class=schema_class,
        default=_flag(body, "default"),
        attribute_merge=attribute,
        order=order,
        identity_graph=graph,
        active_on_edge=_flag(body, "isActiveOnEdge"),
        version=_count(body, "version", 1, least=1),
        updated_ms=_count(body, "updateEpoch", 0, least=0) * 1000,
    )


def policy_to_api(policy: MergePolicy) -> dict[str, Any]:
    """AEP's `MergePolicy` shape of `policy` (`updateEpoch` in seconds)."""
    attribute: dict[str, Any] = {"type": policy.attribute_merge}
    if policy.attribute_merge == "dataSetPrecedence":
        attribute["order"] = list(policy.order)
    return {
        "id": policy.id,
        "name": policy.name,
        "schema": {"name": policy.schema_class},
        "version": policy.version,
        "identityGraph": {"type": policy.identity_graph},
        "attributeMerge": attribute,
        "default": policy.default,
        "isActiveOnEdge": policy.active_on_edge,
        "updateEpoch": policy.updated_ms // 1000,
    }


def _choice(body: Mapping[str, Any], outer: str, inner: str, allowed: tuple[str, ...]) -> Any:
    """`body[outer][inner]`, which must be one of `allowed`."""
    field = f"{outer}.{inner}"
    holder = body.get(outer)
    value = holder.get(inner) if isinstance(holder, Mapping) else None
    if value not in allowed:
        choices = " or ".join(repr(a) for a in allowed)
        raise InvalidInput(f"{field} must be {choices}, got {value!r}", field=field)
    return value


def _order(attribute_merge: Mapping[str, Any]) -> tuple[str, ...]:
    field = "attributeMerge.order"
    order = attribute_merge.get("order")
    if not isinstance(order, list) or not order:
        raise InvalidInput(f"{field} must list the datasets for dataSetPrecedence", field=field)
    if not all(isinstance(d, str) and d for d in order):
        raise InvalidInput(f"{field} must hold dataset ids (non-empty strings)", field=field)
    if len(set(order)) != len(order):
        raise InvalidInput(f"{field} must name each dataset once", field=field)
    return tuple(order)


def _flag(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false, got {value!r}", field=field)
    return value


def _string(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {value!r}", field=field)
    return value


def _count(body: Mapping[str, Any], field: str, absent: int, *, least: int) -> int:
    value = body.get(field, absent)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInput(f"{field} must be an integer of at least {least}", field=field)
    return value
